// Package bench measures vxswitch against the Linux kernel vxlan device on
// the same namespaces, in the same run, and reports the ratios. Beside both
// it measures relays (relay.go): a naive userspace relay (package naive: one
// frame per system call), to show what a userspace overlay costs when it is
// written the obvious way, and on request a minimal C relay, the least any
// userspace relay can cost.
//
// It backs `vxswitch lab bench`. Each figure is measured in interleaved
// rounds (kernel, vxswitch, naive, kernel, vxswitch, naive, ...) because
// the machines it runs on are shared and noisy; the report gives medians
// and their ratios. It is a benchmark, not a test: nothing here passes or
// fails.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
	"vxswitch/vxlan"
)

// Options say what to measure. Zero fields take the default in their
// comment.
type Options struct {
	Rounds   int           // interleaved rounds per figure; 0 = 3
	Duration time.Duration // length of one throughput run; 0 = 5 s
	Pings    int           // pings per latency round, every 10 ms; 0 = 500
	Binary   string        // vxswitch executable; "" = this process
	Prefix   string        // namespace prefix; "" = "vxb-"
	StateDir string        // "" = /run/vxswitch/bench
	Log      io.Writer     // progress lines; nil = discard
	// CongestionControl is the TCP congestion control of the TCP figures
	// (iperf3 -C), the same for both data paths; "" = this machine's
	// default, the one new namespaces inherit. It changes the figures a
	// lot: BBR paces every burst, CUBIC sends as fast as the window allows.
	CongestionControl string
	// NoNaive leaves out the naive relay; the zero value measures it.
	NoNaive bool
	// Floor adds the minimal C relay (floor/relay.c, built with gcc) in
	// both its designs: the least latency a userspace relay adds here.
	Floor bool
	// IPv6Underlay puts both hosts on an IPv6 underlay (lab.Options):
	// vxswitch and the kernel vxlan device both carry VXLAN over UDP/IPv6
	// with 70 bytes of overhead. The relays speak IPv4 only: the naive
	// relay is left out, and Floor is refused.
	IPv6Underlay bool
	// Encrypted adds the path "vxswitch-esp": an encrypted network (ESP
	// in UDP, AES-GCM) between the same two agents, beside the clear one.
	// The kernel's vxlan+xfrm path cannot be measured where the kernel has
	// no ESP (CONFIG_INET_ESP); it is left out.
	Encrypted bool
}

// check rejects what cannot be measured, naming the flag and the fix.
func (o *Options) check() error {
	switch {
	case o.Rounds < 0:
		return fmt.Errorf("bench: --rounds %d: use 1 or more", o.Rounds)
	case o.Duration < 0 || o.Duration > 0 && o.Duration < time.Second:
		return fmt.Errorf("bench: --time %v: use 1s or more (iperf3 counts whole seconds)", o.Duration)
	case o.Pings < 0:
		return fmt.Errorf("bench: --pings %d: use 1 or more", o.Pings)
	case o.IPv6Underlay && o.Floor:
		return fmt.Errorf("bench: --floor with --ipv6-underlay: the C relays speak IPv4 only; leave out one of them")
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.Pings == 0 {
		o.Pings = 500
	}
	if o.Prefix == "" {
		o.Prefix = "vxb-"
	}
	if o.StateDir == "" {
		o.StateDir = "/run/vxswitch/bench"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.IPv6Underlay {
		o.NoNaive = true // the naive relay speaks IPv4 only
	}
}

// Figure is one measured quantity for every data path.
type Figure struct {
	Name     string    `json:"name"`
	Unit     string    `json:"unit"`
	Kernel   []float64 `json:"kernel"`   // one value per round
	VXSwitch []float64 `json:"vxswitch"` // one value per round
	// Ratio is median(vxswitch)/median(kernel), or for latencies the
	// difference median(vxswitch)-median(kernel) in the same unit; for a
	// figure without kernel values, median(vxswitch).
	Ratio float64 `json:"ratio"`
	// Others are the relays measured beside the kernel and vxswitch.
	Others []Other `json:"others,omitempty"`
	// Added is true when Ratio is a difference (latency added).
	Added bool `json:"added,omitempty"`
}

// Other is one relay's values of a figure.
type Other struct {
	Path   string    `json:"path"`   // "naive", "c-threads" or "c-epoll"
	Values []float64 `json:"values"` // one value per round
	Ratio  float64   `json:"ratio"`  // as Figure.Ratio, for these values
}

// Report is the result of one benchmark run.
type Report struct {
	Date   string `json:"date"`
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Rounds int    `json:"rounds"`
	// CongestionControl is the TCP congestion control of the TCP figures.
	CongestionControl string `json:"congestion_control"`
	// Underlay is the underlay's IP family, "IPv4" or "IPv6", and
	// Overhead the VXLAN overhead it means (50 or 70 bytes), for every
	// path measured.
	Underlay string `json:"underlay"`
	Overhead int    `json:"overhead"`
	// Paths are the data paths measured, in the order of each round.
	Paths   []string `json:"paths"`
	Figures []Figure `json:"figures"`
}

// kernelVNI and kernelPort keep the kernel's vxlan devices apart from the
// agents' sockets on 4789 in the same host namespaces (the relays have
// their own, in relayPaths).
const (
	kernelVNI  = 999
	kernelPort = 4790
)

// Run builds a two-host lab per underlay MTU (1500, then 9000), adds a
// kernel vxlan device and the relays opt asks for between the same host
// namespaces, and measures every path.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	opt.setDefaults()
	for _, tool := range []string{"iperf3", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("bench: %s not found: install it (apt-get install iperf3 iputils-ping)", tool)
		}
	}
	cc, err := congestionControl(opt.CongestionControl, "/proc/sys/net/ipv4")
	if err != nil {
		return nil, err
	}
	opt.CongestionControl = cc
	relays, cleanup, err := chooseRelays(opt)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	r := &Report{Date: time.Now().UTC().Format(time.RFC3339), Kernel: kernelRelease(), CPUs: cpus(), CPU: cpuModel(), Rounds: opt.Rounds, CongestionControl: cc,
		Underlay: "IPv4", Overhead: vxlan.OverheadIPv4, Paths: []string{"kernel", "vxswitch"}}
	if opt.IPv6Underlay {
		r.Underlay, r.Overhead = "IPv6", vxlan.OverheadIPv6
	}
	if opt.Encrypted {
		r.Paths = append(r.Paths, "vxswitch-esp")
	}
	for _, rp := range relays {
		r.Paths = append(r.Paths, rp.name)
	}
	for _, mtu := range []int{1500, 9000} {
		figs, err := runMTU(ctx, opt, relays, mtu)
		if err != nil {
			return nil, err
		}
		r.Figures = append(r.Figures, figs...)
	}
	return r, nil
}

// pair is one data path between two namespaces: where the client and the
// server run, and the server's address.
type pair struct {
	name            string
	clientNS, srvNS string
	srv             netip.Addr
	agentPIDs       []int // processes whose CPU time counts (not the kernel's): h1's, h2's
}

func runMTU(ctx context.Context, opt Options, relays []relayPath, mtu int) (figs []Figure, err error) {
	lopt := lab.Options{Prefix: opt.Prefix, Hosts: 2, Binary: opt.Binary, StateDir: opt.StateDir, UnderlayMTU: mtu, IPv6Underlay: opt.IPv6Underlay}
	lab.Down(lopt)
	c, err := lab.Up(ctx, lopt)
	if err != nil {
		return nil, err
	}
	defer c.Down()
	h1, h2 := c.Net.Hosts[0], c.Net.Hosts[1]
	for i, h := range []*netlab.Host{h1, h2} {
		peer := []netip.Addr{h2.Addr, h1.Addr}[i]
		addr := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, 0, byte(i + 1)}), 24)
		if err := h.KernelVTEP(netlab.VTEPOptions{Name: "kvx", VNI: kernelVNI, Port: kernelPort, Peers: []netip.Addr{peer}, Addr: addr}); err != nil {
			return nil, err
		}
	}
	kernel := pair{name: "kernel", clientNS: h1.NS, srvNS: h2.NS, srv: netip.MustParseAddr("10.99.0.2")}
	vx := pair{name: "vxswitch", clientNS: c.Endpoints[0].NS, srvNS: c.Endpoints[1].NS, srv: c.Endpoints[1].IP}
	for _, a := range c.Agents {
		pid, err := agentPID(a)
		if err != nil {
			return nil, fmt.Errorf("bench: agent of %s: %w", a.Host.Name, err)
		}
		vx.agentPIDs = append(vx.agentPIDs, pid)
	}
	paths := []pair{kernel, vx}
	if opt.Encrypted {
		enc, err := encryptedPair(ctx, c, vx.agentPIDs)
		if err != nil {
			return nil, err
		}
		paths = append(paths, enc)
		fmt.Fprintf(opt.Log, "underlay MTU %d: encrypted network up (ESP in UDP 4500)\n", mtu)
	}
	fmt.Fprintf(opt.Log, "underlay MTU %d (%s): lab up, kernel vxlan devices on port %d\n", mtu, vxlan.Family(h1.Addr), kernelPort)
	for _, rp := range relays {
		p := pair{name: rp.name, clientNS: h1.NS, srvNS: h2.NS, srv: rp.addr(2).Addr()}
		for i, h := range []*netlab.Host{h1, h2} {
			proc, err := rp.start(ctx, c.Opt.Binary, h, []*netlab.Host{h2, h1}[i], i+1)
			if err != nil {
				return nil, err
			}
			defer proc.stop()
			p.agentPIDs = append(p.agentPIDs, proc.cmd.Process.Pid)
		}
		paths = append(paths, p)
		fmt.Fprintf(opt.Log, "underlay MTU %d: %s relays on port %d\n", mtu, rp.name, rp.port)
	}

	tag := fmt.Sprintf(" (%d underlay)", mtu)
	if opt.IPv6Underlay {
		tag = fmt.Sprintf(" (%d IPv6 underlay)", mtu)
	}
	fwd := Figure{Name: "TCP 1 stream c1->c2" + tag, Unit: "Gbit/s"}
	rev := Figure{Name: "TCP 1 stream c2->c1" + tag, Unit: "Gbit/s"}
	cpu := Figure{Name: "userspace CPU per GB, both hosts" + tag, Unit: "s/GB"}
	cpuSend := Figure{Name: "userspace CPU per GB, sending host" + tag, Unit: "s/GB"}
	cpuRecv := Figure{Name: "userspace CPU per GB, receiving host" + tag, Unit: "s/GB"}
	small := Figure{Name: "64-byte frames delivered" + tag, Unit: "kframes/s"}
	p50 := Figure{Name: "ping p50" + tag, Unit: "us", Added: true}
	p99 := Figure{Name: "ping p99" + tag, Unit: "us", Added: true}
	for round := 0; round < opt.Rounds; round++ {
		for _, p := range paths {
			record := func(f *Figure, v float64) {
				values := f.values(p.name)
				*values = append(*values, v)
			}
			before := cpuEach(p.agentPIDs)
			gbit, bytes, err := tcp(ctx, p, opt, false)
			if err != nil {
				return nil, err
			}
			used := cpuEach(p.agentPIDs)
			record(&fwd, gbit)
			if p.name != "kernel" && bytes > 0 && len(used) == 2 {
				gb := bytes / 1e9
				send, recv := used[0]-before[0], used[1]-before[1]
				record(&cpu, (send+recv)/gb)
				record(&cpuSend, send/gb)
				record(&cpuRecv, recv/gb)
			}
			if gbit, _, err = tcp(ctx, p, opt, true); err != nil {
				return nil, err
			}
			record(&rev, gbit)
			line := fmt.Sprintf("  round %d %-9s tcp %.2f/%.2f Gbit/s", round+1, p.name, fwd.last(p.name), gbit)
			if mtu == 1500 { // small frames and ping do not depend on the underlay's MTU
				pps, err := smallFrames(ctx, p, opt.Duration)
				if err != nil {
					return nil, err
				}
				record(&small, pps/1000)
				a, b, err := pingPercentiles(ctx, p, opt.Pings)
				if err != nil {
					return nil, err
				}
				record(&p50, a)
				record(&p99, b)
				line += fmt.Sprintf(", %.0f kframes/s, ping p50 %.0f us p99 %.0f us", pps/1000, a, b)
			}
			fmt.Fprintln(opt.Log, line)
		}
	}
	for _, f := range []*Figure{&fwd, &rev, &small, &p50, &p99, &cpu, &cpuSend, &cpuRecv} {
		f.setRatios()
	}
	if mtu != 1500 {
		return []Figure{fwd, rev}, nil
	}
	return []Figure{fwd, rev, small, p50, p99, cpu, cpuSend, cpuRecv}, nil
}

// values returns the per-round values of f for the data path called path,
// adding an Other for a relay f has none of yet.
func (f *Figure) values(path string) *[]float64 {
	switch path {
	case "kernel":
		return &f.Kernel
	case "vxswitch":
		return &f.VXSwitch
	}
	if o := f.other(path); o != nil {
		return &o.Values
	}
	f.Others = append(f.Others, Other{Path: path})
	return &f.Others[len(f.Others)-1].Values
}

// other returns f's values of the relay called path, or nil.
func (f *Figure) other(path string) *Other {
	for i := range f.Others {
		if f.Others[i].Path == path {
			return &f.Others[i]
		}
	}
	return nil
}

// setRatios sets Ratio, and each Other's, from the medians.
func (f *Figure) setRatios() {
	ratio := func(v []float64) float64 {
		switch {
		case len(f.Kernel) == 0:
			return median(v)
		case f.Added:
			return median(v) - median(f.Kernel)
		}
		return median(v) / median(f.Kernel)
	}
	f.Ratio = ratio(f.VXSwitch)
	for i := range f.Others {
		f.Others[i].Ratio = ratio(f.Others[i].Values)
	}
}

func (f *Figure) last(path string) float64 {
	v := *f.values(path)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)-1]
}

// iperfResult is the part of iperf3's --json output the benchmark reads.
type iperfResult struct {
	End struct {
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		Sum struct {
			Packets     float64 `json:"packets"`
			LostPackets float64 `json:"lost_packets"`
			Seconds     float64 `json:"seconds"`
		} `json:"sum"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperf runs one iperf3 server in p.srvNS and one client in p.clientNS.
func iperf(ctx context.Context, p pair, args ...string) (iperfResult, error) {
	var r iperfResult
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", p.srvNS, "iperf3", "-s", "-1", "-p", "5211")
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // also when the bench is killed
	if err := srv.Start(); err != nil {
		return r, fmt.Errorf("bench: start iperf3 server: %w", err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	if err := waitListen(ctx, p.srvNS, "5211"); err != nil {
		return r, err
	}
	full := append([]string{"-c", p.srv.String(), "-p", "5211", "--json"}, args...)
	out, err := netlab.Exec(ctx, p.clientNS, "iperf3", full...)
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		return r, fmt.Errorf("bench: iperf3 %v on %s: %v: %s", args, p.name, err, out)
	}
	if r.Error != "" {
		srv.Process.Kill()
		srv.Wait()
		return r, fmt.Errorf("bench: iperf3 %v on %s: %s (server said: %s)", args, p.name, r.Error, strings.TrimSpace(srvOut.String()))
	}
	return r, nil
}

// waitListen polls `ss` in netns ns until a TCP socket listens on port, for
// at most 10 s.
func waitListen(ctx context.Context, ns, port string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := netlab.Exec(ctx, ns, "ss", "-Hltn", "sport = :"+port)
		if strings.Contains(string(out), "LISTEN") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: iperf3 server in %s not listening on %s after 10 s", ns, port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tcp measures one TCP stream for opt.Duration with
// opt.CongestionControl; reverse makes the server send.
func tcp(ctx context.Context, p pair, opt Options, reverse bool) (gbit float64, bytes float64, err error) {
	args := []string{"-t", strconv.Itoa(int(opt.Duration.Seconds())), "-C", opt.CongestionControl}
	if reverse {
		args = append(args, "-R")
	}
	r, err := iperf(ctx, p, args...)
	if err != nil {
		return 0, 0, err
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, r.End.SumReceived.Bytes, nil
}

// smallFrames sends UDP datagrams of 18 bytes (64-byte Ethernet frames with
// the FCS) as fast as iperf3 can and returns those delivered per second.
func smallFrames(ctx context.Context, p pair, d time.Duration) (float64, error) {
	r, err := iperf(ctx, p, "-u", "-b", "0", "-l", "18", "-t", strconv.Itoa(int(d.Seconds())))
	if err != nil {
		return 0, err
	}
	s := r.End.Sum
	if s.Seconds == 0 {
		return 0, fmt.Errorf("bench: iperf3 UDP on %s reported no duration", p.name)
	}
	return (s.Packets - s.LostPackets) / s.Seconds, nil
}

// pingPercentiles pings every 10 ms and returns the p50 and p99 RTT in us.
func pingPercentiles(ctx context.Context, p pair, n int) (float64, float64, error) {
	ping := func(count int) ([]byte, error) {
		return netlab.Exec(ctx, p.clientNS, "ping", "-c", strconv.Itoa(count), "-i", "0.01", "-W", "1", p.srv.String())
	}
	ping(3) // neighbours resolved, caches warm
	out, err := ping(n)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: ping on %s: %v: %s", p.name, err, out)
	}
	rtts := parsePing(string(out))
	if len(rtts) == 0 {
		return 0, 0, fmt.Errorf("bench: ping on %s printed no times: %s", p.name, out)
	}
	return percentile(rtts, 50), percentile(rtts, 99), nil
}

// parsePing returns the "time=X ms" values of ping's output in us.
func parsePing(out string) []float64 {
	var rtts []float64
	for _, line := range strings.Split(out, "\n") {
		_, after, ok := strings.Cut(line, "time=")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.Fields(after)[0], "ms"), 64)
		if err == nil {
			rtts = append(rtts, v*1000)
		}
	}
	return rtts
}

// percentile returns the p-th percentile of v by the nearest-rank method.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// agentPID reads the pid file the lab wrote for an agent.
func agentPID(a *lab.Agent) (int, error) {
	b, err := os.ReadFile(a.PIDFile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// cpuEach returns the user plus system CPU seconds of each process, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s); 0 for a
// process it cannot read.
func cpuEach(pids []int) []float64 {
	secs := make([]float64, len(pids))
	for i, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		secs[i] = statCPU(string(b))
	}
	return secs
}

// statCPU returns the user plus system CPU seconds in the text of a
// /proc/PID/stat file, or 0 when it is too short.
func statCPU(stat string) float64 {
	// The command name in field 2 may hold spaces: count from its ')'.
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (u + st) / 100
}

// congestionControl returns want, or when want is "" the default TCP
// congestion control, after checking that the kernel has it; dir is
// /proc/sys/net/ipv4 (a parameter for tests).
func congestionControl(want, dir string) (string, error) {
	def, err := os.ReadFile(filepath.Join(dir, "tcp_congestion_control"))
	if err != nil {
		return "", fmt.Errorf("bench: read the default TCP congestion control: %w", err)
	}
	if want == "" {
		return strings.TrimSpace(string(def)), nil
	}
	avail, err := os.ReadFile(filepath.Join(dir, "tcp_available_congestion_control"))
	if err != nil {
		return "", fmt.Errorf("bench: read the available TCP congestion controls: %w", err)
	}
	have := strings.Fields(string(avail))
	if !slices.Contains(have, want) {
		return "", fmt.Errorf("bench: TCP congestion control %q is not loaded (this kernel has %s): pick one of those, or load it first (modprobe tcp_%s)",
			want, strings.Join(have, ", "), want)
	}
	return want, nil
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func cpus() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

// Write prints the report as a table: the medians of every path, the
// ratios to the kernel (or the latency added), and the spread of the
// per-round ratios, each vxswitch round against the kernel round just
// before it. A path without values in a figure shows "-".
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "vxswitch vs kernel vxlan, %s, kernel %s, %d CPUs (%s), medians of %d interleaved rounds, TCP congestion control %s\n",
		r.Date, r.Kernel, r.CPUs, r.CPU, r.Rounds, r.CongestionControl)
	if r.Underlay != "" {
		fmt.Fprintf(w, "underlay %s: VXLAN overhead %d bytes on every path\n", r.Underlay, r.Overhead)
	}
	fmt.Fprintln(w)
	var others []string // the relays, after kernel and vxswitch
	for _, p := range r.Paths {
		if p != "kernel" && p != "vxswitch" {
			others = append(others, p)
		}
	}
	cols := []string{"figure", "kernel", "vxswitch"}
	cols = append(cols, others...)
	cols = append(cols, "vxswitch/kernel")
	for _, o := range others {
		cols = append(cols, o+"/kernel")
	}
	cols = append(cols, "rounds (min-max)")
	width := len(cols[0])
	for _, f := range r.Figures {
		width = max(width, len(f.Name)+len(f.Unit)+3)
	}
	row := func(cells []string) {
		fmt.Fprintf(w, "%-*s", width, cells[0])
		for i, c := range cells[1:] {
			fmt.Fprintf(w, " %*s", max(len(cols[i+1]), 9), c)
		}
		fmt.Fprintln(w)
	}
	row(cols)
	for _, f := range r.Figures {
		value := func(v []float64) string {
			switch {
			case len(v) == 0:
				return "-"
			case f.Added:
				return fmt.Sprintf("%.0f", median(v))
			}
			return fmt.Sprintf("%.2f", median(v))
		}
		ratio := func(x float64) string {
			switch {
			case f.Added:
				return fmt.Sprintf("+%.0f %s", x, f.Unit)
			case len(f.Kernel) == 0:
				return fmt.Sprintf("%.2f %s", x, f.Unit)
			}
			return fmt.Sprintf("%.2fx", x)
		}
		cells := []string{f.Name + " (" + f.Unit + ")", value(f.Kernel), value(f.VXSwitch)}
		for _, p := range others {
			cells = append(cells, "-")
			if o := f.other(p); o != nil {
				cells[len(cells)-1] = value(o.Values)
			}
		}
		cells = append(cells, ratio(f.Ratio))
		for _, p := range others {
			cells = append(cells, "-")
			if o := f.other(p); o != nil && len(o.Values) > 0 {
				cells[len(cells)-1] = ratio(o.Ratio)
			}
		}
		spread := ""
		if lo, hi, ok := f.roundSpread(); ok {
			spread = fmt.Sprintf("%.2f-%.2fx", lo, hi)
			if f.Added {
				spread = fmt.Sprintf("+%.0f..+%.0f", lo, hi)
			}
		}
		row(append(cells, spread))
	}
}

// roundSpread returns the smallest and largest per-round comparison of f:
// vxswitch/kernel, or vxswitch-kernel when f.Added, for each round that
// measured both. ok is false when no round did.
func (f Figure) roundSpread() (lo, hi float64, ok bool) {
	for i := range min(len(f.Kernel), len(f.VXSwitch)) {
		var x float64
		switch {
		case f.Added:
			x = f.VXSwitch[i] - f.Kernel[i]
		case f.Kernel[i] > 0:
			x = f.VXSwitch[i] / f.Kernel[i]
		default:
			continue
		}
		if !ok || x < lo {
			lo = x
		}
		if !ok || x > hi {
			hi = x
		}
		ok = true
	}
	return lo, hi, ok
}

// encryptedPair creates the encrypted network "sec" on the lab, attaches one
// endpoint on each of its two hosts and waits until they reach each other
// (the hosts' first keys take a moment).
func encryptedPair(ctx context.Context, c *lab.Cluster, pids []int) (pair, error) {
	h1, h2 := c.Agents[0], c.Agents[1]
	if err := h1.Client().Post(ctx, "/v1/networks", api.NetworkRequest{Name: "sec", Subnet: "10.98.0.0/24", Encrypted: true}, nil); err != nil {
		return pair{}, fmt.Errorf("bench: create the encrypted network: %w", err)
	}
	e1, err := c.Attach(ctx, h1, "sec", "e1")
	if err != nil {
		return pair{}, err
	}
	e2, err := c.Attach(ctx, h2, "sec", "e2")
	if err != nil {
		return pair{}, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := netlab.Exec(ctx, e1.NS, "ping", "-c", "1", "-W", "1", e2.IP.String()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return pair{}, fmt.Errorf("bench: the encrypted network's endpoints do not reach each other after 30 s")
		}
	}
	return pair{name: "vxswitch-esp", clientNS: e1.NS, srvNS: e2.NS, srv: e2.IP, agentPIDs: pids}, nil
}

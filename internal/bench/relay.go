package bench

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vxswitch/internal/netlab"
	"vxswitch/vxlan"
)

// relaySource is the minimal C relay of Options.Floor.
//
//go:embed floor/relay.c
var relaySource []byte

// relayPath is a relay measured beside the kernel and vxswitch, one process
// per host namespace. Its TAP name, subnet, UDP port and VNI keep it apart
// from the kernel's device, the agents and the other relays.
type relayPath struct {
	name   string
	tap    string
	net    byte // the TAP of host i gets 10.<net>.0.i/24
	port   uint16
	vni    int
	design string // the C relay's design, "threads" or "epoll"; "" for the naive relay
	binary string // the C relay's executable (set by chooseRelays)
}

// relayPaths are all the relays the bench knows, in the order they are
// measured.
var relayPaths = []relayPath{
	{name: "naive", tap: "nvx", net: 98, port: 4791, vni: 998},
	{name: "c-threads", tap: "crt", net: 97, port: 4792, vni: 997, design: "threads"},
	{name: "c-epoll", tap: "cre", net: 96, port: 4793, vni: 996, design: "epoll"},
}

// chooseRelays returns the relays opt asks for; with opt.Floor it builds
// the C relay with gcc into a temporary directory, which cleanup removes.
func chooseRelays(opt Options) (relays []relayPath, cleanup func(), err error) {
	cleanup = func() {}
	var dir string
	if opt.Floor {
		if _, err := exec.LookPath("gcc"); err != nil {
			return nil, nil, fmt.Errorf("bench: --floor builds a C relay and needs gcc: install it (apt-get install gcc libc6-dev)")
		}
		if dir, err = os.MkdirTemp("", "vxswitch-relay"); err != nil {
			return nil, nil, fmt.Errorf("bench: %w", err)
		}
		cleanup = func() { os.RemoveAll(dir) }
		src := filepath.Join(dir, "relay.c")
		if err := os.WriteFile(src, relaySource, 0o644); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("bench: %w", err)
		}
		if out, err := exec.Command("gcc", "-O2", "-pthread", "-o", filepath.Join(dir, "relay"), src).CombinedOutput(); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("bench: build the C relay: %v: %s", err, out)
		}
	}
	for _, rp := range relayPaths {
		switch {
		case rp.design == "" && !opt.NoNaive:
			relays = append(relays, rp)
		case rp.design != "" && opt.Floor:
			rp.binary = filepath.Join(dir, "relay")
			relays = append(relays, rp)
		}
	}
	return relays, cleanup, nil
}

// addr returns the TAP address of host i (1-based).
func (rp relayPath) addr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, rp.net, 0, byte(i)}), 24)
}

// start runs the relay of host h (the i-th, 1-based) towards peer, with
// the MTU the underlay leaves, and returns once its TAP is up. vxs is the
// vxswitch executable, which runs the naive relay ('lab naive-relay').
func (rp relayPath) start(ctx context.Context, vxs string, h, peer *netlab.Host, i int) (*relayProc, error) {
	mtu := strconv.Itoa(h.MTU - vxlan.OverheadIPv4)
	var argv []string
	if rp.design == "" {
		argv = []string{vxs, "lab", "naive-relay", "--tap", rp.tap, "--addr", rp.addr(i).String(), "--mtu", mtu,
			"--listen", netip.AddrPortFrom(h.Addr, rp.port).String(),
			"--peer", netip.AddrPortFrom(peer.Addr, rp.port).String(), "--vni", strconv.Itoa(rp.vni)}
	} else {
		argv = []string{rp.binary, rp.tap, h.Addr.String(), peer.Addr.String(), strconv.Itoa(int(rp.port)), strconv.Itoa(rp.vni), rp.design}
	}
	r, err := startRelay(ctx, h, rp.name, argv)
	if err != nil || rp.design == "" {
		return r, err // the naive relay sets up its own TAP
	}
	for _, args := range [][]string{{"link", "set", rp.tap, "mtu", mtu}, {"addr", "add", rp.addr(i).String(), "dev", rp.tap}, {"link", "set", rp.tap, "up"}} {
		if _, err := netlab.Exec(ctx, h.NS, "ip", args...); err != nil {
			r.stop()
			return nil, fmt.Errorf("bench: %s relay on %s: %w", rp.name, h.Name, err)
		}
	}
	return r, nil
}

// relayProc is one host's relay process, started in the host's namespace.
type relayProc struct {
	cmd    *exec.Cmd
	stderr strings.Builder
	exited chan struct{}
}

// startRelay runs argv in h's namespace and returns once it prints "ready".
func startRelay(ctx context.Context, h *netlab.Host, name string, argv []string) (*relayProc, error) {
	r := &relayProc{exited: make(chan struct{})}
	r.cmd = exec.Command("ip", append([]string{"netns", "exec", h.NS}, argv...)...)
	r.cmd.Stderr = &r.stderr
	// A bench that dies takes its relays with it: nothing else would stop them.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: %s relay on %s: %w", name, h.Name, err)
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start the %s relay on %s: %w", name, h.Name, err)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
		r.cmd.Wait()
		close(r.exited)
	}()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case ok := <-ready:
		if ok {
			return r, nil
		}
		<-r.exited
		return nil, fmt.Errorf("bench: the %s relay on %s did not start: %s", name, h.Name, strings.TrimSpace(r.stderr.String()))
	case <-timeout.C:
		err = fmt.Errorf("bench: the %s relay on %s did not say ready within 10 s", name, h.Name)
	case <-ctx.Done():
		err = fmt.Errorf("bench: start the %s relay on %s: %w", name, h.Name, ctx.Err())
	}
	r.stop()
	return nil, err
}

// stop ends the relay (SIGTERM; the naive relay then deletes its TAP, the C
// relay's goes with it) and waits for it, killing it after 5 s.
func (r *relayProc) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

package bench

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePing(t *testing.T) {
	out := `PING 10.20.0.3 (10.20.0.3) 56(84) bytes of data.
64 bytes from 10.20.0.3: icmp_seq=1 ttl=64 time=0.512 ms
64 bytes from 10.20.0.3: icmp_seq=2 ttl=64 time=1.25 ms
From 10.20.0.2 icmp_seq=3 Destination Host Unreachable

--- 10.20.0.3 ping statistics ---
rtt min/avg/max/mdev = 0.512/0.881/1.250/0.369 ms`
	if got, want := parsePing(out), []float64{512, 1250}; !slices.Equal(got, want) {
		t.Fatalf("parsePing = %v, want %v", got, want)
	}
}

func TestStatistics(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	if m := median(v); m != 3 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of even = %v", m)
	}
	var hundred []float64
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, float64(i))
	}
	for _, tc := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := percentile(hundred, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if !slices.Equal(v, []float64{5, 1, 4, 2, 3}) {
		t.Errorf("statistics reordered their input: %v", v)
	}
}

func TestRoundSpreadAndWrite(t *testing.T) {
	tcp := Figure{Name: "TCP", Unit: "Gbit/s", Kernel: []float64{10, 12, 8}, VXSwitch: []float64{5, 3, 6}, Ratio: 0.5}
	if lo, hi, ok := tcp.roundSpread(); !ok || lo != 0.25 || hi != 0.75 {
		t.Errorf("ratio spread = %v-%v (%v), want 0.25-0.75", lo, hi, ok)
	}
	ping := Figure{Name: "ping", Unit: "us", Kernel: []float64{70, 90}, VXSwitch: []float64{300, 400}, Ratio: 270, Added: true}
	if lo, hi, ok := ping.roundSpread(); !ok || lo != 230 || hi != 310 {
		t.Errorf("added spread = %v-%v (%v), want 230-310", lo, hi, ok)
	}
	cpu := Figure{Name: "CPU", Unit: "s/GB", VXSwitch: []float64{2}, Ratio: 2}
	if _, _, ok := cpu.roundSpread(); ok {
		t.Error("a figure without kernel rounds has a spread")
	}
	paths := []string{"kernel", "vxswitch", "naive"}
	var b strings.Builder
	(&Report{Rounds: 3, CongestionControl: "cubic", Underlay: "IPv6", Overhead: 70, Paths: paths, Figures: []Figure{tcp, ping, cpu}}).Write(&b)
	for _, want := range []string{"0.25-0.75x", "+230..+310", "2.00 s/GB", "congestion control cubic", "underlay IPv6: VXLAN overhead 70 bytes"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	if got := strings.Fields(lineOf(b.String(), "TCP (")); len(got) != 8 || got[4] != "-" || got[6] != "-" {
		t.Errorf("TCP row without naive rounds = %q, want \"-\" as naive median and ratio", got)
	}

	// With the naive relay measured, its median and ratio get their columns.
	tcp.Others = []Other{{Path: "naive", Values: []float64{0.6, 0.7, 0.5}, Ratio: 0.06}}
	ping.Others = []Other{{Path: "naive", Values: []float64{500, 520}, Ratio: 430}}
	cpu.Others = []Other{{Path: "naive", Values: []float64{9}, Ratio: 9}}
	b.Reset()
	(&Report{Rounds: 3, Paths: paths, Figures: []Figure{tcp, ping, cpu}}).Write(&b)
	for name, want := range map[string][]string{
		"TCP (":  {"TCP", "(Gbit/s)", "10.00", "5.00", "0.60", "0.50x", "0.06x", "0.25-0.75x"},
		"ping (": {"ping", "(us)", "80", "350", "510", "+270", "us", "+430", "us", "+230..+310"},
		"CPU (":  {"CPU", "(s/GB)", "-", "2.00", "9.00", "2.00", "s/GB", "9.00", "s/GB"},
	} {
		if got := strings.Fields(lineOf(b.String(), name)); !slices.Equal(got, want) {
			t.Errorf("row %q = %q, want %q", name, got, want)
		}
	}
}

func TestSetRatios(t *testing.T) {
	tcp := Figure{Kernel: []float64{10, 8}, VXSwitch: []float64{5, 4},
		Others: []Other{{Path: "naive", Values: []float64{1}}, {Path: "c-epoll", Values: []float64{2}}}}
	tcp.setRatios()
	if tcp.Ratio != 0.5 || tcp.Others[0].Ratio != 1.0/9 || tcp.Others[1].Ratio != 2.0/9 {
		t.Errorf("throughput ratios %v, %+v; want 0.5, 1/9, 2/9", tcp.Ratio, tcp.Others)
	}
	ping := Figure{Added: true, Kernel: []float64{80}, VXSwitch: []float64{300}, Others: []Other{{Path: "naive", Values: []float64{400}}}}
	ping.setRatios()
	if ping.Ratio != 220 || ping.Others[0].Ratio != 320 {
		t.Errorf("latency added %v, %+v; want 220, 320", ping.Ratio, ping.Others)
	}
	cpu := Figure{VXSwitch: []float64{2, 3, 1}, Others: []Other{{Path: "naive", Values: []float64{27}}}}
	cpu.setRatios()
	if cpu.Ratio != 2 || cpu.Others[0].Ratio != 27 {
		t.Errorf("figure without kernel values: %v, %+v; want the medians 2 and 27", cpu.Ratio, cpu.Others)
	}
	// values adds a relay's values the first time it is asked for them.
	var f Figure
	for _, v := range []float64{1, 2} {
		for _, p := range []string{"naive", "c-threads"} {
			vs := f.values(p)
			*vs = append(*vs, v)
		}
	}
	if len(f.Others) != 2 || f.Others[1].Path != "c-threads" || !slices.Equal(f.Others[0].Values, []float64{1, 2}) {
		t.Errorf("Others after values() = %+v", f.Others)
	}
}

// lineOf returns the first line of text that starts with prefix.
func lineOf(text, prefix string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

func TestCongestionControl(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tcp_congestion_control", "bbr\n")
	write("tcp_available_congestion_control", "reno bbr cubic\n")
	for _, c := range []struct{ want, got string }{{"", "bbr"}, {"cubic", "cubic"}, {"reno", "reno"}} {
		if got, err := congestionControl(c.want, dir); err != nil || got != c.got {
			t.Errorf("congestionControl(%q) = %q, %v; want %q", c.want, got, err, c.got)
		}
	}
	_, err := congestionControl("vegas", dir)
	if err == nil || !strings.Contains(err.Error(), "reno, bbr, cubic") || !strings.Contains(err.Error(), "modprobe tcp_vegas") {
		t.Errorf("an unloaded congestion control gave %v, want the loaded ones and the fix", err)
	}
	if _, err := congestionControl("", filepath.Join(dir, "missing")); err == nil {
		t.Error("no error without /proc files")
	}
}

func TestStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 130 ticks; the command
	// name holds a space and a parenthesis.
	stat := "4242 (vx s) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 7 0 100 0 0"
	if got := statCPU(stat); got != 3.8 {
		t.Errorf("statCPU = %v, want 3.8", got)
	}
	if got := statCPU("4242 (vx) S 1"); got != 0 {
		t.Errorf("statCPU of a short line = %v, want 0", got)
	}
	if got := cpuEach([]int{os.Getpid(), -1}); len(got) != 2 || got[1] != 0 {
		t.Errorf("cpuEach(self, -1) = %v, want two values, the second 0", got)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{Rounds: -1}, "--rounds -1: use 1 or more"},
		{Options{Duration: 500 * time.Millisecond}, "--time 500ms: use 1s or more"},
		{Options{Pings: -3}, "--pings -3: use 1 or more"},
		{Options{IPv6Underlay: true, Floor: true}, "the C relays speak IPv4 only"},
	} {
		_, err := Run(context.Background(), tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%+v) = %v, want an error containing %q", tc.opt, err, tc.want)
		}
	}
	if err := (&Options{}).check(); err != nil {
		t.Errorf("the zero Options: %v", err)
	}
}

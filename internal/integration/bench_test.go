package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"vxswitch/internal/bench"
	"vxswitch/internal/netlab"
)

// needTool skips the test when a program it runs is missing, or fails it
// under CI, where .ci/run installs it.
func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed, and CI=true: install it (apt-get install %s; .ci/run does)", name, pkg)
		}
		t.Skip(name + " is not installed: install it to run this test")
	}
}

// TestBenchMeasuresThreePaths runs a short `vxswitch lab bench`: one round
// of each figure over the kernel's vxlan device, vxswitch and the naive
// relay, which all must move data and answer pings, and nothing is left
// behind.
func TestBenchMeasuresThreePaths(t *testing.T) {
	netlab.RequireRoot(t)
	needTool(t, "iperf3", "iperf3")
	var b [2]byte
	rand.Read(b[:])
	prefix := "vxb" + hex.EncodeToString(b[:]) + "-"
	t.Cleanup(func() {
		if err := netlab.Cleanup(prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var log strings.Builder
	r, err := bench.Run(ctx, bench.Options{
		Rounds: 1, Duration: time.Second, Pings: 20,
		Binary: binary, Prefix: prefix, StateDir: t.TempDir(), Log: &log,
	})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	names := map[string]bool{}
	for _, f := range r.Figures {
		names[f.Name] = true
		if strings.HasPrefix(f.Name, "agent CPU") {
			if len(f.VXSwitch) != 1 || len(f.Naive) != 1 || f.VXSwitch[0] <= 0 || f.Naive[0] <= 0 {
				t.Errorf("%s: vxswitch %v, naive %v: want one positive value each", f.Name, f.VXSwitch, f.Naive)
			}
			continue
		}
		for path, v := range map[string][]float64{"kernel": f.Kernel, "vxswitch": f.VXSwitch, "naive": f.Naive} {
			if len(v) != 1 || v[0] <= 0 {
				t.Errorf("%s, %s: %v, want one positive value", f.Name, path, v)
			}
		}
	}
	for _, want := range []string{"TCP 1 stream c1->c2 (1500 underlay)", "TCP 1 stream c2->c1 (9000 underlay)", "64-byte frames delivered (1500 underlay)", "ping p99 (1500 underlay)", "agent CPU per GB, sending host (1500 underlay)"} {
		if !names[want] {
			t.Errorf("no figure %q in the report", want)
		}
	}
	if t.Failed() {
		t.Logf("bench log:\n%s", log.String())
	}
	if left, _ := filepath.Glob(netlab.NetNSDir + prefix + "*"); len(left) > 0 {
		t.Errorf("namespaces left after the bench: %v", left)
	}
}

// TestFloorScript runs internal/bench/floor/floor.sh for one short round:
// it builds its lab, compiles the C relay, and prints p50 and p99 for the
// kernel, the C relay in both its designs and vxswitch.
func TestFloorScript(t *testing.T) {
	netlab.RequireRoot(t)
	needTool(t, "gcc", "gcc libc6-dev")
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "bench", "floor", "floor.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "1", "10")
	cmd.Env = append(os.Environ(), "VXSWITCH="+binary)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("floor.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "round 1, p50/p99 us:") || !strings.Contains(string(out), "medians of 1 rounds of 10 pings") {
		t.Errorf("floor.sh printed no round or no medians:\n%s", out)
	}
	found := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "p50" {
			found[f[0]] = true
		}
	}
	for _, path := range []string{"kernel", "c-threads", "c-epoll", "vxswitch"} {
		if !found[path] {
			t.Errorf("floor.sh printed no median for %s:\n%s", path, out)
		}
	}
	if left, _ := filepath.Glob(netlab.NetNSDir + "vxfl-*"); len(left) > 0 {
		t.Errorf("namespaces left after floor.sh: %v", left)
	}
}

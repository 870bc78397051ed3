package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// TestBenchMeasuresEveryPath runs a short `vxswitch lab bench --floor`:
// one round of each figure over the kernel's vxlan device, vxswitch, the
// naive relay and the C relay in both its designs (built with gcc from the
// embedded source), which all must move data and answer pings, and nothing
// is left behind.
func TestBenchMeasuresEveryPath(t *testing.T) {
	netlab.RequireRoot(t)
	needTool(t, "iperf3", "iperf3")
	needTool(t, "gcc", "gcc libc6-dev")
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
		Rounds: 1, Duration: time.Second, Pings: 20, Floor: true,
		Binary: binary, Prefix: prefix, StateDir: t.TempDir(), Log: &log,
	})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, log.String())
	}
	relays := []string{"naive", "c-threads", "c-epoll"}
	if want := append([]string{"kernel", "vxswitch"}, relays...); !slices.Equal(r.Paths, want) {
		t.Errorf("paths %q, want %q", r.Paths, want)
	}
	names := map[string]bool{}
	for _, f := range r.Figures {
		names[f.Name] = true
		values := map[string][]float64{"kernel": f.Kernel, "vxswitch": f.VXSwitch}
		if strings.HasPrefix(f.Name, "userspace CPU") {
			delete(values, "kernel") // the kernel's path has no process of its own
		}
		for _, p := range relays {
			values[p] = nil
		}
		for _, o := range f.Others {
			values[o.Path] = o.Values
		}
		for path, v := range values {
			if len(v) != 1 || v[0] <= 0 {
				t.Errorf("%s, %s: %v, want one positive value", f.Name, path, v)
			}
		}
	}
	for _, want := range []string{"TCP 1 stream c1->c2 (1500 underlay)", "TCP 1 stream c2->c1 (9000 underlay)", "64-byte frames delivered (1500 underlay)", "ping p50 (1500 underlay)", "ping p99 (1500 underlay)", "userspace CPU per GB, sending host (1500 underlay)"} {
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

// Package integration runs whole vxswitch clusters: real agent processes in
// network namespaces on a bridged veth underlay, real TAP devices, the
// kernels' own TCP/IP stacks in the endpoints, and Raft on disk.
package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// binary is the vxswitch executable built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vxswitch-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // the not-root tests run it as nobody
	binary = filepath.Join(dir, "vxswitch")
	out, err := exec.Command("go", "build", "-o", binary, "vxswitch/cmd/vxswitch").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build vxswitch: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newLab starts a lab with a unique prefix and removes it when the test
// ends, even if it fails.
func newLab(t *testing.T, opt lab.Options) *lab.Cluster {
	t.Helper()
	netlab.RequireRoot(t)
	var b [2]byte
	rand.Read(b[:])
	opt.Prefix = "vxi" + hex.EncodeToString(b[:]) + "-"
	opt.Binary = binary
	opt.StateDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := lab.Up(ctx, opt)
	if err != nil {
		lab.Down(opt)
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, a := range c.Agents {
				t.Logf("log of %s:\n%s", a.Host.Name, a.LogTail())
			}
		}
		if err := c.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return c
}

// run runs a command in netns ns and fails the test if it fails.
func run(t *testing.T, ns string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := netlab.Exec(ctx, ns, name, args...)
	if err != nil {
		t.Fatalf("in %s: %s %s: %v\n%s", ns, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ping sends count pings and fails the test unless all are answered.
func ping(t *testing.T, ns string, dst string, count int) string {
	t.Helper()
	return run(t, ns, "ping", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "2", dst)
}

// cli runs the vxswitch binary against agent a and returns its output.
func cli(t *testing.T, a *lab.Agent, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--socket", a.Socket}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func stats(t *testing.T, a *lab.Agent) api.Stats {
	t.Helper()
	var s api.Stats
	if err := a.Client().Get(context.Background(), "/v1/stats", &s); err != nil {
		t.Fatalf("stats of %s: %v", a.Host.Name, err)
	}
	return s
}

func endpoints(t *testing.T, a *lab.Agent) []api.Endpoint {
	t.Helper()
	var es []api.Endpoint
	if err := a.Client().Get(context.Background(), "/v1/endpoints", &es); err != nil {
		t.Fatalf("endpoints via %s: %v", a.Host.Name, err)
	}
	return es
}

// eventually polls cond every 100 ms until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

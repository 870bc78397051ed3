package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestMembership covers a host cut off from the majority, a refused join,
// and hosts that leave or are removed.
func TestMembership(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3, Bare: 1})
	h1, h2, h3 := c.Agents[0], c.Agents[1], c.Agents[2]
	c1, c2, c3 := c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]
	ctx := context.Background()

	// A join through an address where no agent runs fails with a clear
	// error instead of hanging. It takes the 20 s join timeout, so it runs
	// beside the rest.
	bare := c.Net.Hosts[3]
	token, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	joinErr := make(chan string, 1)
	go func() {
		cmd := exec.Command("ip", "netns", "exec", bare.NS, binary, "--socket", filepath.Join(t.TempDir(), "h9.sock"),
			"agent", "--name", "h9", "--advertise", bare.Addr.String(), "--data-dir", t.TempDir(), "--join", "10.77.0.99", "--token", token)
		out, err := cmd.CombinedOutput()
		joinErr <- fmt.Sprintf("%v: %s", err, out)
	}()

	t.Run("detach while the owning host is down", func(t *testing.T) {
		// An extra endpoint on h2, detached while h2's agent is stopped:
		// the restarted agent deletes its TAP.
		x, err := c.Attach(ctx, h2, "web", "x2")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Stop(1, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if out, err := cli(t, h1, "detach", "x2"); err != nil {
			t.Fatalf("detach x2 while h2 is down: %v: %s", err, out)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := c.Start(cctx, 1); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "x2's TAP deleted by the restarted h2", func() error {
			out, _ := netlab.Exec(ctx, x.NS, "ip", "link", "show", "eth0")
			if !strings.Contains(string(out), "does not exist") {
				return fmt.Errorf("eth0 still in %s: %s", x.NS, out)
			}
			return nil
		})
		ping(t, c1.NS, c2.IP.String(), 1) // h2's own endpoint is back
	})

	t.Run("minority refuses writes, majority goes on", func(t *testing.T) {
		if err := c.Net.Cut(h3.Host); err != nil {
			t.Fatal(err)
		}
		healed := false
		heal := func() {
			if !healed {
				healed = true
				if err := c.Net.Heal(h3.Host); err != nil {
					t.Fatal(err)
				}
			}
		}
		defer heal()
		start := time.Now()
		out, err := cli(t, h3, "network", "create", "minority", "--subnet", "10.70.0.0/24")
		took := time.Since(start)
		if err == nil || !strings.Contains(out, "no quorum") {
			t.Fatalf("write on the cut-off host = %v %q, want a 'no quorum' error", err, out)
		}
		if took > 10*time.Second {
			t.Errorf("the cut-off host took %v to refuse the write, want at most 10 s", took)
		}
		t.Logf("cut-off host refused the write after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(out))
		if out, err := cli(t, h1, "network", "create", "majority", "--subnet", "10.71.0.0/24"); err != nil {
			t.Fatalf("write on the majority side: %v: %s", err, out)
		}
		ping(t, c1.NS, c2.IP.String(), 3)
		heal()
		healStart := time.Now()
		eventually(t, 10*time.Second, "every host converges after the heal", func() error {
			var hashes []string
			for _, a := range c.Agents {
				var s api.Status
				if err := a.Client().Get(ctx, "/v1/status", &s); err != nil {
					return err
				}
				hashes = append(hashes, fmt.Sprintf("%s@%d", s.StateHash[:12], s.Index))
			}
			if hashes[0] != hashes[1] || hashes[0] != hashes[2] {
				return fmt.Errorf("state hashes %v", hashes)
			}
			return nil
		})
		t.Logf("converged %v after the heal", time.Since(healStart).Round(time.Millisecond))
		ping(t, c3.NS, c1.IP.String(), 2)
	})

	t.Run("members rm takes the host's endpoints", func(t *testing.T) {
		if out, err := cli(t, h1, "members", "rm", "h3"); err != nil {
			t.Fatalf("members rm h3: %v: %s", err, out)
		}
		eventually(t, 5*time.Second, "h3 and c3 gone", func() error {
			for _, e := range endpoints(t, h2) {
				if e.Name == "c3" {
					return fmt.Errorf("c3 still listed")
				}
			}
			var ms []api.Member
			if err := h2.Client().Get(ctx, "/v1/members", &ms); err != nil || len(ms) != 2 {
				return fmt.Errorf("members %v (%v)", ms, err)
			}
			// h3 applied its own removal and deleted the endpoint's TAP.
			if out, _ := netlab.Exec(ctx, c3.NS, "ip", "link", "show", "eth0"); !strings.Contains(string(out), "does not exist") {
				return fmt.Errorf("eth0 still in %s: %s", c3.NS, out)
			}
			return nil
		})
	})

	t.Run("leave stops the agent", func(t *testing.T) {
		if out, err := cli(t, h2, "leave"); err != nil {
			t.Fatalf("leave: %v: %s", err, out)
		}
		eventually(t, 10*time.Second, "h2's agent exits and c2 is gone", func() error {
			if c.Running(1) {
				return fmt.Errorf("h2's agent still runs")
			}
			for _, e := range endpoints(t, h1) {
				if e.Name == "c2" {
					return fmt.Errorf("c2 still listed")
				}
			}
			return nil
		})
	})

	select {
	case out := <-joinErr:
		if !strings.Contains(out, "cannot join") || !strings.Contains(out, "10.77.0.99") {
			t.Errorf("join through a dead address: %s; want an error naming the address", out)
		}
	case <-time.After(40 * time.Second):
		t.Errorf("join through a dead address did not give up within 40 s")
	}
}

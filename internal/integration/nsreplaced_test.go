package integration

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestNamespaceReplacedWhileDown: h3's agent is down while the namespace
// of its endpoint c3 is deleted and another one is made under the same
// name, holding a TAP of its own called eth0 (what a reused PID behind a
// /proc/PID/ns/net path amounts to). The restarted agent sees by the
// namespace's inode that it is not the one c3 was attached to: it leaves
// that TAP alone (no MAC, no address of c3 on it) and detaches c3
// (issue 18: the agent used to take the foreign TAP over as c3).
func TestNamespaceReplacedWhileDown(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3})
	h1, c3 := c.Agents[0], c.Endpoints[2]
	if err := c.Stop(2, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := netlab.DelNS(c3.NS); err != nil {
		t.Fatal(err)
	}
	if _, err := netlab.AddNS(c3.NS); err != nil {
		t.Fatal(err)
	}
	run(t, c3.NS, "ip", "tuntap", "add", "dev", "eth0", "mode", "tap")
	run(t, c3.NS, "ip", "link", "set", "eth0", "address", "02:f0:00:00:00:01")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// Detached on the leader, and applied on h3 itself (a stale read
	// there): h3 has then made its own ports match, so a TAP it took over
	// in the meantime would show now, with c3's MAC or deleted.
	for _, a := range []*lab.Agent{h1, c.Agents[2]} {
		eventually(t, 20*time.Second, "c3 detached on "+a.Host.Name, func() error {
			var eps []api.Endpoint
			if err := a.Client().Get(ctx, "/v1/endpoints?stale=1", &eps); err != nil {
				return err
			}
			for _, e := range eps {
				if e.Name == c3.Name {
					return fmt.Errorf("c3 still listed on %s", e.Host)
				}
			}
			return nil
		})
	}
	link := run(t, c3.NS, "ip", "-o", "addr", "show", "dev", "eth0")
	mac := run(t, c3.NS, "cat", "/sys/class/net/eth0/address")
	if strings.TrimSpace(mac) != "02:f0:00:00:00:01" || strings.Contains(link, c3.IP.String()) {
		t.Fatalf("the foreign TAP was taken over: MAC %s, addresses %q", strings.TrimSpace(mac), link)
	}
}

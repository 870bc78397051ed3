package integration

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestReusedAddressReachableAtOnce: on a /29, endpoints attached on h2 take
// addresses that endpoints held before (with other MACs), while the peer on
// h1 still has the old MACs in its neighbour cache. Each new endpoint must
// be reachable both ways within a second of its attach returning: the
// switches announce the reused address with a gratuitous ARP.
func TestReusedAddressReachableAtOnce(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2, Subnet: "10.20.0.0/29", NoEndpoints: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h1, h2 := c.Agents[0], c.Agents[1]
	peer, err := c.Attach(ctx, h1, "web", "peer")
	if err != nil {
		t.Fatal(err)
	}
	// ping reports whether one echo from ns to ip came back within 200 ms.
	ping := func(ns string, ip netip.Addr) bool {
		_, err := netlab.Exec(ctx, ns, "ping", "-c", "1", "-W", "0.2", ip.String())
		return err == nil
	}
	held := map[netip.Addr]string{} // address -> MAC of the last endpoint that held it
	reused := 0
	for i := range 8 {
		start := time.Now()
		ep, err := c.Attach(ctx, h2, "web", fmt.Sprintf("e%d", i))
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		attached := time.Now()
		if mac, ok := held[ep.IP]; ok && mac != ep.MAC {
			reused++
		}
		there, back := false, false
		for time.Since(attached) < 3*time.Second && !(there && back) {
			there = there || ping(peer.NS, ep.IP)
			back = back || ping(ep.NS, peer.IP)
		}
		took := time.Since(attached)
		t.Logf("cycle %d: %s at %s (held before: %v): attach %v, reachable both ways %v after it returned",
			i, ep.Name, ep.IP, held[ep.IP] != "", attached.Sub(start).Round(time.Millisecond), took.Round(time.Millisecond))
		if !there || !back || took > time.Second {
			t.Errorf("cycle %d: %s at %s reachable from h1 %v, to h1 %v, after %v; want both within 1s", i, ep.Name, ep.IP, there, back, took)
		}
		held[ep.IP] = ep.MAC
		if err := h2.Client().Delete(ctx, "/v1/endpoints/"+ep.Name, nil); err != nil {
			t.Fatalf("cycle %d: detach: %v", i, err)
		}
	}
	// .1 is the resolver, .2 the peer: eight cycles over .3-.6 reuse four times.
	if reused < 4 {
		t.Errorf("only %d of 8 attaches reused an address held before: the test did not test reuse", reused)
	}
}

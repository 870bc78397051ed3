package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// createDual returns a network.create command for a dual-stack network.
func createDual(name, subnet, subnet6 string) Command {
	c := createNet(name, subnet, 0)
	c.Network.Subnet6 = netip.MustParsePrefix(subnet6)
	return c
}

func TestIPAM6Sequence(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	res := h.must(createDual("web", "10.20.0.0/24", "fd20::/64"))
	if res.Network.Resolver6 != netip.MustParseAddr("fd20::1") || res.Network.Resolver != netip.MustParseAddr("10.20.0.1") {
		t.Fatalf("network = %+v, want resolvers 10.20.0.1 and fd20::1", res.Network)
	}
	for i, want := range []string{"fd20::2", "fd20::3", "fd20::4"} {
		r := h.must(attach(fmt.Sprintf("e%d", i), "web", "a", mac(i+1)))
		if r.Endpoint.IP6.String() != want || !r.Endpoint.IP.Is4() {
			t.Fatalf("attach %d got %s and %s, want %s and an IPv4 address", i, r.Endpoint.IP, r.Endpoint.IP6, want)
		}
	}
	if got := h.f.State().Networks["web"].LastIP6; got != netip.MustParseAddr("fd20::4") {
		t.Errorf("LastIP6 %s, want fd20::4", got)
	}
	// Serial: a freed address comes back only after the others.
	h.must(Command{Op: OpEndpointDetach, Name: "e1"})
	if r := h.must(attach("e3", "web", "a", mac(4))); r.Endpoint.IP6.String() != "fd20::5" {
		t.Errorf("attach after a detach got %s, want fd20::5", r.Endpoint.IP6)
	}
	// The freed address left the network's address index: it may be asked for.
	c := attach("e4", "web", "a", mac(5))
	c.Endpoint.IP6 = netip.MustParseAddr("fd20::3")
	if r := h.must(c); r.Endpoint.IP6.String() != "fd20::3" {
		t.Errorf("asking for the freed address got %s", r.Endpoint.IP6)
	}
	if e, ok := h.f.State().Endpoints.ByIP("web", netip.MustParseAddr("fd20::3")); !ok || e.Name != "e4" {
		t.Errorf("ByIP(fd20::3) = %v %v, want e4", e.Name, ok)
	}
	// An IPv4-only network gives no IPv6 address and takes none.
	h.must(createNet("v4", "10.30.0.0/24", 0))
	if r := h.must(attach("p", "v4", "a", mac(9))); r.Endpoint.IP6.IsValid() {
		t.Errorf("endpoint of an IPv4-only network got %s", r.Endpoint.IP6)
	}
	c = attach("q", "v4", "a", mac(10))
	c.Endpoint.IP6 = netip.MustParseAddr("fd30::5")
	if r := h.apply(c); !strings.Contains(r.Err, "network v4 has no IPv6 subnet") {
		t.Errorf("IPv6 address in an IPv4-only network: Err %q", r.Err)
	}
	// A network.create cannot set the resolver or LastIP6 itself.
	c = createNet("nosix", "10.40.0.0/24", 0)
	c.Network.Resolver6, c.Network.LastIP6 = netip.MustParseAddr("fd40::1"), netip.MustParseAddr("fd40::9")
	if r := h.must(c); r.Network.Resolver6.IsValid() || r.Network.LastIP6.IsValid() {
		t.Errorf("IPv4-only network kept %s and %s", r.Network.Resolver6, r.Network.LastIP6)
	}
}

// TestIPAM6Exhaustion fills the smallest IPv6 subnet, a /120: 126
// addresses between the resolver and the reserved anycast addresses
// (RFC 2526), then wraps around to a freed one.
func TestIPAM6Exhaustion(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createDual("web", "10.20.0.0/16", "fd20::/120"))
	for i := range 126 {
		r := h.must(attach(fmt.Sprintf("e%d", i), "web", "a", mac(i+1)))
		if want := netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x20, 15: byte(i + 2)}); r.Endpoint.IP6 != want {
			t.Fatalf("attach %d got %s, want %s", i, r.Endpoint.IP6, want)
		}
	}
	before := h.f.State()
	r := h.apply(attach("more", "web", "a", mac(200)))
	if want := "endpoint more: IPv6 subnet fd20::/120 of network web is exhausted (126 addresses in use): create a network with a larger IPv6 subnet"; r.Err != want {
		t.Fatalf("127th attach: Err %q, want %q", r.Err, want)
	}
	if h.f.State() != before {
		t.Fatal("a rejected attach changed the state")
	}
	h.must(Command{Op: OpEndpointDetach, Name: "e10"})
	if r := h.must(attach("more", "web", "a", mac(200))); r.Endpoint.IP6.String() != "fd20::c" {
		t.Errorf("attach after a detach got %s, want the freed fd20::c", r.Endpoint.IP6)
	}
}

// TestIPAM6NoScan: on a /64 whose allocator last gave the highest usable
// address, the next attach wraps around to the bottom at once, and
// allocations look only at the network's own endpoints.
func TestIPAM6NoScan(t *testing.T) {
	st := emptyState()
	p := netip.MustParsePrefix("fd20::/64")
	last := lastUsable6(p)
	if last != netip.MustParseAddr("fd20::ffff:ffff:ffff:ff7f") {
		t.Fatalf("lastUsable6(%s) = %s", p, last)
	}
	nw := Network{Name: "web", Subnet6: p, Resolver6: netip.MustParseAddr("fd20::1"), LastIP6: last}
	st.Networks["web"] = nw
	st.Endpoints = NewEndpointMap(map[string]Endpoint{"x": {Name: "x", Network: "web", IP6: netip.MustParseAddr("fd20::2")}})
	got, err := allocateIP6(st, nw)
	if err != nil || got != netip.MustParseAddr("fd20::3") {
		t.Fatalf("after the top: %s %v, want fd20::3", got, err)
	}
	nw.LastIP6 = last.Prev()
	if got, err := allocateIP6(st, nw); err != nil || got != last {
		t.Fatalf("below the top: %s %v, want %s", got, err, last)
	}
	// Through the FSM: the 300th endpoint of a /64 gets the 300th address.
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createDual("big", "10.0.0.0/16", "fd21::/64"))
	for i := range 300 {
		h.must(attach(fmt.Sprintf("e%d", i), "big", "a", mac(i+1)))
	}
	if got := h.f.State().Networks["big"].LastIP6; got != netip.MustParseAddr("fd21::12d") {
		t.Errorf("LastIP6 after 300 attaches %s, want fd21::12d", got)
	}
}

func TestIPAM6RequestedAndErrors(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createDual("web", "10.20.0.0/24", "fd20::/64"))
	withIP6 := func(name, m, ip string) Command {
		c := attach(name, "web", "a", m)
		c.Endpoint.IP6 = netip.MustParseAddr(ip)
		return c
	}
	if r := h.must(withIP6("a1", mac(1), "fd20::50")); r.Endpoint.IP6.String() != "fd20::50" {
		t.Fatalf("got %s, want the requested fd20::50", r.Endpoint.IP6)
	}
	for _, tc := range []struct{ ip, want string }{
		{"fd20::50", "already used by endpoint a1"},
		{"fd21::5", "not inside IPv6 subnet fd20::/64"},
		{"::ffff:10.20.0.9", "not inside IPv6 subnet"},
		{"fd20::1", "is the resolver"},
		{"fd20::", "subnet-router anycast"},
		{"fd20::ffff:ffff:ffff:ff80", "reserved subnet anycast"},
	} {
		if r := h.apply(withIP6("a2", mac(2), tc.ip)); !strings.Contains(r.Err, tc.want) {
			t.Errorf("IP6 %s: Err = %q, want it to contain %q", tc.ip, r.Err, tc.want)
		}
	}
	for _, tc := range []struct{ subnet6, want string }{
		{"fd20:0:0:0:8000::/65", "overlaps IPv6 subnet fd20::/64 of network web"},
		{"fd30::/16", "prefix length /16"},
		{"fd30::/121", "prefix length /121"},
		{"fd30::1/64", "host bits set: use fd30::/64"},
		{"fe80::/64", "not for endpoint addresses"},
		{"ff05::/64", "not for endpoint addresses"},
		{"10.50.0.0/24", "is not IPv6"},
		{"::ffff:10.50.0.0/120", "is not IPv6"},
	} {
		if r := h.apply(createDual("x", "10.50.0.0/24", tc.subnet6)); !strings.Contains(r.Err, tc.want) {
			t.Errorf("subnet6 %s: Err = %q, want it to contain %q", tc.subnet6, r.Err, tc.want)
		}
	}
}

// FuzzApply6 applies arbitrary command data to a state with a dual-stack
// network: nothing panics, a rejected command changes nothing, and no two
// endpoints of a network share an IPv6 address.
func FuzzApply6(f *testing.F) {
	for _, c := range []Command{
		createDual("six", "10.30.0.0/24", "fd30::/64"),
		attach("b", "web", "a", mac(2)),
		{Op: OpEndpointAttach, Endpoint: &Endpoint{Name: "c", Network: "web", Host: "a", MAC: mac(3), IP6: netip.MustParseAddr("fd20::2")}},
		{Op: OpEndpointAttach, Endpoint: &Endpoint{Name: "c", Network: "web", Host: "a", MAC: mac(3), IP6: netip.MustParseAddr("fd20::9")}},
	} {
		b, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Op":"network.create","Network":{"Name":"x","Subnet":"10.9.0.0/24","Subnet6":"fd09::/120","Resolver6":"fd09::7"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t)
		h.must(addHost("a", "10.0.0.1"))
		h.must(createDual("web", "10.20.0.0/24", "fd20::/120"))
		h.must(attach("api", "web", "a", mac(1)))
		before := h.f.State()
		h.index++
		res, ok := h.f.Apply(&raft.Log{Index: h.index, Data: data}).(*Result)
		if !ok || res == nil {
			t.Fatal("Apply did not return a *Result")
		}
		after := h.f.State()
		if res.Err != "" {
			if after != before || strings.Contains(res.Err, "internal error") {
				t.Fatalf("rejected command (%s) changed the state or panicked", res.Err)
			}
			return
		}
		restored := NewFSM()
		if err := restored.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
			t.Fatal(err)
		}
		if restored.State().Hash() != after.Hash() {
			t.Fatal("snapshot round trip changed the hash")
		}
		seen := map[string]bool{}
		for _, ep := range after.Endpoints.All() {
			nw := after.Networks[ep.Network]
			if nw.Subnet6.IsValid() != ep.IP6.IsValid() {
				t.Fatalf("endpoint %s has IPv6 address %s in a network with IPv6 subnet %s", ep.Name, ep.IP6, nw.Subnet6)
			}
			if !ep.IP6.IsValid() {
				continue
			}
			if key := ep.Network + "/" + ep.IP6.String(); seen[key] {
				t.Fatalf("duplicate address %s", key)
			} else {
				seen[key] = true
			}
			if !nw.Subnet6.Contains(ep.IP6) || ep.IP6 == nw.Resolver6 {
				t.Fatalf("endpoint %s got %s, outside %s or the resolver's", ep.Name, ep.IP6, nw.Subnet6)
			}
		}
	})
}

// TestIPAM6Only: a network with an IPv6 subnet and no IPv4 one gives its
// endpoints an IPv6 address only, has no IPv4 resolver, refuses an IPv4
// address asked for and an address reservation, and overlaps other
// networks' IPv6 subnets only.
func TestIPAM6Only(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	c := Command{Op: OpNetworkCreate, Network: &Network{Name: "six", Subnet6: netip.MustParsePrefix("fd60::/64")}}
	res := h.must(c)
	if res.Network.Resolver.IsValid() || res.Network.Resolver6 != netip.MustParseAddr("fd60::1") || res.Network.VNI == 0 {
		t.Fatalf("IPv6-only network = %+v, want resolver fd60::1 only and a VNI", res.Network)
	}
	for i, want := range []string{"fd60::2", "fd60::3"} {
		r := h.must(attach(fmt.Sprintf("e%d", i), "six", "a", mac(i+1)))
		if r.Endpoint.IP.IsValid() || r.Endpoint.IP6.String() != want {
			t.Fatalf("attach %d got %s and %s, want %s only", i, r.Endpoint.IP, r.Endpoint.IP6, want)
		}
	}
	if n := h.f.State().Endpoints.NetworkLen("six"); n != 2 {
		t.Errorf("network six has %d endpoints, want 2", n)
	}
	c = attach("v4", "six", "a", mac(7))
	c.Endpoint.IP = netip.MustParseAddr("10.60.0.5")
	if r := h.apply(c); !strings.Contains(r.Err, "IPv6-only") {
		t.Errorf("IPv4 address on an IPv6-only network: Err %q", r.Err)
	}
	r := h.apply(Command{Op: OpAddressReserve, Reservation: &Reservation{Network: "six", Host: "a", Owner: "docker"}})
	if !strings.Contains(r.Err, "IPv6-only") {
		t.Errorf("reservation on an IPv6-only network: Err %q", r.Err)
	}
	// Another IPv6-only network may not overlap; an IPv4 one is independent.
	r = h.apply(Command{Op: OpNetworkCreate, Network: &Network{Name: "six2", Subnet6: netip.MustParsePrefix("fd60::/48")}})
	if !strings.Contains(r.Err, "overlaps") {
		t.Errorf("overlapping IPv6-only network: Err %q", r.Err)
	}
	h.must(createNet("four", "10.60.0.0/24", 0))
	// Neither subnet: still refused.
	r = h.apply(Command{Op: OpNetworkCreate, Network: &Network{Name: "none"}})
	if !strings.Contains(r.Err, "subnet is missing") {
		t.Errorf("network without a subnet: Err %q", r.Err)
	}
}

// TestIPAM6Reserve: address.reserve with IPv6 set keeps an IPv6 address
// (Docker's IPAM asks for one per container of a dual-stack network): the
// allocator skips it, another host may not take it, an endpoint of the
// reserving host takes it over, release frees it. An entry without IPv6
// (every entry written before it existed) still reserves IPv4.
func TestIPAM6Reserve(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(addHost("b", "10.0.0.2"))
	h.must(createDual("web", "10.20.0.0/24", "fd20::/64"))
	reserve := func(host string, ip string, v6 bool) *Result {
		r := &Reservation{Network: "web", Host: host, Owner: "docker", IPv6: v6}
		if ip != "" {
			r.IP = netip.MustParseAddr(ip)
		}
		return h.apply(Command{Op: OpAddressReserve, Reservation: r})
	}
	if r := reserve("a", "", false); r.Err != "" || r.Reservation.IP.String() != "10.20.0.2" || r.Reservation.IPv6 {
		t.Fatalf("old-style reservation: %+v, want 10.20.0.2", r)
	}
	if r := reserve("a", "", true); r.Err != "" || r.Reservation.IP.String() != "fd20::2" || !r.Reservation.IPv6 {
		t.Fatalf("IPv6 reservation: %+v, want fd20::2", r)
	}
	if r := reserve("a", "fd20::9", false); r.Err != "" || !r.Reservation.IPv6 {
		t.Fatalf("reservation of fd20::9: %+v, want it marked IPv6", r)
	}
	if r := reserve("b", "fd20::9", false); !strings.Contains(r.Err, "reserved by docker on host a") {
		t.Errorf("second reservation of fd20::9: Err %q", r.Err)
	}
	// The allocator skips the reserved addresses.
	if r := h.must(attach("e1", "web", "a", mac(1))); r.Endpoint.IP6.String() != "fd20::3" || r.Endpoint.IP.String() != "10.20.0.3" {
		t.Errorf("attach after reservations got %s and %s, want 10.20.0.3 and fd20::3", r.Endpoint.IP, r.Endpoint.IP6)
	}
	// Another host's endpoint may not take fd20::2; the reserving host's does.
	c := attach("e2", "web", "b", mac(2))
	c.Endpoint.IP6 = netip.MustParseAddr("fd20::2")
	if r := h.apply(c); !strings.Contains(r.Err, "reserved") {
		t.Errorf("attach on b of a's reserved fd20::2: Err %q", r.Err)
	}
	c = attach("e2", "web", "a", mac(2))
	c.Endpoint.IP, c.Endpoint.IP6 = netip.MustParseAddr("10.20.0.2"), netip.MustParseAddr("fd20::2")
	if r := h.must(c); r.Endpoint.IP6.String() != "fd20::2" {
		t.Errorf("takeover got %s", r.Endpoint.IP6)
	}
	st := h.f.State()
	if _, ok := st.Reserved[ReservationKey("web", netip.MustParseAddr("fd20::2"))]; ok {
		t.Errorf("the reservation of fd20::2 outlived the takeover")
	}
	h.must(Command{Op: OpAddressRelease, Reservation: &Reservation{Network: "web", IP: netip.MustParseAddr("fd20::9")}})
	if n := len(h.f.State().Reserved); n != 0 {
		t.Errorf("%d reservations left, want 0", n)
	}
	// A network without an IPv6 subnet has none to reserve.
	h.must(createNet("v4", "10.30.0.0/24", 0))
	if r := h.apply(Command{Op: OpAddressReserve, Reservation: &Reservation{Network: "v4", Host: "a", IPv6: true}}); !strings.Contains(r.Err, "no IPv6 subnet") {
		t.Errorf("IPv6 reservation on an IPv4-only network: Err %q", r.Err)
	}
}

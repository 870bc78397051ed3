package stateview

import (
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"vxswitch/raftstore"
	"vxswitch/resolver"
	vswitch "vxswitch/switch"
)

// TestDualStack: the view and the name table of a dual-stack network carry
// the IPv6 subnet, the resolver's IPv6 address and every endpoint's IPv6
// address beside the IPv4 ones.
func TestDualStack(t *testing.T) {
	addr := netip.MustParseAddr
	st := &raftstore.State{
		Hosts: map[string]raftstore.Host{"h1": {Name: "h1", VTEP: addr("10.0.0.1")}, "h2": {Name: "h2", VTEP: addr("10.0.0.2")}},
		Networks: map[string]raftstore.Network{
			"web": {Name: "web", VNI: 100, Subnet: netip.MustParsePrefix("10.20.0.0/24"), Resolver: addr("10.20.0.1"),
				Subnet6: netip.MustParsePrefix("fd20::/64"), Resolver6: addr("fd20::1")},
		},
		Endpoints: raftstore.NewEndpointMap(map[string]raftstore.Endpoint{
			"a": {Name: "a", Network: "web", Host: "h1", MAC: "02:00:00:00:00:0a", IP: addr("10.20.0.2"), IP6: addr("fd20::2")},
			"b": {Name: "b", Network: "web", Host: "h2", MAC: "02:00:00:00:00:0b", IP: addr("10.20.0.3"), IP6: addr("fd20::3"), Aliases: []string{"bee"}},
		}),
	}
	web := Build(st, "h1", func(raftstore.Network) int { return 1450 }).Networks[100]
	if web.Subnet6 != netip.MustParsePrefix("fd20::/64") || web.Resolver6 != addr("fd20::1") {
		t.Errorf("view subnet6 %v resolver6 %v", web.Subnet6, web.Resolver6)
	}
	macB, _ := vswitch.ParseMAC("02:00:00:00:00:0b")
	if m6, _ := web.Addrs.Get(addr("fd20::3")); web.Addrs.Len() != 4 || m6 != macB {
		t.Errorf("view addresses %v, want both families of a and b", maps.Collect(web.Addrs.All()))
	} else if m4, _ := web.Addrs.Get(addr("10.20.0.3")); m4 != macB {
		t.Errorf("view addresses %v, want both families of a and b", maps.Collect(web.Addrs.All()))
	}
	s := resolver.New(resolver.Config{Upstreams: []netip.AddrPort{}, Logger: slog.New(slog.DiscardHandler)})
	s.SetTable(Names(st))
	got, err := s.Lookup("web", "bee")
	if err != nil || !slices.Equal(got, []netip.Addr{addr("10.20.0.3"), addr("fd20::3")}) {
		t.Errorf("lookup bee = %v %v, want 10.20.0.3 and fd20::3", got, err)
	}
}

// TestDualStackUpdate: a view patched after an endpoint of a dual-stack
// network left and another came holds the IPv6 addresses of the state,
// as a view built from scratch does.
func TestDualStackUpdate(t *testing.T) {
	addr := netip.MustParseAddr
	nets := map[string]raftstore.Network{
		"web": {Name: "web", VNI: 100, Subnet: netip.MustParsePrefix("10.20.0.0/24"), Resolver: addr("10.20.0.1"),
			Subnet6: netip.MustParsePrefix("fd20::/64"), Resolver6: addr("fd20::1")},
	}
	hosts := map[string]raftstore.Host{"h1": {Name: "h1", VTEP: addr("10.0.0.1")}, "h2": {Name: "h2", VTEP: addr("10.0.0.2")}}
	a := raftstore.Endpoint{Name: "a", Network: "web", Host: "h1", MAC: "02:00:00:00:00:0a", IP: addr("10.20.0.2"), IP6: addr("fd20::2")}
	b := raftstore.Endpoint{Name: "b", Network: "web", Host: "h2", MAC: "02:00:00:00:00:0b", IP: addr("10.20.0.3"), IP6: addr("fd20::3")}
	c := raftstore.Endpoint{Name: "c", Network: "web", Host: "h2", MAC: "02:00:00:00:00:0c", IP: addr("10.20.0.4"), IP6: addr("fd20::4")}
	mtu := func(raftstore.Network) int { return 1450 }
	prevSt := &raftstore.State{Hosts: hosts, Networks: nets, Endpoints: raftstore.NewEndpointMap(map[string]raftstore.Endpoint{"a": a, "b": b})}
	st := &raftstore.State{Hosts: hosts, Networks: nets, Endpoints: raftstore.NewEndpointMap(map[string]raftstore.Endpoint{"a": a, "c": c})}
	got := Update(Build(prevSt, "h1", mtu), prevSt, st, "h1", mtu).Networks[100]
	want := Build(st, "h1", mtu).Networks[100]
	g, w := maps.Collect(got.Addrs.All()), maps.Collect(want.Addrs.All())
	if _, stale := g[addr("fd20::3")]; !maps.Equal(g, w) || stale || len(g) != 4 {
		t.Errorf("patched addresses %v, want %v", g, w)
	}
}

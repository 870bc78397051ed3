package stateview

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"vxswitch/raftstore"
	vswitch "vxswitch/switch"
)

func TestBuild(t *testing.T) {
	addr := netip.MustParseAddr
	st := &raftstore.State{
		Hosts: map[string]raftstore.Host{
			"h1": {Name: "h1", VTEP: addr("10.0.0.1")},
			"h2": {Name: "h2", VTEP: addr("10.0.0.2")},
			"h3": {Name: "h3", VTEP: addr("10.0.0.3")},
		},
		Networks: map[string]raftstore.Network{
			"web": {Name: "web", VNI: 100, Subnet: netip.MustParsePrefix("10.20.0.0/24"), MTU: 1400},
			"db":  {Name: "db", VNI: 200, Subnet: netip.MustParsePrefix("10.30.0.0/24")},
		},
		Endpoints: raftstore.NewEndpointMap(map[string]raftstore.Endpoint{
			"a": {Name: "a", Network: "web", Host: "h1", MAC: "02:00:00:00:00:0a"},
			"b": {Name: "b", Network: "web", Host: "h2", MAC: "02:00:00:00:00:0b"},
			"c": {Name: "c", Network: "web", Host: "h2", MAC: "02:00:00:00:00:0c"},
			"d": {Name: "d", Network: "db", Host: "h3", MAC: "02:00:00:00:00:0d"},
		}),
		VTEPs: []raftstore.VTEP{{Network: "web", Addr: addr("10.0.0.9")}},
		MACs: map[string]raftstore.MACEntry{
			"web/02:00:00:00:00:1b": {Network: "web", MAC: "02:00:00:00:00:1b", Host: "h2", Port: "b"},
			"web/02:00:00:00:00:1a": {Network: "web", MAC: "02:00:00:00:00:1a", Host: "h1", Port: "a"},
		},
	}
	mtu := func(n raftstore.Network) int {
		if n.MTU > 0 {
			return n.MTU
		}
		return 1450
	}
	v := Build(st, "h1", mtu)
	if v.Self != addr("10.0.0.1") || len(v.Hosts) != 3 {
		t.Fatalf("self %v hosts %v", v.Self, v.Hosts)
	}
	web := v.Networks[100]
	// One copy per other host with endpoints, plus the external VTEP; never ourselves.
	want := []netip.Addr{addr("10.0.0.2"), addr("10.0.0.9")}
	got := slices.Clone(web.Flood)
	slices.SortFunc(got, func(a, b netip.Addr) int { return a.Compare(b) })
	if !slices.Equal(got, want) {
		t.Errorf("web flood = %v, want %v", got, want)
	}
	if web.MTU != 1400 {
		t.Errorf("web MTU = %d, want 1400", web.MTU)
	}
	if !web.External[addr("10.0.0.9")] || len(web.External) != 1 {
		t.Errorf("web external = %v", web.External)
	}
	mac := func(s string) vswitch.MAC { m, _ := vswitch.ParseMAC(s); return m }
	wantRemote := map[vswitch.MAC]netip.Addr{
		mac("02:00:00:00:00:0b"): addr("10.0.0.2"),
		mac("02:00:00:00:00:0c"): addr("10.0.0.2"),
		mac("02:00:00:00:00:1b"): addr("10.0.0.2"),
	}
	if got := maps.Collect(web.Remote.All()); !maps.Equal(got, wantRemote) {
		t.Errorf("web remote = %v, want %v (local MACs are not remote)", got, wantRemote)
	}
	db := v.Networks[200]
	if len(db.Flood) != 1 || db.Flood[0] != addr("10.0.0.3") {
		t.Errorf("db flood = %v, want [10.0.0.3]", db.Flood)
	}
}

func TestStableMAC(t *testing.T) {
	a, b := StableMAC("web", "api", 0), StableMAC("web", "api", 0)
	if a != b {
		t.Fatalf("StableMAC not stable: %v %v", a, b)
	}
	if a[0] != 0x02 {
		t.Errorf("MAC %v is not locally administered unicast", a)
	}
	if StableMAC("web", "api", 1) == a || StableMAC("db", "api", 0) == a {
		t.Errorf("salt or network does not change the MAC")
	}
}

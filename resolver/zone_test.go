package resolver

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

// TestZonePatch: a patched zone is the zone NewZone builds from the
// changed records.
func TestZonePatch(t *testing.T) {
	n := Network{Name: "Web", VNI: 7, Subnet: netip.MustParsePrefix("10.1.0.0/24"), Resolver: netip.MustParseAddr("10.1.0.1")}
	rec := func(i int, aliases ...string) Record {
		return Record{Name: fmt.Sprintf("E%d", i), Network: "web", IP: netip.AddrFrom4([4]byte{10, 1, 0, byte(10 + i)}), Aliases: aliases}
	}
	var before []Record
	for i := range 20 {
		before = append(before, rec(i, fmt.Sprintf("a%d", i)))
	}
	gone := []Record{before[3], before[7]}
	added := []Record{rec(30, "x"), rec(7, "renamed"), {Name: "outside", Network: "web", IP: netip.MustParseAddr("192.0.2.1")}}
	var after []Record
	for i, r := range before {
		if i != 3 && i != 7 {
			after = append(after, r)
		}
	}
	after = append(after, added...)
	got := NewZone(n, before).Patch(gone, added)
	want := NewZone(n, after)
	if !reflect.DeepEqual(got.z.names(), want.z.names()) {
		t.Fatalf("patched zone's names differ:\n%+v\n%+v", got.z.names(), want.z.names())
	}
	if g, w := maps.Collect(got.z.ptrs.All()), maps.Collect(want.z.ptrs.All()); !maps.Equal(g, w) {
		t.Fatalf("patched zone's PTRs differ:\n%v\n%v", g, w)
	}
	for name, addrs := range want.z.addrs.All() {
		if g, _ := got.z.addrs.Get(name); !slices.Equal(g, addrs) {
			t.Errorf("%s: %v, want %v", name, g, addrs)
		}
	}
	if got.z.addrs.Len() != want.z.addrs.Len() {
		t.Errorf("patched zone has %d names, want %d", got.z.addrs.Len(), want.z.addrs.Len())
	}
	// The zone patched from is unchanged.
	z0 := NewZone(n, before)
	names0 := z0.z.names()
	z0.Patch(gone, added)
	if !reflect.DeepEqual(z0.z.names(), names0) || len(names0) != 40 {
		t.Fatalf("patching changed the zone patched from (%d names, want 40)", len(z0.z.names()))
	}
}

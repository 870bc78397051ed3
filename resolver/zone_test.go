package resolver

import (
	"fmt"
	"net/netip"
	"reflect"
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
	if want := NewZone(n, after); !reflect.DeepEqual(got, want) {
		t.Fatalf("patched zone differs:\n%+v\n%+v", got.z, want.z)
	}
}

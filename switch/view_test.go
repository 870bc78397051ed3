package vswitch

import (
	"maps"
	"net/netip"
	"testing"
)

// TestAddrTable: HasMAC follows the addresses a MAC has through With and
// Without, an earlier version is left as it was, and Diff reports exactly
// the changed addresses.
func TestAddrTable(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	m1, m2 := MAC{2, 0, 0, 0, 0, 1}, MAC{2, 0, 0, 0, 0, 2}
	t0 := AddrsOf(map[netip.Addr]MAC{a: m1, b: m1})
	t1 := t0.Without(a)
	if !t1.HasMAC(m1) || t1.Len() != 1 {
		t.Fatalf("b still has m1: HasMAC = %v, Len = %d", t1.HasMAC(m1), t1.Len())
	}
	t2 := t1.With(b, m2)
	if t2.HasMAC(m1) || !t2.HasMAC(m2) {
		t.Fatalf("after moving b to m2: HasMAC(m1) = %v, HasMAC(m2) = %v", t2.HasMAC(m1), t2.HasMAC(m2))
	}
	if got := maps.Collect(t0.All()); !maps.Equal(got, map[netip.Addr]MAC{a: m1, b: m1}) {
		t.Fatalf("the first version changed: %v", got)
	}
	var changes []netip.Addr
	t0.Diff(t2, func(ip netip.Addr, old, new *MAC) {
		changes = append(changes, ip)
		if ip == b && (old == nil || new == nil || *old != m1 || *new != m2) {
			t.Errorf("b: %v -> %v, want %v -> %v", old, new, m1, m2)
		}
		if ip == a && (old == nil || new != nil) {
			t.Errorf("a: %v -> %v, want removed", old, new)
		}
	})
	if len(changes) != 2 {
		t.Errorf("Diff reported %v, want a and b", changes)
	}
	if t0.Without(a).Without(b).HasMAC(m1) {
		t.Error("an empty table has a MAC")
	}
}

// TestMACTable: a MAC comes back as it went in, and lookups allocate
// nothing.
func TestMACTable(t *testing.T) {
	m := MAC{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54}
	vtep := netip.MustParseAddr("192.0.2.7")
	tab := MACTable{}.With(m, vtep).With(MAC{2, 0, 0, 0, 0, 1}, vtep)
	if got := maps.Collect(tab.All()); got[m] != vtep || len(got) != 2 {
		t.Fatalf("All = %v", got)
	}
	if tab.Without(m).Has(m) || !tab.Has(m) {
		t.Fatal("Without did not remove m, or removed it from the old version")
	}
	addrs := AddrsOf(map[netip.Addr]MAC{vtep: m})
	if n := testing.AllocsPerRun(100, func() {
		tab.Get(m)
		addrs.Get(vtep)
		addrs.HasMAC(m)
	}); n != 0 {
		t.Errorf("lookups allocate %v times, want 0", n)
	}
}

package raftstore

import (
	"math"
	"net/netip"
	"testing"
)

// usedSet is a test allocator's set of taken addresses.
type usedSet map[netip.Addr]bool

func (u usedSet) alloc(first, last string) allocator {
	return newAllocator(netip.MustParseAddr(first), netip.MustParseAddr(last), uint64(len(u)), func(a netip.Addr) bool { return u[a] })
}

func TestAllocatorSerialAndWrap(t *testing.T) {
	used := usedSet{}
	var cursor netip.Addr
	var got []string
	// 10.0.0.2..10.0.0.6: the usable range of a /29 (resolver .1, broadcast .7).
	for range 5 {
		a, ok := used.alloc("10.0.0.2", "10.0.0.6").next(cursor)
		if !ok {
			t.Fatalf("exhausted after %v", got)
		}
		used[a], cursor = true, a
		got = append(got, a.String())
	}
	if want := "[10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6]"; fmtList(got) != want {
		t.Fatalf("allocated %v, want %s", got, want)
	}
	if _, ok := used.alloc("10.0.0.2", "10.0.0.6").next(cursor); ok {
		t.Fatal("a full range handed out an address")
	}
	// Free .3 and .5: the next allocation wraps to .3, the one after is .5.
	delete(used, netip.MustParseAddr("10.0.0.3"))
	delete(used, netip.MustParseAddr("10.0.0.5"))
	for _, want := range []string{"10.0.0.3", "10.0.0.5"} {
		a, ok := used.alloc("10.0.0.2", "10.0.0.6").next(cursor)
		if !ok || a.String() != want {
			t.Fatalf("after a wrap got %v %v, want %s", a, ok, want)
		}
		used[a], cursor = true, a
	}
	// A cursor outside the range starts at its beginning.
	delete(used, netip.MustParseAddr("10.0.0.2"))
	if a, _ := used.alloc("10.0.0.2", "10.0.0.6").next(netip.MustParseAddr("192.0.2.1")); a.String() != "10.0.0.2" {
		t.Fatalf("cursor outside: got %v, want 10.0.0.2", a)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// TestAllocatorIPv6: a /64 is never listed: the allocator steps from the
// cursor and counts its size without overflow.
func TestAllocatorIPv6(t *testing.T) {
	used := usedSet{}
	calls := 0
	al := newAllocator(netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::ffff:ffff:ffff:ffff"), 0,
		func(a netip.Addr) bool { calls++; return used[a] })
	if al.size() != math.MaxUint64-1 {
		t.Fatalf("size of fd00::2..fd00::ffff:ffff:ffff:ffff = %d, want 2^64-2", al.size())
	}
	if n := newAllocator(netip.MustParseAddr("fd00::"), netip.MustParseAddr("fd00::1:0:0:0:0"), 0, nil).size(); n != math.MaxUint64 {
		t.Fatalf("size of a range over 2^64 = %d, want it saturated", n)
	}
	cursor := netip.MustParseAddr("fd00::ffff:ffff:ffff:fffe")
	a, ok := al.next(cursor)
	if !ok || a.String() != "fd00::ffff:ffff:ffff:ffff" || calls != 1 {
		t.Fatalf("got %v %v after %d probes, want the last address after 1", a, ok, calls)
	}
	// At the end of the range it wraps to the beginning.
	if a, _ := al.next(a); a.String() != "fd00::2" {
		t.Fatalf("wrap: got %v, want fd00::2", a)
	}
	if n := newAllocator(netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::11"), 0, nil).size(); n != 16 {
		t.Fatalf("size of fd00::2..fd00::11 = %d, want 16", n)
	}
}

// TestAllocatorCostDoesNotGrow: allocating in a large range with many
// addresses taken before the cursor probes one address per allocation.
func TestAllocatorCostDoesNotGrow(t *testing.T) {
	used := usedSet{}
	probes := 0
	var cursor netip.Addr
	for range 50000 {
		al := newAllocator(netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.255.254"), uint64(len(used)),
			func(a netip.Addr) bool { probes++; return used[a] })
		a, ok := al.next(cursor)
		if !ok {
			t.Fatal("exhausted")
		}
		used[a], cursor = true, a
	}
	if probes != 50000 {
		t.Fatalf("%d probes for 50000 allocations, want one each", probes)
	}
}

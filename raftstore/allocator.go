package raftstore

import (
	"encoding/binary"
	"math"
	"net/netip"
)

// allocator hands out the addresses of one range serially: the first free
// address after a cursor (the address handed out last), wrapping around at
// the end of the range. It works the same for IPv4 and IPv6 ranges of any
// size: it never lists the range, it only steps from the cursor.
//
// Cost: in a range with free addresses after the cursor (always so until
// the range wraps the first time, so always in an IPv6 /64) a call looks
// at one address per address used in a row after the cursor: O(1)
// amortised over the allocations of a pass over the range. Only after a
// wrap, in a nearly full range, does a call step over the used run ahead
// of it. A full range is reported at once from inUse, without a scan.
//
// The zero value has an empty range and hands out nothing. An allocator
// only reads through used; it is safe for concurrent use if used is.
type allocator struct {
	first, last netip.Addr            // the range, inclusive
	inUse       uint64                // how many addresses of the range are taken
	used        func(netip.Addr) bool // whether an address is taken
}

// newAllocator returns an allocator of the addresses first..last
// (inclusive, same family); inUse counts the taken ones, used tells them.
func newAllocator(first, last netip.Addr, inUse uint64, used func(netip.Addr) bool) allocator {
	return allocator{first: first, last: last, inUse: inUse, used: used}
}

// size returns the number of addresses of the range, at most
// math.MaxUint64.
func (a allocator) size() uint64 {
	if !a.first.IsValid() || !a.last.IsValid() || a.first.BitLen() != a.last.BitLen() || a.last.Less(a.first) {
		return 0
	}
	f, l := a.first.As16(), a.last.As16()
	fhi, flo := binary.BigEndian.Uint64(f[:8]), binary.BigEndian.Uint64(f[8:])
	lhi, llo := binary.BigEndian.Uint64(l[:8]), binary.BigEndian.Uint64(l[8:])
	hi, lo := lhi-fhi, llo-flo
	if llo < flo {
		hi--
	}
	if hi > 0 || lo == math.MaxUint64 {
		return math.MaxUint64
	}
	return lo + 1
}

// next returns the first free address after cursor, wrapping around; it
// starts at the beginning of the range when cursor is zero, outside the
// range or its last address. ok is false when every address is taken.
func (a allocator) next(cursor netip.Addr) (addr netip.Addr, ok bool) {
	if a.inUse >= a.size() {
		return netip.Addr{}, false
	}
	start := a.first
	if cursor.IsValid() && cursor.BitLen() == a.first.BitLen() && !cursor.Less(a.first) && cursor.Less(a.last) {
		start = cursor.Next()
	}
	// From start to the end of the range, then from its beginning.
	for x := start; x.IsValid() && !a.last.Less(x); x = x.Next() {
		if !a.used(x) {
			return x, true
		}
	}
	for x := a.first; x.Less(start); x = x.Next() {
		if !a.used(x) {
			return x, true
		}
	}
	return netip.Addr{}, false
}

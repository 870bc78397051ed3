package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 header values (RFC 8200).
const (
	// IPv6Len is the length of the fixed IPv6 header (RFC 8200 section 3).
	IPv6Len = 40
	// IPv6MinMTU is the least link MTU IPv6 requires (RFC 8200 section 5).
	IPv6MinMTU = 1280
	// IPv6MaxExtensionHeaders bounds the extension headers UpperLayer
	// steps over. RFC 8200 section 4.1 recommends an order in which each
	// kind appears at most once (Destination Options twice), so a longer
	// chain is malformed or hostile.
	IPv6MaxExtensionHeaders = 8
	// IPv6FragmentLen is the length of the Fragment header (RFC 8200
	// section 4.5).
	IPv6FragmentLen = 8
)

// IPv6 is an IPv6 header (RFC 8200 section 3) viewed in place over the
// start of a packet:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                         Source Address                        |
//	+                          (16 bytes)                           +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                      Destination Address                      |
//	+                          (16 bytes)                           +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Extension headers (RFC 8200 section 4) follow the fixed header, each
// naming the next in its first byte; UpperLayer walks them.
//
// The fixed-field accessors assume IsHeaderValid (IPv6Len bytes); Payload
// and UpperLayer assume IsValid. Each panics on a shorter slice. A nil IPv6
// is not valid. The view has no locking: the caller owns the bytes.
type IPv6 []byte

// IsHeaderValid reports whether h holds a whole fixed header with version
// 6. The Payload Length field is not looked at.
func (h IPv6) IsHeaderValid() bool {
	return len(h) >= IPv6Len && h.Version() == 6
}

// IsValid reports whether h holds a whole IPv6 packet: IsHeaderValid, and
// the Payload Length fits in h. Bytes after it (Ethernet padding) are
// allowed. A jumbogram (RFC 2675, Payload Length 0) is seen as a packet
// with an empty payload.
func (h IPv6) IsValid() bool {
	return h.IsHeaderValid() && IPv6Len+int(h.PayloadLength()) <= len(h)
}

// Version returns the version field, 6 for IPv6.
func (h IPv6) Version() uint8 { return h[0] >> 4 }

// TrafficClass returns the 8-bit traffic class (DSCP and ECN).
func (h IPv6) TrafficClass() uint8 { return h[0]<<4 | h[1]>>4 }

// FlowLabel returns the 20-bit flow label.
func (h IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(h[0:4]) & 0xfffff }

// PayloadLength returns the length of everything after the fixed header,
// extension headers included.
func (h IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// NextHeader returns the type of the header after the fixed one: an
// extension header or an upper-layer protocol such as ProtoTCP.
func (h IPv6) NextHeader() uint8 { return h[6] }

// HopLimit returns the hop limit.
func (h IPv6) HopLimit() uint8 { return h[7] }

// Source returns the source address.
func (h IPv6) Source() netip.Addr { return netip.AddrFrom16([16]byte(h[8:24])) }

// Destination returns the destination address.
func (h IPv6) Destination() netip.Addr { return netip.AddrFrom16([16]byte(h[24:40])) }

// Payload returns the bytes after the fixed header up to Payload Length,
// without any Ethernet padding after them. It assumes IsValid.
func (h IPv6) Payload() []byte { return h[IPv6Len : IPv6Len+int(h.PayloadLength())] }

// SetVersionClassFlow stores version 6, the traffic class and the low 20
// bits of the flow label.
func (h IPv6) SetVersionClassFlow(class uint8, flow uint32) {
	binary.BigEndian.PutUint32(h[0:4], 6<<28|uint32(class)<<20|flow&0xfffff)
}

// SetPayloadLength stores the Payload Length field.
func (h IPv6) SetPayloadLength(n uint16) { binary.BigEndian.PutUint16(h[4:6], n) }

// SetNextHeader stores the Next Header field.
func (h IPv6) SetNextHeader(p uint8) { h[6] = p }

// SetHopLimit stores the hop limit.
func (h IPv6) SetHopLimit(n uint8) { h[7] = n }

// SetSource stores a as the source; an IPv4 address is stored in its
// IPv4-mapped form.
func (h IPv6) SetSource(a netip.Addr) {
	b := a.As16()
	copy(h[8:24], b[:])
}

// SetDestination stores a as the destination; an IPv4 address is stored
// in its IPv4-mapped form.
func (h IPv6) SetDestination(a netip.Addr) {
	b := a.As16()
	copy(h[24:40], b[:])
}

// Encode writes a fixed header into h[:IPv6Len]: version 6, traffic class
// and flow label 0, the given payload length, next header, hop limit and
// addresses. src and dst must be IPv6 addresses.
func (h IPv6) Encode(payloadLen uint16, next, hopLimit uint8, src, dst netip.Addr) {
	_ = h[IPv6Len-1]
	h.SetVersionClassFlow(0, 0)
	h.SetPayloadLength(payloadLen)
	h.SetNextHeader(next)
	h.SetHopLimit(hopLimit)
	h.SetSource(src)
	h.SetDestination(dst)
}

// PseudoSum returns the pseudo-header sum of RFC 8200 section 8.1 for an
// upper-layer packet of length bytes and protocol proto between h's
// addresses (see the package function PseudoSum). With a Routing header
// the destination to use is the final one, which this does not look for.
func (h IPv6) PseudoSum(proto uint8, length int) uint16 {
	return PseudoSum(h[8:24], h[24:40], proto, uint32(length))
}

// UpperLayer steps over the extension headers after the fixed header and
// returns the protocol of what follows them and its offset from the start
// of h. It walks Hop-by-Hop Options, Routing, Fragment and Destination
// Options headers (RFC 8200 sections 4.3-4.6) and Authentication Headers
// (RFC 4302 section 2.2, whose length is counted in 4-byte units); any
// other value, ESP and ProtoNoNext included, ends the walk and is returned.
//
// A Fragment header of a fragment other than the first (non-zero offset)
// also ends the walk: there is no upper-layer header behind it, so proto
// is ProtoFragment and off the offset of that Fragment header.
//
// ok is false when an extension header does not fit in the payload or
// when there are more than IPv6MaxExtensionHeaders of them. It assumes
// IsValid, looks at nothing after Payload Length, and never allocates.
func (h IPv6) UpperLayer() (proto uint8, off int, ok bool) {
	end := IPv6Len + int(h.PayloadLength())
	proto, off = h.NextHeader(), IPv6Len
	for range IPv6MaxExtensionHeaders + 1 {
		var n int
		switch proto {
		case ProtoHopByHop, ProtoRouting, ProtoDstOpts:
			if off+2 > end {
				return 0, 0, false
			}
			n = (int(h[off+1]) + 1) * 8
		case ProtoAH:
			if off+2 > end {
				return 0, 0, false
			}
			n = (int(h[off+1]) + 2) * 4
		case ProtoFragment:
			if off+IPv6FragmentLen > end {
				return 0, 0, false
			}
			if binary.BigEndian.Uint16(h[off+2:off+4])&0xfff8 != 0 {
				return ProtoFragment, off, true
			}
			n = IPv6FragmentLen
		default:
			return proto, off, true
		}
		if off+n > end {
			return 0, 0, false
		}
		proto, off = h[off], off+n
	}
	return 0, 0, false
}

// IPv6AllNodes is the link-local all-nodes multicast address ff02::1 (RFC
// 4291 section 2.7.1), where a neighbor advertisement answering a
// solicitation from the unspecified address goes (RFC 4861 section 7.2.4).
var IPv6AllNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01})

// SolicitedNode returns the solicited-node multicast address of a (RFC
// 4291 section 2.7.1): ff02::1:ff00:0/104 with the low 24 bits of a, where
// neighbor solicitations for a are sent. a must be an IPv6 address.
func SolicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// IPv6MulticastMAC returns the Ethernet destination of the IPv6 multicast
// address a: 33:33 and the low 32 bits of a (RFC 2464 section 7).
func IPv6MulticastMAC(a netip.Addr) MAC {
	b := a.As16()
	return MAC{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

package header

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header values (RFC 791 section 3.1).
const (
	// IPv4MinLen is the length of an IPv4 header without options.
	IPv4MinLen = 20
	// IPv4FlagDF is the Don't Fragment bit of the flags and fragment
	// offset word (bytes 6-7).
	IPv4FlagDF = 0x4000
	// IPv4FlagMF is the More Fragments bit of that word.
	IPv4FlagMF = 0x2000
	// IPv4OffsetMask masks the 13-bit fragment offset of that word.
	IPv4OffsetMask = 0x1fff
	// IPv4MinMTU is the MTU every IPv4 module must be able to forward
	// without further fragmentation (RFC 791 section 3.2).
	IPv4MinMTU = 68
	// IPv4OptionCopied is the copied flag in the type byte of an IPv4
	// option: the option goes into every fragment (RFC 791 section 3.1).
	IPv4OptionCopied = 0x80
)

// IPv4 is an IPv4 header (RFC 791 section 3.1) viewed in place over the
// start of a packet:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The fixed-field accessors assume IPv4MinLen bytes; Options, the checksum
// methods and Payload assume IsHeaderValid (the whole header with its
// options), and Payload also IsValid. Each panics on a shorter slice. A nil
// IPv4 is not valid. The view has no locking: the caller owns the bytes.
type IPv4 []byte

// IsHeaderValid reports whether h holds a whole IPv4 header: version 4, a
// header length (IHL) of at least IPv4MinLen, and at least that many bytes.
// The Total Length field is not looked at.
func (h IPv4) IsHeaderValid() bool {
	if len(h) < IPv4MinLen || h.Version() != 4 {
		return false
	}
	n := h.HeaderLen()
	return n >= IPv4MinLen && n <= len(h)
}

// IsValid reports whether h holds a whole IPv4 packet: IsHeaderValid, and
// a Total Length that covers the header and fits in h. Bytes after Total
// Length (Ethernet padding) are allowed.
func (h IPv4) IsValid() bool {
	if !h.IsHeaderValid() {
		return false
	}
	total := int(h.TotalLength())
	return total >= h.HeaderLen() && total <= len(h)
}

// Version returns the version field, 4 for IPv4.
func (h IPv4) Version() uint8 { return h[0] >> 4 }

// HeaderLen returns the header length in bytes: IHL times 4.
func (h IPv4) HeaderLen() int { return int(h[0]&0x0f) * 4 }

// TOS returns the type of service byte (DSCP and ECN).
func (h IPv4) TOS() uint8 { return h[1] }

// TotalLength returns the Total Length field: header and data in bytes.
func (h IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// ID returns the Identification field.
func (h IPv4) ID() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// FlagsFragment returns bytes 6-7: the flags (IPv4FlagDF, IPv4FlagMF) and
// the fragment offset (IPv4OffsetMask).
func (h IPv4) FlagsFragment() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// FragmentOffset returns the fragment offset in units of 8 bytes.
func (h IPv4) FragmentOffset() uint16 { return h.FlagsFragment() & IPv4OffsetMask }

// IsFragment reports whether h is part of a fragmented packet: More
// Fragments set or a non-zero fragment offset.
func (h IPv4) IsFragment() bool {
	return h.FlagsFragment()&(IPv4FlagMF|IPv4OffsetMask) != 0
}

// TTL returns the time to live.
func (h IPv4) TTL() uint8 { return h[8] }

// Protocol returns the protocol of the payload, such as ProtoUDP.
func (h IPv4) Protocol() uint8 { return h[9] }

// Checksum returns the Header Checksum field.
func (h IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(h[10:12]) }

// Source returns the source address.
func (h IPv4) Source() netip.Addr { return netip.AddrFrom4([4]byte(h[12:16])) }

// Destination returns the destination address.
func (h IPv4) Destination() netip.Addr { return netip.AddrFrom4([4]byte(h[16:20])) }

// Options returns the options and padding between the fixed header and
// HeaderLen; it is empty for a header without options.
func (h IPv4) Options() []byte { return h[IPv4MinLen:h.HeaderLen()] }

// Payload returns the data between the header and Total Length, without
// any Ethernet padding after it. It assumes IsValid.
func (h IPv4) Payload() []byte { return h[h.HeaderLen():h.TotalLength()] }

// SetHeaderLen stores version 4 and n/4 as the IHL; n is a multiple of 4
// from IPv4MinLen to 60.
func (h IPv4) SetHeaderLen(n int) { h[0] = 4<<4 | uint8(n/4)&0x0f }

// SetTOS stores the type of service byte.
func (h IPv4) SetTOS(v uint8) { h[1] = v }

// SetTotalLength stores the Total Length field.
func (h IPv4) SetTotalLength(n uint16) { binary.BigEndian.PutUint16(h[2:4], n) }

// SetID stores the Identification field.
func (h IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(h[4:6], id) }

// SetFlagsFragment stores bytes 6-7, flags and fragment offset.
func (h IPv4) SetFlagsFragment(v uint16) { binary.BigEndian.PutUint16(h[6:8], v) }

// SetTTL stores the time to live.
func (h IPv4) SetTTL(ttl uint8) { h[8] = ttl }

// SetProtocol stores the protocol of the payload.
func (h IPv4) SetProtocol(p uint8) { h[9] = p }

// SetChecksum stores c in the Header Checksum field.
func (h IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[10:12], c) }

// SetSource stores a, which must be an IPv4 address, as the source.
func (h IPv4) SetSource(a netip.Addr) {
	b := a.As4()
	copy(h[12:16], b[:])
}

// SetDestination stores a, which must be an IPv4 address, as the
// destination.
func (h IPv4) SetDestination(a netip.Addr) {
	b := a.As4()
	copy(h[16:20], b[:])
}

// Encode writes a header without options into h[:IPv4MinLen]: version 4,
// IHL 5, TOS 0, the given total length, identification, flags and offset,
// TTL, protocol and addresses, and a correct header checksum. src and dst
// must be IPv4 addresses.
func (h IPv4) Encode(total, id, flagsFragment uint16, ttl, proto uint8, src, dst netip.Addr) {
	_ = h[IPv4MinLen-1]
	h.SetHeaderLen(IPv4MinLen)
	h.SetTOS(0)
	h.SetTotalLength(total)
	h.SetID(id)
	h.SetFlagsFragment(flagsFragment)
	h.SetTTL(ttl)
	h.SetProtocol(proto)
	h.SetSource(src)
	h.SetDestination(dst)
	h.UpdateChecksum()
}

// ComputeChecksum returns the header checksum h should carry (RFC 791
// section 3.1, computed as RFC 1071 describes): the complement of the sum
// of the header's 16-bit words, the checksum field counted as zero. It
// does not change h.
func (h IPv4) ComputeChecksum() uint16 {
	s := Sum(h[0:10], 0)
	return ^Sum(h[12:h.HeaderLen()], s)
}

// UpdateChecksum stores ComputeChecksum in the Header Checksum field.
func (h IPv4) UpdateChecksum() { h.SetChecksum(h.ComputeChecksum()) }

// VerifyChecksum reports whether the header checksum is correct: the sum
// of the whole header, checksum included, is 0xffff.
func (h IPv4) VerifyChecksum() bool { return Sum(h[:h.HeaderLen()], 0) == 0xffff }

// PseudoSum returns the pseudo-header sum (see the package function
// PseudoSum) for a transport segment of length bytes and protocol proto
// carried between h's addresses.
func (h IPv4) PseudoSum(proto uint8, length int) uint16 {
	return PseudoSum(h[12:16], h[16:20], proto, uint32(length))
}

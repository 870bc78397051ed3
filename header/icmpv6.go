package header

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv6 values (RFC 4443; RFC 4861 for neighbor discovery).
const (
	// ICMPv6Len is the length of the ICMPv6 header every message has:
	// type, code, checksum and four bytes that depend on the type.
	ICMPv6Len = 8

	ICMPv6Unreachable           = 1
	ICMPv6PacketTooBig          = 2
	ICMPv6TimeExceeded          = 3
	ICMPv6EchoRequest           = 128
	ICMPv6EchoReply             = 129
	ICMPv6RouterSolicitation    = 133
	ICMPv6RouterAdvertisement   = 134
	ICMPv6NeighborSolicitation  = 135
	ICMPv6NeighborAdvertisement = 136
	ICMPv6Redirect              = 137
)

// ICMPv6 is an ICMPv6 message (RFC 4443 section 2.1) viewed in place over
// the upper-layer payload of an IPv6 packet:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| echo: Identifier              | echo: Sequence Number         |
//	| packet too big: MTU (32 bits)                                 |
//	| neighbor advertisement: R|S|O flags, reserved                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     message body ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-
//
// The checksum covers the IPv6 pseudo-header (RFC 8200 section 8.1, see
// IPv6.PseudoSum with ProtoICMPv6) and the whole message. Every accessor
// assumes IsValid (ICMPv6Len bytes) and panics on a shorter slice; the
// neighbor discovery methods say what more they need. A nil ICMPv6 is not
// valid. The view has no locking: the caller owns the bytes.
type ICMPv6 []byte

// IsValid reports whether m holds at least the ICMPv6Len-byte header.
func (m ICMPv6) IsValid() bool { return len(m) >= ICMPv6Len }

// Type returns the message type.
func (m ICMPv6) Type() uint8 { return m[0] }

// Code returns the code.
func (m ICMPv6) Code() uint8 { return m[1] }

// Checksum returns the Checksum field.
func (m ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }

// ID returns the identifier of an echo request or reply.
func (m ICMPv6) ID() uint16 { return binary.BigEndian.Uint16(m[4:6]) }

// Seq returns the sequence number of an echo request or reply.
func (m ICMPv6) Seq() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// MTU returns the MTU of a Packet Too Big message (RFC 4443 section 3.2).
func (m ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(m[4:8]) }

// Payload returns the message body after the 8-byte header.
func (m ICMPv6) Payload() []byte { return m[ICMPv6Len:] }

// SetType stores the message type.
func (m ICMPv6) SetType(t uint8) { m[0] = t }

// SetCode stores the code.
func (m ICMPv6) SetCode(c uint8) { m[1] = c }

// SetChecksum stores the Checksum field.
func (m ICMPv6) SetChecksum(c uint16) { binary.BigEndian.PutUint16(m[2:4], c) }

// SetID stores the identifier of an echo message.
func (m ICMPv6) SetID(id uint16) { binary.BigEndian.PutUint16(m[4:6], id) }

// SetSeq stores the sequence number of an echo message.
func (m ICMPv6) SetSeq(n uint16) { binary.BigEndian.PutUint16(m[6:8], n) }

// SetMTU stores the MTU of a Packet Too Big message.
func (m ICMPv6) SetMTU(mtu uint32) { binary.BigEndian.PutUint32(m[4:8], mtu) }

// ComputeChecksum returns the checksum m should carry when m is the whole
// message and pseudo its pseudo-header sum (IPv6.PseudoSum with
// ProtoICMPv6 and len(m)): the complement of the sum, the checksum field
// counted as zero. It does not change m.
func (m ICMPv6) ComputeChecksum(pseudo uint16) uint16 {
	return ^Sum(m[4:], Sum(m[0:2], pseudo))
}

// VerifyChecksum reports whether the checksum of m, the whole message with
// pseudo-header sum pseudo, is correct.
func (m ICMPv6) VerifyChecksum(pseudo uint16) bool { return Sum(m, pseudo) == 0xffff }

// Neighbor discovery (RFC 4861) values.
const (
	// NDPNeighborLen is the length of a Neighbor Solicitation or
	// Advertisement without options: the ICMPv6 header and the target
	// address (RFC 4861 sections 4.3 and 4.4).
	NDPNeighborLen = ICMPv6Len + 16
	// NDPLinkAddrLen is the length of a link-layer address option for
	// Ethernet (RFC 4861 section 4.6.1).
	NDPLinkAddrLen = 8
	// NDPHopLimit is the hop limit every neighbor discovery message is
	// sent with and must arrive with (RFC 4861 sections 7.1.1 and 7.1.2):
	// a message that crossed a router is refused.
	NDPHopLimit = 255

	// Flags of a Neighbor Advertisement, in byte 4.
	NDPFlagRouter    = 0x80
	NDPFlagSolicited = 0x40
	NDPFlagOverride  = 0x20

	// Option types (RFC 4861 section 4.6).
	NDPOptionSourceLinkAddr = 1
	NDPOptionTargetLinkAddr = 2
)

// IsNeighbor reports whether m is a Neighbor Solicitation or Advertisement
// long enough for its target address: type 135 or 136, code 0 and at least
// NDPNeighborLen bytes (RFC 4861 sections 7.1.1 and 7.1.2 ask receivers to
// check the code and length; the hop limit of 255 is the IPv6 header's and
// the caller's to check).
//
// The layout of both messages:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|S|O|                     Reserved (NS: all reserved)         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                       Target Address                          +
//	|                         (16 bytes)                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options ...
//	+-+-+-+-+-+-+-+-+-+-+-+-
func (m ICMPv6) IsNeighbor() bool {
	if len(m) < NDPNeighborLen || m.Code() != 0 {
		return false
	}
	return m.Type() == ICMPv6NeighborSolicitation || m.Type() == ICMPv6NeighborAdvertisement
}

// NDPFlags returns the R, S and O flags of a Neighbor Advertisement.
func (m ICMPv6) NDPFlags() uint8 { return m[4] & (NDPFlagRouter | NDPFlagSolicited | NDPFlagOverride) }

// Target returns the target address of a Neighbor Solicitation or
// Advertisement. It assumes IsNeighbor.
func (m ICMPv6) Target() netip.Addr { return netip.AddrFrom16([16]byte(m[8:24])) }

// SetTarget stores the target address of a neighbor message; a must be an
// IPv6 address.
func (m ICMPv6) SetTarget(a netip.Addr) {
	b := a.As16()
	copy(m[8:24], b[:])
}

// SetNDPFlags stores the R, S and O flags of a Neighbor Advertisement and
// clears the reserved bits.
func (m ICMPv6) SetNDPFlags(f uint8) {
	m[4], m[5], m[6], m[7] = f&(NDPFlagRouter|NDPFlagSolicited|NDPFlagOverride), 0, 0, 0
}

// NDPOptions returns the options of a neighbor message, after the target
// address. It assumes IsNeighbor.
func (m ICMPv6) NDPOptions() NDPOptions { return NDPOptions(m[NDPNeighborLen:]) }

// NDPOptions is the option area of a neighbor discovery message (RFC 4861
// section 4.6), a sequence of type-length-value options whose length byte
// counts units of 8 bytes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |    Length     |              ...              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The source and target link-layer address options (types 1 and 2, RFC
// 4861 section 4.6.1) on Ethernet have length 1 and carry the 6-byte MAC
// after the type and length bytes. Any slice, nil included, is a valid
// NDPOptions: the methods check every length themselves.
type NDPOptions []byte

// IsValid reports whether every option has a non-zero length and fits in
// o, and no bytes are left over. RFC 4861 section 4.6 asks a receiver to
// discard a message with a zero-length option.
func (o NDPOptions) IsValid() bool {
	for len(o) > 0 {
		if len(o) < 2 {
			return false
		}
		n := int(o[1]) * 8
		if n == 0 || n > len(o) {
			return false
		}
		o = o[n:]
	}
	return true
}

// Find returns the value of the first option of type typ (the bytes after
// its type and length bytes), or ok false. An option met before it with a
// zero length or running past the end ends the walk with ok false; callers
// that must reject such a message as a whole check IsValid. It never
// allocates.
func (o NDPOptions) Find(typ uint8) (value []byte, ok bool) {
	for len(o) >= 2 {
		n := int(o[1]) * 8
		if n == 0 || n > len(o) {
			return nil, false
		}
		if o[0] == typ {
			return o[2:n], true
		}
		o = o[n:]
	}
	return nil, false
}

// LinkAddr returns the MAC address in the first option of type typ
// (NDPOptionSourceLinkAddr or NDPOptionTargetLinkAddr), or ok false when
// there is none or it is too short for one.
func (o NDPOptions) LinkAddr(typ uint8) (MAC, bool) {
	v, ok := o.Find(typ)
	if !ok || len(v) < 6 {
		return MAC{}, false
	}
	return MAC(v[0:6]), true
}

// PutLinkAddr writes a link-layer address option of type typ holding mac
// into o[:NDPLinkAddrLen] and returns NDPLinkAddrLen, its length.
func (o NDPOptions) PutLinkAddr(typ uint8, mac MAC) int {
	o[0], o[1] = typ, 1
	copy(o[2:8], mac[:])
	return NDPLinkAddrLen
}

// NDPAdvertLen is the length of the Neighbor Advertisement that
// EncodeNeighborAdvert writes: the message and one target link-layer
// address option.
const NDPAdvertLen = NDPNeighborLen + NDPLinkAddrLen

// EncodeNeighborAdvert writes a Neighbor Advertisement (RFC 4861 section
// 4.4) into m[:NDPAdvertLen]: type 136, code 0, the R, S and O flags in
// flags, target (an IPv6 address) and a target link-layer address option
// holding mac. It returns NDPAdvertLen. The checksum is left zero: the
// caller stores ComputeChecksum with the pseudo-header sum of the IPv6
// header it sends the message in, which must have hop limit NDPHopLimit.
func (m ICMPv6) EncodeNeighborAdvert(flags uint8, target netip.Addr, mac MAC) int {
	_ = m[NDPAdvertLen-1]
	m.SetType(ICMPv6NeighborAdvertisement)
	m.SetCode(0)
	m.SetChecksum(0)
	m.SetNDPFlags(flags)
	m.SetTarget(target)
	m.NDPOptions().PutLinkAddr(NDPOptionTargetLinkAddr, mac)
	return NDPAdvertLen
}

// EncodeNeighborSolicit writes a Neighbor Solicitation (RFC 4861 section
// 4.3) for target into m: type 135, code 0, reserved bytes zero, and, when
// mac is not zero, a source link-layer address option holding it (a
// solicitation from the unspecified address, for duplicate address
// detection, must carry none: RFC 4861 section 4.3). m must hold
// NDPNeighborLen bytes, NDPAdvertLen with the option. It returns the
// length written; the checksum is left zero as for EncodeNeighborAdvert.
func (m ICMPv6) EncodeNeighborSolicit(target netip.Addr, mac MAC) int {
	_ = m[NDPNeighborLen-1]
	m.SetType(ICMPv6NeighborSolicitation)
	m.SetCode(0)
	m.SetChecksum(0)
	m.SetNDPFlags(0)
	m.SetTarget(target)
	if mac.IsZero() {
		return NDPNeighborLen
	}
	return NDPNeighborLen + m.NDPOptions().PutLinkAddr(NDPOptionSourceLinkAddr, mac)
}

// PacketTooBigQuoteMax is the most of the offending packet a Packet Too
// Big message quotes: as much as fits in the IPv6 minimum MTU with the
// IPv6 and ICMPv6 headers (RFC 4443 section 3.2), 1232 bytes.
const PacketTooBigQuoteMax = IPv6MinMTU - IPv6Len - ICMPv6Len

// EncodePacketTooBig writes a Packet Too Big message (RFC 4443 section
// 3.2) into m: type 2, code 0, the MTU of the next hop, and quote, the
// start of the packet that did not fit, cut to PacketTooBigQuoteMax bytes.
// m must hold ICMPv6Len bytes and the quote. It returns the message's
// length; the checksum is left zero as for EncodeNeighborAdvert.
func (m ICMPv6) EncodePacketTooBig(mtu uint32, quote []byte) int {
	quote = quote[:min(len(quote), PacketTooBigQuoteMax)]
	_ = m[ICMPv6Len+len(quote)-1]
	m.SetType(ICMPv6PacketTooBig)
	m.SetCode(0)
	m.SetChecksum(0)
	m.SetMTU(mtu)
	return ICMPv6Len + copy(m[ICMPv6Len:], quote)
}

// Neighbor returns the Neighbor Solicitation or Advertisement that the
// IPv6 packet h carries, when it passes the receiver's checks of RFC 4861
// sections 7.1.1 and 7.1.2: hop limit NDPHopLimit, an ICMPv6 message after
// any extension headers that IsNeighbor, a correct checksum, options that
// are IsValid, a target that is not multicast, and a source that is not
// multicast either (no packet may have one, RFC 4291 section 2.7). A solicitation from the
// unspecified address (duplicate address detection) must go to a
// solicited-node multicast address and carry no source link-layer address
// option; a multicast advertisement must not have the Solicited flag. ok
// is false for anything else. It assumes h.IsValid and never allocates.
func (h IPv6) Neighbor() (m ICMPv6, ok bool) {
	if h.HopLimit() != NDPHopLimit {
		return nil, false
	}
	proto, off, found := h.UpperLayer()
	if !found || proto != ProtoICMPv6 {
		return nil, false
	}
	m = ICMPv6(h[off : IPv6Len+int(h.PayloadLength())])
	if !m.IsNeighbor() || !m.VerifyChecksum(h.PseudoSum(ProtoICMPv6, len(m))) ||
		!m.NDPOptions().IsValid() || m.Target().IsMulticast() {
		return nil, false
	}
	if h.Source().IsMulticast() { // never a source (RFC 4291 section 2.7)
		return nil, false
	}
	dst := h.Destination()
	switch m.Type() {
	case ICMPv6NeighborSolicitation:
		if h.Source().IsUnspecified() {
			if SolicitedNode(dst) != dst {
				return nil, false
			}
			if _, has := m.NDPOptions().Find(NDPOptionSourceLinkAddr); has {
				return nil, false
			}
		}
	case ICMPv6NeighborAdvertisement:
		if dst.IsMulticast() && m.NDPFlags()&NDPFlagSolicited != 0 {
			return nil, false
		}
	}
	return m, true
}

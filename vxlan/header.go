package vxlan

import (
	"errors"
	"net/netip"
)

// Wire constants of RFC 7348.
const (
	// Port is the IANA-assigned UDP destination port for VXLAN (RFC 7348 section 5).
	Port = 4789

	// HeaderLen is the length of the VXLAN header in bytes (RFC 7348 section 5).
	HeaderLen = 8

	// MaxVNI is the largest VXLAN Network Identifier: the VNI field is 24 bits wide.
	MaxVNI = 1<<24 - 1

	// OverheadIPv4 is the number of bytes VXLAN adds in front of an inner
	// Ethernet frame on an IPv4 underlay: outer Ethernet 14 + IPv4 20 + UDP 8 +
	// VXLAN 8 (RFC 7348 section 5). An inner IP MTU is therefore the underlay
	// MTU minus OverheadIPv4 (the inner Ethernet header is part of the overhead).
	OverheadIPv4 = 50

	// OverheadIPv6 is the same as OverheadIPv4 for an IPv6 underlay: inner
	// Ethernet 14 + outer IPv6 40 (RFC 8200 section 3, no extension headers)
	// + UDP 8 + VXLAN 8.
	OverheadIPv6 = 70

	// FlagI is the "I" flag of the first header byte. It must be set for the
	// VNI to be valid (RFC 7348 section 5).
	FlagI = 0x08
)

// Overhead returns the bytes VXLAN adds in front of an inner IP packet on an
// underlay whose VTEP address is underlay: OverheadIPv6 for an IPv6 address
// (not IPv4-mapped), OverheadIPv4 otherwise (RFC 7348 section 5 allows
// either family for the outer header).
func Overhead(underlay netip.Addr) int {
	if underlay.Is6() && !underlay.Is4In6() {
		return OverheadIPv6
	}
	return OverheadIPv4
}

// Family names the outer IP family of an underlay address: "IPv6" or "IPv4".
func Family(underlay netip.Addr) string {
	if underlay.Is6() && !underlay.Is4In6() {
		return "IPv6"
	}
	return "IPv4"
}

// Errors returned by Decode. Callers compare them with errors.Is.
var (
	// ErrShort means the packet is shorter than HeaderLen.
	ErrShort = errors.New("vxlan: packet shorter than the 8-byte header")
	// ErrFlags means the I flag is clear, so the VNI is not valid.
	ErrFlags = errors.New("vxlan: I flag clear")
	// ErrReserved means a reserved bit or field of the header is not zero.
	ErrReserved = errors.New("vxlan: reserved bits set")
)

// Header is a VXLAN header (RFC 7348 section 5) viewed in place over a byte
// slice:
//
//	byte 0     flags: R R R R I R R R (I = 0x08)
//	bytes 1-3  reserved, zero
//	bytes 4-6  VNI, big endian
//	byte 7     reserved, zero
//
// Accessors read and write the underlying bytes directly; they panic if the
// slice is shorter than HeaderLen, so check the length (or IsValid) first.
// A nil Header is not valid. A Header has no locking of its own: the caller
// owns the bytes.
type Header []byte

// Flags returns the flags byte.
func (h Header) Flags() uint8 { return h[0] }

// SetFlags sets the flags byte.
func (h Header) SetFlags(f uint8) { h[0] = f }

// VNI returns the 24-bit VXLAN Network Identifier.
func (h Header) VNI() uint32 {
	return uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
}

// SetVNI stores the low 24 bits of vni as the VXLAN Network Identifier and
// leaves the other bytes alone.
func (h Header) SetVNI(vni uint32) {
	h[4] = byte(vni >> 16)
	h[5] = byte(vni >> 8)
	h[6] = byte(vni)
}

// IsValid reports whether h is at least HeaderLen bytes long, has the I flag
// set, and has every reserved bit clear: exactly what Decode accepts.
func (h Header) IsValid() bool {
	return h.check() == nil
}

// check returns the Decode error for h, or nil.
func (h Header) check() error {
	if len(h) < HeaderLen {
		return ErrShort
	}
	if h[0]&FlagI == 0 {
		return ErrFlags
	}
	if h[0]&^FlagI != 0 || h[1]|h[2]|h[3]|h[7] != 0 {
		return ErrReserved
	}
	return nil
}

// Encode writes a VXLAN header with the I flag and the given VNI into b[:8]:
// 08 00 00 00 v v v 00. Only the low 24 bits of vni are used. It panics if b
// is shorter than HeaderLen. It never allocates.
func Encode(b []byte, vni uint32) {
	_ = b[7] // one bounds check for the whole header
	b[0] = FlagI
	b[1] = 0
	b[2] = 0
	b[3] = 0
	b[4] = byte(vni >> 16)
	b[5] = byte(vni >> 8)
	b[6] = byte(vni)
	b[7] = 0
}

// Decode checks the VXLAN header at the start of pkt (one UDP payload) and
// returns the VNI and the inner Ethernet frame that follows it. inner aliases
// pkt. The error is ErrShort, ErrFlags or ErrReserved; Decode is stricter
// than the "ignore on receipt" wording of RFC 7348 section 5 because no
// extension this switch understands sets those bits. It never allocates.
func Decode(pkt []byte) (vni uint32, inner []byte, err error) {
	h := Header(pkt)
	if err := h.check(); err != nil {
		return 0, nil, err
	}
	return h.VNI(), pkt[HeaderLen:], nil
}

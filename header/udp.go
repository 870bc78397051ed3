package header

import "encoding/binary"

// UDPLen is the length of a UDP header (RFC 768).
const UDPLen = 8

// UDP is a UDP header (RFC 768, "Format") viewed in place over the start
// of a datagram:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Length             |           Checksum            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          data octets ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-
//
// Length counts the header and the data. Over IPv4 a zero checksum means
// the sender computed none; a computed zero is sent as 0xffff.
//
// The field accessors assume UDPLen bytes; Payload assumes IsValid. Each
// panics on a shorter slice. A nil UDP is not valid. The view has no
// locking: the caller owns the bytes.
type UDP []byte

// IsValid reports whether u holds a whole datagram: UDPLen bytes, and a
// Length field that covers the header and fits in u.
func (u UDP) IsValid() bool {
	if len(u) < UDPLen {
		return false
	}
	n := int(u.Length())
	return n >= UDPLen && n <= len(u)
}

// SrcPort returns the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[0:2]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[2:4]) }

// Length returns the Length field: header and data in bytes.
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[4:6]) }

// Checksum returns the Checksum field.
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[6:8]) }

// Payload returns the data between the header and Length. It assumes
// IsValid.
func (u UDP) Payload() []byte { return u[UDPLen:u.Length()] }

// SetSrcPort stores the source port.
func (u UDP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(u[0:2], p) }

// SetDstPort stores the destination port.
func (u UDP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(u[2:4], p) }

// SetLength stores the Length field.
func (u UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(u[4:6], n) }

// SetChecksum stores the Checksum field.
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[6:8], c) }

// Encode writes a header into u[:UDPLen] with the given ports and length
// and a zero checksum.
func (u UDP) Encode(src, dst, length uint16) {
	u.SetSrcPort(src)
	u.SetDstPort(dst)
	u.SetLength(length)
	u.SetChecksum(0)
}

// ComputeChecksum returns the checksum u should carry when u is the whole
// datagram and pseudo its pseudo-header sum (IPv4.PseudoSum or
// IPv6.PseudoSum with ProtoUDP and len(u)): the complement of the sum, the
// checksum field counted as zero, and 0xffff for a computed zero (RFC 768).
// It does not change u.
func (u UDP) ComputeChecksum(pseudo uint16) uint16 {
	c := ^Sum(u[8:], Sum(u[0:6], pseudo))
	if c == 0 {
		return 0xffff
	}
	return c
}

// VerifyChecksum reports whether the checksum of u, the whole datagram
// with pseudo-header sum pseudo, is correct. A zero field (no checksum, as
// IPv4 allows) does not verify; callers that accept it check Checksum
// first.
func (u UDP) VerifyChecksum(pseudo uint16) bool { return Sum(u, pseudo) == 0xffff }

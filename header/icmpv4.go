package header

import "encoding/binary"

// ICMPv4 values (RFC 792; RFC 1191 for the next-hop MTU).
const (
	// ICMPv4Len is the length of the ICMP header that every message has:
	// type, code, checksum and four bytes that depend on the type.
	ICMPv4Len = 8

	ICMPv4EchoReply      = 0
	ICMPv4Unreachable    = 3
	ICMPv4EchoRequest    = 8
	ICMPv4TimeExceeded   = 11
	ICMPv4FragNeededCode = 4 // code of ICMPv4Unreachable: fragmentation needed and DF set
)

// ICMPv4 is an ICMP message for IPv4 (RFC 792) viewed in place over the
// payload of an IPv4 packet:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| echo: Identifier              | echo: Sequence Number         |
//	| unreachable: unused           | code 4: Next-Hop MTU          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     data: echo data, or the IP header + 8 bytes of the original
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-
//
// The checksum covers the whole message (no pseudo-header). Every accessor
// assumes IsValid (ICMPv4Len bytes) and panics on a shorter slice. A nil
// ICMPv4 is not valid. The view has no locking: the caller owns the bytes.
type ICMPv4 []byte

// IsValid reports whether m holds at least the ICMPv4Len-byte header.
func (m ICMPv4) IsValid() bool { return len(m) >= ICMPv4Len }

// Type returns the message type.
func (m ICMPv4) Type() uint8 { return m[0] }

// Code returns the code.
func (m ICMPv4) Code() uint8 { return m[1] }

// Checksum returns the Checksum field.
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:4]) }

// ID returns the identifier of an echo request or reply.
func (m ICMPv4) ID() uint16 { return binary.BigEndian.Uint16(m[4:6]) }

// Seq returns the sequence number of an echo request or reply.
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// MTU returns the next-hop MTU of a "fragmentation needed" message (RFC
// 1191 section 4).
func (m ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(m[6:8]) }

// Payload returns the data after the 8-byte header.
func (m ICMPv4) Payload() []byte { return m[ICMPv4Len:] }

// SetType stores the message type.
func (m ICMPv4) SetType(t uint8) { m[0] = t }

// SetCode stores the code.
func (m ICMPv4) SetCode(c uint8) { m[1] = c }

// SetChecksum stores the Checksum field.
func (m ICMPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(m[2:4], c) }

// SetID stores the identifier of an echo message.
func (m ICMPv4) SetID(id uint16) { binary.BigEndian.PutUint16(m[4:6], id) }

// SetSeq stores the sequence number of an echo message.
func (m ICMPv4) SetSeq(n uint16) { binary.BigEndian.PutUint16(m[6:8], n) }

// SetMTU stores the next-hop MTU and clears the unused bytes 4-5.
func (m ICMPv4) SetMTU(mtu uint16) {
	m[4], m[5] = 0, 0
	binary.BigEndian.PutUint16(m[6:8], mtu)
}

// ComputeChecksum returns the checksum m should carry when m is the whole
// message: the complement of its sum, the checksum field counted as zero.
// It does not change m.
func (m ICMPv4) ComputeChecksum() uint16 { return ^Sum(m[4:], Sum(m[0:2], 0)) }

// VerifyChecksum reports whether the checksum of m, the whole message, is
// correct.
func (m ICMPv4) VerifyChecksum() bool { return Sum(m, 0) == 0xffff }

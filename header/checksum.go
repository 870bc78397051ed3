package header

import (
	"encoding/binary"
	"math/bits"
)

// Sum returns the 16-bit one's complement sum (RFC 1071) of b, read as
// big-endian 16-bit words (an odd last byte is padded with a zero byte),
// added to initial. The result is not complemented: a checksum field holds
// ^Sum(...), and a receiver that sums the covered bytes including the field
// gets 0xffff when they are intact. Sum never allocates.
//
// Sums chain: Sum(b[n:], Sum(b[:n], x)) equals Sum(b, x) for any even n.
// The result is 0 only when every word and initial are zero.
//
// It adds 64 bytes a loop as little-endian 64-bit words with an explicit
// carry chain, folds, and swaps the two bytes at the end: the sum does not
// depend on the byte order it is computed in (RFC 1071 section 2 (B)), and
// 2^16 = 1 modulo 0xffff, so folding 64-bit words gives the sum of the
// 16-bit ones.
func Sum(b []byte, initial uint16) uint16 {
	acc := uint64(bits.ReverseBytes16(initial))
	var carry uint64
	for len(b) >= 64 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:40]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:48]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:56]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:64]), carry)
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint32(b)), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(b)), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		// The low byte of a little-endian word is the high byte of the
		// big-endian one: the padding zero goes after it.
		acc, carry = bits.Add64(acc, uint64(b[0]), carry)
	}
	acc, carry = bits.Add64(acc, carry, 0)
	acc += carry // cannot carry again: acc is small after a wrap

	// Fold 64 -> 32 -> 16 bits, adding the end-around carry each time.
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	return bits.ReverseBytes16(uint16(acc))
}

// AddSums returns the one's complement sum of a and b.
func AddSums(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoSum returns the one's complement sum of the pseudo-header that the
// TCP, UDP and ICMPv6 checksums cover besides the segment itself: source
// and destination address, upper-layer protocol and upper-layer length.
// src and dst are both 4 bytes (IPv4: RFC 9293 section 3.1, RFC 768) or
// both 16 bytes (IPv6: RFC 8200 section 8.1, where the length is 32 bits
// wide). The result is not complemented; pass it as the initial value of
// Sum over the segment.
//
//	IPv4:  source address (4) | destination address (4) | zero (1) | protocol (1) | length (2)
//	IPv6:  source address (16) | destination address (16) | length (4) | zero (3) | next header (1)
//
// Both layouts sum the same 16-bit words apart from the width of the
// length, so one function serves both.
func PseudoSum(src, dst []byte, proto uint8, length uint32) uint16 {
	s := Sum(src, 0)
	s = Sum(dst, s)
	s = AddSums(s, uint16(proto))
	s = AddSums(s, uint16(length>>16))
	return AddSums(s, uint16(length))
}

// CompleteChecksum finishes a partial transport checksum, as a network card
// does for a packet whose sender left it to checksum offload (virtio
// NEEDS_CSUM, the Linux CHECKSUM_PARTIAL state): the field at
// start+offset of b holds the folded pseudo-header sum; CompleteChecksum
// adds the one's complement sum of b[start:] to it and stores the
// complement in the field. A result of zero is stored as 0xffff, which UDP
// requires (RFC 768) and TCP accepts. It reports false, changing nothing,
// when the field does not lie inside b. It never allocates.
func CompleteChecksum(b []byte, start, offset int) bool {
	at := start + offset
	if start < 0 || offset < 0 || start >= len(b) || at+2 > len(b) {
		return false
	}
	c := ^Sum(b[start:], 0)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[at:], c)
	return true
}

// UpdateChecksum returns the checksum field hc updated for one 16-bit word
// of the covered data changing from old to new, without summing the data
// again: HC' = ~(~HC + ~m + m') (RFC 1624 section 3, equation 3). A word
// that starts at an odd offset is passed with its bytes swapped (RFC 1071
// section 2 (B)).
func UpdateChecksum(hc, old, new uint16) uint16 {
	return ^AddSums(AddSums(^hc, ^old), new)
}

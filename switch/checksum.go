package vswitch

import (
	"encoding/binary"
	"math/bits"
)

// onesSum returns the 16-bit one's complement sum (RFC 1071) of b, with b
// read as big-endian 16-bit words (an odd last byte is padded with a zero),
// added to initial. The result is not complemented.
//
// It adds 64 bytes a loop as little-endian 64-bit words (plain loads on
// x86 and arm64) into an accumulator with an explicit carry chain, folds,
// and swaps the two bytes at the end: the sum does not depend on the byte
// order it is computed in (RFC 1071 section 2 (B)), and 2^16 = 1 modulo
// 0xffff, so folding 64-bit words gives the sum of the 16-bit ones.
func onesSum(b []byte, initial uint16) uint16 {
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

// addOnes returns the one's complement sum of a and b.
func addOnes(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

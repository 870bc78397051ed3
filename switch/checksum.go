package vswitch

import (
	"encoding/binary"
	"math/bits"
)

// onesSum returns the 16-bit one's complement sum (RFC 1071) of b, with b
// read as big-endian 16-bit words (an odd last byte is padded with a zero),
// added to initial. The result is not complemented.
//
// It adds eight bytes at a time into a 64-bit accumulator with an explicit
// carry chain and folds at the end: 2^16 = 1 modulo 0xffff, so the fold of a
// sum of big-endian 64-bit words equals the sum of the 16-bit words.
func onesSum(b []byte, initial uint16) uint16 {
	acc := uint64(initial)
	var carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, carry)
	}
	acc, carry = bits.Add64(acc, carry, 0)
	acc += carry // cannot carry again: acc is small after a wrap

	// Fold 64 -> 32 -> 16 bits, adding the end-around carry each time.
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	return uint16(acc)
}

// addOnes returns the one's complement sum of a and b.
func addOnes(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

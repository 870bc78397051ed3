package vswitch

import "vxswitch/header"

// onesSum returns the 16-bit one's complement sum (RFC 1071) of b added to
// initial, not complemented: header.Sum, the one implementation.
func onesSum(b []byte, initial uint16) uint16 { return header.Sum(b, initial) }

// addOnes returns the one's complement sum of a and b (header.AddSums).
func addOnes(a, b uint16) uint16 { return header.AddSums(a, b) }

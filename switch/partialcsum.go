package vswitch

import "encoding/binary"

// IP protocol numbers and EtherTypes handled by completePartialChecksum.
const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	protoTCP      = 6
	protoUDP      = 17
)

// completePartialChecksum fixes the TCP or UDP checksum of an inner frame
// that a sender left "partial" and reports whether it changed the frame.
//
// A kernel vxlan device on a veth underlay transmits frames whose checksum
// offload never ran: the transport checksum field holds only the folded,
// not complemented, pseudo-header sum (what the kernel writes for
// CHECKSUM_PARTIAL). A TAP delivers such a frame as is, and the receiving
// stack drops it as corrupt. So for IPv4 (unfragmented) and IPv6 (no
// extension headers) TCP and UDP: if the checksum does not verify and the
// field equals the pseudo-header sum, the full checksum is computed and
// stored. Anything else is left alone.
func completePartialChecksum(frame []byte) bool {
	if len(frame) < ethHeaderLen {
		return false
	}
	off := ethHeaderLen
	etherType := binary.BigEndian.Uint16(frame[12:14])
	if etherType == etherTypeVLAN {
		if len(frame) < ethHeaderLen+vlanTagLen {
			return false
		}
		etherType = binary.BigEndian.Uint16(frame[16:18])
		off += vlanTagLen
	}
	switch etherType {
	case etherTypeIPv4:
		return completeIPv4(frame[off:])
	case etherTypeIPv6:
		return completeIPv6(frame[off:])
	}
	return false
}

// completeIPv4 handles an IPv4 packet (RFC 791; pseudo-header RFC 793 / 768).
func completeIPv4(ip []byte) bool {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < 20 || total < ihl || total > len(ip) {
		return false
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // MF flag or fragment offset
		return false
	}
	l4 := ip[ihl:total]
	pseudo := onesSum(ip[12:20], 0) // source and destination address
	pseudo = addOnes(pseudo, uint16(ip[9]))
	pseudo = addOnes(pseudo, uint16(len(l4)))
	return completeL4(ip[9], l4, pseudo)
}

// completeIPv6 handles an IPv6 packet whose next header is TCP or UDP
// (pseudo-header RFC 8200 section 8.1).
func completeIPv6(ip []byte) bool {
	if len(ip) < 40 || ip[0]>>4 != 6 {
		return false
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if 40+plen > len(ip) {
		return false
	}
	l4 := ip[40 : 40+plen]
	pseudo := onesSum(ip[8:40], 0) // source and destination address
	pseudo = addOnes(pseudo, uint16(ip[6]))
	pseudo = addOnes(pseudo, uint16(len(l4)))
	return completeL4(ip[6], l4, pseudo)
}

// completeL4 completes the checksum of the TCP or UDP segment l4 given the
// folded pseudo-header sum.
func completeL4(proto byte, l4 []byte, pseudo uint16) bool {
	var at int
	switch {
	case proto == protoTCP && len(l4) >= 20:
		at = 16
	case proto == protoUDP && len(l4) >= 8:
		at = 6
	default:
		return false
	}
	field := binary.BigEndian.Uint16(l4[at:])
	if field != pseudo {
		return false // not a partial checksum: a real one, good or bad
	}
	if onesSum(l4, pseudo) == 0xffff {
		return false // already verifies
	}
	l4[at], l4[at+1] = 0, 0
	sum := ^onesSum(l4, pseudo)
	if proto == protoUDP && sum == 0 {
		sum = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(l4[at:], sum)
	return true
}

package vswitch

import "vxswitch/header"

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
	eth := header.Ethernet(frame)
	if !eth.IsValid() {
		return false
	}
	switch eth.Type() {
	case header.EtherTypeIPv4:
		return completeIPv4(header.IPv4(eth.Payload()))
	case header.EtherTypeIPv6:
		return completeIPv6(header.IPv6(eth.Payload()))
	}
	return false
}

// completeIPv4 handles an IPv4 packet (RFC 791; pseudo-header RFC 793 / 768).
func completeIPv4(ip header.IPv4) bool {
	if !ip.IsValid() || ip.IsFragment() {
		return false
	}
	l4 := ip.Payload()
	return completeL4(ip.Protocol(), l4, ip.PseudoSum(ip.Protocol(), len(l4)))
}

// completeIPv6 handles an IPv6 packet whose next header is TCP or UDP
// (pseudo-header RFC 8200 section 8.1).
func completeIPv6(ip header.IPv6) bool {
	if !ip.IsValid() {
		return false
	}
	l4 := ip.Payload()
	return completeL4(ip.NextHeader(), l4, ip.PseudoSum(ip.NextHeader(), len(l4)))
}

// completeL4 completes the checksum of the TCP or UDP segment l4 given the
// folded pseudo-header sum.
func completeL4(proto byte, l4 []byte, pseudo uint16) bool {
	switch {
	case proto == header.ProtoTCP && len(l4) >= header.TCPMinLen:
		tcp := header.TCP(l4)
		if tcp.Checksum() != pseudo || tcp.VerifyChecksum(pseudo) {
			return false // a real checksum, good or bad, or one that verifies
		}
		tcp.SetChecksum(tcp.ComputeChecksum(pseudo))
		return true
	case proto == header.ProtoUDP && len(l4) >= header.UDPLen:
		udp := header.UDP(l4)
		if udp.Checksum() != pseudo || udp.VerifyChecksum(pseudo) {
			return false
		}
		udp.SetChecksum(udp.ComputeChecksum(pseudo)) // a computed zero is sent as all ones
		return true
	}
	return false
}

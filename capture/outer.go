package capture

import (
	"net/netip"

	"vxswitch/header"
	"vxswitch/vxlan"
)

// Outer header facts (RFC 791, RFC 8200, RFC 768, RFC 7348).
const (
	outerTTL = 64

	// OuterLen is the length of the headers OuterHeaders returns for an
	// IPv4 underlay: Ethernet, IPv4 without options, UDP.
	OuterLen = header.EthernetLen + header.IPv4MinLen + header.UDPLen
	// OuterLenIPv6 is the same for an IPv6 underlay: Ethernet, IPv6
	// without extension headers, UDP.
	OuterLenIPv6 = header.EthernetLen + header.IPv6Len + header.UDPLen
)

// VTEPMAC is the Ethernet address written for a VTEP in synthesized outer
// headers: locally administered, 02:00 followed by the last four bytes of
// the address, so 10.0.0.2 is 02:00:0a:00:00:02 and fd77::2 is
// 02:00:00:00:00:02. A capture made by the switch cannot know the real next
// hop's address.
func VTEPMAC(a netip.Addr) [6]byte {
	b := a.As16()
	return [6]byte{0x02, 0x00, b[12], b[13], b[14], b[15]}
}

// OuterHeaders returns the outer Ethernet, IP and UDP headers a UDP socket
// bound to src puts in front of payload (VXLAN header and inner frame) sent
// to dst. The family is src's (both addresses must be of it):
//
//   - IPv4 (OuterLen bytes): no options, identification 0, DF set (Linux
//     sets it on UDP sockets with path MTU discovery), TTL 64, a valid
//     header checksum (RFC 791); UDP checksum 0, which RFC 7348 section 5
//     allows for VXLAN over IPv4.
//   - IPv6 (OuterLenIPv6 bytes): traffic class and flow label 0, no
//     extension headers, hop limit 64 (RFC 8200 section 3); a computed UDP
//     checksum over the pseudo-header and payload, which IPv6 requires
//     (RFC 8200 section 8.1) and Linux UDP sockets send.
func OuterHeaders(src, dst netip.AddrPort, payload []byte) []byte {
	if src.Addr().Is6() && !src.Addr().Is4In6() {
		return outerIPv6(src, dst, payload)
	}
	h := make([]byte, OuterLen)
	eth := header.Ethernet(h)
	eth.SetDestination(VTEPMAC(dst.Addr()))
	eth.SetSource(VTEPMAC(src.Addr()))
	eth.SetOuterType(header.EtherTypeIPv4)

	udpLen := header.UDPLen + len(payload)
	ip := header.IPv4(h[header.EthernetLen:])
	ip.Encode(uint16(header.IPv4MinLen+udpLen), 0, header.IPv4FlagDF, outerTTL, header.ProtoUDP, src.Addr().Unmap(), dst.Addr().Unmap())
	header.UDP(h[header.EthernetLen+header.IPv4MinLen:]).Encode(src.Port(), dst.Port(), uint16(udpLen))
	return h
}

// outerIPv6 is OuterHeaders for an IPv6 underlay.
func outerIPv6(src, dst netip.AddrPort, payload []byte) []byte {
	udpLen := header.UDPLen + len(payload)
	// The checksum covers the payload: build the whole packet, return its
	// headers.
	pkt := make([]byte, OuterLenIPv6+len(payload))
	copy(pkt[OuterLenIPv6:], payload)
	eth := header.Ethernet(pkt)
	eth.SetDestination(VTEPMAC(dst.Addr()))
	eth.SetSource(VTEPMAC(src.Addr()))
	eth.SetOuterType(header.EtherTypeIPv6)

	ip := header.IPv6(pkt[header.EthernetLen:])
	ip.SetVersionClassFlow(0, 0)
	ip.SetPayloadLength(uint16(udpLen))
	ip.SetNextHeader(header.ProtoUDP)
	ip.SetHopLimit(outerTTL)
	ip.SetSource(src.Addr())
	ip.SetDestination(dst.Addr())
	udp := header.UDP(pkt[header.EthernetLen+header.IPv6Len:])
	udp.Encode(src.Port(), dst.Port(), uint16(udpLen))
	udp.SetChecksum(udp.ComputeChecksum(ip.PseudoSum(header.ProtoUDP, udpLen)))
	return pkt[:OuterLenIPv6:OuterLenIPv6]
}

// OuterPacket returns the whole packet a VTEP at src sends to dst for the
// inner frame in network vni: outer headers (see OuterHeaders), the 8-byte
// VXLAN header with the I flag (RFC 7348 section 5), and frame.
func OuterPacket(src, dst netip.AddrPort, vni uint32, frame []byte) []byte {
	payload := make([]byte, vxlan.HeaderLen+len(frame))
	vxlan.Encode(payload, vni)
	copy(payload[vxlan.HeaderLen:], frame)
	return append(OuterHeaders(src, dst, payload), payload...)
}

// IPv4Checksum returns the complement of the one's complement sum of the
// IPv4 header h (RFC 1071, header.Sum): the checksum to store when the
// field is zero, and 0 when h carries a correct checksum.
func IPv4Checksum(h []byte) uint16 {
	return ^header.Sum(h, 0)
}

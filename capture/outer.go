package capture

import (
	"net/netip"

	"vxswitch/header"
	"vxswitch/vxlan"
)

// Outer header facts (RFC 791, RFC 768, RFC 7348).
const (
	outerTTL = 64

	// OuterLen is the length of the headers OuterHeaders returns.
	OuterLen = header.EthernetLen + header.IPv4MinLen + header.UDPLen
)

// VTEPMAC is the Ethernet address written for a VTEP in synthesized outer
// headers: locally administered, 02:00 followed by the IPv4 address, so
// 10.0.0.2 is 02:00:0a:00:00:02. A capture made by the switch cannot know
// the real next hop's address.
func VTEPMAC(a netip.Addr) [6]byte {
	b := a.As4()
	return [6]byte{0x02, 0x00, b[0], b[1], b[2], b[3]}
}

// OuterHeaders returns the outer Ethernet, IPv4 and UDP headers (OuterLen
// bytes) a UDP socket bound to src puts in front of payload (VXLAN header
// and inner frame) sent to dst: IPv4 without options, identification 0,
// DF set (Linux sets it on UDP sockets with path MTU discovery), TTL 64, a
// valid header checksum (RFC 791); UDP checksum 0, which RFC 7348 section 5
// allows for VXLAN over IPv4. src and dst must be IPv4 addresses.
func OuterHeaders(src, dst netip.AddrPort, payload []byte) []byte {
	h := make([]byte, OuterLen)
	eth := header.Ethernet(h)
	eth.SetDestination(VTEPMAC(dst.Addr()))
	eth.SetSource(VTEPMAC(src.Addr()))
	eth.SetOuterType(header.EtherTypeIPv4)

	udpLen := header.UDPLen + len(payload)
	ip := header.IPv4(h[header.EthernetLen:])
	ip.Encode(uint16(header.IPv4MinLen+udpLen), 0, header.IPv4FlagDF, outerTTL, header.ProtoUDP, src.Addr(), dst.Addr())
	header.UDP(h[header.EthernetLen+header.IPv4MinLen:]).Encode(src.Port(), dst.Port(), uint16(udpLen))
	return h
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

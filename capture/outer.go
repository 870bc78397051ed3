package capture

import (
	"encoding/binary"
	"net/netip"

	"vxswitch/vxlan"
)

// Outer header facts (RFC 791, RFC 768, RFC 7348).
const (
	ethLen        = 14
	ipv4Len       = 20
	udpLen        = 8
	etherTypeIPv4 = 0x0800
	protoUDP      = 17
	outerTTL      = 64
	flagDF        = 0x4000

	// OuterLen is the length of the headers OuterHeaders returns.
	OuterLen = ethLen + ipv4Len + udpLen
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
	dstMAC, srcMAC := VTEPMAC(dst.Addr()), VTEPMAC(src.Addr())
	copy(h[0:6], dstMAC[:])
	copy(h[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(h[12:14], etherTypeIPv4)

	ip := h[ethLen : ethLen+ipv4Len]
	ip[0] = 0x45 // version 4, 5 words of header
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4Len+udpLen+len(payload)))
	binary.BigEndian.PutUint16(ip[6:8], flagDF)
	ip[8] = outerTTL
	ip[9] = protoUDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:12], IPv4Checksum(ip))

	udp := h[ethLen+ipv4Len:]
	binary.BigEndian.PutUint16(udp[0:2], src.Port())
	binary.BigEndian.PutUint16(udp[2:4], dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen+len(payload)))
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

// IPv4Checksum returns the header checksum of the IPv4 header h whose
// checksum field is zero: the ones' complement of the ones' complement sum
// of its 16-bit words (RFC 1071).
func IPv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i : i+2]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

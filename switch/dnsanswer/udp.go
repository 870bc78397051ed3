package dnsanswer

import (
	"net/netip"

	"vxswitch/header"
)

// AppendUDP appends to dst (normally the Ethernet header of the answer) an
// IPv4 packet with identification id carrying a UDP datagram from src to
// to with payload, with both checksums. When src is an IPv6 address the
// packet is IPv6 instead (id is not used) with the UDP checksum IPv6
// requires (RFC 8200 section 8.1). It returns ok false, appending nothing,
// when the packet would be longer than 65535 bytes (IPv4) or its payload
// would (IPv6).
func AppendUDP(dst []byte, id uint16, src, to netip.AddrPort, payload []byte) ([]byte, bool) {
	if src.Addr().Is6() && !src.Addr().Is4In6() {
		return appendUDP6(dst, src, to, payload)
	}
	total := header.IPv4MinLen + header.UDPLen + len(payload)
	if total > 0xffff {
		return dst, false
	}
	off := len(dst)
	dst = append(dst, make([]byte, total)...)
	ip := header.IPv4(dst[off:])
	ip.Encode(uint16(total), id, 0, TTL, header.ProtoUDP, src.Addr(), to.Addr())
	udp := header.UDP(ip[header.IPv4MinLen:])
	udp.Encode(src.Port(), to.Port(), uint16(len(udp)))
	copy(udp[header.UDPLen:], payload)
	udp.SetChecksum(udp.ComputeChecksum(ip.PseudoSum(header.ProtoUDP, len(udp))))
	return dst, true
}

// AppendEchoReply appends to dst (normally the Ethernet header of the
// answer) the IPv4 packet with identification id that answers the ICMP
// echo request icmp (RFC 792) in the IPv4 packet ip, sent to resolver.
func AppendEchoReply(dst []byte, id uint16, resolver netip.Addr, ip header.IPv4, icmp []byte) []byte {
	total := header.IPv4MinLen + len(icmp)
	off := len(dst)
	dst = append(dst, make([]byte, total)...)
	rip := header.IPv4(dst[off:])
	rip.Encode(uint16(total), id, 0, TTL, header.ProtoICMP, resolver, ip.Source())
	r := header.ICMPv4(rip[header.IPv4MinLen:])
	copy(r, icmp)
	r.SetType(header.ICMPv4EchoReply)
	r.SetChecksum(r.ComputeChecksum())
	return dst
}

// appendUDP6 is AppendUDP for an IPv6 source: an IPv6 packet with hop
// limit TTL.
func appendUDP6(dst []byte, src, to netip.AddrPort, payload []byte) ([]byte, bool) {
	n := header.UDPLen + len(payload)
	if n > 0xffff {
		return dst, false
	}
	off := len(dst)
	dst = append(dst, make([]byte, header.IPv6Len+n)...)
	ip := header.IPv6(dst[off:])
	ip.Encode(uint16(n), header.ProtoUDP, TTL, src.Addr(), to.Addr())
	udp := header.UDP(ip[header.IPv6Len:])
	udp.Encode(src.Port(), to.Port(), uint16(n))
	copy(udp[header.UDPLen:], payload)
	udp.SetChecksum(udp.ComputeChecksum(ip.PseudoSum(header.ProtoUDP, n)))
	return dst, true
}

// AppendEchoReply6 appends to dst (normally the Ethernet header of the
// answer) the IPv6 packet that answers the ICMPv6 echo request icmp (RFC
// 4443 section 4.2) in the IPv6 packet ip, sent to resolver: the request's
// identifier, sequence number and data, from resolver back to its source.
func AppendEchoReply6(dst []byte, resolver netip.Addr, ip header.IPv6, icmp []byte) []byte {
	off := len(dst)
	dst = append(dst, make([]byte, header.IPv6Len+len(icmp))...)
	h := header.IPv6(dst[off:])
	h.Encode(uint16(len(icmp)), header.ProtoICMPv6, TTL, resolver, ip.Source())
	r := header.ICMPv6(h[header.IPv6Len:])
	copy(r, icmp)
	r.SetType(header.ICMPv6EchoReply)
	r.SetChecksum(0)
	r.SetChecksum(r.ComputeChecksum(h.PseudoSum(header.ProtoICMPv6, len(r))))
	return dst
}

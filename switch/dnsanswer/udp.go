package dnsanswer

import (
	"net/netip"

	"vxswitch/header"
)

// AppendUDP appends to dst (normally the Ethernet header of the answer) an
// IPv4 packet with identification id carrying a UDP datagram from src to
// to with payload, with both checksums. It returns ok false, appending
// nothing, when the packet would be longer than 65535 bytes.
func AppendUDP(dst []byte, id uint16, src, to netip.AddrPort, payload []byte) ([]byte, bool) {
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

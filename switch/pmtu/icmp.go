package pmtu

import (
	"net/netip"

	"vxswitch/header"
)

// AppendFragNeeded appends to dst (normally the Ethernet header of the
// answer) the ICMP "fragmentation needed and DF set" message (RFC 792,
// next-hop MTU field of RFC 1191 section 4) that answers the IPv4 packet
// ip, with mtu as the next-hop MTU. It returns ok false, appending nothing,
// when no message may be sent: ip is an ICMP error itself, a non-first
// fragment, or from a source that is not unicast (RFC 1122 section 3.2.2).
// The message comes from resolver when that is an IPv4 address, else from
// the packet's destination, and quotes the IP header and 8 bytes of data.
func AppendFragNeeded(dst []byte, ip header.IPv4, mtu int, resolver netip.Addr) ([]byte, bool) {
	if ip.FragmentOffset() != 0 || isICMPError(ip.Protocol(), ip.Payload(), false) {
		return dst, false
	}
	src, to := ip.Destination(), ip.Source() // the answer goes back to the sender
	if resolver.Is4() {
		src = resolver
	}
	if !to.IsGlobalUnicast() && !to.IsLinkLocalUnicast() {
		return dst, false // unspecified, loopback, multicast or limited broadcast
	}
	quote := ip[:min(ip.HeaderLen()+8, len(ip))]
	total := header.IPv4MinLen + header.ICMPv4Len + len(quote)
	off := len(dst)
	dst = append(dst, make([]byte, total)...)
	rip := header.IPv4(dst[off:])
	rip.Encode(uint16(total), 0, 0, DefaultTTL, header.ProtoICMP, src, to)
	icmp := header.ICMPv4(rip[header.IPv4MinLen:])
	icmp.SetType(header.ICMPv4Unreachable)
	icmp.SetCode(header.ICMPv4FragNeededCode)
	icmp.SetMTU(uint16(mtu))
	copy(icmp[header.ICMPv4Len:], quote)
	icmp.SetChecksum(icmp.ComputeChecksum())
	return dst, true
}

// AppendPacketTooBig appends to dst (normally the Ethernet header of the
// answer) the ICMPv6 "packet too big" message (RFC 4443 section 3.2) that
// answers the IPv6 packet b, with mtu in its MTU field. It returns ok
// false, appending nothing, when none may be sent: b is not a valid IPv6
// packet or is an ICMPv6 error itself, its source is unspecified or
// multicast, or its destination (the message's source) is multicast. The
// message quotes as much of the packet as fits in the IPv6 minimum MTU of
// 1280 bytes, and its checksum covers the IPv6 pseudo-header (RFC 8200
// section 8.1).
func AppendPacketTooBig(dst []byte, b []byte, mtu int) ([]byte, bool) {
	ip := header.IPv6(b)
	if !ip.IsValid() {
		return dst, false
	}
	ip = ip[:header.IPv6Len+int(ip.PayloadLength())] // without Ethernet padding
	if isICMPError(ip.NextHeader(), ip.Payload(), true) {
		return dst, false
	}
	// The answer goes back to the sender; ff00::/8 is multicast.
	src, to := ip.Destination(), ip.Source()
	if src.As16()[0] == 0xff || to.As16()[0] == 0xff || to == netip.IPv6Unspecified() {
		return dst, false
	}
	quote := ip[:min(len(ip), header.IPv6MinMTU-header.IPv6Len-header.ICMPv6Len)]
	plen := header.ICMPv6Len + len(quote)
	off := len(dst)
	dst = append(dst, make([]byte, header.IPv6Len+plen)...)
	h := header.IPv6(dst[off:])
	h.SetVersionClassFlow(0, 0)
	h.SetPayloadLength(uint16(plen))
	h.SetNextHeader(header.ProtoICMPv6)
	h.SetHopLimit(DefaultTTL)
	h.SetSource(src)
	h.SetDestination(to)
	icmp := header.ICMPv6(h[header.IPv6Len:])
	icmp.SetType(header.ICMPv6PacketTooBig)
	icmp.SetMTU(uint32(mtu))
	copy(icmp[header.ICMPv6Len:], quote)
	icmp.SetChecksum(icmp.ComputeChecksum(h.PseudoSum(header.ProtoICMPv6, plen)))
	return dst, true
}

// isICMPError reports whether the transport payload l4 of protocol proto
// is an ICMP (v6 false) or ICMPv6 (v6 true) error message, which must never
// be answered with another error (RFC 1122 section 3.2.2, RFC 4443 section
// 2.4 (e)). An IPv6 packet with extension headers is not looked into.
func isICMPError(proto byte, l4 []byte, v6 bool) bool {
	if len(l4) == 0 {
		return false
	}
	if v6 {
		// Error messages have types below 128 (RFC 4443 section 2.1).
		return proto == header.ProtoICMPv6 && header.ICMPv6(l4).Type() < header.ICMPv6EchoRequest
	}
	if proto != header.ProtoICMP {
		return false
	}
	switch header.ICMPv4(l4).Type() {
	case header.ICMPv4EchoReply, header.ICMPv4EchoRequest,
		13, 14, 15, 16, 17, 18: // timestamp, information, address mask (RFC 792, RFC 950)
		return false
	}
	return true
}

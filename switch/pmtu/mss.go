package pmtu

import (
	"encoding/binary"
	"math/bits"

	"vxswitch/header"
)

// ClampMSS lowers the MSS option of a TCP segment with SYN set (a SYN or a
// SYN-ACK) in frame to mtu-40 for IPv4 or mtu-60 for IPv6, when it is
// larger, and updates the TCP checksum incrementally (RFC 1624 equation 3).
// It reports whether it changed the frame. It does not allocate.
//
// A VXLAN overlay has a smaller MTU than the hosts' links, and endpoints
// often do not learn it (ICMP filtered, or an endpoint MTU set too high),
// so both ends announce the MSS of their own link. Clamping the SYNs in both
// directions makes every TCP connection fit the overlay by construction.
// Only IPv4 packets that are not fragments and IPv6 packets whose next
// header is TCP (no extension headers) are looked at; mtu 0 turns it off.
func ClampMSS(frame []byte, mtu int) bool {
	eth := header.Ethernet(frame)
	if !eth.IsValid() || mtu <= 0 {
		return false
	}
	var tcp header.TCP
	limit := mtu
	switch eth.Type() {
	case header.EtherTypeIPv4:
		ip := header.IPv4(eth.Payload())
		if !ip.IsValid() || ip.Protocol() != header.ProtoTCP || ip.IsFragment() {
			return false
		}
		tcp, limit = ip.Payload(), mtu-IPv4TCPHeaders
	case header.EtherTypeIPv6:
		ip := header.IPv6(eth.Payload())
		if !ip.IsValid() || ip.NextHeader() != header.ProtoTCP {
			return false
		}
		tcp, limit = ip.Payload(), mtu-IPv6TCPHeaders
	default:
		return false
	}
	if limit <= 0 || !tcp.IsValid() || tcp.Flags()&header.TCPFlagSYN == 0 {
		return false
	}
	at, ok := tcp.MSSOffset() // offset of the MSS value in tcp
	if !ok {
		return false
	}
	old := binary.BigEndian.Uint16(tcp[at:])
	if int(old) <= limit {
		return false
	}
	binary.BigEndian.PutUint16(tcp[at:], uint16(limit))
	m, m2 := old, uint16(limit)
	if at%2 == 1 {
		// The value straddles two 16-bit words of the checksum: its bytes
		// count swapped (RFC 1071 section 2 (B), byte order independence).
		m, m2 = bits.ReverseBytes16(m), bits.ReverseBytes16(m2)
	}
	tcp.SetChecksum(header.UpdateChecksum(tcp.Checksum(), m, m2))
	return true
}

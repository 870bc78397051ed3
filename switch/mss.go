package vswitch

import (
	"encoding/binary"
	"math/bits"
)

// TCP facts used by MSS clamping (RFC 9293 section 3.1).
const (
	tcpMinLen   = 20   // TCP header without options
	tcpFlagSYN  = 0x02 // in byte 13 of the header
	tcpOptEnd   = 0    // end of option list
	tcpOptNOP   = 1    // no-operation
	tcpOptMSS   = 2    // maximum segment size, length 4
	ipv4TCPHdrs = 40   // IPv4 + TCP headers without options
	ipv6TCPHdrs = 60   // IPv6 + TCP headers without options
)

// clamp lowers the MSS of a TCP SYN in frame to fit the MTU of nw, unless
// clamping is turned off, and counts it. It does not allocate.
func (s *Switch) clamp(frame []byte, nw *Network) {
	if s.clampMSS && clampMSS(frame, nw.MTU) {
		s.stats.mssClamped.Add(1)
	}
}

// clampMSS lowers the MSS option of a TCP segment with SYN set (a SYN or a
// SYN-ACK) in frame to mtu-40 for IPv4 or mtu-60 for IPv6, when it is
// larger, and updates the TCP checksum incrementally (RFC 1624 equation 3).
// It reports whether it changed the frame.
//
// A VXLAN overlay has a smaller MTU than the hosts' links, and endpoints
// often do not learn it (ICMP filtered, or an endpoint MTU set too high),
// so both ends announce the MSS of their own link. Clamping the SYNs in both
// directions makes every TCP connection fit the overlay by construction.
// Only IPv4 packets that are not fragments and IPv6 packets whose next
// header is TCP (no extension headers) are looked at; mtu 0 turns it off.
func clampMSS(frame []byte, mtu int) bool {
	etherType, off, ok := l3(frame)
	if !ok || mtu <= 0 {
		return false
	}
	var tcp []byte
	limit := mtu
	switch etherType {
	case etherTypeIPv4:
		ip, ihl, ok := ipv4Packet(frame[off:])
		if !ok || ip[9] != protoTCP || isFragment(ip) {
			return false
		}
		tcp, limit = ip[ihl:], mtu-ipv4TCPHdrs
	case etherTypeIPv6:
		ip, ok := ipv6Packet(frame[off:])
		if !ok || ip[6] != protoTCP {
			return false
		}
		tcp, limit = ip[ipv6HdrLen:], mtu-ipv6TCPHdrs
	default:
		return false
	}
	if limit <= 0 || len(tcp) < tcpMinLen || tcp[13]&tcpFlagSYN == 0 {
		return false
	}
	hlen := int(tcp[12]>>4) * 4
	if hlen < tcpMinLen || hlen > len(tcp) {
		return false
	}
	at := mssOption(tcp[tcpMinLen:hlen])
	if at < 0 {
		return false
	}
	at += tcpMinLen // offset of the MSS value in tcp
	old := binary.BigEndian.Uint16(tcp[at:])
	if int(old) <= limit {
		return false
	}
	binary.BigEndian.PutUint16(tcp[at:], uint16(limit))
	hc := binary.BigEndian.Uint16(tcp[16:18])
	m, m2 := old, uint16(limit)
	if at%2 == 1 {
		// The value straddles two 16-bit words of the checksum: its bytes
		// count swapped (RFC 1071 section 2 (B), byte order independence).
		m, m2 = bits.ReverseBytes16(m), bits.ReverseBytes16(m2)
	}
	binary.BigEndian.PutUint16(tcp[16:18], updateChecksum(hc, m, m2))
	return true
}

// mssOption returns the offset of the 2-byte MSS value in the TCP options
// opts, or -1 when there is no well-formed MSS option.
func mssOption(opts []byte) int {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEnd:
			return -1
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return -1
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return -1
		}
		if opts[i] == tcpOptMSS && n == 4 {
			return i + 2
		}
		i += n
	}
	return -1
}

// updateChecksum returns the Internet checksum hc updated for one 16-bit
// word changing from m to m2: HC' = ~(~HC + ~m + m') (RFC 1624 eqn. 3).
func updateChecksum(hc, m, m2 uint16) uint16 {
	return ^addOnes(addOnes(^hc, ^m), m2)
}

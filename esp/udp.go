package esp

import "encoding/binary"

// VXLANPort is the destination port of the inner UDP header (RFC 7348).
const VXLANPort = 4789

// PutUDP writes the inner UDP header at b[:8] for a datagram of len(b)
// bytes (header included) from port src to port dst, with checksum 0: RFC
// 7348 section 5 allows a zero VXLAN checksum over IPv4, and a Linux
// receiver ignores the inner checksum of transport-mode ESP in UDP (RFC
// 3948 section 3.1.2). Over an IPv6 underlay a Linux peer's vxlan device
// takes a zero checksum only with udp6zerocsumrx; compute the checksum
// there instead. It returns false if b is shorter than a UDP header or
// longer than 65535 bytes.
func PutUDP(b []byte, src, dst uint16) bool {
	if len(b) < UDPHeaderLen || len(b) > 0xffff {
		return false
	}
	binary.BigEndian.PutUint16(b[0:2], src)
	binary.BigEndian.PutUint16(b[2:4], dst)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
	binary.BigEndian.PutUint16(b[6:8], 0)
	return true
}

// ParseUDP reads the inner UDP datagram Open returned: its ports and its
// payload. ok is false if b is shorter than a header or its length field
// is not len(b).
func ParseUDP(b []byte) (src, dst uint16, payload []byte, ok bool) {
	if len(b) < UDPHeaderLen || int(binary.BigEndian.Uint16(b[4:6])) != len(b) {
		return 0, 0, nil, false
	}
	return binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4]), b[UDPHeaderLen:], true
}

// Overhead returns how many bytes ESP in UDP adds around an inner UDP
// datagram of n bytes (UDP header included): outer UDP header 8, ESP header
// 8, IV 8, padding 0-3, trailer 2, ICV 16. The outer IP header (20 for IPv4,
// 40 for IPv6) comes on top, as for clear VXLAN.
func Overhead(n int) int {
	return UDPHeaderLen + SealedLen(n) - n
}

// MaxOverhead is the largest value of Overhead: 45 bytes.
const MaxOverhead = UDPHeaderLen + Headroom + MaxTailroom

// EndpointMTU returns the largest inner IP packet an endpoint of an
// encrypted network can send over an underlay of MTU underlayMTU whose IP
// header is ipHeaderLen bytes (20 for IPv4, 40 for IPv6): what is left
// after outer IP, outer UDP, ESP header, IV, inner UDP 8, VXLAN 8, inner
// Ethernet 14, trailer, padding and ICV. 1500 over IPv4 gives 1408 (clear
// VXLAN gives 1450). It returns 0 if nothing fits.
func EndpointMTU(underlayMTU, ipHeaderLen int) int {
	const vxlanAndEthernet = 8 + 14
	// The encrypted part (inner datagram + padding + trailer) must be a
	// multiple of 4 and fit in what is left of the underlay packet.
	room := underlayMTU - ipHeaderLen - UDPHeaderLen - Headroom - ICVLen
	room -= room % 4
	mtu := room - TrailerLen - UDPHeaderLen - vxlanAndEthernet
	return max(mtu, 0)
}

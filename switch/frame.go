package vswitch

import (
	"encoding/binary"
	"net/netip"
)

// More EtherTypes and IP protocol numbers the switch looks at.
const (
	etherTypeARP = 0x0806
	protoICMP    = 1
	protoICMPv6  = 58
	ipv4MinLen   = 20 // IPv4 header without options (RFC 791)
	ipv6HdrLen   = 40 // fixed IPv6 header (RFC 8200)
	defaultTTL   = 64 // TTL / hop limit of packets the switch makes
)

// l3 returns the EtherType of frame and the offset of the network-layer
// packet behind the Ethernet header, skipping one 802.1Q tag. ok is false
// when frame is too short for its Ethernet header.
func l3(frame []byte) (etherType uint16, off int, ok bool) {
	if len(frame) < ethHeaderLen {
		return 0, 0, false
	}
	etherType = binary.BigEndian.Uint16(frame[12:14])
	if etherType != etherTypeVLAN {
		return etherType, ethHeaderLen, true
	}
	if len(frame) < ethHeaderLen+vlanTagLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(frame[16:18]), ethHeaderLen + vlanTagLen, true
}

// ipv4Packet returns the IPv4 packet at the start of b (without any
// Ethernet padding after it) and its header length, or ok false when b does
// not hold a whole, well-formed IPv4 header and packet.
func ipv4Packet(b []byte) (ip []byte, ihl int, ok bool) {
	if len(b) < ipv4MinLen || b[0]>>4 != 4 {
		return nil, 0, false
	}
	ihl = int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < ipv4MinLen || total < ihl || total > len(b) {
		return nil, 0, false
	}
	return b[:total], ihl, true
}

// ipv6Packet returns the IPv6 packet at the start of b (without any
// Ethernet padding), or ok false when b does not hold a whole one.
func ipv6Packet(b []byte) (ip []byte, ok bool) {
	if len(b) < ipv6HdrLen || b[0]>>4 != 6 {
		return nil, false
	}
	n := ipv6HdrLen + int(binary.BigEndian.Uint16(b[4:6]))
	if n > len(b) {
		return nil, false
	}
	return b[:n], true
}

// isFragment reports whether the IPv4 packet ip is a fragment (MF set or a
// non-zero fragment offset).
func isFragment(ip []byte) bool {
	return binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0
}

// replyL2 writes into b the Ethernet header of a frame answering frame:
// the destination is frame's source, the source is src, the 802.1Q tag of
// frame (if any) is kept, and the EtherType is etherType. It returns the
// header length, which is the off that l3 returned for frame.
func replyL2(b, frame []byte, off int, src MAC, etherType uint16) int {
	copy(b[0:6], frame[6:12])
	copy(b[6:12], src[:])
	copy(b[12:off], frame[12:off]) // EtherType or 802.1Q tag and EtherType
	binary.BigEndian.PutUint16(b[off-2:off], etherType)
	return off
}

// answerMAC is the source MAC of frames the switch sends on behalf of the
// network in answer to frame: the ResolverMAC when set, else the MAC the
// frame was sent to. It returns ok false when neither is a unicast address.
func answerMAC(nw *Network, frame []byte) (MAC, bool) {
	if !nw.ResolverMAC.IsZero() {
		return nw.ResolverMAC, true
	}
	m := MAC(frame[0:6])
	return m, !m.IsMulticast() && !m.IsZero()
}

// putIPv4Header writes a 20-byte IPv4 header (no options, no flags, TTL 64)
// with its checksum into b[:20].
func putIPv4Header(b []byte, total int, id uint16, proto byte, src, dst netip.Addr) {
	b[0] = 0x45
	b[1] = 0
	binary.BigEndian.PutUint16(b[2:4], uint16(total))
	binary.BigEndian.PutUint16(b[4:6], id)
	b[6], b[7] = 0, 0
	b[8] = defaultTTL
	b[9] = proto
	b[10], b[11] = 0, 0
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	binary.BigEndian.PutUint16(b[10:12], ^onesSum(b[:20], 0))
}

// setIPv4Checksum recomputes the header checksum of the IPv4 header h.
func setIPv4Checksum(h []byte) {
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:12], ^onesSum(h, 0))
}

// addr4 returns the IPv4 address in b[:4].
func addr4(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }

package vswitch

import (
	"encoding/binary"

	"vxswitch/header"
	"vxswitch/vxlan"
)

// ICMP and ICMPv6 values used for MTU signalling.
const (
	icmpUnreachable   = 3 // RFC 792 destination unreachable
	icmpFragNeeded    = 4 // code: fragmentation needed and DF set (RFC 1191)
	icmpv6TooBig      = 2 // RFC 4443 section 3.2 packet too big
	icmpv6MinMTU      = 1280
	ipv4FlagDF        = 0x4000
	ipv4FlagMF        = 0x2000
	ipv4OffsetMask    = 0x1fff
	ipv4MinMTU        = 68 // RFC 791: every module must forward this
	ipv4OptCopiedFlag = 0x80
)

// oversize handles a frame from the local port p that is longer than the
// network MTU allows. Such a frame cannot cross the underlay (and a peer
// endpoint's stack would drop it), but dropping it silently hangs the
// connection, so:
//
//   - IPv4 with DF set: an ICMP "fragmentation needed" (type 3 code 4) with
//     the next-hop MTU set to the network MTU goes back into p (RFC 1191
//     section 4), and the sender's stack lowers its path MTU.
//   - IPv6: an ICMPv6 "packet too big" with the network MTU goes back into
//     p (RFC 4443 section 3.2); IPv6 routers never fragment.
//   - IPv4 without DF: the switch fragments the packet itself, as a router
//     would (RFC 791), and forwards each fragment like any other frame. The
//     sender asked for fragmentation, so this delivers instead of failing.
//
// Everything else (non-IP, malformed IP, ICMP errors about ICMP errors) is
// dropped and counted as "oversize". What it does is recorded in d unless d
// is nil.
func (s *Switch) oversize(p *port, v *View, nw *Network, frame []byte, d *decision) {
	etherType, off, _ := l3(frame)
	var reply []byte
	switch etherType {
	case etherTypeIPv4:
		ip, _, ok := ipv4Packet(frame[off:])
		if !ok {
			break
		}
		if binary.BigEndian.Uint16(ip[6:8])&ipv4FlagDF == 0 {
			if s.fragmentFromPort(p, v, nw, frame[:off], ip, d) {
				s.stats.fragmented.Add(1)
				d.answer(ActionFragmented, nil)
				return
			}
			break
		}
		if reply = fragNeeded(nw, frame, off, ip); reply != nil {
			s.writeMade(p, reply, d, 0)
			d.answer(ActionICMP, p)
			s.stats.icmpFragNeeded.Add(1)
			return
		}
	case etherTypeIPv6:
		if reply = packetTooBig(nw, frame, off); reply != nil {
			s.writeMade(p, reply, d, 0)
			d.answer(ActionICMP, p)
			s.stats.icmpv6TooBig.Add(1)
			return
		}
	}
	s.drop(d, dropOversize)
}

// fragmentFromPort splits the IPv4 packet ip (behind the Ethernet header l2)
// read from port p into fragments that fit the network MTU and forwards
// each. It reports false, sending nothing, when that is impossible.
func (s *Switch) fragmentFromPort(p *port, v *View, nw *Network, l2, ip []byte, d *decision) bool {
	buf := make([]byte, vxlan.HeaderLen+len(l2)+nw.MTU)
	return fragmentIPv4(buf[vxlan.HeaderLen:], l2, ip, nw.MTU, func(f []byte) {
		s.forward(p, v, nw, buf, len(f), d)
	})
}

// fragmentIPv4 splits the IPv4 packet ip into fragments of at most mtu
// bytes as RFC 791 section 3.2 describes: every fragment but the last
// carries a multiple of 8 payload bytes and MF; offsets count in 8-byte
// units from the original packet's own offset (a fragment can be split
// again, and keeps MF if it had it); the first fragment keeps all options,
// later ones only those with the copied flag; each header gets its own
// length and checksum. For each fragment it writes l2 followed by the
// fragment into dst (len(l2)+mtu bytes at least) and calls emit with that
// frame, which emit must not keep. It returns false, emitting nothing, when
// mtu is too small for even one 8-byte piece.
func fragmentIPv4(dst, l2, ip []byte, mtu int, emit func(frame []byte)) bool {
	ihl := int(ip[0]&0x0f) * 4
	first := ip[:ihl]
	later := append(ip[:ipv4MinLen:ipv4MinLen], copiedOptions(ip[ipv4MinLen:ihl])...)
	if mtu < ipv4MinMTU || (mtu-ihl)&^7 <= 0 || len(dst) < len(l2)+mtu {
		return false
	}
	flags := binary.BigEndian.Uint16(ip[6:8])
	base := int(flags & ipv4OffsetMask)
	moreAfter := flags&ipv4FlagMF != 0
	payload := ip[ihl:]
	for pos := 0; pos < len(payload); {
		hdr := later
		if pos == 0 {
			hdr = first
		}
		size := min((mtu-len(hdr))&^7, len(payload)-pos)
		last := pos+size == len(payload)
		n := copy(dst, l2)
		h := dst[n : n+len(hdr)]
		copy(h, hdr)
		h[0] = 0x40 | byte(len(hdr)/4)
		binary.BigEndian.PutUint16(h[2:4], uint16(len(hdr)+size))
		fl := flags&^(ipv4FlagMF|ipv4OffsetMask) | uint16(base+pos/8)
		if !last || moreAfter {
			fl |= ipv4FlagMF
		}
		binary.BigEndian.PutUint16(h[6:8], fl)
		setIPv4Checksum(h)
		n += len(hdr)
		n += copy(dst[n:], payload[pos:pos+size])
		emit(dst[:n])
		pos += size
	}
	return true
}

// copiedOptions returns the IPv4 options in opts whose copied flag is set
// (those every fragment must carry, RFC 791 section 3.1), padded with
// end-of-list bytes to a multiple of 4.
func copiedOptions(opts []byte) []byte {
	var out []byte
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 { // end of option list
			break
		}
		if t == 1 { // no operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			break
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			break
		}
		if t&ipv4OptCopiedFlag != 0 {
			out = append(out, opts[i:i+n]...)
		}
		i += n
	}
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}

// fragNeeded returns the ICMP "fragmentation needed and DF set" message
// (RFC 792, next-hop MTU field of RFC 1191 section 4) answering the IPv4
// packet ip at off in frame, as an Ethernet frame back to its sender, or nil
// when no message may be sent: ip is an ICMP error itself, a non-first
// fragment, or from a broadcast or multicast source (RFC 1122 section
// 3.2.2). It comes from the network's resolver address (else from the
// packet's destination) and quotes the IP header and 8 bytes of data.
func fragNeeded(nw *Network, frame []byte, off int, ip []byte) []byte {
	ihl := int(ip[0]&0x0f) * 4
	if binary.BigEndian.Uint16(ip[6:8])&ipv4OffsetMask != 0 || isICMPError(ip[9], ip[ihl:], false) {
		return nil
	}
	src, dst := addr4(ip[16:20]), addr4(ip[12:16])
	if nw.Resolver.Is4() {
		src = nw.Resolver
	}
	if !dst.IsGlobalUnicast() && !dst.IsLinkLocalUnicast() {
		return nil // unspecified, loopback, multicast or limited broadcast
	}
	srcMAC, ok := answerMAC(nw, frame)
	if !ok || MAC(frame[6:12]).IsMulticast() {
		return nil
	}
	quote := ip[:min(ihl+8, len(ip))]
	total := ipv4MinLen + header.ICMPv4Len + len(quote)
	out := make([]byte, off+total)
	replyL2(out, frame, off, srcMAC, etherTypeIPv4)
	putIPv4Header(out[off:], total, 0, protoICMP, src, dst)
	icmp := out[off+ipv4MinLen:]
	icmp[0], icmp[1] = icmpUnreachable, icmpFragNeeded
	binary.BigEndian.PutUint16(icmp[6:8], uint16(nw.MTU))
	copy(icmp[header.ICMPv4Len:], quote)
	binary.BigEndian.PutUint16(icmp[2:4], ^onesSum(icmp, 0))
	return out
}

// packetTooBig returns the ICMPv6 "packet too big" message (RFC 4443
// section 3.2) answering the IPv6 packet at off in frame, as an Ethernet
// frame back to its sender, or nil when none may be sent: the packet is an
// ICMPv6 error itself, its source is unspecified or multicast, or its
// destination (the message's source) is multicast. The MTU field is the
// network MTU; the message quotes as much of the packet as fits in the IPv6
// minimum MTU of 1280 bytes, and its checksum covers the IPv6 pseudo-header
// (RFC 8200 section 8.1).
func packetTooBig(nw *Network, frame []byte, off int) []byte {
	ip, ok := ipv6Packet(frame[off:])
	if !ok || isICMPError(ip[6], ip[ipv6HdrLen:], true) {
		return nil
	}
	src, dst := ip[24:40], ip[8:24] // the answer goes back to the sender
	if src[0] == 0xff || dst[0] == 0xff || isZero(dst) {
		return nil
	}
	srcMAC, ok := answerMAC(nw, frame)
	if !ok || MAC(frame[6:12]).IsMulticast() {
		return nil
	}
	quote := ip[:min(len(ip), icmpv6MinMTU-ipv6HdrLen-header.ICMPv6Len)]
	plen := header.ICMPv6Len + len(quote)
	out := make([]byte, off+ipv6HdrLen+plen)
	replyL2(out, frame, off, srcMAC, etherTypeIPv6)
	h := out[off:]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(plen))
	h[6], h[7] = protoICMPv6, defaultTTL
	copy(h[8:24], src)
	copy(h[24:40], dst)
	icmp := h[ipv6HdrLen:]
	icmp[0] = icmpv6TooBig
	binary.BigEndian.PutUint32(icmp[4:8], uint32(nw.MTU))
	copy(icmp[header.ICMPv6Len:], quote)
	pseudo := onesSum(h[8:40], 0)
	pseudo = addOnes(pseudo, uint16(plen))
	pseudo = addOnes(pseudo, protoICMPv6)
	binary.BigEndian.PutUint16(icmp[2:4], ^onesSum(icmp, pseudo))
	return out
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
		return proto == protoICMPv6 && l4[0] < 128
	}
	if proto != protoICMP {
		return false
	}
	switch l4[0] {
	case 0, 8, 13, 14, 15, 16, 17, 18: // echo, timestamp, information, mask
		return false
	}
	return true
}

// isZero reports whether every byte of b is zero.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

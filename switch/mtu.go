package vswitch

import (
	"net/netip"

	"vxswitch/header"
	"vxswitch/vxlan"
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
	eth := header.Ethernet(frame)
	if !eth.IsValid() {
		s.drop(d, dropOversize)
		return
	}
	off := eth.HeaderLen()
	var reply []byte
	switch eth.Type() {
	case header.EtherTypeIPv4:
		ip := header.IPv4(frame[off:])
		if !ip.IsValid() {
			break
		}
		ip = ip[:ip.TotalLength()] // without Ethernet padding
		if ip.FlagsFragment()&header.IPv4FlagDF == 0 {
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
	case header.EtherTypeIPv6:
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
func fragmentIPv4(dst, l2 []byte, ip header.IPv4, mtu int, emit func(frame []byte)) bool {
	ihl := ip.HeaderLen()
	first := ip[:ihl]
	later := append(ip[:header.IPv4MinLen:header.IPv4MinLen], copiedOptions(ip.Options())...)
	if mtu < header.IPv4MinMTU || (mtu-ihl)&^7 <= 0 || len(dst) < len(l2)+mtu {
		return false
	}
	flags := ip.FlagsFragment()
	base := int(flags & header.IPv4OffsetMask)
	moreAfter := flags&header.IPv4FlagMF != 0
	payload := ip[ihl:]
	for pos := 0; pos < len(payload); {
		hdr := later
		if pos == 0 {
			hdr = first
		}
		size := min((mtu-len(hdr))&^7, len(payload)-pos)
		last := pos+size == len(payload)
		n := copy(dst, l2)
		h := header.IPv4(dst[n : n+len(hdr)])
		copy(h, hdr)
		h.SetHeaderLen(len(hdr))
		h.SetTotalLength(uint16(len(hdr) + size))
		fl := flags&^(header.IPv4FlagMF|header.IPv4OffsetMask) | uint16(base+pos/8)
		if !last || moreAfter {
			fl |= header.IPv4FlagMF
		}
		h.SetFlagsFragment(fl)
		h.UpdateChecksum()
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
		if t&header.IPv4OptionCopied != 0 {
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
func fragNeeded(nw *Network, frame []byte, off int, ip header.IPv4) []byte {
	if ip.FragmentOffset() != 0 || isICMPError(ip.Protocol(), ip.Payload(), false) {
		return nil
	}
	src, dst := ip.Destination(), ip.Source() // the answer goes back to the sender
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
	quote := ip[:min(ip.HeaderLen()+8, len(ip))]
	total := header.IPv4MinLen + header.ICMPv4Len + len(quote)
	out := make([]byte, off+total)
	replyL2(out, frame, off, srcMAC, header.EtherTypeIPv4)
	rip := header.IPv4(out[off:])
	rip.Encode(uint16(total), 0, 0, defaultTTL, header.ProtoICMP, src, dst)
	icmp := header.ICMPv4(rip[header.IPv4MinLen:])
	icmp.SetType(header.ICMPv4Unreachable)
	icmp.SetCode(header.ICMPv4FragNeededCode)
	icmp.SetMTU(uint16(nw.MTU))
	copy(icmp[header.ICMPv4Len:], quote)
	icmp.SetChecksum(icmp.ComputeChecksum())
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
	ip := header.IPv6(frame[off:])
	if !ip.IsValid() {
		return nil
	}
	ip = ip[:header.IPv6Len+int(ip.PayloadLength())] // without Ethernet padding
	if isICMPError(ip.NextHeader(), ip.Payload(), true) {
		return nil
	}
	src, dst := ip.Destination(), ip.Source() // the answer goes back to the sender
	if src.As16()[0] == 0xff || dst.As16()[0] == 0xff || dst == netip.IPv6Unspecified() {
		return nil
	}
	srcMAC, ok := answerMAC(nw, frame)
	if !ok || MAC(frame[6:12]).IsMulticast() {
		return nil
	}
	quote := ip[:min(len(ip), header.IPv6MinMTU-header.IPv6Len-header.ICMPv6Len)]
	plen := header.ICMPv6Len + len(quote)
	out := make([]byte, off+header.IPv6Len+plen)
	replyL2(out, frame, off, srcMAC, header.EtherTypeIPv6)
	h := header.IPv6(out[off:])
	h.SetVersionClassFlow(0, 0)
	h.SetPayloadLength(uint16(plen))
	h.SetNextHeader(header.ProtoICMPv6)
	h.SetHopLimit(defaultTTL)
	h.SetSource(src)
	h.SetDestination(dst)
	icmp := header.ICMPv6(h[header.IPv6Len:])
	icmp.SetType(header.ICMPv6PacketTooBig)
	icmp.SetMTU(uint32(nw.MTU))
	copy(icmp[header.ICMPv6Len:], quote)
	icmp.SetChecksum(icmp.ComputeChecksum(h.PseudoSum(header.ProtoICMPv6, plen)))
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
		return proto == header.ProtoICMPv6 && l4[0] < 128 // RFC 4443 section 2.1
	}
	if proto != header.ProtoICMP {
		return false
	}
	switch l4[0] {
	case 0, 8, 13, 14, 15, 16, 17, 18: // echo, timestamp, information, mask
		return false
	}
	return true
}

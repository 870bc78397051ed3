package vswitch

import (
	"vxswitch/header"
	"vxswitch/switch/pmtu"
	"vxswitch/vxlan"
)

// oversize handles a frame from the local port p that is longer than the
// network MTU allows. Such a frame cannot cross the underlay (and a peer
// endpoint's stack would drop it), but dropping it silently hangs the
// connection, so (the messages and fragments are made by package pmtu):
//
//   - IPv4 with DF set: an ICMP "fragmentation needed" with the next-hop
//     MTU set to the network MTU goes back into p (RFC 1191 section 4), and
//     the sender's stack lowers its path MTU.
//   - IPv6: an ICMPv6 "packet too big" with the network MTU goes back into
//     p (RFC 4443 section 3.2); IPv6 routers never fragment.
//   - IPv4 without DF: the switch fragments the packet itself, as a router
//     would (RFC 791), and forwards each fragment like any other frame. The
//     sender asked for fragmentation, so this delivers instead of failing.
//
// Everything else (non-IP, malformed IP, ICMP errors about ICMP errors) is
// dropped and counted as "oversize". What it does is recorded in f.d.
func (s *Switch) oversize(f *portFrame) {
	p, nw, frame, d := f.p, f.nw, f.frame(), f.d
	eth := header.Ethernet(frame)
	if !eth.IsValid() {
		s.drop(d, dropOversize)
		return
	}
	off := eth.HeaderLen()
	switch eth.Type() {
	case header.EtherTypeIPv4:
		ip := header.IPv4(frame[off:])
		if !ip.IsValid() {
			break
		}
		ip = ip[:ip.TotalLength()] // without Ethernet padding
		if ip.FlagsFragment()&header.IPv4FlagDF == 0 {
			if s.fragmentFromPort(f, frame[:off], ip) {
				s.stats.fragmented.Add(1)
				d.answer(ActionFragmented, nil)
				return
			}
			break
		}
		if l2, ok := s.icmpL2(nw, frame, off, header.EtherTypeIPv4); ok {
			if reply, ok := pmtu.AppendFragNeeded(l2, ip, nw.MTU, nw.Resolver); ok {
				s.writeMade(p, reply, d, 0)
				d.answer(ActionICMP, p)
				s.stats.icmpFragNeeded.Add(1)
				return
			}
		}
	case header.EtherTypeIPv6:
		if l2, ok := s.icmpL2(nw, frame, off, header.EtherTypeIPv6); ok {
			if reply, ok := pmtu.AppendPacketTooBig(l2, frame[off:], nw.MTU); ok {
				s.writeMade(p, reply, d, 0)
				d.answer(ActionICMP, p)
				s.stats.icmpv6TooBig.Add(1)
				return
			}
		}
	}
	s.drop(d, dropOversize)
}

// icmpL2 returns the Ethernet header of an ICMP error answering frame (its
// network-layer packet at off), or ok false when no error may be sent on
// the network's behalf: no unicast MAC to send from (answerMAC), or a
// sender whose MAC is multicast (RFC 1122 section 3.2.2).
func (s *Switch) icmpL2(nw *Network, frame []byte, off int, etherType uint16) ([]byte, bool) {
	srcMAC, ok := answerMAC(nw, frame)
	if !ok || header.Ethernet(frame).Source().IsMulticast() {
		return nil, false
	}
	l2 := make([]byte, off, off+header.IPv6MinMTU)
	replyL2(l2, frame, off, srcMAC, etherType)
	return l2, true
}

// fragmentFromPort splits the IPv4 packet ip (behind the Ethernet header l2)
// of the frame f into fragments that fit the network MTU and forwards each
// like a frame of its own, unbatched. It reports false, sending nothing,
// when that is impossible.
func (s *Switch) fragmentFromPort(f *portFrame, l2, ip []byte) bool {
	buf := make([]byte, vxlan.HeaderLen+len(l2)+f.nw.MTU)
	return pmtu.FragmentIPv4(buf[vxlan.HeaderLen:], l2, ip, f.nw.MTU, func(frag []byte) {
		s.forward(&portFrame{p: f.p, buf: buf, n: len(frag), d: f.d, v: f.v, nw: f.nw})
	})
}

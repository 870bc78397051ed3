package vswitch

import "vxswitch/header"

// answerLocally handles the frames from the local port p that the switch
// answers itself instead of forwarding, and reports whether it consumed
// frame: ARP requests and IPv6 neighbour solicitations for known addresses
// (arp.go, ndp.go), and everything sent to the network's resolver (by
// IPv4 or IPv6 address, or by ResolverMAC), which never goes to the
// overlay. Other frames cost a few comparisons and no allocation. What it
// does is recorded in d unless d is nil.
func (s *Switch) answerLocally(p *port, nw *Network, frame []byte, d *decision) bool {
	eth := header.Ethernet(frame)
	if !eth.IsValid() {
		return false
	}
	off := eth.HeaderLen()
	switch eth.Type() {
	case header.EtherTypeARP:
		return s.answerARP(p, nw, frame, off, d)
	case header.EtherTypeIPv4:
		if nw.Resolver.Is4() && len(frame) >= off+header.IPv4MinLen && header.IPv4(frame[off:]).Destination() == nw.Resolver {
			s.toResolver(p, nw, frame, off, d)
			return true
		}
	case header.EtherTypeIPv6:
		if s.answerNDP(p, nw, frame, off, d) {
			return true
		}
		if nw.Resolver6.IsValid() && len(frame) >= off+header.IPv6Len && header.IPv6(frame[off:]).Destination() == nw.Resolver6 {
			s.toResolver6(p, nw, frame, off, d)
			return true
		}
	}
	if !nw.ResolverMAC.IsZero() && header.Ethernet(frame).Destination() == nw.ResolverMAC {
		s.drop(d, dropToResolver)
		return true
	}
	return false
}

package vswitch

import "vxswitch/header"

// answerLocally handles the frames from the local port p that the switch
// answers itself instead of forwarding, and reports whether it consumed
// frame: ARP requests for known addresses (arp.go), and everything sent to
// the network's resolver (by IPv4 address or by ResolverMAC), which never
// goes to the overlay. Other frames cost a few comparisons and no
// allocation. What it does is recorded in d unless d is nil.
//
// IPv6 answers join here: an ICMPv6 neighbour solicitation for a known
// address is answered by a package switch/ndp (beside switch/arp), and
// traffic to an IPv6 resolver address goes to toResolver like IPv4's.
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
	}
	if !nw.ResolverMAC.IsZero() && header.Ethernet(frame).Destination() == nw.ResolverMAC {
		s.drop(d, dropToResolver)
		return true
	}
	return false
}

package vswitch

import (
	"net/netip"

	"vxswitch/header"
	"vxswitch/switch/ndp"
)

// answerNDP answers the IPv6 neighbour solicitation in frame (IPv6 packet
// at off) from the local port p when the network knows the target
// (ndp.Lookup): an endpoint's address or the resolver's. The advertisement
// goes back into p, so no solicitation for a known address crosses the
// underlay, and a duplicate address probe for another endpoint's address
// fails at once, even when that endpoint's host is away. It reports
// whether it answered; an unanswered multicast solicitation is counted as
// flooded and the caller forwards it as before. Frames that are not
// ICMPv6 cost three comparisons.
func (s *Switch) answerNDP(p *port, nw *Network, frame []byte, off int, d *decision) bool {
	b := frame[off:]
	if len(b) < header.IPv6Len+header.NDPNeighborLen || header.IPv6(b).NextHeader() != header.ProtoICMPv6 ||
		b[header.IPv6Len] != header.ICMPv6NeighborSolicitation {
		return false
	}
	eth := header.Ethernet(frame)
	sol, ok := ndp.ParseSolicitation(b, eth.Source())
	if !ok {
		return false
	}
	mac, ok := ndp.Lookup(sol, nw.Resolver6, nw.ResolverMAC, nw.Addrs)
	if !ok {
		if eth.Destination().IsMulticast() {
			s.stats.ndpFlooded.Add(1)
		}
		return false
	}
	reply := make([]byte, off+ndp.AdvertisementLen)
	replyL2(reply, frame, off, mac, header.EtherTypeIPv6)
	header.Ethernet(reply).SetDestination(ndp.PutAdvertisement(reply[off:], sol, mac))
	s.writeMade(p, reply, d, 0)
	d.answer(ActionNDP, p)
	if sol.IsDAD() {
		s.stats.ndpDAD.Add(1)
	} else {
		s.stats.ndpAnswered.Add(1)
	}
	return true
}

// announce6 writes an unsolicited neighbour advertisement for the IPv6
// address ip at mac into every port of local except the one whose own MAC
// is mac: the IPv6 counterpart of announce's gratuitous ARP (RFC 4861
// section 7.2.6).
func (s *Switch) announce6(local []*port, ip netip.Addr, mac MAC) {
	if !ip.Is6() || ip.Is4In6() || mac.IsZero() || mac.IsMulticast() {
		return
	}
	g := make([]byte, ndp.UnsolicitedLen)
	ndp.PutUnsolicited(g, ip, mac)
	for _, q := range local {
		if q.mac == mac {
			continue
		}
		s.writeMade(q, g, nil, 0)
		s.stats.unaSent.Add(1)
	}
}

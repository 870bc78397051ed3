package vswitch

import (
	"net/netip"

	"vxswitch/header"
	"vxswitch/switch/arp"
)

// answerARP answers the ARP request in frame (ARP packet at off) from the
// local port p when the network knows the target (arp.Lookup). The reply
// goes back into p, so no request for a known address ever crosses the
// underlay. It reports whether it answered; an unanswered broadcast request
// is counted as flooded and the caller forwards it as before.
func (s *Switch) answerARP(p *port, nw *Network, frame []byte, off int, d *decision) bool {
	req, ok := arp.ParseRequest(frame[off:])
	if !ok {
		return false
	}
	mac, ok := arp.Lookup(req, nw.Resolver, nw.ResolverMAC, nw.Addrs)
	if !ok {
		if header.Ethernet(frame).Destination().IsBroadcast() {
			s.stats.arpFlooded.Add(1)
		}
		return false
	}
	reply := make([]byte, off+header.ARPLen)
	replyL2(reply, frame, off, mac, header.EtherTypeARP)
	arp.PutReply(reply[off:], req, mac)
	s.writeMade(p, reply, d, 0)
	d.answer(ActionARP, p)
	s.stats.arpSuppressed.Add(1)
	return true
}

// announceChanges writes a gratuitous ARP (an unsolicited neighbour
// advertisement for an IPv6 address, ndp.go) into the local ports of a
// network for every address (endpoint or resolver) of view v whose MAC differs
// from the MAC it had the last time any view held it (arp.Memory), so that
// stale neighbour caches heal at once instead of after their timeout (about
// 40 s on Linux). The port whose own MAC is the new MAC is skipped. The
// memory of a network is dropped when it leaves the view. The caller holds
// viewMu.
func (s *Switch) announceChanges(v *View) {
	if v == nil {
		s.lastMAC.Keep(func(uint32) bool { return false })
		return
	}
	ports := s.ports.Load()
	for vni, nw := range v.Networks {
		local := ports.byVNI[vni]
		for ip, mac := range nw.Addrs {
			if s.lastMAC.Saw(vni, ip, mac) && len(local) > 0 {
				s.announce(local, ip, mac)
				s.announce6(local, ip, mac)
			}
		}
		for _, r := range []netip.Addr{nw.Resolver, nw.Resolver6} {
			if r.IsValid() && !nw.ResolverMAC.IsZero() && s.lastMAC.Saw(vni, r, nw.ResolverMAC) && len(local) > 0 {
				s.announce(local, r, nw.ResolverMAC)
				s.announce6(local, r, nw.ResolverMAC)
			}
		}
	}
	s.lastMAC.Keep(func(vni uint32) bool { return v.Networks[vni] != nil })
}

// announce writes a gratuitous ARP for ip at mac into every port of local
// except the one whose own MAC is mac.
func (s *Switch) announce(local []*port, ip netip.Addr, mac MAC) {
	if !ip.Is4() || mac.IsZero() || mac.IsMulticast() {
		return
	}
	g := make([]byte, arp.GratuitousLen)
	arp.PutGratuitous(g, ip, mac)
	for _, q := range local {
		if q.mac == mac {
			continue
		}
		s.writeMade(q, g, nil, 0)
		s.stats.garpSent.Add(1)
	}
}

package vswitch

import (
	"net/netip"

	"vxswitch/header"
)

// arpRequest holds the fields of an ARP request the switch may answer.
type arpRequest struct {
	sha MAC        // sender hardware address
	spa netip.Addr // sender protocol address
	tpa netip.Addr // target protocol address
}

// parseARPRequest returns the request in the ARP packet a, or ok false when
// a is not an IPv4-over-Ethernet ARP request.
func parseARPRequest(b []byte) (req arpRequest, ok bool) {
	a := header.ARP(b)
	if !a.IsValid() || a.Op() != header.ARPRequest {
		return arpRequest{}, false
	}
	return arpRequest{sha: a.SenderMAC(), spa: a.SenderIP(), tpa: a.TargetIP()}, true
}

// arp answers the ARP request in frame (ARP packet at off) from the local
// port p when the network knows the target: the resolver address, or an
// endpoint address in nw.Addrs that is not the requester's own (a duplicate
// address probe or a gratuitous request must reach the others). The reply
// goes back into p, so no request for a known address ever crosses the
// underlay. It reports whether it answered; an unanswered broadcast request
// is counted as flooded and the caller forwards it as before.
func (s *Switch) arp(p *port, nw *Network, frame []byte, off int, d *decision) bool {
	req, ok := parseARPRequest(frame[off:])
	if !ok {
		return false
	}
	var mac MAC
	switch m, known := nw.Addrs[req.tpa]; {
	case req.tpa == nw.Resolver && !nw.ResolverMAC.IsZero():
		mac = nw.ResolverMAC
	case known && req.tpa != req.spa && m != req.sha && !m.IsZero():
		mac = m
	default:
		if MAC(frame[0:6]).IsBroadcast() {
			s.stats.arpFlooded.Add(1)
		}
		return false
	}
	reply := make([]byte, off+header.ARPLen)
	replyL2(reply, frame, off, mac, header.EtherTypeARP)
	header.ARP(reply[off:]).Encode(header.ARPReply, mac, req.tpa, req.sha, req.spa)
	s.writeMade(p, reply, d, 0)
	d.answer(ActionARP, p)
	s.stats.arpSuppressed.Add(1)
	return true
}

// gratuitousARP returns a gratuitous ARP announcing that ip is at mac: a
// broadcast ARP reply whose sender and target are both ip and mac, which
// makes every neighbour cache holding ip take the new MAC.
func gratuitousARP(ip netip.Addr, mac MAC) []byte {
	g := make([]byte, header.EthernetLen+header.ARPLen)
	eth := header.Ethernet(g)
	eth.SetDestination(BroadcastMAC)
	eth.SetSource(mac)
	eth.SetOuterType(header.EtherTypeARP)
	header.ARP(g[header.EthernetLen:]).Encode(header.ARPReply, mac, ip, mac, ip)
	return g
}

// announceChanges writes a gratuitous ARP into the local ports of a network
// for every IPv4 address (endpoint or resolver) of view v whose MAC differs
// from the MAC it had the last time any view held it, so that stale
// neighbour caches heal at once instead of after their timeout (about 40 s
// on Linux). "The last time" matters: an address freed by a detach and
// given to a new endpoint with a new MAC is absent from the views in
// between, and the peers' caches still hold the old MAC. The port whose own
// MAC is the new MAC is skipped; addresses never seen before are not
// announced. The memory of a network is dropped when it leaves the view; it
// holds one entry per address the network ever used. The caller holds
// viewMu.
func (s *Switch) announceChanges(v *View) {
	if v == nil {
		clear(s.lastMAC)
		return
	}
	if s.lastMAC == nil {
		s.lastMAC = map[uint32]map[netip.Addr]MAC{}
	}
	ports := s.ports.Load()
	for vni, nw := range v.Networks {
		known := s.lastMAC[vni]
		if known == nil {
			known = map[netip.Addr]MAC{}
			s.lastMAC[vni] = known
		}
		local := ports.byVNI[vni]
		moved := func(ip netip.Addr, mac MAC) {
			if prev, ok := known[ip]; ok && prev != mac && len(local) > 0 {
				s.announce(local, ip, mac)
			}
			known[ip] = mac
		}
		for ip, mac := range nw.Addrs {
			moved(ip, mac)
		}
		if nw.Resolver.IsValid() && !nw.ResolverMAC.IsZero() {
			moved(nw.Resolver, nw.ResolverMAC)
		}
	}
	for vni := range s.lastMAC {
		if v.Networks[vni] == nil {
			delete(s.lastMAC, vni)
		}
	}
}

// announce writes a gratuitous ARP for ip at mac into every port of local
// except the one whose own MAC is mac.
func (s *Switch) announce(local []*port, ip netip.Addr, mac MAC) {
	if !ip.Is4() || mac.IsZero() || mac.IsMulticast() {
		return
	}
	g := gratuitousARP(ip, mac)
	for _, q := range local {
		if q.mac == mac {
			continue
		}
		s.writeMade(q, g, nil, 0)
		s.stats.garpSent.Add(1)
	}
}

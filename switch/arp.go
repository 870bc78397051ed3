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
// network for every address (endpoint or resolver) of view v whose MAC
// differs from the MAC it had the last time any view held it, so that
// stale neighbour caches heal at once instead of after their timeout
// (about 40 s on Linux). The port whose own MAC is the new MAC is skipped.
// Only the addresses that differ from last, the view v replaces, are
// visited (AddrTable.Diff skips what the two views share), so a view one
// change apart costs O(log n), not a walk of every address. An address
// that moved between last and v is compared with last; one that left the
// views is remembered in lastMAC (arp.Memory) until it comes back, so a
// reused address is announced too. The memory of a network is dropped
// when it leaves the view. The caller holds viewMu.
func (s *Switch) announceChanges(last, v *View) {
	if v == nil {
		s.lastMAC.Keep(func(uint32) bool { return false })
		return
	}
	ports := s.ports.Load()
	for vni, nw := range v.Networks {
		local := ports.byVNI[vni]
		announce := func(ip netip.Addr, mac MAC) {
			if len(local) > 0 {
				s.announce(local, ip, mac)
				s.announce6(local, ip, mac)
			}
		}
		var before AddrTable
		if old := last.network(vni); old != nil {
			before = old.Addrs
		}
		before.Diff(nw.Addrs, func(ip netip.Addr, old, mac *MAC) {
			switch {
			case mac == nil: // left: remember its MAC until it comes back
				s.lastMAC.Saw(vni, ip, *old)
			case old != nil: // moved
				announce(ip, *mac)
			default: // (back) in a view
				if s.lastMAC.Saw(vni, ip, *mac) {
					announce(ip, *mac)
				}
				s.lastMAC.Forget(vni, ip)
			}
		})
		for _, r := range []netip.Addr{nw.Resolver, nw.Resolver6} {
			if r.IsValid() && !nw.ResolverMAC.IsZero() && s.lastMAC.Saw(vni, r, nw.ResolverMAC) {
				announce(r, nw.ResolverMAC)
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

package vswitch

import (
	"encoding/binary"
	"net/netip"
)

// ARP for IPv4 over Ethernet (RFC 826): the packet layout and values.
const (
	arpLen       = 28 // hardware type .. target protocol address
	arpHWEther   = 1  // hardware type Ethernet
	arpOpRequest = 1
	arpOpReply   = 2
)

// arpRequest holds the fields of an ARP request the switch may answer.
type arpRequest struct {
	sha MAC        // sender hardware address
	spa netip.Addr // sender protocol address
	tpa netip.Addr // target protocol address
}

// parseARPRequest returns the request in the ARP packet a, or ok false when
// a is not an IPv4-over-Ethernet ARP request.
func parseARPRequest(a []byte) (req arpRequest, ok bool) {
	if len(a) < arpLen ||
		binary.BigEndian.Uint16(a[0:2]) != arpHWEther ||
		binary.BigEndian.Uint16(a[2:4]) != etherTypeIPv4 ||
		a[4] != 6 || a[5] != 4 ||
		binary.BigEndian.Uint16(a[6:8]) != arpOpRequest {
		return arpRequest{}, false
	}
	return arpRequest{sha: MAC(a[8:14]), spa: addr4(a[14:18]), tpa: addr4(a[24:28])}, true
}

// putARP writes an ARP packet (IPv4 over Ethernet) into b[:arpLen].
func putARP(b []byte, op uint16, sha MAC, spa netip.Addr, tha MAC, tpa netip.Addr) {
	binary.BigEndian.PutUint16(b[0:2], arpHWEther)
	binary.BigEndian.PutUint16(b[2:4], etherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], op)
	s4, t4 := spa.As4(), tpa.As4()
	copy(b[8:14], sha[:])
	copy(b[14:18], s4[:])
	copy(b[18:24], tha[:])
	copy(b[24:28], t4[:])
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
	reply := make([]byte, off+arpLen)
	replyL2(reply, frame, off, mac, etherTypeARP)
	putARP(reply[off:], arpOpReply, mac, req.tpa, req.sha, req.spa)
	s.writeMade(p, reply, d, 0)
	d.answer(ActionARP, p)
	s.stats.arpSuppressed.Add(1)
	return true
}

// gratuitousARP returns a gratuitous ARP announcing that ip is at mac: a
// broadcast ARP reply whose sender and target are both ip and mac, which
// makes every neighbour cache holding ip take the new MAC.
func gratuitousARP(ip netip.Addr, mac MAC) []byte {
	g := make([]byte, ethHeaderLen+arpLen)
	copy(g[0:6], BroadcastMAC[:])
	copy(g[6:12], mac[:])
	binary.BigEndian.PutUint16(g[12:14], etherTypeARP)
	putARP(g[ethHeaderLen:], arpOpReply, mac, ip, mac, ip)
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

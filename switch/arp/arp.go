// Package arp holds the switch's own ARP answers for IPv4 (RFC 826): it
// parses a request, decides from the network's addresses whether the switch
// answers it (ARP suppression), writes the reply, and remembers which MAC
// each address had so that a change is announced with a gratuitous ARP.
//
// The package knows nothing of ports, views or counters: the switch
// (package vswitch: answerARP in switch/arp.go, called by answerLocally in
// switch/answer.go) hands it the ARP packet and plain values from its view,
// and writes what it returns into the port.
//
// IPv6 goes beside it, not into it: neighbour discovery (RFC 4861) is a
// package switch/ndp of the same shape (ParseSolicitation, Lookup,
// PutAdvertisement, an unsolicited advertisement instead of the
// gratuitous ARP), called by the switch's answerLocally (switch/answer.go) for
// ICMPv6 neighbour solicitations, as this package is called for EtherType
// ARP.
package arp

import (
	"net/netip"

	"vxswitch/header"
)

// Request holds the fields of an ARP request the switch may answer. The
// zero value is no request.
type Request struct {
	SenderMAC header.MAC // sender hardware address
	SenderIP  netip.Addr // sender protocol address
	TargetIP  netip.Addr // target protocol address
}

// ParseRequest returns the request in the ARP packet b, or ok false when b
// is not an IPv4-over-Ethernet ARP request. It does not allocate.
func ParseRequest(b []byte) (req Request, ok bool) {
	a := header.ARP(b)
	if !a.IsValid() || a.Op() != header.ARPRequest {
		return Request{}, false
	}
	return Request{SenderMAC: a.SenderMAC(), SenderIP: a.SenderIP(), TargetIP: a.TargetIP()}, true
}

// Lookup returns the MAC the switch answers req with, or ok false when it
// must not answer: the resolver's MAC for the resolver address (when
// resolverMAC is set), else the MAC that addrs (the network's endpoint
// addresses) holds for the target, unless the requester asks for its own
// address or MAC (a duplicate address probe or a gratuitous request must
// reach the others) or that MAC is zero.
func Lookup[A interface {
	Get(netip.Addr) (header.MAC, bool)
}](req Request, resolver netip.Addr, resolverMAC header.MAC, addrs A) (header.MAC, bool) {
	if req.TargetIP == resolver && !resolverMAC.IsZero() {
		return resolverMAC, true
	}
	m, known := addrs.Get(req.TargetIP)
	if known && req.TargetIP != req.SenderIP && m != req.SenderMAC && !m.IsZero() {
		return m, true
	}
	return header.MAC{}, false
}

// PutReply writes into dst[:header.ARPLen] the ARP reply to req saying that
// req.TargetIP is at mac. It panics if dst is shorter.
func PutReply(dst []byte, req Request, mac header.MAC) {
	header.ARP(dst[:header.ARPLen]).Encode(header.ARPReply, mac, req.TargetIP, req.SenderMAC, req.SenderIP)
}

// GratuitousLen is the length of the frame PutGratuitous writes.
const GratuitousLen = header.EthernetLen + header.ARPLen

// PutGratuitous writes into dst[:GratuitousLen] a gratuitous ARP announcing
// that ip is at mac: a broadcast ARP reply whose sender and target are both
// ip and mac, which makes every neighbour cache holding ip take the new MAC.
// It panics if dst is shorter.
func PutGratuitous(dst []byte, ip netip.Addr, mac header.MAC) {
	eth := header.Ethernet(dst[:GratuitousLen])
	eth.SetDestination(header.BroadcastMAC)
	eth.SetSource(mac)
	eth.SetOuterType(header.EtherTypeARP)
	header.ARP(dst[header.EthernetLen:GratuitousLen]).Encode(header.ARPReply, mac, ip, mac, ip)
}

// Memory remembers, per network (VNI), the MAC each address had the last
// time a view held it, so that a change is announced even when the address
// was absent from the views in between (freed by a detach, then given to a
// new endpoint with a new MAC: the peers' caches still hold the old MAC).
//
// The zero value is empty and ready. It is not safe for concurrent use: the
// switch calls it under the lock that serialises its view changes.
type Memory struct {
	last map[uint32]map[netip.Addr]header.MAC
}

// Saw records that ip is at mac in network vni and reports whether ip was
// known before with another MAC: then the change should be announced.
// Addresses never seen before are not changes.
func (m *Memory) Saw(vni uint32, ip netip.Addr, mac header.MAC) (changed bool) {
	if m.last == nil {
		m.last = map[uint32]map[netip.Addr]header.MAC{}
	}
	known := m.last[vni]
	if known == nil {
		known = map[netip.Addr]header.MAC{}
		m.last[vni] = known
	}
	prev, ok := known[ip]
	known[ip] = mac
	return ok && prev != mac
}

// Forget forgets ip in network vni. The switch forgets an address while a
// view holds it (the view itself says which MAC it has) and remembers it
// again with Saw when it leaves, so the memory holds only the addresses
// that left the views, not a copy of every address.
func (m *Memory) Forget(vni uint32, ip netip.Addr) {
	if known := m.last[vni]; known != nil {
		delete(known, ip)
	}
}

// Keep forgets every network for which keep returns false (it left the
// view). A network's memory holds one entry per address it ever used.
func (m *Memory) Keep(keep func(vni uint32) bool) {
	for vni := range m.last {
		if !keep(vni) {
			delete(m.last, vni)
		}
	}
}

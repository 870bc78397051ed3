package vswitch

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Ports and ICMP types of the traffic the switch answers for the resolver.
const (
	dnsPort         = 53
	udpHdrLen       = 8
	icmpHdrLen      = 8
	icmpEchoReply   = 0
	icmpEchoRequest = 8
)

// answerLocally handles the frames from the local port p that the switch
// answers itself instead of forwarding, and reports whether it consumed
// frame: ARP requests for known addresses (arp.go), and everything sent to
// the network's resolver (by IPv4 address or by ResolverMAC), which never
// goes to the overlay. Other frames cost a few comparisons and no
// allocation. What it does is recorded in d unless d is nil.
func (s *Switch) answerLocally(p *port, nw *Network, frame []byte, d *decision) bool {
	etherType, off, ok := l3(frame)
	if !ok {
		return false
	}
	switch etherType {
	case etherTypeARP:
		return s.arp(p, nw, frame, off, d)
	case etherTypeIPv4:
		if nw.Resolver.Is4() && len(frame) >= off+ipv4MinLen && addr4(frame[off+16:]) == nw.Resolver {
			s.toResolver(p, nw, frame, off, d)
			return true
		}
	}
	if !nw.ResolverMAC.IsZero() && MAC(frame[0:6]) == nw.ResolverMAC {
		s.drop(d, dropToResolver)
		return true
	}
	return false
}

// toResolver handles an IPv4 packet (at off in frame) from port p to the
// resolver address: UDP to port 53 goes to the DNS handler, TCP goes to the
// DNS-over-TCP responder (dnstcp.go), which answers connections to port 53
// and resets the others, an ICMP echo request is answered, and anything
// else (fragments, other UDP ports, other protocols, a frame whose
// destination MAC the resolver cannot answer from) is dropped as
// "to_resolver". The handlers get l2, the Ethernet header of their answers.
func (s *Switch) toResolver(p *port, nw *Network, frame []byte, off int, d *decision) {
	ip, ihl, ok := ipv4Packet(frame[off:])
	srcMAC, macOK := answerMAC(nw, frame)
	if !ok || !macOK || isFragment(ip) {
		s.drop(d, dropToResolver)
		return
	}
	l2 := make([]byte, off)
	replyL2(l2, frame, off, srcMAC, etherTypeIPv4)
	switch l4 := ip[ihl:]; {
	case ip[9] == protoUDP && len(l4) >= udpHdrLen && binary.BigEndian.Uint16(l4[2:4]) == dnsPort:
		s.dnsQuery(p, nw, l2, ip, l4, d)
	case ip[9] == protoTCP:
		s.dnsTCP(p, nw, l2, ip, l4, d)
	case ip[9] == protoICMP && len(l4) >= icmpHdrLen && l4[0] == icmpEchoRequest && l4[1] == 0:
		s.echoReply(p, nw, l2, ip, l4, d)
	default:
		s.drop(d, dropToResolver)
	}
}

// dnsQuery passes the DNS query in the UDP datagram udp (of the IPv4 packet
// ip from port p) to the DNS handler, with a reply function that sends the
// answer back to the querier behind the Ethernet header l2.
func (s *Switch) dnsQuery(p *port, nw *Network, l2, ip, udp []byte, d *decision) {
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < udpHdrLen || ulen > len(udp) {
		s.drop(d, dropToResolver)
		return
	}
	if s.dns == nil {
		s.drop(d, dropNoDNS)
		return
	}
	d.answer(ActionDNS, nil) // the answer may come later, from elsewhere
	s.stats.dnsQueries.Add(1)
	querier := netip.AddrPortFrom(addr4(ip[12:16]), binary.BigEndian.Uint16(udp[0:2]))
	resolver := netip.AddrPortFrom(nw.Resolver, dnsPort)
	name, vni := p.name, p.vni
	sink := newAnswerSink(d)
	defer sink.close()
	reply := sink.reply(func(answer []byte, d *decision) {
		s.sendUDP(name, vni, l2, resolver, querier, answer, d, sink.id)
	})
	s.dns.ServeDNS(vni, querier, bytes.Clone(udp[udpHdrLen:ulen]), reply)
}

// answerSink decides where the frames that answer a DNS query are
// reported (writeMade): an answer given while the handler still runs, on
// the goroutine deciding the query, is recorded in the query's decision
// and reported after the query; a later one, from another goroutine, is
// reported at once, as answering the query's frame ID. The zero value is
// not usable; call newAnswerSink.
type answerSink struct {
	mu   sync.Mutex // held while an answer is written; guards d
	d    *decision  // nil once the handler has returned
	id   uint64     // the query's frame ID; 0 when it was not observed
	once atomic.Bool
}

// newAnswerSink returns the sink of a query being decided in d (nil when
// nobody observes).
func newAnswerSink(d *decision) *answerSink {
	return &answerSink{d: d, id: d.frameID()}
}

// reply returns the reply function for the DNS handler: the first call
// runs send with the decision to record in (or nil), later calls do
// nothing.
func (a *answerSink) reply(send func(answer []byte, d *decision)) func([]byte) {
	return func(answer []byte) {
		if !a.once.CompareAndSwap(false, true) {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		send(answer, a.d)
	}
}

// close ends the time when answers are recorded in the decision: the
// handler has returned.
func (a *answerSink) close() {
	a.mu.Lock()
	a.d = nil
	a.mu.Unlock()
}

// sendUDP writes a UDP datagram from src to dst carrying payload, behind
// the Ethernet header l2, into the port called name if it still exists in
// network vni. A datagram too long for the network MTU is fragmented.
//
// The datagram answers the frame with ID answers: it is recorded in d
// when d is not nil, else reported at once (writeMade).
func (s *Switch) sendUDP(name string, vni uint32, l2 []byte, src, dst netip.AddrPort, payload []byte, d *decision, answers uint64) {
	q := s.ports.Load().byName[name]
	if q == nil || q.vni != vni {
		s.stats.drop(dropNoPort)
		return
	}
	total := ipv4MinLen + udpHdrLen + len(payload)
	if total > 0xffff {
		s.stats.drop(dropOversize)
		return
	}
	off := len(l2)
	pkt := make([]byte, off+total)
	copy(pkt, l2)
	ip := pkt[off:]
	putIPv4Header(ip, total, uint16(s.ipID.Add(1)), protoUDP, src.Addr(), dst.Addr())
	udp := ip[ipv4MinLen:]
	binary.BigEndian.PutUint16(udp[0:2], src.Port())
	binary.BigEndian.PutUint16(udp[2:4], dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(len(udp)))
	copy(udp[udpHdrLen:], payload)
	pseudo := onesSum(ip[12:20], 0)
	pseudo = addOnes(pseudo, protoUDP)
	pseudo = addOnes(pseudo, uint16(len(udp)))
	sum := ^onesSum(udp, pseudo)
	if sum == 0 {
		sum = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(udp[6:8], sum)

	mtu := 0
	if nw := s.view.Load().network(vni); nw != nil {
		mtu = nw.MTU
	}
	if mtu <= 0 || total <= mtu {
		s.writeMade(q, pkt, d, answers)
		return
	}
	out := make([]byte, off+mtu)
	if !fragmentIPv4(out, l2, ip, mtu, func(f []byte) { s.writeMade(q, bytes.Clone(f), d, answers) }) {
		s.stats.drop(dropOversize)
		return
	}
	s.stats.fragmented.Add(1)
}

// echoReply answers the ICMP echo request icmp (RFC 792) in the IPv4 packet
// ip from port p, sent to the resolver address, so that `ping RESOLVER`
// works; the answer goes behind the Ethernet header l2.
func (s *Switch) echoReply(p *port, nw *Network, l2, ip, icmp []byte, d *decision) {
	off := len(l2)
	total := ipv4MinLen + len(icmp)
	out := make([]byte, off+total)
	copy(out, l2)
	putIPv4Header(out[off:], total, uint16(s.ipID.Add(1)), protoICMP, nw.Resolver, addr4(ip[12:16]))
	r := out[off+ipv4MinLen:]
	copy(r, icmp)
	r[0], r[2], r[3] = icmpEchoReply, 0, 0
	binary.BigEndian.PutUint16(r[2:4], ^onesSum(r, 0))
	s.writeMade(p, out, d, 0)
	d.answer(ActionEcho, p)
	s.stats.echoReplies.Add(1)
}

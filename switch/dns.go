package vswitch

import (
	"bytes"
	"net/netip"
	"sync"
	"sync/atomic"

	"vxswitch/header"
	"vxswitch/switch/dnsanswer"
	"vxswitch/switch/pmtu"
)

// toResolver handles an IPv4 packet (at off in frame) from port p to the
// resolver address: UDP to port 53 goes to the DNS handler, TCP goes to the
// DNS-over-TCP responder (dnsanswer.Responder, dnstcp.go), which answers connections to port 53
// and resets the others, an ICMP echo request is answered, and anything
// else (fragments, other UDP ports, other protocols, a frame whose
// destination MAC the resolver cannot answer from) is dropped as
// "to_resolver". The handlers get l2, the Ethernet header of their answers.
func (s *Switch) toResolver(p *port, nw *Network, frame []byte, off int, d *decision) {
	ip := header.IPv4(frame[off:])
	srcMAC, macOK := answerMAC(nw, frame)
	if !ip.IsValid() || !macOK || ip.IsFragment() {
		s.drop(d, dropToResolver)
		return
	}
	l2 := make([]byte, off)
	replyL2(l2, frame, off, srcMAC, header.EtherTypeIPv4)
	switch l4 := ip.Payload(); {
	case ip.Protocol() == header.ProtoUDP && len(l4) >= header.UDPLen && header.UDP(l4).DstPort() == dnsanswer.Port:
		s.dnsQuery(p, nw, l2, ip.Source(), nw.Resolver, l4, d)
	case ip.Protocol() == header.ProtoTCP:
		s.dnsTCP(p, nw, l2, ip.Source(), nw.Resolver, l4, d)
	case ip.Protocol() == header.ProtoICMP && len(l4) >= header.ICMPv4Len &&
		header.ICMPv4(l4).Type() == header.ICMPv4EchoRequest && header.ICMPv4(l4).Code() == 0:
		s.echoReply(p, nw, l2, ip, l4, d)
	default:
		s.drop(d, dropToResolver)
	}
}

// toResolver6 handles an IPv6 packet (at off in frame) from port p to the
// resolver's IPv6 address, as toResolver does IPv4: UDP to port 53 goes to
// the DNS handler, TCP to the DNS-over-TCP responder, and an ICMPv6 echo
// request is answered; anything else (fragments, other UDP ports, other
// protocols) is dropped as "to_resolver". Neighbour solicitations for the
// address were answered before (answerNDP).
func (s *Switch) toResolver6(p *port, nw *Network, frame []byte, off int, d *decision) {
	ip := header.IPv6(frame[off:])
	srcMAC, macOK := answerMAC(nw, frame)
	if !ip.IsValid() || !macOK {
		s.drop(d, dropToResolver)
		return
	}
	proto, at, ok := ip.UpperLayer()
	if !ok {
		s.drop(d, dropToResolver)
		return
	}
	l2 := make([]byte, off)
	replyL2(l2, frame, off, srcMAC, header.EtherTypeIPv6)
	switch l4 := []byte(ip[at : header.IPv6Len+int(ip.PayloadLength())]); {
	case proto == header.ProtoUDP && len(l4) >= header.UDPLen && header.UDP(l4).DstPort() == dnsanswer.Port:
		s.dnsQuery(p, nw, l2, ip.Source(), nw.Resolver6, l4, d)
	case proto == header.ProtoTCP:
		s.dnsTCP(p, nw, l2, ip.Source(), nw.Resolver6, l4, d)
	case proto == header.ProtoICMPv6 && len(l4) >= header.ICMPv6Len &&
		header.ICMPv6(l4).Type() == header.ICMPv6EchoRequest && header.ICMPv6(l4).Code() == 0:
		out := dnsanswer.AppendEchoReply6(l2, nw.Resolver6, ip, l4)
		s.writeMade(p, out, d, 0)
		d.answer(ActionEcho, p)
		s.stats.echoReplies.Add(1)
	default:
		s.drop(d, dropToResolver)
	}
}

// dnsQuery passes the DNS query in the UDP datagram udp, which src sent
// from port p to the resolver address resolver (IPv4 or IPv6), to the DNS
// handler, with a reply function that sends the answer back to the querier
// behind the Ethernet header l2.
func (s *Switch) dnsQuery(p *port, nw *Network, l2 []byte, src, resolverAddr netip.Addr, udp header.UDP, d *decision) {
	if !udp.IsValid() {
		s.drop(d, dropToResolver)
		return
	}
	if s.dns == nil {
		s.drop(d, dropNoDNS)
		return
	}
	d.answer(ActionDNS, nil) // the answer may come later, from elsewhere
	s.stats.dnsQueries.Add(1)
	querier := netip.AddrPortFrom(src, udp.SrcPort())
	resolver := netip.AddrPortFrom(resolverAddr, dnsanswer.Port)
	name, vni := p.name, p.vni
	sink := newAnswerSink(d)
	defer sink.close()
	reply := sink.reply(func(answer []byte, d *decision) {
		s.sendUDP(name, vni, l2, resolver, querier, answer, d, sink.id)
	})
	s.dns.ServeDNS(vni, querier, bytes.Clone(udp.Payload()), reply)
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
// network vni. An IPv4 datagram too long for the network MTU is
// fragmented; an IPv6 one is dropped.
//
// The datagram answers the frame with ID answers: it is recorded in d
// when d is not nil, else reported at once (writeMade).
func (s *Switch) sendUDP(name string, vni uint32, l2 []byte, src, dst netip.AddrPort, payload []byte, d *decision, answers uint64) {
	q := s.ports.Load().byName[name]
	if q == nil || q.vni != vni {
		s.stats.drop(dropNoPort)
		return
	}
	off := len(l2)
	buf := append(make([]byte, 0, off+header.IPv4MinLen+header.UDPLen+len(payload)), l2...)
	pkt, ok := dnsanswer.AppendUDP(buf, uint16(s.ipID.Add(1)), src, dst, payload)
	if !ok {
		s.stats.drop(dropOversize)
		return
	}
	total := len(pkt) - off
	mtu := 0
	if nw := s.view.Load().network(vni); nw != nil {
		mtu = nw.MTU
	}
	if mtu <= 0 || total <= mtu {
		s.writeMade(q, pkt, d, answers)
		return
	}
	if src.Addr().Is6() {
		// No router fragments IPv6 (RFC 8200 section 5). Answers over
		// UDP are at most 1232 bytes (resolver.ednsSize), below the IPv6
		// minimum MTU, so this does not happen.
		s.stats.drop(dropOversize)
		return
	}
	out := make([]byte, off+mtu)
	if !pmtu.FragmentIPv4(out, l2, pkt[off:], mtu, func(f []byte) { s.writeMade(q, bytes.Clone(f), d, answers) }) {
		s.stats.drop(dropOversize)
		return
	}
	s.stats.fragmented.Add(1)
}

// echoReply answers the ICMP echo request icmp (RFC 792) in the IPv4 packet
// ip from port p, sent to the resolver address, so that `ping RESOLVER`
// works; the answer goes behind the Ethernet header l2.
func (s *Switch) echoReply(p *port, nw *Network, l2 []byte, ip header.IPv4, icmp []byte, d *decision) {
	out := dnsanswer.AppendEchoReply(l2, uint16(s.ipID.Add(1)), nw.Resolver, ip, icmp)
	s.writeMade(p, out, d, 0)
	d.answer(ActionEcho, p)
	s.stats.echoReplies.Add(1)
}

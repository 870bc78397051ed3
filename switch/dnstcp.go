package vswitch

import (
	"net/netip"

	"vxswitch/switch/dnsanswer"
)

// DNS over TCP to the resolver address: the switch hands every TCP segment
// to the resolver to its dnsanswer.Responder (the minimal TCP responder of
// RFC 7766 and RFC 9293, with its bounds) and passes the whole queries it
// returns to the DNS handler. This file is only the glue: where the
// responder's segments go (writeMade into the querier's port) and which
// handler method answers.

// tcpWriter writes the responder's segments into port p, recorded in d
// when d is not nil, else reported as answering the frame with ID answers.
type tcpWriter struct {
	s       *Switch
	p       *port
	d       *decision
	answers uint64
}

// Write implements dnsanswer.Writer.
func (w *tcpWriter) Write(frame []byte) { w.s.writeMade(w.p, frame, w.d, w.answers) }

// dnsTCP handles the TCP segment tcp that client sent from port p to the
// resolver address resolver of nw (IPv4, or IPv6 on a dual-stack
// network); its segments to the client go behind the Ethernet header l2.
// It keeps l2, but not tcp.
func (s *Switch) dnsTCP(p *port, nw *Network, l2 []byte, client, resolver netip.Addr, tcp []byte, d *decision) {
	w := &tcpWriter{s: s, p: p, d: d}
	queries, ok := s.tcpConns.Segment(p.name, p.vni, l2, resolver, nw.MTU, client, tcp, s.dns != nil, w)
	if !ok {
		s.drop(d, dropToResolver)
		return
	}
	d.answer(ActionDNS, p)
	for _, q := range queries {
		s.tcpQuery(q, d)
	}
}

// tcpQuery hands the query q to the DNS handler, with a reply function that
// gives the answer to the responder, which sends what the client's window
// allows. Segments sent while the handler runs are recorded in d (see
// answerSink).
func (s *Switch) tcpQuery(q dnsanswer.Query, d *decision) {
	s.stats.dnsQueries.Add(1)
	sink := newAnswerSink(d)
	defer sink.close()
	reply := sink.reply(func(answer []byte, d *decision) { s.tcpAnswer(q.Conn, answer, d, sink.id) })
	key := q.Conn.Key()
	if h, ok := s.dns.(dnsanswer.TCPHandler); ok {
		h.ServeDNSTCP(key.VNI, key.Client, q.Msg, reply)
		return
	}
	s.dns.ServeDNS(key.VNI, key.Client, q.Msg, reply)
}

// tcpAnswer gives answer to the responder for connection c; the segments
// go into c's port if it still exists in c's network, and answer the frame
// with ID query (see writeMade).
func (s *Switch) tcpAnswer(c *dnsanswer.Conn, answer []byte, d *decision, query uint64) {
	key := c.Key()
	var w dnsanswer.Writer
	q := s.ports.Load().byName[key.Port]
	if q != nil && q.vni == key.VNI {
		w = &tcpWriter{s: s, p: q, d: d, answers: query}
	}
	switch s.tcpConns.Answer(c, answer, w) {
	case dnsanswer.Gone, dnsanswer.Aborted:
		return
	case dnsanswer.TooLong:
		s.stats.drop(dropOversize)
	}
	if w == nil {
		s.stats.drop(dropNoPort)
	}
}

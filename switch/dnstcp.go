package vswitch

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"vxswitch/header"
)

// DNS over TCP to the resolver address (RFC 7766; RFC 1035 section 4.2.2).
//
// The switch answers TCP to the resolver address itself, with a minimal
// TCP responder (RFC 9293) that is just enough for DNS: it accepts
// connections to port 53, reads length-prefixed queries (pipelined queries
// too), hands each to the DNS handler and sends every answer back with its
// 2-byte length. Any other TCP segment to the resolver (another port, a
// connection it does not know) gets a RST, so that a client fails at once
// instead of waiting for a timeout.
//
// There are no retransmission timers: the segments go straight into a
// local TAP, where they are not lost in practice. A client that loses one
// anyway retransmits, and gets a duplicate ACK and, for the data it already
// sent, nothing more; the switch never resends its own segments. Neither
// are there window scaling, selective ACKs or urgent data, and the TCP
// checksum of incoming segments is not checked (they come from the local
// kernel, and from ports with offloads they only carry a partial checksum).
//
// No client can make the responder hold more than a bounded amount of
// memory: each network has its own table of at most dnsTCPMaxConns
// connections; a connection with dnsTCPMaxPending unanswered queries or
// dnsTCPOutHigh bytes of unsent answers takes no more data (it advertises
// a zero window and acknowledges nothing new, so the client's TCP holds
// the queries); an answer that would take a connection past dnsTCPOutMax,
// or all connections past dnsTCPOutTotal, resets that connection
// (Stats.DNSTCPAborted). A peer MSS below dnsTCPMinMSS is raised to it, so
// a tiny MSS cannot turn one answer into thousands of frames.

const (
	// dnsTCPMaxConns bounds the connection table of one network; a SYN
	// beyond it gets a RST and counts in Stats.DNSTCPRefused.
	dnsTCPMaxConns = 256
	// dnsTCPMaxPending is how many queries of one connection may wait for
	// their answers; data that holds more is not acknowledged yet.
	dnsTCPMaxPending = 64
	// dnsTCPOutHigh is how many bytes of unsent answers make a connection
	// take no more data until the client reads.
	dnsTCPOutHigh = 64 << 10
	// dnsTCPOutMax is the most bytes of unsent answers one connection may
	// hold (the answers to queries it sent before reaching dnsTCPOutHigh);
	// an answer beyond it resets the connection.
	dnsTCPOutMax = 256 << 10
	// dnsTCPOutTotal is the most bytes of unsent answers all connections
	// of the switch may hold together.
	dnsTCPOutTotal = 16 << 20
	// dnsTCPIdle is how long a connection may stay without a segment from
	// the client or an answer before it is forgotten (RFC 7766 section
	// 6.2.3 leaves the idle timeout to the server).
	dnsTCPIdle = 30 * time.Second
	// dnsTCPDefaultMSS is the MSS of a peer whose SYN has no MSS option
	// (RFC 9293 section 3.7.1).
	dnsTCPDefaultMSS = 536
	// dnsTCPMinMSS is the least MSS the switch sends with, whatever the
	// client announces: an MSS of 1 would cut one answer into thousands of
	// segments, all made under the table's lock (issue 18). 216 is the
	// floor FreeBSD applies (net.inet.tcp.minmss); a 216-byte segment fits
	// the 576-byte datagram every IPv4 host must accept (RFC 791).
	dnsTCPMinMSS = 216
	// dnsTCPWindow is the receive window the switch advertises (no window
	// scaling) while a connection takes data; a full connection advertises
	// a zero window instead (tcpConn.window). Received bytes are taken off
	// the buffer as soon as they form a whole query.
	dnsTCPWindow = 65535
	// tcpOptMSSLen is the length of the MSS option in the SYN-ACK.
	tcpOptMSSLen = 4
)

// tcpDNSHandler is the optional interface of a DNSHandler that answers
// queries received over TCP differently from UDP ones: without truncating
// the answer to a UDP size (at most 65535 bytes, RFC 7766 section 8).
// When Config.DNS implements it, the switch calls ServeDNSTCP for queries
// over TCP, else ServeDNS.
//
// ServeDNSTCP follows the rules of ServeDNS (must not block for long, query
// is the handler's copy), with one more: it calls reply exactly once, with
// nil when the query gets no answer (not a query at all), so that the
// switch knows when every answer of a connection has been sent. query is
// the message without its 2-byte length prefix, and so is the answer.
type tcpDNSHandler interface {
	ServeDNSTCP(vni uint32, src netip.AddrPort, query []byte, reply func(answer []byte))
}

// tcpConnKey identifies a TCP connection to the resolver: the port it came
// from (name and network) and the client's address and port.
type tcpConnKey struct {
	port   string
	vni    uint32
	client netip.AddrPort
}

// dnsTCPTable holds the DNS-over-TCP connections of a Switch. The zero
// value is an empty table. mu guards the maps, outBytes and every field of
// every connection in it; the switch writes segments into ports while
// holding mu but never calls the DNS handler then, since a handler may
// reply at once.
type dnsTCPTable struct {
	mu       sync.Mutex
	conns    map[tcpConnKey]*tcpConn
	perVNI   map[uint32]int // connections per network, each at most dnsTCPMaxConns
	outBytes int            // unsent answer bytes of all connections
}

// tcpConn is one connection to the resolver address. Sequence numbers
// follow RFC 9293 section 3.3.1: snd* are ours, rcv* the client's.
type tcpConn struct {
	key      tcpConnKey
	l2       []byte     // Ethernet header of the segments to the client
	resolver netip.Addr // our address
	irs      uint32     // the client's initial sequence number
	sndUna   uint32     // oldest of our bytes not acknowledged
	sndNxt   uint32     // next sequence number we send
	sndWnd   uint32     // the client's receive window
	rcvNxt   uint32     // next sequence number we expect
	mss      int        // largest payload of a segment to the client
	in       []byte     // received bytes that are not a whole query yet
	out      []byte     // answers (length-prefixed) not sent yet
	pending  int        // queries handed to the handler and not answered
	finRcvd  bool       // the client sent FIN
	finSent  bool       // we sent FIN
	gone     bool       // forgotten: late answers are dropped
	last     time.Time  // last segment from the client, or answer
}

// tcpSegment is the part of a TCP segment the responder looks at.
type tcpSegment struct {
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            byte
	wnd              uint16
	mss              int // the MSS option; 0 when absent
	data             []byte
}

// parseTCPSegment reads the TCP segment tcp (the whole IP payload), or returns ok
// false when its header is short or its data offset is wrong.
func parseTCPSegment(b []byte) (seg tcpSegment, ok bool) {
	tcp := header.TCP(b)
	if !tcp.IsValid() {
		return seg, false
	}
	seg = tcpSegment{
		srcPort: tcp.SrcPort(),
		dstPort: tcp.DstPort(),
		seq:     tcp.Seq(),
		ack:     tcp.Ack(),
		flags:   tcp.Flags(),
		wnd:     tcp.Window(),
		data:    tcp.Payload(),
	}
	if mss, ok := tcp.MSS(); ok {
		seg.mss = int(mss)
	}
	return seg, true
}

// seqLT reports whether sequence number a comes before b (modulo 2^32).
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

// tcpOut is one segment the switch sends to a client.
type tcpOut struct {
	seq, ack uint32
	flags    byte
	mss      int // MSS option to include (SYN-ACK only); 0 for none
	payload  []byte
	// answers is the ID of the frame the segment answers, when it is sent
	// outside that frame's decision (a late DNS answer); 0 otherwise.
	answers uint64
}

// dnsTCP handles the TCP segment tcp (in the IPv4 packet ip from port p)
// sent to the resolver address of nw; its segments to the client go behind
// the Ethernet header l2. It keeps l2, but neither ip nor tcp.
func (s *Switch) dnsTCP(p *port, nw *Network, l2 []byte, ip header.IPv4, tcp []byte, d *decision) {
	seg, ok := parseTCPSegment(tcp)
	if !ok {
		s.drop(d, dropToResolver)
		return
	}
	d.answer(ActionDNS, p)
	key := tcpConnKey{p.name, p.vni, netip.AddrPortFrom(ip.Source(), seg.srcPort)}
	if seg.flags&header.TCPFlagRST != 0 {
		s.tcpGotReset(key)
		return
	}
	if seg.dstPort != dnsPort || s.dns == nil {
		s.tcpReset(p, l2, nw.Resolver, key.client, seg, d)
		return
	}
	ourMSS := 1460 // Ethernet's, when the network has no MTU
	if nw.MTU > ipv4TCPHdrs {
		ourMSS = nw.MTU - ipv4TCPHdrs
	}

	t := &s.tcpConns
	t.mu.Lock()
	now := s.now()
	c := t.conns[key]
	if c != nil && now.Sub(c.last) > dnsTCPIdle {
		t.forget(c)
		s.stats.dnsTCPExpired.Add(1)
		c = nil
	}
	var queries [][]byte
	switch {
	case seg.flags&header.TCPFlagSYN != 0 && seg.flags&header.TCPFlagACK == 0:
		s.tcpSYN(t, c, p, key, l2, nw.Resolver, seg, ourMSS, now, d)
	case c == nil:
		t.mu.Unlock()
		s.tcpReset(p, l2, nw.Resolver, key.client, seg, d)
		return
	default:
		queries = s.tcpSegment(t, c, p, seg, now, d)
	}
	t.mu.Unlock()

	for _, q := range queries {
		s.tcpQuery(c, q, d)
	}
}

// tcpSYN answers a SYN for the connection key (c is its current state, or
// nil) with a SYN-ACK, or with a RST when the table is full. t.mu is held.
func (s *Switch) tcpSYN(t *dnsTCPTable, c *tcpConn, p *port, key tcpConnKey, l2 []byte, resolver netip.Addr, seg tcpSegment, ourMSS int, now time.Time, d *decision) {
	if c != nil && c.irs == seg.seq && c.rcvNxt == seg.seq+1 && c.sndNxt == c.sndUna+1 {
		// The same SYN again: our SYN-ACK got lost. Send it again.
		s.writeTCP(p, c, tcpOut{seq: c.sndUna, ack: c.rcvNxt, flags: header.TCPFlagSYN | header.TCPFlagACK, mss: ourMSS}, d)
		c.last = now
		return
	}
	if c != nil {
		t.forget(c) // a new connection with the same addresses
	}
	if t.conns == nil {
		t.conns = make(map[tcpConnKey]*tcpConn)
	}
	if t.perVNI[key.vni] >= dnsTCPMaxConns {
		t.expire(now, &s.stats)
	}
	if t.perVNI[key.vni] >= dnsTCPMaxConns {
		s.stats.dnsTCPRefused.Add(1)
		s.tcpReset(p, l2, resolver, key.client, seg, d)
		return
	}
	var isn [4]byte
	rand.Read(isn[:]) // never fails (crypto/rand documentation)
	iss := binary.BigEndian.Uint32(isn[:])
	peerMSS := seg.mss
	if peerMSS <= 0 {
		peerMSS = dnsTCPDefaultMSS
	}
	c = &tcpConn{
		key:      key,
		l2:       l2,
		resolver: resolver,
		irs:      seg.seq,
		sndUna:   iss,
		sndNxt:   iss + 1, // the SYN counts as one
		sndWnd:   uint32(seg.wnd),
		rcvNxt:   seg.seq + 1,
		mss:      max(min(peerMSS, ourMSS), dnsTCPMinMSS),
		last:     now,
	}
	t.conns[key] = c
	if t.perVNI == nil {
		t.perVNI = make(map[uint32]int)
	}
	t.perVNI[key.vni]++
	s.stats.dnsTCPConns.Add(1)
	s.writeTCP(p, c, tcpOut{seq: iss, ack: c.rcvNxt, flags: header.TCPFlagSYN | header.TCPFlagACK, mss: ourMSS}, d)
}

// tcpSegment handles a segment without SYN or RST of the known connection
// c: it takes the acknowledgment, then the data and FIN when they are the
// next in sequence, and acknowledges them. It returns the whole queries
// received, already counted in c.pending, for the caller to hand to the DNS
// handler once t.mu is released. t.mu is held.
func (s *Switch) tcpSegment(t *dnsTCPTable, c *tcpConn, p *port, seg tcpSegment, now time.Time, d *decision) [][]byte {
	if seg.flags&header.TCPFlagSYN != 0 || seg.flags&header.TCPFlagACK == 0 {
		// A SYN-ACK, or no ACK in a synchronized state (RFC 9293 section
		// 3.10.7.4, fifth check): dropped.
		s.tcpDupAck(c, p, d)
		return nil
	}
	if seqLT(c.sndNxt, seg.ack) {
		s.tcpDupAck(c, p, d) // acknowledges something we never sent
		return nil
	}
	if seqLT(c.sndUna, seg.ack) {
		c.sndUna = seg.ack
	}
	c.sndWnd = uint32(seg.wnd)
	c.last = now
	if c.finSent && c.sndUna == c.sndNxt {
		t.forget(c) // our FIN is acknowledged: done
		s.stats.dnsTCPClosed.Add(1)
		return nil
	}

	data, fin := seg.data, seg.flags&header.TCPFlagFIN != 0
	if len(data) == 0 && !fin {
		s.tcpPush(c, p, d, 0) // a pure ACK may open the window
		return nil
	}
	if c.finRcvd {
		s.tcpDupAck(c, p, d) // nothing comes after a FIN
		return nil
	}
	if seqLT(seg.seq, c.rcvNxt) { // starts with bytes we already have
		old := c.rcvNxt - seg.seq
		if old > uint32(len(data)) || (old == uint32(len(data)) && !fin) {
			s.tcpDupAck(c, p, d) // a retransmission of what we have
			return nil
		}
		data = data[old:]
	} else if seg.seq != c.rcvNxt {
		s.tcpDupAck(c, p, d) // out of order: wait for what we expect
		return nil
	}
	if c.full() && (len(data) > 0 || fin) {
		s.tcpDupAck(c, p, d) // the client must read first (zero window)
		return nil
	}

	// Take the data up to the end of the last query that still gets a
	// slot; the rest is not acknowledged, and the client sends it again.
	oldLen := len(c.in)
	c.in = append(c.in, data...)
	var queries [][]byte
	used := 0
	for len(c.in)-used >= 2 && c.pending+len(queries) < dnsTCPMaxPending {
		n := 2 + int(binary.BigEndian.Uint16(c.in[used:]))
		if len(c.in)-used < n {
			break
		}
		queries = append(queries, bytes.Clone(c.in[used+2:used+n]))
		used += n
	}
	taken := len(data)
	if c.pending+len(queries) >= dnsTCPMaxPending && used < len(c.in) {
		taken = used - oldLen // the slots are full: the tail waits
		fin = false
		c.in = c.in[:used]
	}
	c.in = bytes.Clone(c.in[used:]) // do not keep the consumed bytes' array
	c.rcvNxt += uint32(taken)
	if fin {
		c.rcvNxt++
		c.finRcvd = true
	}
	c.pending += len(queries)
	s.writeTCP(p, c, tcpOut{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagACK}, d)
	s.tcpMaybeFIN(c, p, d, 0)
	return queries
}

// full reports whether c takes no more data until the client reads its
// answers: too many queries wait for answers, or too many answer bytes
// wait for the client's window. t.mu is held.
func (c *tcpConn) full() bool {
	return c.pending >= dnsTCPMaxPending || len(c.out) >= dnsTCPOutHigh
}

// window is the receive window c advertises: 0 while it is full.
func (c *tcpConn) window() uint16 {
	if c.full() {
		return 0
	}
	return dnsTCPWindow
}

// tcpQuery hands the query q of connection c to the DNS handler, with a
// reply function that queues the answer on c and sends what the client's
// window allows. Segments sent while the handler runs are recorded in d
// (see answerSink).
func (s *Switch) tcpQuery(c *tcpConn, q []byte, d *decision) {
	s.stats.dnsQueries.Add(1)
	s.stats.dnsTCPQueries.Add(1)
	sink := newAnswerSink(d)
	defer sink.close()
	reply := sink.reply(func(answer []byte, d *decision) { s.tcpAnswer(c, answer, d, sink.id) })
	if h, ok := s.dns.(tcpDNSHandler); ok {
		h.ServeDNSTCP(c.key.vni, c.key.client, q, reply)
		return
	}
	s.dns.ServeDNS(c.key.vni, c.key.client, q, reply)
}

// tcpAnswer queues answer on c, unless c is gone, and sends it. An empty
// answer (the query got none) only counts as answered; an answer longer
// than 65535 bytes cannot be framed and is dropped as oversize. The
// segments answer the frame with ID query (see writeMade).
func (s *Switch) tcpAnswer(c *tcpConn, answer []byte, d *decision, query uint64) {
	t := &s.tcpConns
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.gone {
		return
	}
	c.pending--
	c.last = s.now()
	p := s.tcpPort(c)
	switch n := 2 + len(answer); {
	case len(answer) > 0xffff:
		s.stats.drop(dropOversize)
	case len(answer) > 0 && (len(c.out)+n > dnsTCPOutMax || t.outBytes+n > dnsTCPOutTotal):
		// The client does not read: reset it rather than hold more.
		s.stats.dnsTCPAborted.Add(1)
		if p != nil {
			s.writeTCP(p, c, tcpOut{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagRST | header.TCPFlagACK, answers: query}, d)
		}
		t.forget(c)
		return
	case len(answer) > 0:
		c.out = binary.BigEndian.AppendUint16(c.out, uint16(len(answer)))
		c.out = append(c.out, answer...)
		t.outBytes += n
	}
	if p == nil {
		s.stats.drop(dropNoPort)
		return
	}
	s.tcpPush(c, p, d, query)
	s.tcpMaybeFIN(c, p, d, query)
}

// tcpPush sends the queued answer bytes of c as ACK|PSH segments of at most
// c.mss bytes, as far as the client's window allows; they answer the frame
// with ID answers when d is nil (see writeMade). t.mu is held.
func (s *Switch) tcpPush(c *tcpConn, p *port, d *decision, answers uint64) {
	for len(c.out) > 0 {
		inFlight := c.sndNxt - c.sndUna
		if inFlight >= c.sndWnd {
			return // the rest goes when the client opens its window
		}
		n := min(len(c.out), c.mss, int(c.sndWnd-inFlight))
		payload := c.out[:n]
		c.out = c.out[n:] // before the write, so the window it advertises is current
		s.tcpConns.outBytes -= n
		s.writeTCP(p, c, tcpOut{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagACK | header.TCPFlagPSH, payload: payload, answers: answers}, d)
		c.sndNxt += uint32(n)
	}
	c.out = nil
}

// tcpMaybeFIN sends our FIN once the client has sent its FIN and every
// answer of c has been sent; answers as for tcpPush. t.mu is held.
func (s *Switch) tcpMaybeFIN(c *tcpConn, p *port, d *decision, answers uint64) {
	if !c.finRcvd || c.finSent || c.pending > 0 || len(c.out) > 0 {
		return
	}
	s.writeTCP(p, c, tcpOut{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagFIN | header.TCPFlagACK, answers: answers}, d)
	c.sndNxt++
	c.finSent = true
}

// tcpDupAck acknowledges again what c expects next, and counts it.
func (s *Switch) tcpDupAck(c *tcpConn, p *port, d *decision) {
	s.stats.dnsTCPDupAcks.Add(1)
	s.writeTCP(p, c, tcpOut{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagACK}, d)
}

// tcpGotReset forgets the connection key after a RST from the client.
func (s *Switch) tcpGotReset(key tcpConnKey) {
	t := &s.tcpConns
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.conns[key]; c != nil {
		t.forget(c)
		s.stats.dnsTCPClosed.Add(1)
	}
}

// tcpReset answers seg, a segment from client that is not a RST, with a RST
// (RFC 9293 section 3.10.7.1) from resolver, and counts it.
func (s *Switch) tcpReset(p *port, l2 []byte, resolver netip.Addr, client netip.AddrPort, seg tcpSegment, d *decision) {
	s.stats.dnsTCPResets.Add(1)
	c := &tcpConn{l2: l2, resolver: resolver, key: tcpConnKey{client: client}}
	out := tcpOut{seq: seg.ack, flags: header.TCPFlagRST}
	if seg.flags&header.TCPFlagACK == 0 {
		n := uint32(len(seg.data))
		if seg.flags&header.TCPFlagSYN != 0 {
			n++
		}
		if seg.flags&header.TCPFlagFIN != 0 {
			n++
		}
		out = tcpOut{seq: 0, ack: seg.seq + n, flags: header.TCPFlagRST | header.TCPFlagACK}
	}
	s.writeTCPFrom(p, c, seg.dstPort, out, d)
}

// forget removes c from the table; its late answers are dropped. t.mu is
// held.
func (t *dnsTCPTable) forget(c *tcpConn) {
	c.gone = true
	delete(t.conns, c.key)
	if t.perVNI[c.key.vni]--; t.perVNI[c.key.vni] <= 0 {
		delete(t.perVNI, c.key.vni)
	}
	t.outBytes -= len(c.out)
	c.out = nil
}

// expire forgets the connections idle for longer than dnsTCPIdle at now,
// counting them in st. t.mu is held.
func (t *dnsTCPTable) expire(now time.Time, st *counters) {
	for _, c := range t.conns {
		if now.Sub(c.last) > dnsTCPIdle {
			t.forget(c)
			st.dnsTCPExpired.Add(1)
		}
	}
}

// tcpPort returns the port of c if it still exists in c's network, or nil.
func (s *Switch) tcpPort(c *tcpConn) *port {
	q := s.ports.Load().byName[c.key.port]
	if q == nil || q.vni != c.key.vni {
		return nil
	}
	return q
}

// writeTCP writes the segment out of connection c from the resolver's port
// 53 into port p.
func (s *Switch) writeTCP(p *port, c *tcpConn, out tcpOut, d *decision) {
	s.writeTCPFrom(p, c, dnsPort, out, d)
}

// writeTCPFrom writes the segment out from c.resolver, TCP port srcPort,
// to c's client into port p: Ethernet header c.l2, an IPv4 header, a TCP
// header (with an MSS option when out.mss is set) and the payload, with
// both checksums.
func (s *Switch) writeTCPFrom(p *port, c *tcpConn, srcPort uint16, out tcpOut, d *decision) {
	hlen := header.TCPMinLen
	if out.mss > 0 {
		hlen += tcpOptMSSLen
	}
	total := header.IPv4MinLen + hlen + len(out.payload)
	off := len(c.l2)
	pkt := make([]byte, off+total)
	copy(pkt, c.l2)
	ip := header.IPv4(pkt[off:])
	ip.Encode(uint16(total), uint16(s.ipID.Add(1)), 0, defaultTTL, header.ProtoTCP, c.resolver, c.key.client.Addr())
	tcp := header.TCP(ip[header.IPv4MinLen:])
	tcp.SetSrcPort(srcPort)
	tcp.SetDstPort(c.key.client.Port())
	tcp.SetSeq(out.seq)
	tcp.SetAck(out.ack)
	tcp.SetHeaderLen(hlen)
	tcp.SetFlags(out.flags)
	if out.flags&header.TCPFlagRST == 0 {
		tcp.SetWindow(c.window())
	}
	if out.mss > 0 {
		opt := tcp[header.TCPMinLen:hlen]
		opt[0], opt[1] = header.TCPOptionMSS, tcpOptMSSLen
		binary.BigEndian.PutUint16(opt[2:4], uint16(out.mss))
	}
	copy(tcp[hlen:], out.payload)
	tcp.SetChecksum(tcp.ComputeChecksum(ip.PseudoSum(header.ProtoTCP, len(tcp))))
	s.writeMade(p, pkt, d, out.answers)
}

package dnsanswer

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
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
// memory: each network has its own table of at most MaxConns connections;
// a connection with MaxPending unanswered queries or OutHigh bytes of
// unsent answers takes no more data (it advertises a zero window and
// acknowledges nothing new, so the client's TCP holds the queries); an
// answer that would take a connection past OutMax, or all connections past
// OutTotal, resets that connection (Counters.Aborted). A peer MSS below
// MinMSS is raised to it, so a tiny MSS cannot turn one answer into
// thousands of frames.

const (
	// MaxConns bounds the connection table of one network; a SYN
	// beyond it gets a RST and counts in Counters.Refused.
	MaxConns = 256
	// MaxPending is how many queries of one connection may wait for
	// their answers; data that holds more is not acknowledged yet.
	MaxPending = 64
	// OutHigh is how many bytes of unsent answers make a connection
	// take no more data until the client reads.
	OutHigh = 64 << 10
	// OutMax is the most bytes of unsent answers one connection may
	// hold (the answers to queries it sent before reaching OutHigh);
	// an answer beyond it resets the connection.
	OutMax = 256 << 10
	// OutTotal is the most bytes of unsent answers all connections
	// of the switch may hold together.
	OutTotal = 16 << 20
	// Idle is how long a connection may stay without a segment from
	// the client or an answer before it is forgotten (RFC 7766 section
	// 6.2.3 leaves the idle timeout to the server).
	Idle = 30 * time.Second
	// DefaultMSS is the MSS of a peer whose SYN has no MSS option
	// (RFC 9293 section 3.7.1).
	DefaultMSS = 536
	// MinMSS is the least MSS the switch sends with, whatever the
	// client announces: an MSS of 1 would cut one answer into thousands of
	// segments, all made under the table's lock (issue 18). 216 is the
	// floor FreeBSD applies (net.inet.tcp.minmss); a 216-byte segment fits
	// the 576-byte datagram every IPv4 host must accept (RFC 791).
	MinMSS = 216
	// Window is the receive window the switch advertises (no window
	// scaling) while a connection takes data; a full connection advertises
	// a zero window instead (Conn.window). Received bytes are taken off
	// the buffer as soon as they form a whole query.
	Window = 65535
	// tcpOptMSSLen is the length of the MSS option in the SYN-ACK.
	tcpOptMSSLen = 4
)

// ConnKey identifies a TCP connection to the resolver: the port it came
// from (name and network) and the client's address and port.
type ConnKey struct {
	Port   string
	VNI    uint32
	Client netip.AddrPort
}

// Writer takes the frames the responder makes for one connection: the
// switch writes each into the connection's port. Write must not keep frame
// beyond what the switch's observers may (the responder never changes it
// afterwards).
type Writer interface {
	Write(frame []byte)
}

// Counters are the responder's counters, each updated atomically; the
// switch reports them in its Stats (DNSTCP*). The zero value is all zeros.
type Counters struct {
	Conns   atomic.Uint64 // connections accepted (SYN answered with a SYN-ACK)
	Queries atomic.Uint64 // queries received
	Resets  atomic.Uint64 // RSTs sent for segments of no known connection or to another port
	Refused atomic.Uint64 // SYNs answered with a RST because the table was full
	Aborted atomic.Uint64 // connections reset because their unsent answers passed a bound
	DupAcks atomic.Uint64 // segments answered with a duplicate ACK only
	Closed  atomic.Uint64 // connections forgotten after our FIN was acknowledged or a RST
	Expired atomic.Uint64 // connections forgotten after Idle without a segment or an answer
}

// Responder is the DNS-over-TCP responder of one switch: its connection
// table and counters.
//
// The zero value is not usable: set Now and NextID before the first
// Segment. All methods may be called from any goroutine at the same time.
// mu guards the maps, outBytes and every field of every connection in it;
// the responder calls Writers while holding mu, so a Writer must not call
// back into the Responder, and it never calls the DNS handler: the switch
// does that with the queries Segment returns.
type Responder struct {
	// Now is the clock of idle timeouts.
	Now func() time.Time
	// NextID returns the IPv4 identification of the next packet made.
	NextID func() uint16
	// Stats counts what the responder does.
	Stats Counters

	mu       sync.Mutex
	conns    map[ConnKey]*Conn
	perVNI   map[uint32]int // connections per network, each at most MaxConns
	outBytes int            // unsent answer bytes of all connections
}

// Conn is one connection to the resolver address. Sequence numbers follow
// RFC 9293 section 3.3.1: snd* are ours, rcv* the client's. Its fields are
// guarded by the Responder's mu.
type Conn struct {
	key      ConnKey
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

// Key returns the connection's key.
func (c *Conn) Key() ConnKey { return c.key }

// Query is one whole query received on a connection, for the switch to
// hand to the DNS handler; Msg has no length prefix and is the query's own
// copy.
type Query struct {
	Conn *Conn
	Msg  []byte
}

// segment is the part of a TCP segment the responder looks at.
type segment struct {
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            byte
	wnd              uint16
	mss              int // the MSS option; 0 when absent
	data             []byte
}

// parseSegment reads the TCP segment b (the whole IP payload), or returns
// ok false when its header is short or its data offset is wrong.
func parseSegment(b []byte) (seg segment, ok bool) {
	tcp := header.TCP(b)
	if !tcp.IsValid() {
		return seg, false
	}
	seg = segment{
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

// out is one segment the responder sends to a client.
type out struct {
	seq, ack uint32
	flags    byte
	mss      int // MSS option to include (SYN-ACK only); 0 for none
	payload  []byte
}

// Segment handles the TCP segment tcp, which client sent from the port and
// network of port and vni to the resolver address resolver (IPv4, or IPv6
// on a dual-stack network) of a network with the given MTU (0 for none).
// Its segments to the client go behind the Ethernet header l2 into w, in
// packets of resolver's family. serving is false when the switch has no
// DNS handler: every segment is then reset. It keeps l2, but not tcp. It
// returns ok false, doing nothing, when tcp is not a valid TCP segment,
// and else the whole queries received, for the caller to hand to the DNS
// handler (and then to Answer).
func (r *Responder) Segment(port string, vni uint32, l2 []byte, resolver netip.Addr, mtu int, client netip.Addr, tcp []byte, serving bool, w Writer) (queries []Query, ok bool) {
	seg, ok := parseSegment(tcp)
	if !ok {
		return nil, false
	}
	key := ConnKey{port, vni, netip.AddrPortFrom(client, seg.srcPort)}
	if seg.flags&header.TCPFlagRST != 0 {
		r.gotReset(key)
		return nil, true
	}
	if seg.dstPort != Port || !serving {
		r.reset(w, l2, resolver, key.Client, seg)
		return nil, true
	}
	ipLen := header.IPv4MinLen
	if resolver.Is6() {
		ipLen = header.IPv6Len
	}
	ourMSS := 1500 - ipLen - header.TCPMinLen // Ethernet's, when the network has no MTU
	if mtu > ipLen+header.TCPMinLen {
		ourMSS = mtu - ipLen - header.TCPMinLen
	}

	r.mu.Lock()
	now := r.Now()
	c := r.conns[key]
	if c != nil && now.Sub(c.last) > Idle {
		r.forget(c)
		r.Stats.Expired.Add(1)
		c = nil
	}
	var msgs [][]byte
	switch {
	case seg.flags&header.TCPFlagSYN != 0 && seg.flags&header.TCPFlagACK == 0:
		r.syn(c, w, key, l2, resolver, seg, ourMSS, now)
	case c == nil:
		r.mu.Unlock()
		r.reset(w, l2, resolver, key.Client, seg)
		return nil, true
	default:
		msgs = r.segment(c, w, seg, now)
	}
	r.mu.Unlock()

	for _, m := range msgs {
		queries = append(queries, Query{c, m})
	}
	r.Stats.Queries.Add(uint64(len(queries)))
	return queries, true
}

// syn answers a SYN for the connection key (c is its current state, or
// nil) with a SYN-ACK, or with a RST when the table is full. r.mu is held.
func (r *Responder) syn(c *Conn, w Writer, key ConnKey, l2 []byte, resolver netip.Addr, seg segment, ourMSS int, now time.Time) {
	if c != nil && c.irs == seg.seq && c.rcvNxt == seg.seq+1 && c.sndNxt == c.sndUna+1 {
		// The same SYN again: our SYN-ACK got lost. Send it again.
		r.write(w, c, Port, out{seq: c.sndUna, ack: c.rcvNxt, flags: header.TCPFlagSYN | header.TCPFlagACK, mss: ourMSS})
		c.last = now
		return
	}
	if c != nil {
		r.forget(c) // a new connection with the same addresses
	}
	if r.conns == nil {
		r.conns = make(map[ConnKey]*Conn)
	}
	if r.perVNI[key.VNI] >= MaxConns {
		r.expire(now)
	}
	if r.perVNI[key.VNI] >= MaxConns {
		r.Stats.Refused.Add(1)
		r.reset(w, l2, resolver, key.Client, seg)
		return
	}
	var isn [4]byte
	rand.Read(isn[:]) // never fails (crypto/rand documentation)
	iss := binary.BigEndian.Uint32(isn[:])
	peerMSS := seg.mss
	if peerMSS <= 0 {
		peerMSS = DefaultMSS
	}
	c = &Conn{
		key:      key,
		l2:       l2,
		resolver: resolver,
		irs:      seg.seq,
		sndUna:   iss,
		sndNxt:   iss + 1, // the SYN counts as one
		sndWnd:   uint32(seg.wnd),
		rcvNxt:   seg.seq + 1,
		mss:      max(min(peerMSS, ourMSS), MinMSS),
		last:     now,
	}
	r.conns[key] = c
	if r.perVNI == nil {
		r.perVNI = make(map[uint32]int)
	}
	r.perVNI[key.VNI]++
	r.Stats.Conns.Add(1)
	r.write(w, c, Port, out{seq: iss, ack: c.rcvNxt, flags: header.TCPFlagSYN | header.TCPFlagACK, mss: ourMSS})
}

// segment handles a segment without SYN or RST of the known connection c:
// it takes the acknowledgment, then the data and FIN when they are the
// next in sequence, and acknowledges them. It returns the whole queries
// received, already counted in c.pending, for the caller to hand to the
// DNS handler once r.mu is released. r.mu is held.
func (r *Responder) segment(c *Conn, w Writer, seg segment, now time.Time) [][]byte {
	if seg.flags&header.TCPFlagSYN != 0 || seg.flags&header.TCPFlagACK == 0 {
		// A SYN-ACK, or no ACK in a synchronized state (RFC 9293 section
		// 3.10.7.4, fifth check): dropped.
		r.dupAck(c, w)
		return nil
	}
	if seqLT(c.sndNxt, seg.ack) {
		r.dupAck(c, w) // acknowledges something we never sent
		return nil
	}
	if seqLT(c.sndUna, seg.ack) {
		c.sndUna = seg.ack
	}
	c.sndWnd = uint32(seg.wnd)
	c.last = now
	if c.finSent && c.sndUna == c.sndNxt {
		r.forget(c) // our FIN is acknowledged: done
		r.Stats.Closed.Add(1)
		return nil
	}

	data, fin := seg.data, seg.flags&header.TCPFlagFIN != 0
	if len(data) == 0 && !fin {
		r.push(c, w) // a pure ACK may open the window
		return nil
	}
	if c.finRcvd {
		r.dupAck(c, w) // nothing comes after a FIN
		return nil
	}
	if seqLT(seg.seq, c.rcvNxt) { // starts with bytes we already have
		old := c.rcvNxt - seg.seq
		if old > uint32(len(data)) || (old == uint32(len(data)) && !fin) {
			r.dupAck(c, w) // a retransmission of what we have
			return nil
		}
		data = data[old:]
	} else if seg.seq != c.rcvNxt {
		r.dupAck(c, w) // out of order: wait for what we expect
		return nil
	}
	if c.full() && (len(data) > 0 || fin) {
		r.dupAck(c, w) // the client must read first (zero window)
		return nil
	}

	// Take the data up to the end of the last query that still gets a
	// slot; the rest is not acknowledged, and the client sends it again.
	oldLen := len(c.in)
	c.in = append(c.in, data...)
	var queries [][]byte
	used := 0
	for len(c.in)-used >= 2 && c.pending+len(queries) < MaxPending {
		n := 2 + int(binary.BigEndian.Uint16(c.in[used:]))
		if len(c.in)-used < n {
			break
		}
		queries = append(queries, bytes.Clone(c.in[used+2:used+n]))
		used += n
	}
	taken := len(data)
	if c.pending+len(queries) >= MaxPending && used < len(c.in) {
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
	r.write(w, c, Port, out{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagACK})
	r.maybeFIN(c, w)
	return queries
}

// full reports whether c takes no more data until the client reads its
// answers: too many queries wait for answers, or too many answer bytes
// wait for the client's window. r.mu is held.
func (c *Conn) full() bool {
	return c.pending >= MaxPending || len(c.out) >= OutHigh
}

// window is the receive window c advertises: 0 while it is full.
func (c *Conn) window() uint16 {
	if c.full() {
		return 0
	}
	return Window
}

// Result says what Answer did with an answer.
type Result int

// Results of Answer.
const (
	Queued  Result = iota // queued and sent as far as the window allows (or an empty answer counted)
	Gone                  // the connection was forgotten: the answer is dropped
	TooLong               // longer than 65535 bytes: cannot be framed, dropped
	Aborted               // the connection was reset: it holds too many unsent bytes
)

// Answer queues the answer to one query of c and sends it into w (nil when
// the connection's port no longer exists: the answer is queued but not
// sent). An empty answer (the query got none) only counts as answered. The
// caller counts TooLong answers, and those it could not send for lack of a
// port, as drops.
func (r *Responder) Answer(c *Conn, answer []byte, w Writer) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.gone {
		return Gone
	}
	c.pending--
	c.last = r.Now()
	res := Queued
	switch n := 2 + len(answer); {
	case len(answer) > 0xffff:
		res = TooLong
	case len(answer) > 0 && (len(c.out)+n > OutMax || r.outBytes+n > OutTotal):
		// The client does not read: reset it rather than hold more.
		r.Stats.Aborted.Add(1)
		if w != nil {
			r.write(w, c, Port, out{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagRST | header.TCPFlagACK})
		}
		r.forget(c)
		return Aborted
	case len(answer) > 0:
		c.out = binary.BigEndian.AppendUint16(c.out, uint16(len(answer)))
		c.out = append(c.out, answer...)
		r.outBytes += n
	}
	if w == nil {
		return res
	}
	r.push(c, w)
	r.maybeFIN(c, w)
	return res
}

// push sends the queued answer bytes of c as ACK|PSH segments of at most
// c.mss bytes, as far as the client's window allows. r.mu is held.
func (r *Responder) push(c *Conn, w Writer) {
	for len(c.out) > 0 {
		inFlight := c.sndNxt - c.sndUna
		if inFlight >= c.sndWnd {
			return // the rest goes when the client opens its window
		}
		n := min(len(c.out), c.mss, int(c.sndWnd-inFlight))
		payload := c.out[:n]
		c.out = c.out[n:] // before the write, so the window it advertises is current
		r.outBytes -= n
		r.write(w, c, Port, out{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagACK | header.TCPFlagPSH, payload: payload})
		c.sndNxt += uint32(n)
	}
	c.out = nil
}

// maybeFIN sends our FIN once the client has sent its FIN and every answer
// of c has been sent. r.mu is held.
func (r *Responder) maybeFIN(c *Conn, w Writer) {
	if !c.finRcvd || c.finSent || c.pending > 0 || len(c.out) > 0 {
		return
	}
	r.write(w, c, Port, out{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagFIN | header.TCPFlagACK})
	c.sndNxt++
	c.finSent = true
}

// dupAck acknowledges again what c expects next, and counts it.
func (r *Responder) dupAck(c *Conn, w Writer) {
	r.Stats.DupAcks.Add(1)
	r.write(w, c, Port, out{seq: c.sndNxt, ack: c.rcvNxt, flags: header.TCPFlagACK})
}

// gotReset forgets the connection key after a RST from the client.
func (r *Responder) gotReset(key ConnKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.conns[key]; c != nil {
		r.forget(c)
		r.Stats.Closed.Add(1)
	}
}

// reset answers seg, a segment from client that is not a RST, with a RST
// (RFC 9293 section 3.10.7.1) from resolver, and counts it.
func (r *Responder) reset(w Writer, l2 []byte, resolver netip.Addr, client netip.AddrPort, seg segment) {
	r.Stats.Resets.Add(1)
	c := &Conn{l2: l2, resolver: resolver, key: ConnKey{Client: client}}
	o := out{seq: seg.ack, flags: header.TCPFlagRST}
	if seg.flags&header.TCPFlagACK == 0 {
		n := uint32(len(seg.data))
		if seg.flags&header.TCPFlagSYN != 0 {
			n++
		}
		if seg.flags&header.TCPFlagFIN != 0 {
			n++
		}
		o = out{seq: 0, ack: seg.seq + n, flags: header.TCPFlagRST | header.TCPFlagACK}
	}
	r.write(w, c, seg.dstPort, o)
}

// forget removes c from the table; its late answers are dropped. r.mu is
// held.
func (r *Responder) forget(c *Conn) {
	c.gone = true
	delete(r.conns, c.key)
	if r.perVNI[c.key.VNI]--; r.perVNI[c.key.VNI] <= 0 {
		delete(r.perVNI, c.key.VNI)
	}
	r.outBytes -= len(c.out)
	c.out = nil
}

// expire forgets the connections idle for longer than Idle at now. r.mu is
// held.
func (r *Responder) expire(now time.Time) {
	for _, c := range r.conns {
		if now.Sub(c.last) > Idle {
			r.forget(c)
			r.Stats.Expired.Add(1)
		}
	}
}

// write writes the segment o out of c from c.resolver, TCP port srcPort,
// to c's client into w: Ethernet header c.l2, an IPv4 header (an IPv6 one
// when c.resolver is IPv6), a TCP header (with an MSS option when o.mss is
// set) and the payload, with the checksums.
func (r *Responder) write(w Writer, c *Conn, srcPort uint16, o out) {
	hlen := header.TCPMinLen
	if o.mss > 0 {
		hlen += tcpOptMSSLen
	}
	ipLen := header.IPv4MinLen
	if c.resolver.Is6() {
		ipLen = header.IPv6Len
	}
	total := ipLen + hlen + len(o.payload)
	off := len(c.l2)
	pkt := make([]byte, off+total)
	copy(pkt, c.l2)
	var pseudo uint16
	if ipLen == header.IPv6Len {
		ip := header.IPv6(pkt[off:])
		ip.Encode(uint16(hlen+len(o.payload)), header.ProtoTCP, TTL, c.resolver, c.key.Client.Addr())
		pseudo = ip.PseudoSum(header.ProtoTCP, hlen+len(o.payload))
	} else {
		ip := header.IPv4(pkt[off:])
		ip.Encode(uint16(total), r.NextID(), 0, TTL, header.ProtoTCP, c.resolver, c.key.Client.Addr())
		pseudo = ip.PseudoSum(header.ProtoTCP, hlen+len(o.payload))
	}
	tcp := header.TCP(pkt[off+ipLen:])
	tcp.SetSrcPort(srcPort)
	tcp.SetDstPort(c.key.Client.Port())
	tcp.SetSeq(o.seq)
	tcp.SetAck(o.ack)
	tcp.SetHeaderLen(hlen)
	tcp.SetFlags(o.flags)
	if o.flags&header.TCPFlagRST == 0 {
		tcp.SetWindow(c.window())
	}
	if o.mss > 0 {
		opt := tcp[header.TCPMinLen:hlen]
		opt[0], opt[1] = header.TCPOptionMSS, tcpOptMSSLen
		binary.BigEndian.PutUint16(opt[2:4], uint16(o.mss))
	}
	copy(tcp[hlen:], o.payload)
	tcp.SetChecksum(tcp.ComputeChecksum(pseudo))
	w.Write(pkt)
}

// Usage is what the responder holds, for tests and checks.
type Usage struct {
	Conns    int // connections in the table
	OutBytes int // unsent answer bytes, as the table counts them
	SumOut   int // unsent answer bytes, summed over the connections
	MaxOut   int // the most unsent answer bytes of one connection
}

// Usage returns what the responder holds now.
func (r *Responder) Usage() Usage {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := Usage{Conns: len(r.conns), OutBytes: r.outBytes}
	for _, c := range r.conns {
		u.SumOut += len(c.out)
		u.MaxOut = max(u.MaxOut, len(c.out))
	}
	return u
}

// ConnState is the state of one connection, for tests.
type ConnState struct {
	SndUna uint32 // oldest of our bytes not acknowledged
	RcvNxt uint32 // next sequence number we expect
	Held   int    // bytes held: unsent answers and partial queries
}

// State returns the state of the only connection in the table, or ok false
// when there is not exactly one.
func (r *Responder) State() (st ConnState, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.conns) != 1 {
		return st, false
	}
	for _, c := range r.conns {
		st = ConnState{SndUna: c.sndUna, RcvNxt: c.rcvNxt, Held: len(c.out) + len(c.in)}
	}
	return st, true
}

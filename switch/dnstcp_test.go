package vswitch

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"vxswitch/header"
	"vxswitch/switch/dnsanswer"
	"vxswitch/tap/taptest"
	"vxswitch/vxlan"
)

// tcpClient plays the endpoint of port a talking TCP to the resolver from
// ipA:40000, and reads back what the switch writes into port a.
type tcpClient struct {
	w    *world
	seen int    // frames of port a already returned by frames
	seq  uint32 // next sequence number the client sends
	iss  uint32 // the switch's initial sequence number, from the SYN-ACK
}

const clientISN = 1000

// seg is one segment the switch wrote, decoded and checked.
type seg struct {
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            byte
	wnd              uint16
	mss              uint16 // 0 when there is no MSS option
	data             []byte
}

// send writes a segment from the client to the resolver's port dstPort.
func (c *tcpClient) send(t *testing.T, dstPort uint16, flags byte, seq, ack uint32, wnd uint16, mss uint16, data []byte) {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: layers.TCPPort(dstPort), Seq: seq, Ack: ack, Window: wnd,
		FIN: flags&header.TCPFlagFIN != 0, SYN: flags&header.TCPFlagSYN != 0, RST: flags&header.TCPFlagRST != 0,
		PSH: flags&header.TCPFlagPSH != 0, ACK: flags&header.TCPFlagACK != 0}
	if mss != 0 {
		tcp.Options = []layers.TCPOption{mssOpt(mss)}
	}
	c.w.fromPort(t, "a", ipv4Frame(t, resolverMAC, macA, ipA, resolverIP, true, tcp, layers.IPProtocolTCP, data))
}

// frames returns the segments written into port a since the last call,
// failing on anything that is not a well-formed TCP segment from the
// resolver to the client with valid checksums.
func (c *tcpClient) frames(t *testing.T) []seg {
	t.Helper()
	all := c.w.a.Written()
	var out []seg
	for _, f := range all[c.seen:] {
		out = append(out, checkSeg(t, f))
	}
	c.seen = len(all)
	return out
}

// checkSeg decodes the TCP segment in f and checks its headers and
// checksums against the reference sum (and gopacket's serialization).
func checkSeg(t *testing.T, f []byte) seg {
	t.Helper()
	if MAC(f[0:6]) != macA || MAC(f[6:12]) != resolverMAC || binary.BigEndian.Uint16(f[12:14]) != header.EtherTypeIPv4 {
		t.Fatalf("Ethernet header % x", f[:14])
	}
	ip := f[14:]
	if !ipv4HeaderOK(ip) || header.IPv4(ip).Source() != resolverIP || header.IPv4(ip).Destination() != ipA || ip[9] != header.ProtoTCP {
		t.Fatalf("bad IPv4 header % x", ip[:20])
	}
	if !tcpChecksumOK(ip) {
		t.Fatalf("bad TCP checksum in % x", ip)
	}
	checkByOracle(t, f)
	tcp := decode(t, f).Layer(layers.LayerTypeTCP).(*layers.TCP)
	s := seg{srcPort: uint16(tcp.SrcPort), dstPort: uint16(tcp.DstPort), seq: tcp.Seq, ack: tcp.Ack,
		flags: ip[20+13], wnd: tcp.Window, data: tcp.Payload}
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindMSS {
			s.mss = binary.BigEndian.Uint16(o.OptionData)
		}
	}
	if s.dstPort != 40000 {
		t.Fatalf("segment to port %d, want 40000", s.dstPort)
	}
	return s
}

// tcpChecksumOK verifies the TCP checksum of the IPv4 packet ip with the
// reference sum and the pseudo-header (RFC 9293 section 3.1).
func tcpChecksumOK(ip []byte) bool {
	ihl := int(ip[0]&0x0f) * 4
	tcp := ip[ihl:binary.BigEndian.Uint16(ip[2:4])]
	pseudo := append(append([]byte(nil), ip[12:20]...), 0, header.ProtoTCP, byte(len(tcp)>>8), byte(len(tcp)))
	return refSum(tcp, refSum(pseudo, 0)) == 0xffff
}

// connect does the handshake with the MSS option mss (0: none) and window
// wnd, and checks the SYN-ACK.
func connect(t *testing.T, w *world, mss, wnd uint16) *tcpClient {
	t.Helper()
	c := &tcpClient{w: w, seq: clientISN}
	c.send(t, 53, header.TCPFlagSYN, c.seq, 0, wnd, mss, nil)
	c.seq++
	got := c.frames(t)
	if len(got) != 1 {
		t.Fatalf("SYN answered with %d segments, want 1", len(got))
	}
	sa := got[0]
	if sa.flags != header.TCPFlagSYN|header.TCPFlagACK || sa.ack != clientISN+1 || sa.srcPort != 53 || len(sa.data) != 0 || sa.wnd == 0 {
		t.Fatalf("SYN-ACK: flags %#x ack %d port %d data %d window %d", sa.flags, sa.ack, sa.srcPort, len(sa.data), sa.wnd)
	}
	c.iss = sa.seq
	c.send(t, 53, header.TCPFlagACK, c.seq, c.iss+1, wnd, 0, nil)
	if got := c.frames(t); len(got) != 0 {
		t.Fatalf("the handshake's ACK was answered with %d segments", len(got))
	}
	return c
}

// data sends b in order and advances the client's sequence number.
func (c *tcpClient) data(t *testing.T, flags byte, ackNo uint32, b []byte) {
	t.Helper()
	c.send(t, 53, header.TCPFlagACK|flags, c.seq, ackNo, 65535, 0, b)
	c.seq += uint32(len(b))
	if flags&header.TCPFlagFIN != 0 {
		c.seq++
	}
}

// framed returns msg with its 2-byte length prefix (RFC 1035 section 4.2.2).
func framed(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
		b = append(b, m...)
	}
	return b
}

// payload joins the data of segs, checking that they follow each other
// from seq on with ACK|PSH set.
func payload(t *testing.T, segs []seg, seq uint32, maxLen int) []byte {
	t.Helper()
	var b []byte
	for _, s := range segs {
		if s.flags != header.TCPFlagACK|header.TCPFlagPSH || s.seq != seq || len(s.data) == 0 || len(s.data) > maxLen {
			t.Fatalf("data segment flags %#x seq %d (want %d) length %d (max %d)", s.flags, s.seq, seq, len(s.data), maxLen)
		}
		seq += uint32(len(s.data))
		b = append(b, s.data...)
	}
	return b
}

func TestDNSTCPHandshake(t *testing.T) {
	tests := []struct {
		name    string
		mtu     int
		peerMSS uint16
		wantMSS uint16 // our MSS option
	}{
		{"MSS option", 1450, 1460, 1410},
		{"no MSS option", 1450, 0, 1410},
		{"small MTU", 576, 1460, 536},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newNamesWorld(t, Config{DNS: &fakeDNS{}}, tt.mtu)
			c := &tcpClient{w: w}
			c.send(t, 53, header.TCPFlagSYN, clientISN, 0, 64240, tt.peerMSS, nil)
			sa := c.frames(t)
			if len(sa) != 1 || sa[0].mss != tt.wantMSS || sa[0].flags != header.TCPFlagSYN|header.TCPFlagACK || sa[0].ack != clientISN+1 || sa[0].srcPort != 53 {
				t.Fatalf("SYN-ACK %+v, want flags SYN|ACK, ack %d, MSS %d", sa, clientISN+1, tt.wantMSS)
			}
			c.send(t, 53, header.TCPFlagSYN, clientISN, 0, 64240, tt.peerMSS, nil) // our SYN-ACK was "lost"
			again := c.frames(t)
			if len(again) != 1 || again[0].seq != sa[0].seq || again[0].flags != header.TCPFlagSYN|header.TCPFlagACK {
				t.Errorf("repeated SYN answered with %+v, want the same SYN-ACK (seq %d)", again, sa[0].seq)
			}
			mustNothingSent(t, w)
			if st := w.s.Stats(); st.DNSTCPConns != 1 || st.Drops["to_resolver"] != 0 {
				t.Errorf("DNSTCPConns %d drops %v, want 1 connection and no drop", st.DNSTCPConns, st.Drops)
			}
		})
	}
}

func TestDNSTCPISNsDiffer(t *testing.T) {
	isns := map[uint32]bool{}
	for range 4 {
		w := newNamesWorld(t, Config{DNS: &fakeDNS{}}, 1450)
		isns[connect(t, w, 1460, 65535).iss] = true
	}
	if len(isns) < 2 {
		t.Errorf("4 connections got the ISNs %v, want them random", isns)
	}
}

func TestDNSTCPQuerySplit(t *testing.T) {
	h := &fakeDNS{answer: testAnswer}
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	c := connect(t, w, 1460, 65535)
	msg := framed(testQuery)

	c.data(t, header.TCPFlagPSH, c.iss+1, msg[:5])
	if got := c.frames(t); len(got) != 1 || got[0].flags != header.TCPFlagACK || got[0].ack != c.seq || got[0].seq != c.iss+1 {
		t.Fatalf("first part answered with %+v, want one ACK of %d", got, c.seq)
	}
	if len(h.calls) != 0 {
		t.Fatal("half a query went to the handler")
	}
	c.data(t, header.TCPFlagPSH, c.iss+1, msg[5:])
	got := c.frames(t)
	if len(got) != 2 || got[0].flags != header.TCPFlagACK || got[0].ack != c.seq {
		t.Fatalf("second part answered with %+v, want an ACK of %d and the answer", got, c.seq)
	}
	if b := payload(t, got[1:], c.iss+1, 1410); !bytes.Equal(b, framed(testAnswer)) {
		t.Errorf("answer % x, want % x", b, framed(testAnswer))
	}
	if len(h.calls) != 1 || !bytes.Equal(h.calls[0].query, testQuery) || h.calls[0].vni != 100 || h.calls[0].src != netip.AddrPortFrom(ipA, 40000) {
		t.Fatalf("handler calls %+v, want one with the query from %v:40000", h.calls, ipA)
	}
	if st := w.s.Stats(); st.DNSTCPQueries != 1 || st.DNSQueries != 1 {
		t.Errorf("DNSTCPQueries %d DNSQueries %d, want 1 and 1", st.DNSTCPQueries, st.DNSQueries)
	}
}

func TestDNSTCPPipelined(t *testing.T) {
	h := &fakeDNS{answer: testAnswer}
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	c := connect(t, w, 1460, 65535)
	c.data(t, header.TCPFlagPSH, c.iss+1, framed(testQuery, lateAnswer)) // two messages, one segment
	got := c.frames(t)
	if len(got) != 3 || got[0].flags != header.TCPFlagACK || got[0].ack != c.seq {
		t.Fatalf("got %+v, want an ACK and two answers", got)
	}
	if b := payload(t, got[1:], c.iss+1, 1410); !bytes.Equal(b, framed(testAnswer, testAnswer)) {
		t.Errorf("answers % x, want two framed answers", b)
	}
	if len(h.calls) != 2 || !bytes.Equal(h.calls[0].query, testQuery) || !bytes.Equal(h.calls[1].query, lateAnswer) {
		t.Errorf("handler got %d queries, want the two in order", len(h.calls))
	}
}

func TestDNSTCPLargeAnswer(t *testing.T) {
	answer := fill(3000, 7)
	w := newNamesWorld(t, Config{DNS: &fakeDNS{answer: answer}}, 1450)
	c := connect(t, w, 1000, 1500) // MSS 1000, a window of 1500 bytes
	c.send(t, 53, header.TCPFlagACK|header.TCPFlagPSH, c.seq, c.iss+1, 1500, 0, framed(testQuery))
	c.seq += uint32(len(framed(testQuery)))
	got := c.frames(t)
	if len(got) < 2 {
		t.Fatalf("got %d segments, want an ACK and data", len(got))
	}
	first := payload(t, got[1:], c.iss+1, 1000)
	if len(first) != 1500 {
		t.Fatalf("sent %d bytes into a window of 1500", len(first))
	}
	c.send(t, 53, header.TCPFlagACK, c.seq, c.iss+1+1500, 65535, 0, nil) // all acknowledged, window open
	rest := payload(t, c.frames(t), c.iss+1+1500, 1000)
	if b := append(first, rest...); !bytes.Equal(b, framed(answer)) {
		t.Errorf("segments hold %d bytes that are not the framed answer (%d bytes)", len(b), len(framed(answer)))
	}
}

func TestDNSTCPClose(t *testing.T) {
	h := &fakeDNS{} // answers later, through h.calls[i].reply
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	c := connect(t, w, 1460, 65535)
	c.data(t, header.TCPFlagPSH|header.TCPFlagFIN, c.iss+1, framed(testQuery)) // query and FIN
	got := c.frames(t)
	if len(got) != 1 || got[0].flags != header.TCPFlagACK || got[0].ack != c.seq {
		t.Fatalf("query+FIN answered with %+v, want only an ACK of %d: our FIN waits for the answer", got, c.seq)
	}

	done := make(chan struct{})
	go func() { h.calls[0].reply(testAnswer); close(done) }() // from another goroutine
	<-done
	got = c.frames(t)
	if len(got) != 2 {
		t.Fatalf("after the answer: %+v, want the answer and our FIN", got)
	}
	if b := payload(t, got[:1], c.iss+1, 1410); !bytes.Equal(b, framed(testAnswer)) {
		t.Errorf("answer % x", b)
	}
	fin := got[1]
	if fin.flags != header.TCPFlagFIN|header.TCPFlagACK || fin.seq != c.iss+1+uint32(len(framed(testAnswer))) || fin.ack != c.seq {
		t.Fatalf("FIN %+v", fin)
	}
	c.send(t, 53, header.TCPFlagACK, c.seq, fin.seq+1, 65535, 0, nil) // acknowledges our FIN
	if got := c.frames(t); len(got) != 0 {
		t.Fatalf("the last ACK was answered with %+v", got)
	}
	if st := w.s.Stats(); st.DNSTCPClosed != 1 {
		t.Errorf("DNSTCPClosed = %d, want 1", st.DNSTCPClosed)
	}
	c.send(t, 53, header.TCPFlagACK, c.seq, fin.seq+1, 65535, 0, nil) // the connection is gone
	if got := c.frames(t); len(got) != 1 || got[0].flags != header.TCPFlagRST {
		t.Errorf("segment of a closed connection answered with %+v, want a RST", got)
	}
}

func TestDNSTCPFINWithoutQueries(t *testing.T) {
	w := newNamesWorld(t, Config{DNS: &fakeDNS{}}, 1450)
	c := connect(t, w, 1460, 65535)
	c.data(t, header.TCPFlagFIN, c.iss+1, nil)
	got := c.frames(t)
	if len(got) != 2 || got[0].flags != header.TCPFlagACK || got[0].ack != c.seq || got[1].flags != header.TCPFlagFIN|header.TCPFlagACK || got[1].seq != c.iss+1 {
		t.Fatalf("FIN answered with %+v, want an ACK and our FIN", got)
	}
}

func TestDNSTCPDuplicateAck(t *testing.T) {
	h := &fakeDNS{answer: testAnswer}
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	c := connect(t, w, 1460, 65535)
	msg := framed(testQuery)
	tests := []struct {
		name string
		seq  uint32
		data []byte
	}{
		{"out of order", c.seq + 5, msg[5:]},
		{"retransmitted", c.seq - 20, fill(20, 1)},
	}
	for _, tt := range tests {
		c.send(t, 53, header.TCPFlagACK|header.TCPFlagPSH, tt.seq, c.iss+1, 65535, 0, tt.data)
		got := c.frames(t)
		if len(got) != 1 || got[0].flags != header.TCPFlagACK || got[0].ack != c.seq || len(got[0].data) != 0 {
			t.Errorf("%s: answered with %+v, want a duplicate ACK of %d", tt.name, got, c.seq)
		}
	}
	if len(h.calls) != 0 {
		t.Errorf("handler called %d times", len(h.calls))
	}
	if st := w.s.Stats(); st.DNSTCPDupAcks != 2 {
		t.Errorf("DNSTCPDupAcks = %d, want 2", st.DNSTCPDupAcks)
	}
	// A retransmission that overlaps what we have and brings new bytes:
	// the new part is taken.
	c.send(t, 53, header.TCPFlagACK|header.TCPFlagPSH, c.seq, c.iss+1, 65535, 0, msg[:4])
	c.send(t, 53, header.TCPFlagACK|header.TCPFlagPSH, c.seq, c.iss+1, 65535, 0, msg)
	c.seq += uint32(len(msg))
	c.frames(t)
	if len(h.calls) != 1 || !bytes.Equal(h.calls[0].query, testQuery) {
		t.Errorf("after an overlapping retransmission the handler got %d calls", len(h.calls))
	}
}

func TestDNSTCPReset(t *testing.T) {
	tests := []struct {
		name      string
		port      uint16
		flags     byte
		data      []byte
		dns       DNSHandler
		wantFlags byte
		wantSeq   uint32
		wantAck   uint32
	}{
		{"SYN to port 54", 54, header.TCPFlagSYN, nil, &fakeDNS{}, header.TCPFlagRST | header.TCPFlagACK, 0, 5001},
		{"ACK of an unknown connection", 53, header.TCPFlagACK, nil, &fakeDNS{}, header.TCPFlagRST, 777, 0},
		{"data without ACK, unknown", 53, header.TCPFlagPSH, []byte("abc"), &fakeDNS{}, header.TCPFlagRST | header.TCPFlagACK, 0, 5003},
		{"FIN-ACK of an unknown connection", 53, header.TCPFlagFIN | header.TCPFlagACK, nil, &fakeDNS{}, header.TCPFlagRST, 777, 0},
		{"SYN without a DNS handler", 53, header.TCPFlagSYN, nil, nil, header.TCPFlagRST | header.TCPFlagACK, 0, 5001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newNamesWorld(t, Config{DNS: tt.dns}, 1450)
			c := &tcpClient{w: w}
			c.send(t, tt.port, tt.flags, 5000, 777, 65535, 0, tt.data)
			got := c.frames(t)
			if len(got) != 1 || got[0].flags != tt.wantFlags || got[0].seq != tt.wantSeq || got[0].ack != tt.wantAck || got[0].srcPort != tt.port {
				t.Fatalf("answered with %+v, want flags %#x seq %d ack %d from port %d", got, tt.wantFlags, tt.wantSeq, tt.wantAck, tt.port)
			}
			mustNothingSent(t, w)
			if st := w.s.Stats(); st.DNSTCPResets != 1 || st.DNSTCPConns != 0 {
				t.Errorf("DNSTCPResets %d DNSTCPConns %d, want 1 and 0", st.DNSTCPResets, st.DNSTCPConns)
			}
		})
	}
	t.Run("RST from the client", func(t *testing.T) {
		w := newNamesWorld(t, Config{DNS: &fakeDNS{}}, 1450)
		c := connect(t, w, 1460, 65535)
		c.send(t, 53, header.TCPFlagRST, c.seq, 0, 0, 0, nil)
		c.send(t, 53, header.TCPFlagRST, c.seq, 0, 0, 0, nil) // unknown now: never answered
		if got := c.frames(t); len(got) != 0 {
			t.Fatalf("RST answered with %+v", got)
		}
		c.send(t, 53, header.TCPFlagACK, c.seq, c.iss+1, 65535, 0, nil)
		if got := c.frames(t); len(got) != 1 || got[0].flags != header.TCPFlagRST {
			t.Errorf("after the client's RST: %+v, want a RST", got)
		}
		if st := w.s.Stats(); st.DNSTCPClosed != 1 {
			t.Errorf("DNSTCPClosed = %d, want 1", st.DNSTCPClosed)
		}
	})
}

func TestDNSTCPTableBound(t *testing.T) {
	w := newNamesWorld(t, Config{DNS: &fakeDNS{}}, 1450)
	syn := func(port uint16) seg {
		t.Helper()
		tcp := &layers.TCP{SrcPort: layers.TCPPort(port), DstPort: 53, Seq: 1, SYN: true, Window: 65535}
		w.fromPort(t, "a", ipv4Frame(t, resolverMAC, macA, ipA, resolverIP, true, tcp, layers.IPProtocolTCP, nil))
		all := w.a.Written()
		f := all[len(all)-1]
		ip := f[14:]
		if !tcpChecksumOK(ip) {
			t.Fatal("bad TCP checksum")
		}
		return seg{flags: ip[20+13]}
	}
	for i := range dnsanswer.MaxConns {
		if s := syn(uint16(10000 + i)); s.flags != header.TCPFlagSYN|header.TCPFlagACK {
			t.Fatalf("connection %d refused", i)
		}
	}
	if s := syn(20000); s.flags != header.TCPFlagRST|header.TCPFlagACK {
		t.Fatalf("connection %d answered with flags %#x, want RST|ACK", dnsanswer.MaxConns+1, s.flags)
	}
	if st := w.s.Stats(); st.DNSTCPRefused != 1 || st.DNSTCPConns != dnsanswer.MaxConns {
		t.Errorf("DNSTCPRefused %d DNSTCPConns %d", st.DNSTCPRefused, st.DNSTCPConns)
	}
	w.clock.Advance(dnsanswer.Idle + time.Second) // every connection is idle now
	if s := syn(20000); s.flags != header.TCPFlagSYN|header.TCPFlagACK {
		t.Fatalf("after the idle time: flags %#x, want SYN|ACK", s.flags)
	}
	if st := w.s.Stats(); st.DNSTCPExpired != dnsanswer.MaxConns {
		t.Errorf("DNSTCPExpired = %d, want %d", st.DNSTCPExpired, dnsanswer.MaxConns)
	}
}

// tcpFakeDNS is fakeDNS that also answers over TCP, recording which method
// got the query.
type tcpFakeDNS struct {
	fakeDNS
	mu  sync.Mutex
	tcp int
}

func (d *tcpFakeDNS) ServeDNSTCP(vni uint32, src netip.AddrPort, query []byte, reply func([]byte)) {
	d.mu.Lock()
	d.tcp++
	d.mu.Unlock()
	reply(lateAnswer)
}

func TestDNSTCPHandlerChoice(t *testing.T) {
	h := &tcpFakeDNS{fakeDNS: fakeDNS{answer: testAnswer}}
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	c := connect(t, w, 1460, 65535)
	c.data(t, header.TCPFlagPSH, c.iss+1, framed(testQuery))
	got := c.frames(t)
	if b := payload(t, got[1:], c.iss+1, 1410); !bytes.Equal(b, framed(lateAnswer)) || h.tcp != 1 || len(h.calls) != 0 {
		t.Errorf("answer % x, ServeDNSTCP %d calls, ServeDNS %d; want ServeDNSTCP's answer", b, h.tcp, len(h.calls))
	}
}

// FuzzDNSTCP feeds an arbitrary TCP segment (header and data) from an
// endpoint to the resolver, after a handshake on a network with a small
// MTU: it must never panic, every frame the switch writes back must fit
// the MTU, and every TCP segment among them must have a valid checksum
// (the others are ICMP answers to oversize frames, mtu.go).
func FuzzDNSTCP(f *testing.F) {
	hdr := func(flags byte, seq, ack uint32) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:2], 40000)
		binary.BigEndian.PutUint16(h[2:4], 53)
		binary.BigEndian.PutUint32(h[4:8], seq)
		binary.BigEndian.PutUint32(h[8:12], ack)
		h[12], h[13] = 5<<4, flags
		binary.BigEndian.PutUint16(h[14:16], 65535)
		return h
	}
	f.Add(append(hdr(header.TCPFlagACK|header.TCPFlagPSH, clientISN+1, 0), framed(testQuery, testQuery)...))
	f.Add(append(hdr(header.TCPFlagACK|header.TCPFlagFIN, clientISN+1, 0), framed(testQuery)...))
	f.Add(append(hdr(header.TCPFlagACK, clientISN+3, 0), 0xff, 0xff, 1, 2))
	f.Add(hdr(header.TCPFlagSYN, 7, 0))
	f.Add(hdr(header.TCPFlagRST, clientISN+1, 0))
	f.Fuzz(func(t *testing.T, tcp []byte) {
		w := newNamesWorld(t, Config{DNS: &fakeDNS{answer: fill(1000, 0)}}, 576)
		c := connect(t, w, 1460, 65535)
		frame := ipv4Frame(t, resolverMAC, macA, ipA, resolverIP, true, nil, layers.IPProtocolTCP, tcp)
		w.fromPort(t, "a", frame)
		for _, out := range w.a.Written()[c.seen:] {
			if len(out) > 14+576 || len(out) < 14+20 || (out[14+9] == header.ProtoTCP && !tcpChecksumOK(out[14:])) {
				t.Fatalf("wrote a bad %d-byte frame into the port: % x", len(out), out)
			}
		}
	})
}

// TestDNSTCPTinyMSSClamped: a client announcing an MSS of 1 gets segments
// of dnsanswer.MinMSS bytes, not one byte each (issue 18, finding 3): a
// 3000-byte answer takes 14 segments instead of about 3000.
func TestDNSTCPTinyMSSClamped(t *testing.T) {
	answer := fill(3000, 7)
	w := newNamesWorld(t, Config{DNS: &fakeDNS{answer: answer}}, 1450)
	c := connect(t, w, 1, 65535)
	c.send(t, 53, header.TCPFlagACK|header.TCPFlagPSH, c.seq, c.iss+1, 65535, 0, framed(testQuery))
	got := c.frames(t)
	if len(got) < 2 {
		t.Fatalf("got %d segments, want an ACK and data", len(got))
	}
	b := payload(t, got[1:], c.iss+1, dnsanswer.MinMSS)
	if !bytes.Equal(b, framed(answer)) {
		t.Fatalf("segments hold %d bytes, want the framed answer (%d)", len(b), len(framed(answer)))
	}
	if want := (len(framed(answer)) + dnsanswer.MinMSS - 1) / dnsanswer.MinMSS; len(got)-1 != want {
		t.Errorf("answer took %d segments, want %d of up to %d bytes", len(got)-1, want, dnsanswer.MinMSS)
	}
}

// constDNS answers every query with the same answer, keeping nothing.
type constDNS struct{ answer []byte }

func (d constDNS) ServeDNS(_ uint32, _ netip.AddrPort, _ []byte, reply func([]byte)) {
	if d.answer != nil {
		reply(d.answer)
	}
}

// heapInUse returns the live heap after a garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestDNSTCPClientNeverReads: a client that sends 50,000 pipelined queries
// (1000-byte answers) and never acknowledges an answer byte cannot make
// the switch hold more than the per-connection bound; the heap grows by
// less than 1 MiB (issue 18, finding 3: it used to grow by the size of
// every answer, about 50 MB here). Frames go into a port that discards
// them, so only the switch's own memory is measured.
func TestDNSTCPClientNeverReads(t *testing.T) {
	s := New(Config{DNS: constDNS{answer: fill(1000, 0)}})
	t.Cleanup(func() { s.Close() })
	s.SetView(namesView(1500))
	dev := taptest.New("discard")
	dev.CountOnly()
	if err := s.AddPort("a", 100, macA, dev); err != nil {
		t.Fatal(err)
	}
	p := s.ports.Load().byName["a"]
	send := func(flags byte, seq, ack uint32, data []byte) {
		t.Helper()
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 53, Seq: seq, Ack: ack, Window: 65535,
			SYN: flags&header.TCPFlagSYN != 0, ACK: flags&header.TCPFlagACK != 0, PSH: flags&header.TCPFlagPSH != 0}
		f := ipv4Frame(t, resolverMAC, macA, ipA, resolverIP, true, tcp, layers.IPProtocolTCP, data)
		buf := make([]byte, vxlan.HeaderLen+len(f))
		copy(buf[vxlan.HeaderLen:], f)
		s.fromPort(&portFrame{p: p, buf: buf, n: len(f)})
	}
	conn := func() dnsanswer.ConnState {
		st, ok := s.tcpConns.State()
		if !ok {
			t.Fatal("no connection")
		}
		return st
	}
	send(header.TCPFlagSYN, clientISN, 0, nil)
	iss := conn().SndUna
	send(header.TCPFlagACK, clientISN+1, iss+1, nil)
	var ten []byte
	for range 10 {
		ten = append(ten, framed(testQuery)...)
	}
	before := heapInUse()
	var maxHeld int
	for range 5000 {
		seq := conn().RcvNxt // the client follows our ACKs, but never acknowledges our data
		send(header.TCPFlagACK|header.TCPFlagPSH, seq, iss+1, ten)
		maxHeld = max(maxHeld, conn().Held)
	}
	grew := int64(heapInUse()) - int64(before)
	st := s.Stats()
	t.Logf("50000 queries sent: heap grew by %d bytes, at most %d bytes held for the connection; %d queries taken, %d aborted",
		grew, maxHeld, st.DNSTCPQueries, st.DNSTCPAborted)
	if maxHeld > dnsanswer.OutMax+0x10000 {
		t.Errorf("the connection held %d bytes, want at most %d", maxHeld, dnsanswer.OutMax+0x10000)
	}
	if grew > 1<<20 {
		t.Errorf("the heap grew by %d bytes, want less than 1 MiB", grew)
	}
}

// TestDNSTCPPendingBound: of 100 pipelined queries that get no answer yet,
// only dnsanswer.MaxPending are taken and acknowledged, and the switch then
// advertises a zero window; the rest waits in the client.
func TestDNSTCPPendingBound(t *testing.T) {
	h := &fakeDNS{} // never answers
	w := newNamesWorld(t, Config{DNS: h}, 1500)
	c := connect(t, w, 1460, 65535)
	var data []byte
	for range 100 {
		data = append(data, framed(testQuery)...)
	}
	c.data(t, header.TCPFlagPSH, c.iss+1, data)
	got := c.frames(t)
	if len(h.calls) != dnsanswer.MaxPending {
		t.Fatalf("handler got %d queries, want %d", len(h.calls), dnsanswer.MaxPending)
	}
	last := got[len(got)-1]
	if want := clientISN + 1 + uint32(dnsanswer.MaxPending*len(framed(testQuery))); last.ack != want || last.wnd != 0 {
		t.Fatalf("ACK %d window %d, want ACK %d and a zero window", last.ack, last.wnd, want)
	}
}

// TestDNSTCPAbort: answers that would take one connection's unsent bytes
// past dnsanswer.OutMax (the client's window is closed) reset the connection,
// count in DNSTCPAborted, and free what it held.
func TestDNSTCPAbort(t *testing.T) {
	h := &fakeDNS{} // answers later, through the recorded reply functions
	w := newNamesWorld(t, Config{DNS: h}, 1500)
	c := connect(t, w, 1460, 0) // the client's window is closed
	var data []byte
	for range 8 {
		data = append(data, framed(testQuery)...)
	}
	c.send(t, 53, header.TCPFlagACK|header.TCPFlagPSH, c.seq, c.iss+1, 0, 0, data)
	c.frames(t)
	big := fill(60000, 0)
	for i, call := range h.calls {
		call.reply(big)
		if got := w.s.Stats().DNSTCPAborted; (i < 4 && got != 0) || (i >= 4 && got != 1) {
			t.Fatalf("after %d answers of 60000 bytes: DNSTCPAborted %d", i+1, got)
		}
	}
	got := c.frames(t)
	if len(got) != 1 || got[0].flags != header.TCPFlagRST|header.TCPFlagACK {
		t.Fatalf("segments %+v, want one RST|ACK", got)
	}
	if u := w.s.tcpConns.Usage(); u.Conns != 0 || u.OutBytes != 0 {
		n, b := u.Conns, u.OutBytes
		t.Fatalf("%d connections holding %d bytes after the reset, want none", n, b)
	}
}

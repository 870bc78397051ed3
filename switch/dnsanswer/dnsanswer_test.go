package dnsanswer

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"vxswitch/header"
)

var (
	client   = netip.MustParseAddrPort("10.100.0.10:40000")
	resolver = netip.MustParseAddr("10.100.0.1")
)

func TestAppendUDP(t *testing.T) {
	l2 := []byte{1, 2, 3}
	pkt, ok := AppendUDP(l2, 7, netip.AddrPortFrom(resolver, Port), client, []byte("answer"))
	if !ok || !bytes.Equal(pkt[:3], l2) {
		t.Fatalf("AppendUDP = % x, %v", pkt, ok)
	}
	ip := header.IPv4(pkt[3:])
	udp := header.UDP(ip.Payload())
	if !ip.IsValid() || ip.Source() != resolver || ip.Destination() != client.Addr() || ip.ID() != 7 {
		t.Errorf("IPv4 header % x", ip[:header.IPv4MinLen])
	}
	if udp.DstPort() != client.Port() || string(udp.Payload()) != "answer" ||
		header.Sum(udp, ip.PseudoSum(header.ProtoUDP, len(udp))) != 0xffff {
		t.Errorf("UDP datagram % x", udp)
	}
	if _, ok := AppendUDP(nil, 0, client, client, make([]byte, 0xffff)); ok {
		t.Error("AppendUDP made a packet longer than 65535 bytes")
	}
}

// writer collects the frames the responder writes.
type writer struct{ frames [][]byte }

func (w *writer) Write(f []byte) { w.frames = append(w.frames, f) }

// last returns the TCP segment of the last frame written (behind a
// 14-byte Ethernet header).
func (w *writer) last(t *testing.T) header.TCP {
	t.Helper()
	if len(w.frames) == 0 {
		t.Fatal("nothing written")
	}
	return header.TCP(header.IPv4(w.frames[len(w.frames)-1][14:]).Payload())
}

// toResolver returns an IPv4 packet from client to the resolver carrying a
// TCP segment to dstPort.
func toResolver(dstPort uint16, flags uint8, seq, ack uint32, data []byte) header.IPv4 {
	b := make([]byte, header.IPv4MinLen+header.TCPMinLen+len(data))
	ip := header.IPv4(b)
	ip.Encode(uint16(len(b)), 0, 0, 64, header.ProtoTCP, client.Addr(), resolver)
	tcp := header.TCP(ip.Payload())
	tcp.SetSrcPort(client.Port())
	tcp.SetDstPort(dstPort)
	tcp.SetSeq(seq)
	tcp.SetAck(ack)
	tcp.SetHeaderLen(header.TCPMinLen)
	tcp.SetFlags(flags)
	tcp.SetWindow(65535)
	copy(tcp.Payload(), data)
	return ip
}

func TestResponder(t *testing.T) {
	r := &Responder{Now: time.Now, NextID: func() uint16 { return 1 }}
	w := &writer{}
	l2 := make([]byte, 14)
	send := func(dstPort uint16, flags uint8, seq, ack uint32, data []byte) []Query {
		t.Helper()
		ip := toResolver(dstPort, flags, seq, ack, data)
		qs, ok := r.Segment("a", 100, l2, resolver, 1500, ip.Source(), ip.Payload(), true, w)
		if !ok {
			t.Fatal("Segment refused a valid segment")
		}
		return qs
	}
	send(Port, header.TCPFlagSYN, 1000, 0, nil)
	synAck := w.last(t)
	if synAck.Flags() != header.TCPFlagSYN|header.TCPFlagACK || synAck.Ack() != 1001 {
		t.Fatalf("answer to SYN: flags %#x ack %d", synAck.Flags(), synAck.Ack())
	}
	if mss, _ := synAck.MSS(); mss != 1460 {
		t.Errorf("SYN-ACK MSS %d, want 1460", mss)
	}
	iss := synAck.Seq()
	qs := send(Port, header.TCPFlagACK|header.TCPFlagPSH, 1001, iss+1, []byte{0, 3, 'q', 'r', 'y'})
	if len(qs) != 1 || string(qs[0].Msg) != "qry" || qs[0].Conn.Key() != (ConnKey{"a", 100, client}) {
		t.Fatalf("queries %+v", qs)
	}
	if got := r.Answer(qs[0].Conn, []byte("ans"), w); got != Queued {
		t.Fatalf("Answer = %v", got)
	}
	if a := w.last(t); a.Flags() != header.TCPFlagACK|header.TCPFlagPSH || !bytes.Equal(a.Payload(), []byte{0, 3, 'a', 'n', 's'}) {
		t.Errorf("answer segment flags %#x payload % x", a.Flags(), a.Payload())
	}
	send(80, header.TCPFlagSYN, 5, 0, nil)
	if rst := w.last(t); rst.Flags() != header.TCPFlagRST|header.TCPFlagACK || rst.SrcPort() != 80 || rst.Ack() != 6 {
		t.Errorf("answer to a SYN to port 80: flags %#x port %d ack %d", rst.Flags(), rst.SrcPort(), rst.Ack())
	}
	if u := r.Usage(); u.Conns != 1 || r.Stats.Conns.Load() != 1 || r.Stats.Resets.Load() != 1 || r.Stats.Queries.Load() != 1 {
		t.Errorf("usage %+v, conns %d resets %d queries %d", u, r.Stats.Conns.Load(), r.Stats.Resets.Load(), r.Stats.Queries.Load())
	}
	if _, ok := r.Segment("a", 100, l2, resolver, 1500, client.Addr(), []byte{1, 2}, true, w); ok {
		t.Error("Segment took a 2-byte segment")
	}
}

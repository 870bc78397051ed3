package dnsanswer

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/header"
)

var (
	client6   = netip.MustParseAddrPort("[fd20::a]:40000")
	resolver6 = netip.MustParseAddr("fd20::1")
)

func TestAppendUDP6(t *testing.T) {
	l2 := []byte{1, 2, 3}
	pkt, ok := AppendUDP(l2, 7, netip.AddrPortFrom(resolver6, Port), client6, []byte("answer"))
	if !ok || !bytes.Equal(pkt[:3], l2) {
		t.Fatalf("AppendUDP = % x, %v", pkt, ok)
	}
	p := gopacket.NewPacket(pkt[3:], layers.LayerTypeIPv6, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip == nil || udp == nil || !ip.SrcIP.Equal(resolver6.AsSlice()) || !ip.DstIP.Equal(client6.Addr().AsSlice()) ||
		udp.SrcPort != Port || udp.DstPort != 40000 || string(udp.Payload) != "answer" || ip.HopLimit != TTL {
		t.Fatalf("gopacket reads %v", p)
	}
	h := header.IPv6(pkt[3:])
	if u := header.UDP(h.Payload()); u.Checksum() == 0 || !u.VerifyChecksum(h.PseudoSum(header.ProtoUDP, len(u))) {
		t.Errorf("UDP checksum %#04x does not verify", u.Checksum())
	}
	if _, ok := AppendUDP(nil, 0, netip.AddrPortFrom(resolver6, Port), client6, make([]byte, 0xffff)); ok {
		t.Error("AppendUDP made an IPv6 payload longer than 65535 bytes")
	}
}

func TestAppendEchoReply6(t *testing.T) {
	req := make(header.IPv6, header.IPv6Len+header.ICMPv6Len+5)
	req.Encode(header.ICMPv6Len+5, header.ProtoICMPv6, 64, client6.Addr(), resolver6)
	m := header.ICMPv6(req.Payload())
	m.SetType(header.ICMPv6EchoRequest)
	m.SetID(0x1234)
	m.SetSeq(9)
	copy(m.Payload(), "hello")
	m.SetChecksum(m.ComputeChecksum(req.PseudoSum(header.ProtoICMPv6, len(m))))

	out := AppendEchoReply6([]byte{9}, resolver6, req, m)
	h := header.IPv6(out[1:])
	r := header.ICMPv6(h.Payload())
	if !h.IsValid() || h.Source() != resolver6 || h.Destination() != client6.Addr() || r.Type() != header.ICMPv6EchoReply ||
		r.ID() != 0x1234 || r.Seq() != 9 || string(r.Payload()) != "hello" || !r.VerifyChecksum(h.PseudoSum(header.ProtoICMPv6, len(r))) {
		t.Errorf("echo reply % x", []byte(h))
	}
}

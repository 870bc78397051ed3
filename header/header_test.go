package header

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestEthernet(t *testing.T) {
	ip := ip4(layers.IPProtocolUDP)
	ipPkt := build(t, ip, udpOver(ip, 1, 2))
	dot1q := func(vid uint16, next layers.EthernetType) *layers.Dot1Q {
		return &layers.Dot1Q{VLANIdentifier: vid, Type: next}
	}
	tests := []struct {
		name    string
		frame   []byte
		valid   bool
		typ     uint16
		hdrLen  int
		vlan    uint16
		stacked bool
	}{
		{"untagged IPv4", build(t, eth(macB, macA, layers.EthernetTypeIPv4), gopacket.Payload(ipPkt)),
			true, EtherTypeIPv4, 14, 0, false},
		{"802.1Q tagged ARP", build(t, eth(macB, macA, layers.EthernetTypeDot1Q), dot1q(100, layers.EthernetTypeARP), gopacket.Payload(make([]byte, 28))),
			true, EtherTypeARP, 18, 100, false},
		{"two 802.1Q tags", build(t, eth(macB, macA, layers.EthernetTypeDot1Q), dot1q(7, layers.EthernetTypeDot1Q), dot1q(8, layers.EthernetTypeIPv4), gopacket.Payload(ipPkt)),
			true, EtherTypeVLAN, 18, 7, true},
		{"802.1Q tag then 802.1ad", build(t, eth(macB, macA, layers.EthernetTypeDot1Q), dot1q(9, layers.EthernetTypeQinQ), dot1q(8, layers.EthernetTypeIPv4)),
			true, EtherTypeQinQ, 18, 9, true},
		{"802.1ad S-tag first", build(t, eth(macB, macA, layers.EthernetTypeQinQ), dot1q(5, layers.EthernetTypeIPv4), gopacket.Payload(ipPkt)),
			true, EtherTypeQinQ, 14, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Ethernet(tt.frame)
			if e.IsValid() != tt.valid {
				t.Fatalf("IsValid = %v", e.IsValid())
			}
			if e.Destination() != macB || e.Source() != macA {
				t.Errorf("addresses %v > %v", e.Source(), e.Destination())
			}
			if e.Type() != tt.typ || e.HeaderLen() != tt.hdrLen || e.VLAN() != tt.vlan || e.Stacked() != tt.stacked {
				t.Errorf("Type %#04x HeaderLen %d VLAN %d Stacked %v; want %#04x %d %d %v",
					e.Type(), e.HeaderLen(), e.VLAN(), e.Stacked(), tt.typ, tt.hdrLen, tt.vlan, tt.stacked)
			}
			if !bytes.Equal(e.Payload(), tt.frame[tt.hdrLen:]) {
				t.Error("Payload does not start after the header")
			}
			// The oracle agrees on the type of what follows the tags it
			// steps over.
			p := gopacket.NewPacket(tt.frame, layers.LayerTypeEthernet, gopacket.Default)
			if g := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); MAC(g.SrcMAC) != e.Source() {
				t.Errorf("gopacket source %v", g.SrcMAC)
			}
		})
	}
	for _, n := range []int{0, 13} {
		if Ethernet(make([]byte, n)).IsValid() {
			t.Errorf("%d bytes valid", n)
		}
	}
	short := build(t, eth(macB, macA, layers.EthernetTypeDot1Q))[:16] // gopacket pads to 60 bytes
	if Ethernet(short).IsValid() || !Ethernet(short).Tagged() {
		t.Error("a tagged frame without room for its tag is valid")
	}
	f := make([]byte, 18)
	e := Ethernet(f)
	e.SetDestination(macA)
	e.SetSource(macB)
	e.SetOuterType(EtherTypeVLAN)
	e.SetType(EtherTypeIPv6)
	want := []byte{2, 0, 0, 0, 0, 0x0a, 2, 0, 0, 0, 0, 0x0b, 0x81, 0, 0, 0, 0x86, 0xdd}
	if !bytes.Equal(f, want) {
		t.Errorf("setters wrote % x", f)
	}
}

func TestARP(t *testing.T) {
	frame := build(t, eth(BroadcastMAC, macA, layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: hw(macA), SourceProtAddress: ipOf(ip4A),
		DstHwAddress: make([]byte, 6), DstProtAddress: ipOf(ip4B),
	})
	a := ARP(Ethernet(frame).Payload())
	if !a.IsValid() || a.Op() != ARPRequest || a.SenderMAC() != macA || a.SenderIP() != ip4A ||
		!a.TargetMAC().IsZero() || a.TargetIP() != ip4B {
		t.Fatalf("ARP read wrong: valid %v op %d %v %v %v %v", a.IsValid(), a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
	}
	b := make(ARP, ARPLen)
	b.Encode(ARPRequest, macA, ip4A, MAC{}, ip4B)
	if !bytes.Equal(b, a[:ARPLen]) {
		t.Errorf("Encode wrote % x, gopacket % x", []byte(b), []byte(a[:ARPLen]))
	}
	for i, bad := range [][]byte{a[:27], patch(a, 1, 6), patch(a, 3, 0xdd), patch(a, 4, 8), patch(a, 5, 16)} {
		if ARP(bad).IsValid() {
			t.Errorf("bad ARP %d is valid", i)
		}
	}
	if !ARP(patch(a, 1, 6)).HasIPv4Sizes() {
		t.Error("HasIPv4Sizes looks at the hardware type")
	}
}

// patch returns a copy of b with b[i] = v.
func patch(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

func TestIPv4UDP(t *testing.T) {
	ip := ip4(layers.IPProtocolUDP)
	ip.Options = []layers.IPv4Option{{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
	pkt := build(t, ip, udpOver(ip, 40000, 53), gopacket.Payload("query"))
	pkt = append(pkt, 0, 0, 0) // Ethernet padding
	h := IPv4(pkt)
	if !h.IsHeaderValid() || !h.IsValid() {
		t.Fatal("not valid")
	}
	if h.Version() != 4 || h.HeaderLen() != 24 || len(h.Options()) != 4 || int(h.TotalLength()) != len(pkt)-3 ||
		h.ID() != 0x1234 || h.FlagsFragment() != IPv4FlagDF || h.IsFragment() || h.TTL() != 64 ||
		h.Protocol() != ProtoUDP || h.Source() != ip4A || h.Destination() != ip4B {
		t.Fatalf("fields read wrong: % x", pkt[:24])
	}
	if !h.VerifyChecksum() || h.ComputeChecksum() != h.Checksum() {
		t.Errorf("checksum %#04x, computed %#04x", h.Checksum(), h.ComputeChecksum())
	}
	u := UDP(h.Payload())
	if !u.IsValid() || u.SrcPort() != 40000 || u.DstPort() != 53 || string(u.Payload()) != "query" {
		t.Fatalf("UDP read wrong: % x", []byte(u))
	}
	pseudo := h.PseudoSum(ProtoUDP, len(u))
	if !u.VerifyChecksum(pseudo) || u.ComputeChecksum(pseudo) != u.Checksum() {
		t.Errorf("UDP checksum %#04x, computed %#04x", u.Checksum(), u.ComputeChecksum(pseudo))
	}

	// Encode writes what gopacket writes for a header without options.
	plain := build(t, ip4(layers.IPProtocolTCP), gopacket.Payload(make([]byte, 20)))
	enc := make(IPv4, IPv4MinLen)
	enc.Encode(uint16(len(plain)), 0x1234, IPv4FlagDF, 64, ProtoTCP, ip4A, ip4B)
	if !bytes.Equal(enc, plain[:IPv4MinLen]) {
		t.Errorf("Encode % x, gopacket % x", []byte(enc), plain[:IPv4MinLen])
	}
	encU := make(UDP, UDPLen)
	encU.Encode(40000, 53, uint16(len(u)))
	encU.SetChecksum(u.Checksum())
	if !bytes.Equal(encU, u[:UDPLen]) {
		t.Errorf("UDP Encode % x, gopacket % x", []byte(encU), []byte(u[:UDPLen]))
	}

	bad := []struct {
		name     string
		b        []byte
		hdrValid bool
	}{
		{"short", pkt[:19], false},
		{"version 6", patch(pkt, 0, 0x66), false},
		{"IHL 4", patch(pkt, 0, 0x44), false},
		{"IHL beyond the slice", pkt[:22], false},
		{"total below the header", patch(patch(pkt, 2, 0), 3, 20), true},
		{"total beyond the slice", patch(pkt, 2, 0xff), true},
	}
	for _, tt := range bad {
		if IPv4(tt.b).IsValid() || IPv4(tt.b).IsHeaderValid() != tt.hdrValid {
			t.Errorf("%s: IsValid %v IsHeaderValid %v", tt.name, IPv4(tt.b).IsValid(), IPv4(tt.b).IsHeaderValid())
		}
	}
	frag := IPv4(patch(pkt, 6, 0x20)) // MF
	if !frag.IsFragment() || frag.FragmentOffset() != 0 {
		t.Error("MF is not a fragment")
	}
	frag = IPv4(patch(pkt, 7, 0x01))
	if !frag.IsFragment() || frag.FragmentOffset() != 1 {
		t.Error("offset 1 is not a fragment")
	}
	for _, short := range []int{0, 7} {
		if UDP(make([]byte, short)).IsValid() {
			t.Errorf("UDP of %d bytes valid", short)
		}
	}
	if UDP(u[:len(u)-1]).IsValid() || UDP(patch(u, 5, 7)).IsValid() {
		t.Error("UDP with a Length beyond the slice or below 8 is valid")
	}
}

func TestTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tcp := &layers.TCP{SrcPort: 33000, DstPort: 80, Seq: 0x01020304, Ack: 0x0a0b0c0d, SYN: true, ACK: true,
			Window: 64240, Urgent: 0, Options: []layers.TCPOption{
				{OptionType: layers.TCPOptionKindNop},
				{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
				{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
				{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			}}
		var seg TCP
		var pseudo uint16
		if v6 {
			ip := ip6(layers.IPProtocolTCP)
			_ = tcp.SetNetworkLayerForChecksum(ip)
			h := IPv6(build(t, ip, tcp, gopacket.Payload("GET /")))
			seg = TCP(h.Payload())
			pseudo = h.PseudoSum(ProtoTCP, len(seg))
		} else {
			ip := ip4(layers.IPProtocolTCP)
			_ = tcp.SetNetworkLayerForChecksum(ip)
			h := IPv4(build(t, ip, tcp, gopacket.Payload("GET /")))
			seg = TCP(h.Payload())
			pseudo = h.PseudoSum(ProtoTCP, len(seg))
		}
		if !seg.IsValid() || seg.SrcPort() != 33000 || seg.DstPort() != 80 || seg.Seq() != 0x01020304 ||
			seg.Ack() != 0x0a0b0c0d || seg.Flags() != TCPFlagSYN|TCPFlagACK || seg.Window() != 64240 ||
			seg.HeaderLen() != 32 || string(seg.Payload()) != "GET /" || seg.UrgentPointer() != 0 {
			t.Fatalf("v6 %v: fields read wrong: % x", v6, []byte(seg))
		}
		if !seg.VerifyChecksum(pseudo) || seg.ComputeChecksum(pseudo) != seg.Checksum() {
			t.Errorf("v6 %v: checksum %#04x computed %#04x", v6, seg.Checksum(), seg.ComputeChecksum(pseudo))
		}
		if mss, ok := seg.MSS(); !ok || mss != 1460 {
			t.Errorf("v6 %v: MSS %d %v", v6, mss, ok)
		}
		if at, ok := seg.MSSOffset(); !ok || at != 26 {
			t.Errorf("v6 %v: MSSOffset %d %v", v6, at, ok)
		}
	}
	opts := []struct {
		name string
		opts []byte
		mss  int // -1: none
	}{
		{"none", nil, -1},
		{"MSS", []byte{2, 4, 0x05, 0xb4}, 1460},
		{"NOPs first", []byte{1, 1, 1, 1, 2, 4, 0x02, 0x18, 0, 0, 0, 0}, 536},
		{"end before MSS", []byte{0, 0, 0, 0, 2, 4, 1, 1}, -1},
		{"MSS of length 3 is stepped over", []byte{2, 3, 9, 2, 4, 0x05, 0xb4, 0}, 1460},
		{"length 1 ends the walk", []byte{8, 1, 2, 4, 0x05, 0xb4, 0, 0}, -1},
		{"length beyond the header", []byte{8, 10, 0, 0, 2, 4, 0x05, 0xb4}, -1},
		{"kind without a length", []byte{1, 1, 1, 8}, -1},
	}
	for _, tt := range opts {
		seg := make(TCP, TCPMinLen+len(tt.opts))
		seg.SetHeaderLen(len(seg))
		copy(seg.Options(), tt.opts)
		mss, ok := seg.MSS()
		if (tt.mss < 0) == ok || (ok && int(mss) != tt.mss) {
			t.Errorf("%s: MSS %d %v, want %d", tt.name, mss, ok, tt.mss)
		}
	}
	// The reserved bits are the low half of byte 12; the data offset and
	// the flags beside them do not leak in, nor do they change the offset.
	r := make(TCP, TCPMinLen)
	r.SetHeaderLen(TCPMinLen)
	r.SetFlags(0xff)
	if r.Reserved() != 0 {
		t.Errorf("Reserved of a clean header = %#x, want 0", r.Reserved())
	}
	r[12] |= 0x05
	if r.Reserved() != 0x05 || r.HeaderLen() != TCPMinLen {
		t.Errorf("Reserved = %#x, HeaderLen %d; want 0x5 and %d", r.Reserved(), r.HeaderLen(), TCPMinLen)
	}
	r.SetHeaderLen(24)
	if r.Reserved() != 0x05 {
		t.Errorf("SetHeaderLen changed the reserved bits to %#x", r.Reserved())
	}
	for _, bad := range [][]byte{make([]byte, 19), {0: 0, 12: 0x40, 19: 0}, {0: 0, 12: 0x60, 19: 0}} {
		if TCP(bad).IsValid() {
			t.Errorf("TCP % x valid", bad)
		}
	}
}

func TestICMPv4(t *testing.T) {
	pkt := build(t, ip4(layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}, gopacket.Payload("ping"))
	m := ICMPv4(IPv4(pkt).Payload())
	if !m.IsValid() || m.Type() != ICMPv4EchoRequest || m.Code() != 0 || m.ID() != 7 || m.Seq() != 1 || string(m.Payload()) != "ping" {
		t.Fatalf("read wrong: % x", []byte(m))
	}
	if !m.VerifyChecksum() || m.ComputeChecksum() != m.Checksum() {
		t.Errorf("checksum %#04x computed %#04x", m.Checksum(), m.ComputeChecksum())
	}
	big := build(t, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), Seq: 1450})
	if m := ICMPv4(big); m.Type() != ICMPv4Unreachable || m.Code() != ICMPv4FragNeededCode || m.MTU() != 1450 {
		t.Errorf("frag needed read wrong: % x", big)
	}
	enc := make(ICMPv4, ICMPv4Len)
	enc.SetType(ICMPv4Unreachable)
	enc.SetCode(ICMPv4FragNeededCode)
	enc.SetMTU(1450)
	enc.SetChecksum(enc.ComputeChecksum())
	if !bytes.Equal(enc, big) {
		t.Errorf("wrote % x, gopacket % x", []byte(enc), big)
	}
	if ICMPv4(make([]byte, 7)).IsValid() {
		t.Error("7 bytes valid")
	}
}

func TestICMPv6NDP(t *testing.T) {
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: ipOf(ip6B), Options: layers.ICMPv6Options{
		{Type: layers.ICMPv6OptSourceAddress, Data: hw(macA)}}}
	na := &layers.ICMPv6NeighborAdvertisement{Flags: 0x60, TargetAddress: ipOf(ip6B), Options: layers.ICMPv6Options{
		{Type: layers.ICMPv6OptTargetAddress, Data: hw(macB)}}}
	tests := []struct {
		name   string
		typ    uint8
		body   gopacket.SerializableLayer
		opt    uint8
		mac    MAC
		flags  uint8
		dst    []byte
		target bool
	}{
		{"solicitation", ICMPv6NeighborSolicitation, ns, NDPOptionSourceLinkAddr, macA, 0, ipOf(ip6NS), true},
		{"advertisement", ICMPv6NeighborAdvertisement, na, NDPOptionTargetLinkAddr, macB, NDPFlagSolicited | NDPFlagOverride, ipOf(ip6A), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := ip6(layers.IPProtocolICMPv6)
			ip.HopLimit, ip.DstIP = 255, tt.dst
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(tt.typ, 0)}
			_ = icmp.SetNetworkLayerForChecksum(ip)
			h := IPv6(build(t, ip, icmp, tt.body))
			if !h.IsValid() || h.HopLimit() != 255 || h.NextHeader() != ProtoICMPv6 {
				t.Fatal("IPv6 header read wrong")
			}
			proto, off, ok := h.UpperLayer()
			if !ok || proto != ProtoICMPv6 || off != IPv6Len {
				t.Fatalf("UpperLayer %d %d %v", proto, off, ok)
			}
			m := ICMPv6(h[off:])
			if !m.IsValid() || !m.IsNeighbor() || m.Type() != tt.typ || m.Target() != ip6B || m.NDPFlags() != tt.flags {
				t.Fatalf("read wrong: % x", []byte(m))
			}
			pseudo := h.PseudoSum(ProtoICMPv6, len(m))
			if !m.VerifyChecksum(pseudo) || m.ComputeChecksum(pseudo) != m.Checksum() {
				t.Errorf("checksum %#04x computed %#04x", m.Checksum(), m.ComputeChecksum(pseudo))
			}
			if !m.NDPOptions().IsValid() {
				t.Error("options not valid")
			}
			if mac, ok := m.NDPOptions().LinkAddr(tt.opt); !ok || mac != tt.mac {
				t.Errorf("LinkAddr(%d) = %v %v", tt.opt, mac, ok)
			}
			if _, ok := m.NDPOptions().LinkAddr(3 - tt.opt); ok {
				t.Error("found the other link-layer option")
			}
			// Writing the message again gives gopacket's bytes.
			enc := make(ICMPv6, len(m))
			enc.SetType(tt.typ)
			enc.SetNDPFlags(tt.flags)
			enc.SetTarget(ip6B)
			enc.NDPOptions().PutLinkAddr(tt.opt, tt.mac)
			enc.SetChecksum(enc.ComputeChecksum(pseudo))
			if !bytes.Equal(enc, m) {
				t.Errorf("wrote % x, gopacket % x", []byte(enc), []byte(m))
			}
		})
	}
	for _, o := range [][]byte{{1, 0, 0, 0, 0, 0, 0, 0}, {1, 2, 0, 0, 0, 0, 0, 0}, {1}} {
		if NDPOptions(o).IsValid() {
			t.Errorf("options % x valid", o)
		}
		if _, ok := NDPOptions(o).LinkAddr(1); ok {
			t.Errorf("options % x give an address", o)
		}
	}
	echoICMP := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	_ = echoICMP.SetNetworkLayerForChecksum(ip6(layers.IPProtocolICMPv6))
	echo := build(t, echoICMP, &layers.ICMPv6Echo{Identifier: 9, SeqNumber: 3})
	if m := ICMPv6(echo); m.IsNeighbor() || m.ID() != 9 || m.Seq() != 3 {
		t.Errorf("echo read wrong: % x", echo)
	}
	tooBig := make(ICMPv6, ICMPv6Len)
	tooBig.SetType(ICMPv6PacketTooBig)
	tooBig.SetMTU(1280)
	if tooBig.MTU() != 1280 || binary.BigEndian.Uint32(tooBig[4:8]) != 1280 {
		t.Error("MTU")
	}
}

// TestIPv6UpperLayer walks extension headers built by hand behind a fixed
// header built by gopacket.
func TestIPv6UpperLayer(t *testing.T) {
	hbh := func(next byte) []byte { return []byte{next, 0, 5, 2, 0, 0, 1, 0} }                          // router alert, padded
	dst := func(next byte) []byte { return []byte{next, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} } // PadN, 16 bytes
	frag := func(next byte, off uint16, more bool) []byte {
		v := off << 3
		if more {
			v |= 1
		}
		return []byte{next, 0, byte(v >> 8), byte(v), 0, 0, 0, 1}
	}
	ah := func(next byte) []byte { return append([]byte{next, 4, 0, 0}, make([]byte, 20)...) } // (4+2)*4 = 24
	udp := make([]byte, 8)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name  string
		next  layers.IPProtocol
		body  []byte
		proto uint8
		off   int
		ok    bool
	}{
		{"no extension", layers.IPProtocolUDP, udp, ProtoUDP, 40, true},
		{"hop-by-hop", layers.IPProtocolIPv6HopByHop, cat(hbh(ProtoUDP), udp), ProtoUDP, 48, true},
		{"hop-by-hop, destination options", layers.IPProtocolIPv6HopByHop, cat(hbh(ProtoDstOpts), dst(ProtoTCP), make([]byte, 20)), ProtoTCP, 64, true},
		{"first fragment", layers.IPProtocolIPv6Fragment, cat(frag(ProtoUDP, 0, true), udp), ProtoUDP, 48, true},
		{"later fragment", layers.IPProtocolIPv6Fragment, cat(frag(ProtoUDP, 185, false), udp), ProtoFragment, 40, true},
		{"AH", layers.IPProtocolAH, cat(ah(ProtoICMPv6), make([]byte, 8)), ProtoICMPv6, 64, true},
		{"ESP ends the walk", layers.IPProtocolESP, make([]byte, 16), ProtoESP, 40, true},
		{"no next header", layers.IPProtocolNoNextHeader, nil, ProtoNoNext, 40, true},
		{"truncated hop-by-hop", layers.IPProtocolIPv6HopByHop, hbh(ProtoUDP)[:6], 0, 0, false},
		{"hop-by-hop length beyond", layers.IPProtocolIPv6HopByHop, []byte{17, 3, 0, 0, 0, 0, 0, 0}, 0, 0, false},
		{"8 destination options", layers.IPProtocolIPv6Destination, cat(bytes.Repeat(dst(ProtoDstOpts), 7), dst(ProtoUDP), udp), ProtoUDP, 40 + 8*16, true},
		{"9 destination options", layers.IPProtocolIPv6Destination, cat(bytes.Repeat(dst(ProtoDstOpts), 8), dst(ProtoUDP), udp), 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := build(t, ip6(tt.next), gopacket.Payload(tt.body))
			pkt = append(pkt, 0xee, 0xee) // padding that must not be read
			h := IPv6(pkt)
			if !h.IsValid() {
				t.Fatal("not valid")
			}
			if h.Version() != 6 || h.TrafficClass() != 0xb8 || h.FlowLabel() != 0x12345 || h.HopLimit() != 64 ||
				h.Source() != ip6A || h.Destination() != ip6B || len(h.Payload()) != len(tt.body) {
				t.Fatalf("fixed header read wrong: % x", pkt[:40])
			}
			proto, off, ok := h.UpperLayer()
			if proto != tt.proto || off != tt.off || ok != tt.ok {
				t.Errorf("UpperLayer = %d %d %v, want %d %d %v", proto, off, ok, tt.proto, tt.off, tt.ok)
			}
			// The oracle finds the same upper layer.
			if tt.ok && tt.proto == ProtoUDP {
				p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
				if p.Layer(layers.LayerTypeUDP) == nil && tt.name != "first fragment" {
					t.Errorf("gopacket finds no UDP: %v", p)
				}
			}
		})
	}
	enc := make(IPv6, IPv6Len)
	enc.SetVersionClassFlow(0xb8, 0x12345)
	enc.SetPayloadLength(8)
	enc.SetNextHeader(ProtoUDP)
	enc.SetHopLimit(64)
	enc.SetSource(ip6A)
	enc.SetDestination(ip6B)
	if want := build(t, ip6(layers.IPProtocolUDP), gopacket.Payload(udp)); !bytes.Equal(enc, want[:IPv6Len]) {
		t.Errorf("wrote % x, gopacket % x", []byte(enc), want[:IPv6Len])
	}
	for _, bad := range [][]byte{make([]byte, 39), patch(enc, 0, 0x40), append(patch(enc, 5, 9), make([]byte, 8)...)} {
		if IPv6(bad).IsValid() {
			t.Errorf("% x valid", bad)
		}
	}
}

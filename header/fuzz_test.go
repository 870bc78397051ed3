package header

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Each fuzz target reads arbitrary bytes through one view: nothing may
// panic once the view's validity check has passed, and writing the fields
// read into a fresh buffer with the setters must give the same bytes.

// seeds returns frames built by gopacket, a few of each family, as the
// corpus every target starts from.
func seeds(t testing.TB) [][]byte {
	ip := ip4(layers.IPProtocolUDP)
	v4 := build(t, ip, udpOver(ip, 53, 40000), gopacket.Payload("answer"))
	tcp := &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}
	ip6t := ip6(layers.IPProtocolTCP)
	_ = tcp.SetNetworkLayerForChecksum(ip6t)
	v6 := build(t, ip6t, tcp)
	icmp6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	ip6i := ip6(layers.IPProtocolICMPv6)
	_ = icmp6.SetNetworkLayerForChecksum(ip6i)
	ns := build(t, ip6i, icmp6, &layers.ICMPv6NeighborSolicitation{TargetAddress: ipOf(ip6B),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: hw(macA)}}})
	arp := build(t, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: hw(macA),
		SourceProtAddress: ipOf(ip4A), DstHwAddress: make([]byte, 6), DstProtAddress: ipOf(ip4B)})
	icmp4 := build(t, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 2})
	tagged := build(t, eth(macB, macA, layers.EthernetTypeDot1Q),
		&layers.Dot1Q{VLANIdentifier: 5, Priority: 3, Type: layers.EthernetTypeIPv4}, gopacket.Payload(v4))
	return [][]byte{
		nil, v4, v6, ns, arp, icmp4, tagged,
		build(t, eth(macB, macA, layers.EthernetTypeIPv6), gopacket.Payload(v6)),
		v4[IPv4MinLen:], v6[IPv6Len:], ns[IPv6Len:],
	}
}

func addSeeds(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
}

func FuzzEthernet(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e := Ethernet(b)
		if !e.IsValid() {
			return
		}
		_ = e.Stacked()
		_ = e.VLAN()
		if len(e.Payload()) != len(b)-e.HeaderLen() {
			t.Fatal("payload length")
		}
		c := make(Ethernet, e.HeaderLen())
		c.SetDestination(e.Destination())
		c.SetSource(e.Source())
		c.SetOuterType(e.OuterType())
		if c.Tagged() {
			c.SetTCI(e.TCI())
		}
		c.SetType(e.Type())
		if !bytes.Equal(c, b[:e.HeaderLen()]) {
			t.Fatalf("round trip % x, want % x", []byte(c), b[:e.HeaderLen()])
		}
	})
}

func FuzzARP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		a := ARP(b)
		if len(a) >= ARPLen {
			_ = a.HasIPv4Sizes()
		}
		if !a.IsValid() {
			return
		}
		c := make(ARP, ARPLen)
		c.Encode(a.Op(), a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP())
		if !bytes.Equal(c, b[:ARPLen]) {
			t.Fatalf("round trip % x, want % x", []byte(c), b[:ARPLen])
		}
	})
}

func FuzzIPv4(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h := IPv4(b)
		if !h.IsHeaderValid() {
			if h.IsValid() {
				t.Fatal("valid packet without a valid header")
			}
			return
		}
		n := h.HeaderLen()
		if h.VerifyChecksum() != (h.ComputeChecksum() == h.Checksum()) {
			t.Fatalf("VerifyChecksum and ComputeChecksum disagree on % x", b[:n])
		}
		if h.IsValid() {
			if len(h.Payload()) != int(h.TotalLength())-n {
				t.Fatal("payload length")
			}
			_ = h.PseudoSum(h.Protocol(), len(h.Payload()))
		}
		c := make(IPv4, n)
		c.SetHeaderLen(n)
		c.SetTOS(h.TOS())
		c.SetTotalLength(h.TotalLength())
		c.SetID(h.ID())
		c.SetFlagsFragment(h.FlagsFragment())
		c.SetTTL(h.TTL())
		c.SetProtocol(h.Protocol())
		c.SetSource(h.Source())
		c.SetDestination(h.Destination())
		copy(c.Options(), h.Options())
		c.UpdateChecksum()
		if !c.VerifyChecksum() {
			t.Fatal("UpdateChecksum does not verify")
		}
		c.SetChecksum(h.Checksum())
		if !bytes.Equal(c, b[:n]) {
			t.Fatalf("round trip % x, want % x", []byte(c), b[:n])
		}
	})
}

func FuzzIPv6(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h := IPv6(b)
		if !h.IsHeaderValid() {
			return
		}
		c := make(IPv6, IPv6Len)
		c.SetVersionClassFlow(h.TrafficClass(), h.FlowLabel())
		c.SetPayloadLength(h.PayloadLength())
		c.SetNextHeader(h.NextHeader())
		c.SetHopLimit(h.HopLimit())
		c.SetSource(h.Source())
		c.SetDestination(h.Destination())
		if !bytes.Equal(c, b[:IPv6Len]) {
			t.Fatalf("round trip % x, want % x", []byte(c), b[:IPv6Len])
		}
		if !h.IsValid() {
			return
		}
		proto, off, ok := h.UpperLayer()
		end := IPv6Len + len(h.Payload())
		if ok && (off < IPv6Len || off > end) {
			t.Fatalf("upper layer %d at %d outside [40, %d]", proto, off, end)
		}
		if ok && proto != ProtoFragment {
			_ = h.PseudoSum(proto, end-off)
		}
	})
}

func FuzzUDP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		u := UDP(b)
		if !u.IsValid() {
			return
		}
		if len(u.Payload()) != int(u.Length())-UDPLen {
			t.Fatal("payload length")
		}
		c := make(UDP, UDPLen)
		c.Encode(u.SrcPort(), u.DstPort(), u.Length())
		c.SetChecksum(u.Checksum())
		if !bytes.Equal(c, b[:UDPLen]) {
			t.Fatalf("round trip % x, want % x", []byte(c), b[:UDPLen])
		}
		whole := UDP(bytes.Clone(b[:u.Length()]))
		whole.SetChecksum(whole.ComputeChecksum(0x1234))
		if !whole.VerifyChecksum(0x1234) {
			t.Fatal("ComputeChecksum does not verify")
		}
	})
}

func FuzzTCP(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := TCP(b)
		if !s.IsValid() {
			return
		}
		n := s.HeaderLen()
		if at, ok := s.MSSOffset(); ok {
			if at < TCPMinLen+2 || at+2 > n {
				t.Fatalf("MSS value at %d outside the options (header %d)", at, n)
			}
			_, _ = s.MSS()
		}
		c := make(TCP, n)
		c[12] = b[12] & 0x0f // reserved bits and AE have no accessor
		c.SetHeaderLen(n)
		c.SetSrcPort(s.SrcPort())
		c.SetDstPort(s.DstPort())
		c.SetSeq(s.Seq())
		c.SetAck(s.Ack())
		c.SetFlags(s.Flags())
		c.SetWindow(s.Window())
		c.SetChecksum(s.Checksum())
		c.SetUrgentPointer(s.UrgentPointer())
		copy(c.Options(), s.Options())
		if !bytes.Equal(c, b[:n]) {
			t.Fatalf("round trip % x, want % x", []byte(c), b[:n])
		}
		whole := TCP(bytes.Clone(b))
		whole.SetChecksum(whole.ComputeChecksum(0xbeef))
		if !whole.VerifyChecksum(0xbeef) {
			t.Fatal("ComputeChecksum does not verify")
		}
	})
}

func FuzzICMPv4(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ICMPv4(b)
		if !m.IsValid() {
			return
		}
		c := make(ICMPv4, len(m))
		c.SetType(m.Type())
		c.SetCode(m.Code())
		c.SetID(m.ID())
		c.SetSeq(m.Seq())
		copy(c.Payload(), m.Payload())
		c.SetChecksum(c.ComputeChecksum())
		if !c.VerifyChecksum() {
			t.Fatal("ComputeChecksum does not verify")
		}
		c.SetChecksum(m.Checksum())
		if !bytes.Equal(c, b) {
			t.Fatalf("round trip % x, want % x", []byte(c), b)
		}
	})
}

func FuzzICMPv6(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m := ICMPv6(b)
		if !m.IsValid() {
			return
		}
		c := make(ICMPv6, len(m))
		c.SetType(m.Type())
		c.SetCode(m.Code())
		c.SetMTU(m.MTU())
		copy(c.Payload(), m.Payload())
		c.SetChecksum(c.ComputeChecksum(0x4242))
		if !c.VerifyChecksum(0x4242) {
			t.Fatal("ComputeChecksum does not verify")
		}
		c.SetChecksum(m.Checksum())
		if !bytes.Equal(c, b) {
			t.Fatalf("round trip % x, want % x", []byte(c), b)
		}
		if !m.IsNeighbor() {
			return
		}
		_ = m.NDPFlags()
		c.SetTarget(m.Target())
		if !bytes.Equal(c, b) {
			t.Fatal("target round trip")
		}
		opts := m.NDPOptions()
		_ = opts.IsValid()
		for _, typ := range []uint8{NDPOptionSourceLinkAddr, NDPOptionTargetLinkAddr} {
			v, ok := opts.Find(typ)
			if ok && len(v)%8 != 6 {
				t.Fatalf("option value of %d bytes", len(v))
			}
			if mac, ok := opts.LinkAddr(typ); ok && !bytes.Equal(mac[:], v[:6]) {
				t.Fatalf("address %v is not the option's %x", mac, v)
			}
		}
	})
}

func FuzzSum(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Sum(b, 0x1234), slowSum(b, 0x1234); got != want {
			t.Fatalf("Sum %#04x, reference %#04x", got, want)
		}
		n := len(b) / 2 &^ 1 // an even split point
		if Sum(b[n:], Sum(b[:n], 0)) != Sum(b, 0) {
			t.Fatalf("split at %d differs", n)
		}
	})
}

func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"02:00:5e:10:00:01", "02-00-5E-10-00-01", "0200.5e10.0001", "", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		if err != nil {
			return
		}
		back, err := ParseMAC(m.String())
		if err != nil || back != m {
			t.Fatalf("%q -> %v -> %v, %v", s, m, back, err)
		}
	})
}

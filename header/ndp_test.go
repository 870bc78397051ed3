package header

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestSolicitedNodeAndMulticastMAC(t *testing.T) {
	tests := []struct{ addr, node, mac string }{
		{"fd00::3", "ff02::1:ff00:3", "33:33:ff:00:00:03"},
		{"fe80::2ff:fe12:3456", "ff02::1:ff12:3456", "33:33:ff:12:34:56"},
		{"2001:db8::abcd:ef01:2345", "ff02::1:ff01:2345", "33:33:ff:01:23:45"},
	}
	for _, tt := range tests {
		node := SolicitedNode(netip.MustParseAddr(tt.addr))
		if node != netip.MustParseAddr(tt.node) {
			t.Errorf("SolicitedNode(%s) = %v, want %s", tt.addr, node, tt.node)
		}
		if mac := IPv6MulticastMAC(node); mac.String() != tt.mac {
			t.Errorf("IPv6MulticastMAC(%v) = %v, want %s", node, mac, tt.mac)
		}
	}
	if IPv6AllNodes != netip.MustParseAddr("ff02::1") || IPv6MulticastMAC(IPv6AllNodes).String() != "33:33:00:00:00:01" {
		t.Errorf("all-nodes %v, MAC %v", IPv6AllNodes, IPv6MulticastMAC(IPv6AllNodes))
	}
}

// icmp6Packet writes an IPv6 header with hop limit 255 in front of the
// message m, with m's checksum: the way the switch sends NDP answers.
func icmp6Packet(src, dst netip.Addr, m ICMPv6) IPv6 {
	b := make(IPv6, IPv6Len+len(m))
	b.Encode(uint16(len(m)), ProtoICMPv6, NDPHopLimit, src, dst)
	c := ICMPv6(b[IPv6Len:])
	copy(c, m)
	c.SetChecksum(c.ComputeChecksum(b.PseudoSum(ProtoICMPv6, len(c))))
	return b
}

func TestEncodeNeighborAdvert(t *testing.T) {
	m := make(ICMPv6, NDPAdvertLen+4) // longer than needed: nothing past NDPAdvertLen is written
	for i := range m {
		m[i] = 0xee
	}
	if n := m.EncodeNeighborAdvert(NDPFlagSolicited|NDPFlagOverride|0x1f, ip6B, macB); n != NDPAdvertLen {
		t.Fatalf("length %d, want %d", n, NDPAdvertLen)
	}
	if !bytes.Equal(m[NDPAdvertLen:], []byte{0xee, 0xee, 0xee, 0xee}) {
		t.Error("wrote past NDPAdvertLen")
	}
	pkt := icmp6Packet(ip6B, ip6A, m[:NDPAdvertLen])

	// gopacket, the oracle, builds the same bytes.
	ip := ip6(layers.IPProtocolICMPv6)
	ip.TrafficClass, ip.FlowLabel, ip.HopLimit, ip.SrcIP, ip.DstIP = 0, 0, 255, ipOf(ip6B), ipOf(ip6A)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	_ = icmp.SetNetworkLayerForChecksum(ip)
	want := build(t, ip, icmp, &layers.ICMPv6NeighborAdvertisement{Flags: 0x60, TargetAddress: ipOf(ip6B),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: hw(macB)}}})
	if !bytes.Equal(pkt, want) {
		t.Errorf("wrote % x\ngopacket % x", []byte(pkt), want)
	}
	got, ok := pkt.Neighbor()
	if !ok || got.Type() != ICMPv6NeighborAdvertisement || got.Target() != ip6B || got.NDPFlags() != NDPFlagSolicited|NDPFlagOverride {
		t.Fatalf("Neighbor() = % x %v", []byte(got), ok)
	}
	if mac, ok := got.NDPOptions().LinkAddr(NDPOptionTargetLinkAddr); !ok || mac != macB {
		t.Errorf("target link-layer address %v %v", mac, ok)
	}
}

func TestEncodeNeighborSolicit(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  netip.Addr
		dst  netip.Addr
		mac  MAC
		n    int
	}{
		{"address resolution", ip6A, ip6NS, macA, NDPAdvertLen},
		{"duplicate address detection", netip.IPv6Unspecified(), ip6NS, MAC{}, NDPNeighborLen},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := make(ICMPv6, NDPAdvertLen)
			n := m.EncodeNeighborSolicit(ip6B, tt.mac)
			if n != tt.n {
				t.Fatalf("length %d, want %d", n, tt.n)
			}
			pkt := icmp6Packet(tt.src, tt.dst, m[:n])
			ip := ip6(layers.IPProtocolICMPv6)
			ip.TrafficClass, ip.FlowLabel, ip.HopLimit, ip.SrcIP, ip.DstIP = 0, 0, 255, ipOf(tt.src), ipOf(tt.dst)
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
			_ = icmp.SetNetworkLayerForChecksum(ip)
			ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: ipOf(ip6B)}
			if !tt.mac.IsZero() {
				ns.Options = layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: hw(tt.mac)}}
			}
			if want := build(t, ip, icmp, ns); !bytes.Equal(pkt, want) {
				t.Errorf("wrote % x\ngopacket % x", []byte(pkt), want)
			}
			if _, ok := pkt.Neighbor(); !ok {
				t.Error("Neighbor() refuses it")
			}
		})
	}
}

// TestNeighborRefuses checks the RFC 4861 section 7.1 rules one by one on
// a valid solicitation or advertisement with one thing wrong.
func TestNeighborRefuses(t *testing.T) {
	ns := func(src, dst netip.Addr, mac MAC) IPv6 {
		m := make(ICMPv6, NDPAdvertLen)
		return icmp6Packet(src, dst, m[:m.EncodeNeighborSolicit(ip6B, mac)])
	}
	na := func(dst netip.Addr, flags uint8, target netip.Addr) IPv6 {
		m := make(ICMPv6, NDPAdvertLen)
		m.EncodeNeighborAdvert(flags, target, macB)
		return icmp6Packet(ip6B, dst, m)
	}
	resum := func(p IPv6) IPv6 {
		m := ICMPv6(p[IPv6Len:])
		m.SetChecksum(0)
		m.SetChecksum(m.ComputeChecksum(p.PseudoSum(ProtoICMPv6, len(m))))
		return p
	}
	hop := func(p IPv6, n uint8) IPv6 { p.SetHopLimit(n); return p }
	tests := []struct {
		name string
		pkt  IPv6
		ok   bool
	}{
		{"solicitation", ns(ip6A, ip6NS, macA), true},
		{"unicast solicitation", ns(ip6A, ip6B, macA), true},
		{"DAD solicitation", ns(netip.IPv6Unspecified(), ip6NS, MAC{}), true},
		{"unsolicited advertisement to all nodes", na(IPv6AllNodes, NDPFlagOverride, ip6B), true},
		{"solicited advertisement", na(ip6A, NDPFlagSolicited|NDPFlagOverride, ip6B), true},
		{"hop limit 64", hop(ns(ip6A, ip6NS, macA), 64), false},
		{"bad checksum", patch(ns(ip6A, ip6NS, macA), IPv6Len+2, 0), false},
		{"code 1", resum(patch(ns(ip6A, ip6NS, macA), IPv6Len+1, 1)), false},
		{"zero-length option", resum(patch(ns(ip6A, ip6NS, macA), IPv6Len+NDPNeighborLen+1, 0)), false},
		{"multicast target", na(IPv6AllNodes, NDPFlagOverride, IPv6AllNodes), false},
		{"multicast source", ns(netip.MustParseAddr("ff02::2"), ip6NS, macA), false},
		{"DAD to a unicast address", ns(netip.IPv6Unspecified(), ip6B, MAC{}), false},
		{"DAD with a source link-layer address", ns(netip.IPv6Unspecified(), ip6NS, macA), false},
		{"solicited advertisement to all nodes", na(IPv6AllNodes, NDPFlagSolicited, ip6B), false},
		{"not ICMPv6", resum(patch(ns(ip6A, ip6NS, macA), 6, ProtoUDP)), false},
		{"echo request", resum(patch(ns(ip6A, ip6NS, macA), IPv6Len, ICMPv6EchoRequest)), false},
	}
	for _, tt := range tests {
		if !tt.pkt.IsValid() {
			t.Fatalf("%s: test packet not valid", tt.name)
		}
		if _, ok := tt.pkt.Neighbor(); ok != tt.ok {
			t.Errorf("%s: Neighbor() ok %v, want %v", tt.name, ok, tt.ok)
		}
	}
}

func TestEncodePacketTooBig(t *testing.T) {
	for _, n := range []int{0, 48, PacketTooBigQuoteMax, PacketTooBigQuoteMax + 100} {
		quote := bytes.Repeat([]byte{0x5a}, n)
		m := make(ICMPv6, ICMPv6Len+n)
		got := m.EncodePacketTooBig(1450, quote)
		if want := ICMPv6Len + min(n, PacketTooBigQuoteMax); got != want {
			t.Errorf("quote %d: length %d, want %d", n, got, want)
			continue
		}
		pkt := icmp6Packet(ip6B, ip6A, m[:got])
		if len(pkt) > IPv6MinMTU {
			t.Errorf("quote %d: packet of %d bytes, more than the minimum MTU", n, len(pkt))
		}
		p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
		icmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if icmp == nil || icmp.TypeCode != layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0) {
			t.Fatalf("quote %d: gopacket reads %v", n, p)
		}
		c := ICMPv6(pkt[IPv6Len:])
		if c.MTU() != 1450 || !c.VerifyChecksum(pkt.PseudoSum(ProtoICMPv6, len(c))) || !bytes.Equal(c.Payload(), quote[:got-ICMPv6Len]) {
			t.Errorf("quote %d: MTU %d, checksum ok %v", n, c.MTU(), c.VerifyChecksum(pkt.PseudoSum(ProtoICMPv6, len(c))))
		}
	}
}

// FuzzNeighbor reads arbitrary bytes as an IPv6 packet. Whatever Neighbor
// accepts, the answer the switch would build from it (an advertisement
// for its target) must be accepted again and decode with gopacket.
func FuzzNeighbor(f *testing.F) {
	addSeeds(f)
	m := make(ICMPv6, NDPAdvertLen)
	f.Add([]byte(icmp6Packet(netip.IPv6Unspecified(), ip6NS, m[:m.EncodeNeighborSolicit(ip6B, MAC{})])))
	f.Add([]byte(icmp6Packet(ip6A, ip6NS, m[:m.EncodeNeighborSolicit(ip6B, macA)])))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := IPv6(b)
		if !h.IsValid() {
			return
		}
		msg, ok := h.Neighbor()
		if !ok {
			return
		}
		if msg.Type() != ICMPv6NeighborSolicitation && msg.Type() != ICMPv6NeighborAdvertisement || msg.Target().IsMulticast() {
			t.Fatalf("accepted type %d target %v", msg.Type(), msg.Target())
		}
		dst, flags := h.Source(), uint8(NDPFlagSolicited|NDPFlagOverride)
		if dst.IsUnspecified() {
			dst, flags = IPv6AllNodes, NDPFlagOverride
		}
		if dst.IsMulticast() {
			flags = NDPFlagOverride
		}
		a := make(ICMPv6, NDPAdvertLen)
		a.EncodeNeighborAdvert(flags, msg.Target(), macB)
		ans := icmp6Packet(msg.Target(), dst, a)
		back, ok := ans.Neighbor()
		if !ok || back.Target() != msg.Target() {
			t.Fatalf("answer % x not accepted", []byte(ans))
		}
		p := gopacket.NewPacket(ans, layers.LayerTypeIPv6, gopacket.Default)
		if p.ErrorLayer() != nil || p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement) == nil {
			t.Fatalf("gopacket: %v", p)
		}
	})
}

// FuzzPacketTooBig builds a Packet Too Big message around arbitrary bytes:
// it never exceeds the minimum MTU and always checks out.
func FuzzPacketTooBig(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, quote []byte) {
		m := make(ICMPv6, ICMPv6Len+len(quote))
		n := m.EncodePacketTooBig(uint32(len(quote)), quote)
		pkt := icmp6Packet(ip6B, ip6A, m[:n])
		c := ICMPv6(pkt[IPv6Len:])
		if len(pkt) > IPv6MinMTU || c.Type() != ICMPv6PacketTooBig || c.MTU() != uint32(len(quote)) ||
			!c.VerifyChecksum(pkt.PseudoSum(ProtoICMPv6, len(c))) || !bytes.HasPrefix(quote, c.Payload()) {
			t.Fatalf("message % x", []byte(c))
		}
	})
}

// TestNeighborAllocs checks that reading a solicitation and writing the
// advertisement that answers it allocate nothing.
func TestNeighborAllocs(t *testing.T) {
	m := make(ICMPv6, NDPAdvertLen)
	pkt := icmp6Packet(ip6A, ip6NS, m[:m.EncodeNeighborSolicit(ip6B, macA)])
	out := make(IPv6, IPv6Len+NDPAdvertLen)
	ok := false
	n := testing.AllocsPerRun(100, func() {
		msg, found := pkt.Neighbor()
		mac, has := msg.NDPOptions().LinkAddr(NDPOptionSourceLinkAddr)
		out.Encode(NDPAdvertLen, ProtoICMPv6, NDPHopLimit, msg.Target(), pkt.Source())
		a := ICMPv6(out[IPv6Len:])
		a.EncodeNeighborAdvert(NDPFlagSolicited|NDPFlagOverride, msg.Target(), macB)
		a.SetChecksum(a.ComputeChecksum(out.PseudoSum(ProtoICMPv6, NDPAdvertLen)))
		_, back := out.Neighbor()
		ok = found && has && mac == macA && back
	})
	if n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
	if !ok {
		t.Error("the answer was not built")
	}
}

package ndp

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/header"
)

var (
	macA     = header.MAC{0x02, 0, 0, 0, 0, 0x0a}
	macR     = header.MAC{0x02, 0, 0, 0, 0, 0x72}
	macRes   = header.MAC{0x02, 0, 0, 0, 0, 0x53}
	ipA      = netip.MustParseAddr("fd20::a")
	ipR      = netip.MustParseAddr("fd20::14")
	resolver = netip.MustParseAddr("fd20::1")
	addrs    = mapAddrs{ipA: macA, ipR: macR}
)

// solicit builds with gopacket, the oracle, the IPv6 packet of a
// solicitation for target from src (hop limit 255, to the solicited-node
// address), with a source link-layer address option holding sll unless it
// is zero.
func solicit(t testing.TB, src, target netip.Addr, sll header.MAC) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(header.SolicitedNode(target).AsSlice())}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	_ = icmp.SetNetworkLayerForChecksum(ip)
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: net.IP(target.AsSlice())}
	if !sll.IsZero() {
		ns.Options = layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: sll[:]}}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, icmp, ns); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// advert decodes an advertisement with gopacket and returns its fields.
func advert(t *testing.T, b []byte) (ip *layers.IPv6, na *layers.ICMPv6NeighborAdvertisement) {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeIPv6, gopacket.Default)
	if p.ErrorLayer() != nil {
		t.Fatalf("gopacket: %v", p.ErrorLayer().Error())
	}
	ip, _ = p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	na, _ = p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	icmp, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ip == nil || na == nil || icmp == nil {
		t.Fatalf("not an advertisement: %v", p)
	}
	// gopacket does not check checksums: recompute and compare.
	h := header.IPv6(b)
	if m := header.ICMPv6(h.Payload()); !m.VerifyChecksum(h.PseudoSum(header.ProtoICMPv6, len(m))) {
		t.Error("bad ICMPv6 checksum")
	}
	return ip, na
}

func TestAnswer(t *testing.T) {
	allNodes := header.MAC{0x33, 0x33, 0, 0, 0, 1}
	tests := []struct {
		name       string
		src        netip.Addr
		sll        header.MAC
		frameSrc   header.MAC
		target     netip.Addr
		mac        header.MAC // answer's MAC, zero for none
		ethDst     header.MAC
		dst        netip.Addr
		solicited  bool
		parseFails bool
	}{
		{name: "endpoint", src: ipA, sll: macA, frameSrc: macA, target: ipR, mac: macR, ethDst: macA, dst: ipA, solicited: true},
		{name: "resolver", src: ipA, sll: macA, frameSrc: macA, target: resolver, mac: macRes, ethDst: macA, dst: ipA, solicited: true},
		{name: "without a link-layer option", src: ipA, frameSrc: macA, target: ipR, mac: macR, ethDst: macA, dst: ipA, solicited: true},
		{name: "from a link-local address", src: netip.MustParseAddr("fe80::a"), sll: macA, frameSrc: macA, target: ipR, mac: macR, ethDst: macA, dst: netip.MustParseAddr("fe80::a"), solicited: true},
		{name: "DAD for another endpoint's address", src: netip.IPv6Unspecified(), frameSrc: macA, target: ipR, mac: macR, ethDst: allNodes, dst: header.IPv6AllNodes},
		{name: "DAD for the resolver's address", src: netip.IPv6Unspecified(), frameSrc: macA, target: resolver, mac: macRes, ethDst: allNodes, dst: header.IPv6AllNodes},
		{name: "DAD for its own address", src: netip.IPv6Unspecified(), frameSrc: macA, target: ipA},
		{name: "own address", src: ipA, sll: macA, frameSrc: macA, target: ipA},
		{name: "unknown address", src: ipA, sll: macA, frameSrc: macA, target: netip.MustParseAddr("fd20::99")},
		{name: "link-local target", src: ipA, sll: macA, frameSrc: macA, target: netip.MustParseAddr("fe80::14")},
		{name: "from a MAC the address has", src: ipA, sll: macR, frameSrc: macR, target: ipR},
		{name: "link-layer option is not the frame's source", src: ipA, sll: macR, frameSrc: macA, target: ipR, parseFails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sol, ok := ParseSolicitation(solicit(t, tt.src, tt.target, tt.sll), tt.frameSrc)
			if ok == tt.parseFails {
				t.Fatalf("ParseSolicitation ok %v", ok)
			}
			if !ok {
				return
			}
			if sol != (Solicitation{SenderMAC: tt.frameSrc, Source: tt.src, Target: tt.target}) || sol.IsDAD() != tt.src.IsUnspecified() {
				t.Fatalf("ParseSolicitation = %+v", sol)
			}
			mac, ok := Lookup(sol, resolver, macRes, addrs)
			if ok != !tt.mac.IsZero() || mac != tt.mac {
				t.Fatalf("Lookup = %v %v, want %v", mac, ok, tt.mac)
			}
			if !ok {
				return
			}
			b := make([]byte, AdvertisementLen)
			if ethDst := PutAdvertisement(b, sol, mac); ethDst != tt.ethDst {
				t.Errorf("Ethernet destination %v, want %v", ethDst, tt.ethDst)
			}
			ip, na := advert(t, b)
			if ip.HopLimit != 255 || !ip.SrcIP.Equal(tt.target.AsSlice()) || !ip.DstIP.Equal(tt.dst.AsSlice()) {
				t.Errorf("IPv6 %v -> %v hop limit %d", ip.SrcIP, ip.DstIP, ip.HopLimit)
			}
			if !na.TargetAddress.Equal(tt.target.AsSlice()) || na.Solicited() != tt.solicited || !na.Override() || na.Router() {
				t.Errorf("advertisement target %v S %v O %v R %v", na.TargetAddress, na.Solicited(), na.Override(), na.Router())
			}
			if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, tt.mac[:]) {
				t.Errorf("options %v, want the target link-layer address %v", na.Options, tt.mac)
			}
			if _, ok := header.IPv6(b).Neighbor(); !ok {
				t.Error("header.IPv6.Neighbor refuses the answer")
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	good := solicit(t, ipA, ipR, macA)
	hop := bytes.Clone(good)
	hop[7] = 64
	dadWithOption := solicit(t, netip.IPv6Unspecified(), ipR, macA)
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.IP(ipR.AsSlice()), DstIP: net.IP(ipA.AsSlice())}
	_ = icmp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, icmp,
		&layers.ICMPv6NeighborAdvertisement{TargetAddress: net.IP(ipR.AsSlice())})
	for name, b := range map[string][]byte{
		"hop limit 64":                 hop,
		"DAD with a link-layer option": dadWithOption,
		"an advertisement":             buf.Bytes(),
		"truncated":                    good[:50],
		"empty":                        nil,
	} {
		if sol, ok := ParseSolicitation(b, macA); ok {
			t.Errorf("%s: parsed as %+v", name, sol)
		}
	}
}

func TestLookupIgnoresIPv4(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.1")
	sol := Solicitation{SenderMAC: macA, Source: ipA, Target: v4}
	if _, ok := Lookup(sol, v4, macRes, mapAddrs{v4: macR}); ok {
		t.Error("answered for an IPv4 address")
	}
}

func TestPutUnsolicited(t *testing.T) {
	b := make([]byte, UnsolicitedLen)
	PutUnsolicited(b, ipR, macR)
	eth := header.Ethernet(b)
	if eth.Destination() != (header.MAC{0x33, 0x33, 0, 0, 0, 1}) || eth.Source() != macR || eth.Type() != header.EtherTypeIPv6 {
		t.Fatalf("Ethernet % x", b[:header.EthernetLen])
	}
	ip, na := advert(t, b[header.EthernetLen:])
	if !ip.DstIP.Equal(net.ParseIP("ff02::1")) || !na.TargetAddress.Equal(ipR.AsSlice()) || na.Solicited() || !na.Override() {
		t.Errorf("%v -> %v target %v S %v O %v", ip.SrcIP, ip.DstIP, na.TargetAddress, na.Solicited(), na.Override())
	}
}

func TestAllocs(t *testing.T) {
	b := solicit(t, ipA, ipR, macA)
	out := make([]byte, AdvertisementLen)
	ok := false
	n := testing.AllocsPerRun(100, func() {
		sol, parsed := ParseSolicitation(b, macA)
		mac, found := Lookup(sol, resolver, macRes, addrs)
		PutAdvertisement(out, sol, mac)
		ok = parsed && found
	})
	if n != 0 || !ok {
		t.Errorf("%v allocations (answered %v), want 0", n, ok)
	}
}

// FuzzSolicitation reads arbitrary bytes as an IPv6 packet from macA:
// whenever the switch would answer, the answer is a valid advertisement
// for the target, to the asker or (for DAD) to all nodes, that the
// kernel's checks (header.IPv6.Neighbor) accept.
func FuzzSolicitation(f *testing.F) {
	f.Add(solicit(f, ipA, ipR, macA))
	f.Add(solicit(f, netip.IPv6Unspecified(), ipR, header.MAC{}))
	f.Add(solicit(f, ipA, resolver, header.MAC{}))
	f.Add(solicit(f, ipA, ipA, macA))
	f.Fuzz(func(t *testing.T, b []byte) {
		sol, ok := ParseSolicitation(b, macA)
		if !ok {
			return
		}
		mac, ok := Lookup(sol, resolver, macRes, addrs)
		if !ok {
			return
		}
		if mac == macA || mac.IsZero() {
			t.Fatalf("answered with %v", mac)
		}
		out := make([]byte, AdvertisementLen)
		ethDst := PutAdvertisement(out, sol, mac)
		h := header.IPv6(out)
		m, ok := h.Neighbor()
		if !ok || m.Type() != header.ICMPv6NeighborAdvertisement || m.Target() != sol.Target || h.Source() != sol.Target {
			t.Fatalf("answer % x", out)
		}
		if ll, ok := m.NDPOptions().LinkAddr(header.NDPOptionTargetLinkAddr); !ok || ll != mac {
			t.Fatalf("target link-layer address %v %v", ll, ok)
		}
		if sol.IsDAD() != (h.Destination() == header.IPv6AllNodes) || sol.IsDAD() == (ethDst == macA) {
			t.Fatalf("DAD %v answered to %v at %v", sol.IsDAD(), h.Destination(), ethDst)
		}
	})
}

// mapAddrs is the table Lookup reads, as a Go map.
type mapAddrs map[netip.Addr]header.MAC

func (m mapAddrs) Get(ip netip.Addr) (header.MAC, bool) { mac, ok := m[ip]; return mac, ok }

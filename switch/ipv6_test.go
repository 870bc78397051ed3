package vswitch

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/header"
)

// The dual-stack test network: VNI 100 of namesView with an IPv6 subnet,
// the resolver at fd64::1 and IPv6 addresses for a, b and the remote
// endpoint R.
var (
	resolver6 = netip.MustParseAddr("fd64::1")
	ip6A      = netip.MustParseAddr("fd64::a")
	ip6B      = netip.MustParseAddr("fd64::b")
	ip6R      = netip.MustParseAddr("fd64::14")
	ip6Free   = netip.MustParseAddr("fd64::99")
)

// dualView is namesView(mtu) with the IPv6 subnet fd64::/64.
func dualView(mtu int) *View {
	v := namesView(mtu)
	nw := v.Networks[100]
	nw.Subnet6 = netip.MustParsePrefix("fd64::/64")
	nw.Resolver6 = resolver6
	nw.Addrs = nw.Addrs.With(ip6A, macA).With(ip6B, macB).With(ip6R, macR)
	return v
}

func newDualWorld(t *testing.T, cfg Config) *world {
	t.Helper()
	w := newWorld(t, cfg)
	w.s.SetView(dualView(1450))
	return w
}

// ip6Frame builds an Ethernet/IPv6 frame from src/sip to dst/dip with the
// given layers after the IPv6 header (gopacket computes lengths and
// checksums); the hop limit is 255 when hop255, else 64.
func ip6Frame(t testing.TB, dst, src MAC, sip, dip netip.Addr, next layers.IPProtocol, hop255 bool, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: sip.AsSlice(), DstIP: dip.AsSlice()}
	if hop255 {
		ip.HopLimit = 255
	}
	for _, l := range ls {
		if c, ok := l.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			_ = c.SetNetworkLayerForChecksum(ip)
		}
	}
	all := append([]gopacket.SerializableLayer{
		&layers.Ethernet{DstMAC: net.HardwareAddr(dst[:]), SrcMAC: net.HardwareAddr(src[:]), EthernetType: layers.EthernetTypeIPv6}, ip}, ls...)
	return serialize(t, all...)
}

// icmp6 returns the ICMPv6 header layer of type typ.
func icmp6(typ uint8) *layers.ICMPv6 {
	return &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
}

// solicit is a neighbour solicitation for target from port a (macA): from
// sip with a source link-layer option, or from :: without one (DAD).
func solicit(t testing.TB, sip, target netip.Addr) []byte {
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: target.AsSlice()}
	if !sip.IsUnspecified() {
		ns.Options = layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: macA[:]}}
	}
	node := header.SolicitedNode(target)
	return ip6Frame(t, header.IPv6MulticastMAC(node), macA, sip, node, layers.IPProtocolICMPv6, true, icmp6(layers.ICMPv6TypeNeighborSolicitation), ns)
}

// advert is a neighbour advertisement from port a (macA, fe80 EUI-64 of
// macA) claiming target, with macA in its target link-layer option.
func advert(t testing.TB, sip, target netip.Addr) []byte {
	na := &layers.ICMPv6NeighborAdvertisement{Flags: 0x20, TargetAddress: target.AsSlice(),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: macA[:]}}}
	return ip6Frame(t, header.IPv6MulticastMAC(header.IPv6AllNodes), macA, sip, header.IPv6AllNodes, layers.IPProtocolICMPv6, true,
		icmp6(layers.ICMPv6TypeNeighborAdvertisement), na)
}

// checkAdvert decodes frame as the switch's neighbour advertisement for
// target at mac, sent to ethDst/dip, with the Solicited flag solicited.
func checkAdvert(t *testing.T, frame []byte, target netip.Addr, mac, ethDst MAC, dip netip.Addr, solicited bool) {
	t.Helper()
	checkByOracle(t, frame)
	pkt := decode(t, frame)
	e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	na, ok := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !ok || ip == nil {
		t.Fatalf("not a neighbour advertisement: %v", pkt)
	}
	if !bytes.Equal(e.SrcMAC, mac[:]) || !bytes.Equal(e.DstMAC, ethDst[:]) || !ip.SrcIP.Equal(target.AsSlice()) ||
		!ip.DstIP.Equal(dip.AsSlice()) || ip.HopLimit != 255 {
		t.Errorf("%v/%v -> %v/%v hop limit %d, want %v/%v -> %v/%v 255", e.SrcMAC, ip.SrcIP, e.DstMAC, ip.DstIP, ip.HopLimit, mac, target, ethDst, dip)
	}
	if !na.TargetAddress.Equal(target.AsSlice()) || na.Solicited() != solicited || !na.Override() || na.Router() ||
		len(na.Options) != 1 || !bytes.Equal(na.Options[0].Data, mac[:]) {
		t.Errorf("advertisement %+v, want %v at %v, solicited %v", na, target, mac, solicited)
	}
}

func TestNDPAnswered(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target netip.Addr
		want   MAC
	}{
		{"local endpoint", ip6B, macB},
		{"remote endpoint", ip6R, macR},
		{"resolver", resolver6, resolverMAC},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newDualWorld(t, Config{})
			w.fromPort(t, "a", solicit(t, ip6A, tt.target))
			checkAdvert(t, onlyFrame(t, w.a.Written()), tt.target, tt.want, macA, ip6A, true)
			if n := len(w.b.Written()); n != 0 {
				t.Errorf("b got %d frames, want none", n)
			}
			mustNothingSent(t, w)
			if st := w.s.Stats(); st.NDPAnswered != 1 || st.NDPFlooded != 0 || st.NDPDADAnswered != 0 {
				t.Errorf("NDP answered %d flooded %d DAD %d, want 1 0 0", st.NDPAnswered, st.NDPFlooded, st.NDPDADAnswered)
			}
		})
	}
}

// TestNDPDAD: a duplicate address probe for another endpoint's address is
// answered to all nodes at the first hop; a probe for the prober's own
// address, or for a free one, is flooded as before (nobody answers it).
func TestNDPDAD(t *testing.T) {
	allNodes := header.IPv6MulticastMAC(header.IPv6AllNodes)
	w := newDualWorld(t, Config{})
	w.fromPort(t, "a", solicit(t, netip.IPv6Unspecified(), ip6R))
	checkAdvert(t, onlyFrame(t, w.a.Written()), ip6R, macR, allNodes, header.IPv6AllNodes, false)
	mustNothingSent(t, w)
	if st := w.s.Stats(); st.NDPDADAnswered != 1 || st.NDPAnswered != 0 {
		t.Errorf("DAD answered %d, answered %d, want 1 0", st.NDPDADAnswered, st.NDPAnswered)
	}
	for _, target := range []netip.Addr{ip6A, ip6Free} {
		w := newDualWorld(t, Config{})
		w.fromPort(t, "a", solicit(t, netip.IPv6Unspecified(), target))
		if n := len(w.a.Written()); n != 0 {
			t.Errorf("probe for %v: answered %d times", target, n)
		}
		if len(w.b.Written()) != 1 || len(w.u.waitPackets(t, 3)) != 3 {
			t.Errorf("probe for %v: not flooded", target)
		}
		if st := w.s.Stats(); st.NDPFlooded != 1 || st.NDPDADAnswered != 0 {
			t.Errorf("probe for %v: flooded %d DAD answered %d, want 1 0", target, st.NDPFlooded, st.NDPDADAnswered)
		}
	}
}

// TestNDPIPv4OnlyNetwork: a network without an IPv6 subnet answers no
// solicitation: IPv6 on its link works as before, by flooding.
func TestNDPIPv4OnlyNetwork(t *testing.T) {
	w := newNamesWorld(t, Config{}, 1450)
	w.fromPort(t, "a", solicit(t, eui64(macA), eui64(macB)))
	if n := len(w.a.Written()); n != 0 || len(w.b.Written()) != 1 {
		t.Errorf("answered %d, b got %d, want 0 and the flooded solicitation", n, len(w.b.Written()))
	}
}

// TestResolver6: DNS over UDP and TCP and ICMPv6 echo to the resolver's
// IPv6 address are answered from it.
func TestResolver6(t *testing.T) {
	h := &fakeDNS{answer: testAnswer}
	w := newDualWorld(t, Config{DNS: h})
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	w.fromPort(t, "a", ip6Frame(t, resolverMAC, macA, ip6A, resolver6, layers.IPProtocolUDP, false, udp, gopacket.Payload(testQuery)))
	if len(h.calls) != 1 || h.calls[0].src != netip.AddrPortFrom(ip6A, 40000) || !bytes.Equal(h.calls[0].query, testQuery) {
		t.Fatalf("ServeDNS calls %+v, want one from [%v]:40000", h.calls, ip6A)
	}
	got := onlyFrame(t, w.a.Written())
	checkByOracle(t, got)
	pkt := decode(t, got)
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	u, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if ip == nil || u == nil || !ip.SrcIP.Equal(resolver6.AsSlice()) || !ip.DstIP.Equal(ip6A.AsSlice()) || u.SrcPort != 53 ||
		u.DstPort != 40000 || !bytes.Equal(u.Payload, testAnswer) || !bytes.Equal(e.SrcMAC, resolverMAC[:]) || !bytes.Equal(e.DstMAC, macA[:]) {
		t.Fatalf("answer %v", pkt)
	}

	echo := &layers.ICMPv6Echo{Identifier: 9, SeqNumber: 3}
	w.fromPort(t, "a", ip6Frame(t, resolverMAC, macA, ip6A, resolver6, layers.IPProtocolICMPv6, false,
		icmp6(layers.ICMPv6TypeEchoRequest), echo, gopacket.Payload("ping data")))
	if n := len(w.a.Written()); n != 2 {
		t.Fatalf("%d frames in a, want the DNS answer and the echo reply", n)
	}
	// gopacket drops the data of an ICMPv6 echo: read it with header.
	reply := header.IPv6(header.Ethernet(w.a.Written()[1]).Payload())
	r := header.ICMPv6(reply.Payload())
	if !reply.IsValid() || reply.Source() != resolver6 || reply.Destination() != ip6A || r.Type() != header.ICMPv6EchoReply ||
		r.ID() != 9 || r.Seq() != 3 || string(r.Payload()) != "ping data" || !r.VerifyChecksum(reply.PseudoSum(header.ProtoICMPv6, len(r))) {
		t.Errorf("echo reply % x", []byte(reply))
	}

	// DNS over TCP: a SYN to port 53 gets a SYN-ACK over IPv6 with the
	// MSS an IPv6 packet of the network MTU leaves (1450 - 40 - 20).
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 53, SYN: true, Seq: 100, Window: 65535}
	w.fromPort(t, "a", ip6Frame(t, resolverMAC, macA, ip6A, resolver6, layers.IPProtocolTCP, false, tcp))
	if n := len(w.a.Written()); n != 3 {
		t.Fatalf("%d frames in a, want a SYN-ACK third", n)
	}
	synack := w.a.Written()[2]
	checkByOracle(t, synack)
	pkt = decode(t, synack)
	ip6, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	seg, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip6 == nil || seg == nil || !ip6.SrcIP.Equal(resolver6.AsSlice()) || !ip6.DstIP.Equal(ip6A.AsSlice()) ||
		!seg.SYN || !seg.ACK || seg.Ack != 101 || seg.SrcPort != 53 || len(seg.Options) == 0 ||
		seg.Options[0].OptionType != layers.TCPOptionKindMSS || binary.BigEndian.Uint16(seg.Options[0].OptionData) != 1450-60 {
		t.Fatalf("SYN-ACK %v", pkt)
	}
	// UDP to another port is not for the resolver.
	w.fromPort(t, "a", ip6Frame(t, resolverMAC, macA, ip6A, resolver6, layers.IPProtocolUDP, false, &layers.UDP{SrcPort: 1, DstPort: 54}, gopacket.Payload("x")))
	mustNothingSent(t, w)
	if st := w.s.Stats(); st.Drops["to_resolver"] != 1 || st.EchoReplies != 1 || st.DNSQueries != 1 || st.DNSTCPConns != 1 || len(w.a.Written()) != 3 {
		t.Errorf("stats %+v, want one DNS query, one echo reply, one TCP connection, UDP to port 54 dropped as to_resolver", st)
	}
}

// TestUnsolicitedAdvertOnMACChange: when an IPv6 address of the view moves
// to another MAC, the local ports hear an unsolicited advertisement for it
// (besides the gratuitous ARP of its IPv4 address).
func TestUnsolicitedAdvertOnMACChange(t *testing.T) {
	w := newDualWorld(t, Config{})
	v := dualView(1450)
	v.Networks[100].Addrs = v.Networks[100].Addrs.With(ip6R, macX)
	w.s.SetView(v)
	var got []byte
	for _, f := range w.a.Written() {
		if header.Ethernet(f).Type() == header.EtherTypeIPv6 {
			got = f
		}
	}
	if got == nil {
		t.Fatalf("no advertisement in a among %d frames", len(w.a.Written()))
	}
	checkAdvert(t, got, ip6R, macX, header.IPv6MulticastMAC(header.IPv6AllNodes), header.IPv6AllNodes, false)
	if st := w.s.Stats(); st.UNASent != 2 {
		t.Errorf("UNASent %d, want 2 (ports a and b)", st.UNASent)
	}
}

// TestGuardDualStack: on a dual-stack network the guard binds IPv6
// addresses as it binds IPv4 ones, refuses neighbour advertisements for
// addresses that are not the sender's, and router advertisements from
// endpoints.
func TestGuardDualStack(t *testing.T) {
	udp := func(src MAC, sip netip.Addr) []byte {
		return ip6Frame(t, macB, src, sip, ip6B, layers.IPProtocolUDP, false, &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload("x"))
	}
	ra := func(src MAC) []byte {
		return ip6Frame(t, header.IPv6MulticastMAC(header.IPv6AllNodes), src, eui64(src), header.IPv6AllNodes, layers.IPProtocolICMPv6, true,
			icmp6(layers.ICMPv6TypeRouterAdvertisement), &layers.ICMPv6RouterAdvertisement{HopLimit: 64, RouterLifetime: 1800})
	}
	redirect := ip6Frame(t, macB, macA, eui64(macA), ip6B, layers.IPProtocolICMPv6, true,
		icmp6(layers.ICMPv6TypeRedirect), &layers.ICMPv6Redirect{TargetAddress: eui64(macA).AsSlice(), DestinationAddress: ip6R.AsSlice()})
	for _, tc := range []struct {
		name  string
		from  netip.Addr // zero: from port a
		frame []byte
		drop  string
	}{
		{"source: another endpoint's IPv6 address", netip.Addr{}, udp(macA, ip6B), "spoofed_ip"},
		{"source: a remote endpoint's IPv6 address", netip.Addr{}, udp(macA, ip6R), "spoofed_ip"},
		{"source: the resolver's IPv6 address", netip.Addr{}, udp(macA, resolver6), "spoofed_ip"},
		{"source: a free address of the subnet", netip.Addr{}, udp(macA, ip6Free), "unassigned_ip"},
		{"advertisement for another endpoint's address", netip.Addr{}, advert(t, ip6A, ip6B), "spoofed_ip"},
		{"advertisement for the resolver's address", netip.Addr{}, advert(t, ip6A, resolver6), "spoofed_ip"},
		{"router advertisement", netip.Addr{}, ra(macA), "router_advert"},
		{"redirect", netip.Addr{}, redirect, "router_advert"},
		{"member host: a local endpoint's address", host2, udp(macR, ip6A), "spoofed_ip"},
		{"member host: router advertisement", host2, ra(macR), "router_advert"},

		{"own address", netip.Addr{}, udp(macA, ip6A), ""},
		{"own link-local address", netip.Addr{}, udp(macA, eui64(macA)), ""},
		{"address outside the subnet", netip.Addr{}, udp(macA, netip.MustParseAddr("2001:db8::1")), ""},
		{"advertisement for its own address", netip.Addr{}, advert(t, ip6A, ip6A), ""},
		{"duplicate address probe", netip.Addr{}, solicit(t, netip.IPv6Unspecified(), ip6Free), ""},
		{"member host: its endpoint's address", host2, udp(macR, ip6R), ""},
		{"external VTEP: router advertisement", external, ra(macE), ""},
	} {
		t.Run(tc.name, func(t *testing.T) { guardVerdict(t, dualView(1500), tc.from, tc.frame, tc.drop) })
	}
}

// FuzzFromPortIPv6 feeds arbitrary frames from a TAP port of a dual-stack
// network with the least MTU IPv6 allows (RFC 8200 section 5) through the
// local path (neighbour discovery, the resolver's IPv6 address, the guard,
// Packet Too Big): nothing panics, nothing written back exceeds the MTU,
// and every
// neighbour advertisement the switch writes back passes the receive checks
// of RFC 4861 section 7.1.2 and names the MAC the view gives its target.
func FuzzFromPortIPv6(f *testing.F) {
	f.Add(solicit(f, ip6A, ip6B))
	f.Add(solicit(f, netip.IPv6Unspecified(), ip6R))
	f.Add(solicit(f, ip6A, resolver6))
	f.Add(advert(f, ip6A, ip6B))
	f.Add(ip6Frame(f, resolverMAC, macA, ip6A, resolver6, layers.IPProtocolUDP, false, &layers.UDP{SrcPort: 40000, DstPort: 53}, gopacket.Payload(testQuery)))
	f.Add(ip6Frame(f, resolverMAC, macA, ip6A, resolver6, layers.IPProtocolICMPv6, false, icmp6(layers.ICMPv6TypeEchoRequest), &layers.ICMPv6Echo{Identifier: 1}))
	f.Add(ip6Frame(f, resolverMAC, macA, ip6A, resolver6, layers.IPProtocolTCP, false, &layers.TCP{SrcPort: 40000, DstPort: 53, SYN: true, Window: 65535}))
	f.Add(ip6Frame(f, macR, macA, ip6A, ip6R, layers.IPProtocolUDP, false, &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload(fill(1300, 0))))
	f.Fuzz(func(t *testing.T, frame []byte) {
		w := newWorld(t, Config{DNS: &fakeDNS{answer: testAnswer}})
		v := dualView(header.IPv6MinMTU)
		w.s.SetView(v)
		w.fromPort(t, "a", frame)
		for _, out := range w.a.Written() {
			if len(out) > 14+4+header.IPv6MinMTU {
				t.Fatalf("wrote a %d-byte frame into the port", len(out))
			}
			eth := header.Ethernet(out)
			if !eth.IsValid() || eth.Type() != header.EtherTypeIPv6 {
				continue
			}
			ip := header.IPv6(eth.Payload())
			if !ip.IsValid() || ip.NextHeader() != header.ProtoICMPv6 || header.ICMPv6(ip.Payload()).Type() != header.ICMPv6NeighborAdvertisement {
				continue
			}
			m, ok := ip.Neighbor()
			if !ok {
				t.Fatalf("advertisement % x fails the receive checks", out)
			}
			owner, _ := v.Networks[100].Addrs.Get(m.Target())
			if m.Target() == resolver6 {
				owner = resolverMAC
			}
			if ll, _ := m.NDPOptions().LinkAddr(header.NDPOptionTargetLinkAddr); ll != owner || owner == macA {
				t.Fatalf("advertisement for %v names %v, the view says %v", m.Target(), ll, owner)
			}
		}
	})
}

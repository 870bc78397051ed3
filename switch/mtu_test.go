package vswitch

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"

	"vxswitch/vxlan"
)

func TestFragNeededIPv4DF(t *testing.T) {
	tests := []struct {
		name     string
		resolver bool
		srcIP    netip.Addr
		srcMAC   MAC
	}{
		{"from the resolver", true, resolverIP, resolverMAC},
		{"no resolver: from the destination", false, ipR, macR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newNamesWorld(t, Config{}, 1450)
			if !tt.resolver {
				v := namesView(1450)
				v.Networks[100].Resolver, v.Networks[100].ResolverMAC = netip.Addr{}, MAC{}
				w.s.SetView(v)
			}
			ping := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}
			frame := ipv4Frame(t, macR, macA, ipA, ipR, true, ping, layers.IPProtocolICMPv4, fill(1472, 0))
			if len(frame) != 14+1500 {
				t.Fatalf("test frame is %d bytes", len(frame))
			}
			w.fromPort(t, "a", frame)

			got := onlyFrame(t, w.a.Written())
			checkByOracle(t, got)
			pkt := decode(t, got)
			e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			icmp := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if !bytes.Equal(e.DstMAC, macA[:]) || !bytes.Equal(e.SrcMAC, tt.srcMAC[:]) {
				t.Errorf("Ethernet %v -> %v, want %v -> %v", e.SrcMAC, e.DstMAC, tt.srcMAC, macA)
			}
			if !ip.SrcIP.Equal(tt.srcIP.AsSlice()) || !ip.DstIP.Equal(ipA.AsSlice()) || ip.Protocol != layers.IPProtocolICMPv4 || ip.TTL != 64 {
				t.Errorf("IPv4 %v -> %v proto %v ttl %d", ip.SrcIP, ip.DstIP, ip.Protocol, ip.TTL)
			}
			if icmp.TypeCode != layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded) {
				t.Errorf("ICMP %v, want fragmentation needed", icmp.TypeCode)
			}
			if icmp.Id != 0 || icmp.Seq != 1450 { // unused, next-hop MTU (RFC 1191)
				t.Errorf("unused %d next-hop MTU %d, want 0 1450", icmp.Id, icmp.Seq)
			}
			if quote, want := icmp.Payload, frame[14:14+20+8]; !bytes.Equal(quote, want) {
				t.Errorf("quote % x, want header + 8 bytes % x", quote, want)
			}
			mustNothingSent(t, w)
			if st := w.s.Stats(); st.ICMPFragNeeded != 1 || len(st.Drops) != 0 {
				t.Errorf("ICMPFragNeeded %d drops %v", st.ICMPFragNeeded, st.Drops)
			}
		})
	}
}

func TestPacketTooBigIPv6(t *testing.T) {
	w := newNamesWorld(t, Config{}, 1450)
	src, dst := netip.MustParseAddr("fd00::a"), netip.MustParseAddr("fd00::20")
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	udp.SetNetworkLayerForChecksum(ip6)
	frame := serialize(t,
		&layers.Ethernet{DstMAC: net.HardwareAddr(macR[:]), SrcMAC: net.HardwareAddr(macA[:]), EthernetType: layers.EthernetTypeIPv6},
		ip6, udp, gopacket.Payload(fill(1452, 3))) // 1500-byte IPv6 packet
	w.fromPort(t, "a", frame)

	got := onlyFrame(t, w.a.Written())
	checkByOracle(t, got)
	pkt := decode(t, got)
	e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	icmp := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if !bytes.Equal(e.DstMAC, macA[:]) || !bytes.Equal(e.SrcMAC, resolverMAC[:]) {
		t.Errorf("Ethernet %v -> %v", e.SrcMAC, e.DstMAC)
	}
	if !ip.SrcIP.Equal(dst.AsSlice()) || !ip.DstIP.Equal(src.AsSlice()) || ip.NextHeader != layers.IPProtocolICMPv6 {
		t.Errorf("IPv6 %v -> %v next %v", ip.SrcIP, ip.DstIP, ip.NextHeader)
	}
	if icmp.TypeCode != layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0) {
		t.Errorf("ICMPv6 %v, want packet too big", icmp.TypeCode)
	}
	body := icmp.Payload // MTU (4 bytes), then the quote
	if mtu := binary.BigEndian.Uint32(body[0:4]); mtu != 1450 {
		t.Errorf("MTU field %d, want 1450", mtu)
	}
	if len(got)-14 != 1280 {
		t.Errorf("ICMPv6 packet is %d bytes, want the 1280-byte minimum MTU filled", len(got)-14)
	}
	if quote := body[4:]; !bytes.Equal(quote, frame[14:14+len(quote)]) {
		t.Errorf("quote is not the start of the packet")
	}
	mustNothingSent(t, w)
	if st := w.s.Stats(); st.ICMPv6TooBig != 1 {
		t.Errorf("ICMPv6TooBig = %d, want 1", st.ICMPv6TooBig)
	}
}

func TestFragmentIPv4WithoutDF(t *testing.T) {
	w := newNamesWorld(t, Config{}, 1450)
	payload := fill(3000, 9)
	udp := &layers.UDP{SrcPort: 4000, DstPort: 5000}
	frame := ipv4Frame(t, macR, macA, ipA, ipR, false, udp, layers.IPProtocolUDP, payload)
	w.fromPort(t, "a", frame)

	sent := w.u.packets()
	if len(sent) != 3 { // 3008 bytes of UDP in pieces of 1424
		t.Fatalf("underlay got %d packets, want 3 fragments", len(sent))
	}
	d := ip4defrag.NewIPv4Defragmenter()
	var whole *layers.IPv4
	for i, p := range sent {
		if p.dst.Addr() != host2 {
			t.Errorf("fragment %d sent to %v, want %v", i, p.dst, host2)
		}
		vni, inner, err := vxlan.Decode(p.pkt)
		if err != nil || vni != 100 {
			t.Fatalf("fragment %d: vni %d err %v", i, vni, err)
		}
		if len(inner) > 14+1450 {
			t.Errorf("fragment %d is %d bytes, over the MTU", i, len(inner))
		}
		if !ipv4HeaderOK(inner[14:]) {
			t.Errorf("fragment %d: bad header checksum", i)
		}
		pkt := decode(t, inner)
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		last := i == len(sent)-1
		if (ip.Flags&layers.IPv4MoreFragments != 0) == last || ip.Id != 0x1234 {
			t.Errorf("fragment %d: flags %v id %#x", i, ip.Flags, ip.Id)
		}
		if !last && len(ip.Payload)%8 != 0 {
			t.Errorf("fragment %d carries %d bytes, not a multiple of 8", i, len(ip.Payload))
		}
		out, err := d.DefragIPv4(ip)
		if err != nil {
			t.Fatalf("fragment %d: defragment: %v", i, err)
		}
		if out != nil {
			whole = out
		}
	}
	if whole == nil {
		t.Fatal("fragments do not reassemble")
	}
	if want := frame[14+20:]; !bytes.Equal(whole.Payload, want) {
		t.Errorf("reassembled %d bytes, want the original %d bytes of UDP", len(whole.Payload), len(want))
	}
	if st := w.s.Stats(); st.Fragmented != 1 || st.EncapFrames != 3 || len(st.Drops) != 0 {
		t.Errorf("Fragmented %d EncapFrames %d drops %v", st.Fragmented, st.EncapFrames, st.Drops)
	}
}

func TestOversizeDropped(t *testing.T) {
	icmpErr := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, 1)}
	tests := []struct {
		name  string
		frame func(t *testing.T) []byte
	}{
		{"not IP", func(t *testing.T) []byte { return eth(macR, macA, 0x88b5, 14+1451) }},
		{"ICMP error with DF", func(t *testing.T) []byte {
			return ipv4Frame(t, macR, macA, ipA, ipR, true, icmpErr, layers.IPProtocolICMPv4, fill(1480, 0))
		}},
		{"truncated IPv4", func(t *testing.T) []byte {
			f := ipv4Frame(t, macR, macA, ipA, ipR, true, nil, layers.IPProtocolUDP, fill(1480, 0))
			binary.BigEndian.PutUint16(f[16:18], 3000) // total length beyond the frame
			return f
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newNamesWorld(t, Config{}, 1450)
			w.fromPort(t, "a", tt.frame(t))
			if got := writtenCount(w.a, w.b); got[0]+got[1] != 0 {
				t.Errorf("frames written to a, b = %v, want none", got)
			}
			mustNothingSent(t, w)
			if st := w.s.Stats(); st.Drops["oversize"] != 1 {
				t.Errorf("drops %v, want oversize 1", st.Drops)
			}
		})
	}
}

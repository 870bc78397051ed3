package replay

import (
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// FuzzParseOuter feeds arbitrary bytes to the replay tool's outer-header
// parser. It must never panic, and a packet it accepts must be one gopacket
// also reads as Ethernet (one optional 802.1Q tag), IPv4 or IPv6 and UDP with the
// same addresses and ports, its payload a part of the input no longer than
// the UDP length allows.
func FuzzParseOuter(f *testing.F) {
	udp := func(vlan bool, payload []byte) []byte {
		eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ls := []gopacket.SerializableLayer{eth}
		if vlan {
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv4})
		}
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: netip.MustParseAddr("10.0.0.1").AsSlice(), DstIP: netip.MustParseAddr("10.0.0.2").AsSlice()}
		u := &layers.UDP{SrcPort: 40000, DstPort: 4789}
		u.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip, u, gopacket.Payload(payload))
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	udp6 := func(payload []byte) []byte {
		eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: netip.MustParseAddr("fd77::1").AsSlice(), DstIP: netip.MustParseAddr("fd77::2").AsSlice()}
		u := &layers.UDP{SrcPort: 40000, DstPort: 4789}
		u.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, u, gopacket.Payload(payload)); err != nil {
			f.Fatal(err)
		}
		return buf.Bytes()
	}
	f.Add(udp6([]byte{0x08, 0, 0, 0, 0, 0, 0x64, 0}))
	f.Add(udp6(nil)[:50])
	f.Add(udp(false, []byte{0x08, 0, 0, 0, 0, 0, 0x64, 0}))
	f.Add(udp(true, []byte("vxlan")))
	f.Add(udp(false, nil)[:30])
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, src, dst, reason := parseOuter(data)
		if reason != "" {
			if payload != nil {
				t.Fatalf("reason %q with a %d-byte payload", reason, len(payload))
			}
			return
		}
		if len(payload) > len(data) {
			t.Fatalf("payload of %d bytes from %d bytes of input", len(payload), len(data))
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
		u, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		var srcIP, dstIP netip.Addr
		if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			srcIP, dstIP = netip.AddrFrom4([4]byte(ip.SrcIP.To4())), netip.AddrFrom4([4]byte(ip.DstIP.To4()))
		} else if ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			srcIP, dstIP = netip.AddrFrom16([16]byte(ip.SrcIP.To16())), netip.AddrFrom16([16]byte(ip.DstIP.To16()))
		}
		if !srcIP.IsValid() || u == nil {
			return // gopacket refuses some headers parseOuter takes (odd IPv4 options, IPv6 extension headers it does not know)
		}
		if netip.AddrPortFrom(srcIP, uint16(u.SrcPort)) != src || netip.AddrPortFrom(dstIP, uint16(u.DstPort)) != dst {
			t.Fatalf("parseOuter %s > %s, gopacket %s:%d > %s:%d", src, dst, srcIP, u.SrcPort, dstIP, u.DstPort)
		}
		if int(u.Length) < 8 || len(payload) != int(u.Length)-8 {
			t.Fatalf("payload %d bytes, UDP length %d", len(payload), u.Length)
		}
	})
}

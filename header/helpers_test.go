package header

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Addresses and MACs of the test packets.
var (
	macA  = MAC{0x02, 0, 0, 0, 0, 0x0a}
	macB  = MAC{0x02, 0, 0, 0, 0, 0x0b}
	ip4A  = netip.MustParseAddr("10.20.0.2")
	ip4B  = netip.MustParseAddr("10.20.0.3")
	ip6A  = netip.MustParseAddr("fd00::2")
	ip6B  = netip.MustParseAddr("fd00::3")
	ip6NS = netip.MustParseAddr("ff02::1:ff00:3") // solicited-node address of ip6B
)

// build serializes ls with gopacket, the test oracle, fixing lengths and
// computing checksums.
func build(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func hw(m MAC) net.HardwareAddr { return net.HardwareAddr(m[:]) }

func ipOf(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

func eth(dst, src MAC, t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{DstMAC: hw(dst), SrcMAC: hw(src), EthernetType: t}
}

func ip4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment,
		Protocol: proto, SrcIP: ipOf(ip4A), DstIP: ipOf(ip4B)}
}

func ip6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, TrafficClass: 0xb8, FlowLabel: 0x12345, HopLimit: 64,
		NextHeader: next, SrcIP: ipOf(ip6A), DstIP: ipOf(ip6B)}
}

// udpOver returns a UDP layer whose checksum gopacket computes over ip.
func udpOver(ip gopacket.NetworkLayer, src, dst layers.UDPPort) *layers.UDP {
	u := &layers.UDP{SrcPort: src, DstPort: dst}
	_ = u.SetNetworkLayerForChecksum(ip)
	return u
}

package decode

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"vxswitch/header"
)

// Addresses of the crafted packets: documentation ranges (RFC 5737, RFC
// 3849) outside, a private range inside.
var (
	outerMAC1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	outerMAC2 = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	innerMAC1 = net.HardwareAddr{0x02, 0, 0, 0, 0x01, 0x01}
	innerMAC2 = net.HardwareAddr{0x02, 0, 0, 0, 0x01, 0x02}
	broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	inner1    = net.IP{10, 1, 0, 1}
	inner2    = net.IP{10, 1, 0, 2}
)

// writeCrafted writes crafted.pcap: the packets of craftedPackets, 1 ms
// apart from a fixed time.
func writeCrafted(t *testing.T, path string) {
	var file bytes.Buffer
	w := pcapgo.NewWriter(&file)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, pkt := range craftedPackets(t) {
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(pkt), Length: len(pkt)}
		if err := w.WritePacket(ci, pkt); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// craftedPackets builds VXLAN packets the kernel never sends, for the
// decoder's warnings:
//
//  1. IPv4 outer, VNI 100, reserved bits set (flags 0x8c, byte 2, byte 7), inner ARP request
//  2. IPv4 outer, VNI 200, I flag clear (flags 0x00), inner ICMP echo request
//  3. IPv6 outer, VNI 0xabcdef, inner DNS query
//  4. IPv4 outer on UDP port 8472, VNI 300, inner TCP SYN with a partial (offload) checksum
func craftedPackets(tb testing.TB) [][]byte {
	arp := serialize(tb,
		&layers.Ethernet{SrcMAC: innerMAC1, DstMAC: broadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
			SourceHwAddress: innerMAC1, SourceProtAddress: inner1,
			DstHwAddress: make([]byte, 6), DstProtAddress: inner2,
		})

	ip := innerIPv4(layers.IPProtocolICMPv4, inner2)
	icmp := serialize(tb, innerEth(), ip,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x1234, Seq: 1},
		gopacket.Payload("ping"))

	ip = innerIPv4(layers.IPProtocolUDP, net.IP{10, 1, 0, 53})
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	mustChecksum(tb, udp.SetNetworkLayerForChecksum(ip))
	dns := serialize(tb, innerEth(), ip, udp, &layers.DNS{
		ID: 0xbeef, RD: true,
		Questions: []layers.DNSQuestion{{Name: []byte("db.web"), Type: layers.DNSTypeA, Class: layers.DNSClassIN}},
	})

	ip = innerIPv4(layers.IPProtocolTCP, inner2)
	tcp := &layers.TCP{SrcPort: 45000, DstPort: 80, Seq: 1000, SYN: true, Window: 64240}
	mustChecksum(tb, tcp.SetNetworkLayerForChecksum(ip))
	syn := serialize(tb, innerEth(), ip, tcp)
	// What a kernel with checksum offload hands to the NIC: only the
	// folded pseudo-header sum in the checksum field (bytes 16-17 of TCP).
	seg := syn[14+20 : 14+20+20] // without the Ethernet padding after it
	binary.BigEndian.PutUint16(seg[16:], header.PseudoSum(inner1, inner2, header.ProtoTCP, uint32(len(seg))))

	return [][]byte{
		encap(tb, false, 4789, vxlanBytes(0x8c, [3]byte{0, 1, 0}, 100, 0x7f), arp),
		encap(tb, false, 4789, vxlanBytes(0x00, [3]byte{}, 200, 0), icmp),
		encap(tb, true, 4789, vxlanBytes(0x08, [3]byte{}, 0xabcdef, 0), dns),
		encap(tb, false, 8472, vxlanBytes(0x08, [3]byte{}, 300, 0), syn),
	}
}

// vxlanBytes builds an 8-byte VXLAN header with any bits, valid or not.
func vxlanBytes(flags byte, reserved [3]byte, vni uint32, last byte) []byte {
	return []byte{flags, reserved[0], reserved[1], reserved[2], byte(vni >> 16), byte(vni >> 8), byte(vni), last}
}

// innerEth is the Ethernet header of an inner IPv4 frame.
func innerEth() *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: innerMAC1, DstMAC: innerMAC2, EthernetType: layers.EthernetTypeIPv4}
}

// innerIPv4 is an inner IPv4 header from inner1 to dst.
func innerIPv4(proto layers.IPProtocol, dst net.IP) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Id: 0x0101, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: inner1, DstIP: dst}
}

// encap wraps an inner frame in outer Ethernet, IPv4 or IPv6, UDP to
// port, and the given VXLAN header. Over IPv4 the UDP checksum is zero, as
// RFC 7348 section 5 recommends and Linux sends.
func encap(tb testing.TB, v6 bool, port layers.UDPPort, vx, frame []byte) []byte {
	udp := &layers.UDP{SrcPort: 51000, DstPort: port}
	eth := &layers.Ethernet{SrcMAC: outerMAC1, DstMAC: outerMAC2, EthernetType: layers.EthernetTypeIPv4}
	var ip gopacket.SerializableLayer
	if v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
		mustChecksum(tb, udp.SetNetworkLayerForChecksum(ip6))
		ip = ip6
	} else {
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Id: 0x0202, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
		mustChecksum(tb, udp.SetNetworkLayerForChecksum(ip4))
		ip = ip4
	}
	pkt := serialize(tb, eth, ip, udp, gopacket.Payload(append(vx, frame...)))
	if !v6 {
		binary.BigEndian.PutUint16(pkt[14+20+6:], 0)
	}
	return pkt
}

// serialize lays out ls with lengths and checksums filled in.
func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatal(err)
	}
	return slices.Clone(buf.Bytes())
}

func mustChecksum(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

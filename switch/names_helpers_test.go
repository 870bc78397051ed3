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

// Addresses of the endpoints of VNI 100 in namesView.
var (
	resolverIP  = netip.MustParseAddr("10.100.0.1")
	ipA         = netip.MustParseAddr("10.100.0.10") // port a, macA
	ipB         = netip.MustParseAddr("10.100.0.11") // port b, macB
	ipR         = netip.MustParseAddr("10.100.0.20") // on host2, macR
	ipUnknown   = netip.MustParseAddr("10.100.0.99")
	resolverMAC = MAC{0x02, 0, 0, 0, 0, 0x01}
)

// namesView is testView with a resolver and endpoint addresses on VNI 100,
// and the MTU of VNI 100 set to mtu.
func namesView(mtu int) *View {
	v := testView()
	nw := v.Networks[100]
	nw.MTU = mtu
	nw.Resolver = resolverIP
	nw.ResolverMAC = resolverMAC
	nw.Addrs = AddrsOf(map[netip.Addr]MAC{ipA: macA, ipB: macB, ipR: macR})
	return v
}

// newNamesWorld is newWorld with namesView(mtu).
func newNamesWorld(t *testing.T, cfg Config, mtu int) *world {
	t.Helper()
	w := newWorld(t, cfg)
	w.s.SetView(namesView(mtu))
	return w
}

// serialize builds a frame from gopacket layers, computing lengths and
// checksums.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// ipv4Frame builds Ethernet/IPv4/proto/payload from src to dst, with DF
// when df is set; l4 is the transport layer (nil for raw payload).
func ipv4Frame(t testing.TB, dstMAC, srcMAC MAC, src, dst netip.Addr, df bool, l4 gopacket.SerializableLayer, proto layers.IPProtocol, payload []byte) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	if df {
		ip.Flags = layers.IPv4DontFragment
	}
	ls := []gopacket.SerializableLayer{
		&layers.Ethernet{DstMAC: net.HardwareAddr(dstMAC[:]), SrcMAC: net.HardwareAddr(srcMAC[:]), EthernetType: layers.EthernetTypeIPv4},
		ip,
	}
	if l4 != nil {
		if c, ok := l4.(interface {
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}); ok {
			c.SetNetworkLayerForChecksum(ip)
		}
		ls = append(ls, l4)
	}
	return serialize(t, append(ls, gopacket.Payload(payload))...)
}

// fill returns n bytes counting up from seed.
func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

// decode decodes frame with gopacket and fails on a decoding error.
func decode(t *testing.T, frame []byte) gopacket.Packet {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode the frame: %v\n% x", el.Error(), frame)
	}
	return pkt
}

// checkByOracle re-serializes the layers gopacket decoded from frame with
// gopacket computing every checksum (and not touching lengths), and fails
// unless the result is frame byte for byte: every length and checksum the
// switch wrote is what gopacket would write.
func checkByOracle(t *testing.T, frame []byte) {
	t.Helper()
	pkt := decode(t, frame)
	var ls []gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	for _, l := range pkt.Layers() {
		switch l := l.(type) {
		case *layers.IPv4:
			netLayer = l
		case *layers.IPv6:
			netLayer = l
		case *layers.UDP:
			l.SetNetworkLayerForChecksum(netLayer)
		case *layers.TCP:
			l.SetNetworkLayerForChecksum(netLayer)
		case *layers.ICMPv6:
			l.SetNetworkLayerForChecksum(netLayer)
		}
		sl, ok := l.(gopacket.SerializableLayer)
		if !ok {
			t.Fatalf("layer %v cannot be serialized", l.LayerType())
		}
		ls = append(ls, sl)
		if _, isPayload := l.(*gopacket.Payload); isPayload {
			break
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	if len(frame) < 60 && len(got) == 60 && isZero(got[len(frame):]) {
		got = got[:len(frame)] // gopacket pads short Ethernet frames to 60 bytes
	}
	if !bytes.Equal(got, frame) {
		t.Errorf("gopacket's serialization differs from the switch's frame:\n got % x\nwant % x", frame, got)
	}
}

// ipv4HeaderOK reports whether the IPv4 header checksum of h verifies
// (reference RFC 1071 sum).
func ipv4HeaderOK(h []byte) bool {
	ihl := int(h[0]&0x0f) * 4
	return refSum(h[:ihl], 0) == 0xffff
}

// udpChecksumOK verifies the UDP checksum of the IPv4 packet ip with the
// reference sum and the pseudo-header.
func udpChecksumOK(ip []byte) bool {
	ihl := int(ip[0]&0x0f) * 4
	udp := ip[ihl:binary.BigEndian.Uint16(ip[2:4])]
	pseudo := append(append([]byte(nil), ip[12:20]...), 0, header.ProtoUDP, byte(len(udp)>>8), byte(len(udp)))
	return refSum(udp, refSum(pseudo, 0)) == 0xffff
}

// mustNothingSent fails if the underlay got any packet.
func mustNothingSent(t *testing.T, w *world) {
	t.Helper()
	if n := len(w.u.packets()); n != 0 {
		t.Errorf("underlay got %d packets, want none", n)
	}
}

// onlyFrame returns the one frame written to the device, failing otherwise.
func onlyFrame(t *testing.T, frames [][]byte) []byte {
	t.Helper()
	if len(frames) != 1 {
		t.Fatalf("got %d frames, want 1", len(frames))
	}
	return frames[0]
}

// isZero reports whether every byte of b is zero.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

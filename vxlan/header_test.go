package vxlan

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		vni  uint32
		want []byte
	}{
		{0, []byte{0x08, 0, 0, 0, 0x00, 0x00, 0x00, 0}},
		{1, []byte{0x08, 0, 0, 0, 0x00, 0x00, 0x01, 0}},
		{42, []byte{0x08, 0, 0, 0, 0x00, 0x00, 0x2a, 0}},
		{0x123456, []byte{0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0}},
		{MaxVNI, []byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0}},
		{0xab000001, []byte{0x08, 0, 0, 0, 0x00, 0x00, 0x01, 0}}, // high byte ignored
	}
	for _, tt := range tests {
		b := bytes.Repeat([]byte{0xee}, 10)
		Encode(b, tt.vni)
		if !bytes.Equal(b[:8], tt.want) {
			t.Errorf("Encode(%#x) = % x, want % x", tt.vni, b[:8], tt.want)
		}
		if !bytes.Equal(b[8:], []byte{0xee, 0xee}) {
			t.Errorf("Encode(%#x) wrote past the header: % x", tt.vni, b)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		pkt     []byte
		vni     uint32
		inner   []byte
		wantErr error
	}{
		{"minimal", []byte{0x08, 0, 0, 0, 0, 0, 0x2a, 0}, 42, []byte{}, nil},
		{"with inner", []byte{0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 0xde, 0xad}, 0x123456, []byte{0xde, 0xad}, nil},
		{"max vni", []byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0}, MaxVNI, []byte{}, nil},
		{"empty", nil, 0, nil, ErrShort},
		{"seven bytes", []byte{0x08, 0, 0, 0, 0, 0, 1}, 0, nil, ErrShort},
		{"I flag clear", []byte{0x00, 0, 0, 0, 0, 0, 1, 0}, 0, nil, ErrFlags},
		{"only G flag", []byte{0x80, 0, 0, 0, 0, 0, 1, 0}, 0, nil, ErrFlags},
		{"reserved flag bit", []byte{0x0c, 0, 0, 0, 0, 0, 1, 0}, 0, nil, ErrReserved},
		{"GBP flag", []byte{0x88, 0, 0, 0, 0, 0, 1, 0}, 0, nil, ErrReserved},
		{"byte 1 set", []byte{0x08, 0x40, 0, 0, 0, 0, 1, 0}, 0, nil, ErrReserved},
		{"byte 2 set", []byte{0x08, 0, 0x01, 0, 0, 0, 1, 0}, 0, nil, ErrReserved},
		{"byte 3 set", []byte{0x08, 0, 0, 0x01, 0, 0, 1, 0}, 0, nil, ErrReserved},
		{"byte 7 set", []byte{0x08, 0, 0, 0, 0, 0, 1, 0x01}, 0, nil, ErrReserved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vni, inner, err := Decode(tt.pkt)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode(% x) error = %v, want %v", tt.pkt, err, tt.wantErr)
			}
			if Header(tt.pkt).IsValid() != (tt.wantErr == nil) {
				t.Errorf("IsValid(% x) = %v, want %v", tt.pkt, !(tt.wantErr == nil), tt.wantErr == nil)
			}
			if err != nil {
				return
			}
			if vni != tt.vni || !bytes.Equal(inner, tt.inner) {
				t.Errorf("Decode(% x) = %#x, % x; want %#x, % x", tt.pkt, vni, inner, tt.vni, tt.inner)
			}
		})
	}
}

func TestHeaderAccessors(t *testing.T) {
	h := Header(make([]byte, HeaderLen))
	h.SetFlags(FlagI)
	h.SetVNI(0xfedcba)
	want := []byte{0x08, 0, 0, 0, 0xfe, 0xdc, 0xba, 0}
	if !bytes.Equal(h, want) {
		t.Fatalf("header = % x, want % x", []byte(h), want)
	}
	if h.Flags() != FlagI || h.VNI() != 0xfedcba || !h.IsValid() {
		t.Fatalf("Flags %#x VNI %#x IsValid %v", h.Flags(), h.VNI(), h.IsValid())
	}
	h.SetVNI(7)
	if h.VNI() != 7 || h.Flags() != FlagI {
		t.Fatalf("after SetVNI(7): VNI %d, flags %#x", h.VNI(), h.Flags())
	}
}

// outerPacket builds Ethernet/IPv4/UDP/VXLAN/Ethernet/payload with gopacket.
func outerPacket(t testing.TB, vni uint32) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	udp := &layers.UDP{SrcPort: 50000, DstPort: Port}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		ip, udp,
		&layers.VXLAN{ValidIDFlag: true, VNI: vni},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 3}, DstMAC: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, EthernetType: layers.EthernetTypeARP},
		gopacket.Payload([]byte("inner payload")),
	)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecodeAgainstGopacket decodes a whole outer packet built by gopacket and
// checks that gopacket and Decode agree on the header and the inner frame.
func TestDecodeAgainstGopacket(t *testing.T) {
	for _, vni := range []uint32{0, 1, 4242, 0x800000, MaxVNI} {
		pkt := outerPacket(t, vni)
		p := gopacket.NewPacket(pkt, layers.LayerTypeEthernet, gopacket.Default)
		udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Fatalf("gopacket found no UDP layer: %v", p)
		}
		gvx, ok := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
		if !ok {
			t.Fatalf("gopacket found no VXLAN layer: %v", p)
		}
		got, inner, err := Decode(udp.Payload)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if got != gvx.VNI || !gvx.ValidIDFlag {
			t.Errorf("VNI = %d, gopacket says %d (I flag %v)", got, gvx.VNI, gvx.ValidIDFlag)
		}
		if !bytes.Equal(inner, gvx.Payload) {
			t.Errorf("inner = % x, gopacket says % x", inner, gvx.Payload)
		}
		if !bytes.Equal(Header(udp.Payload)[:HeaderLen], gvx.Contents) {
			t.Errorf("header bytes differ from gopacket's")
		}
	}
}

// TestEncodeAgainstGopacket checks that gopacket decodes what Encode writes.
func TestEncodeAgainstGopacket(t *testing.T) {
	for _, vni := range []uint32{0, 1, 4242, 0x800000, MaxVNI} {
		pkt := outerPacket(t, 99)
		p := gopacket.NewPacket(pkt, layers.LayerTypeEthernet, gopacket.Default)
		udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		Encode(udp.Payload, vni) // overwrite the header in place
		q := gopacket.NewPacket(udp.Payload, layers.LayerTypeVXLAN, gopacket.Default)
		gvx, ok := q.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
		if !ok {
			t.Fatalf("gopacket cannot decode Encode's output: %v", q)
		}
		if !gvx.ValidIDFlag || gvx.VNI != vni || gvx.GBPExtension || gvx.GBPGroupPolicyID != 0 {
			t.Errorf("gopacket decoded %+v, want I flag and VNI %d only", gvx, vni)
		}
		eth, ok := q.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if !ok || !bytes.Equal(eth.SrcMAC, net.HardwareAddr{2, 0, 0, 0, 0, 3}) {
			t.Errorf("gopacket did not find the inner Ethernet frame after the header: %v", q)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x08, 0, 0, 0, 0, 0, 0x2a, 0})
	f.Add([]byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0, 1, 2, 3})
	f.Add([]byte{0x88, 0, 0, 0, 0, 0, 1, 0})
	f.Add([]byte{0x08})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		vni, inner, err := Decode(pkt)
		if Header(pkt).IsValid() != (err == nil) {
			t.Fatalf("IsValid disagrees with Decode error %v", err)
		}
		if err != nil {
			return
		}
		if vni > MaxVNI {
			t.Fatalf("VNI %#x exceeds 24 bits", vni)
		}
		if len(inner) != len(pkt)-HeaderLen {
			t.Fatalf("inner length %d, want %d", len(inner), len(pkt)-HeaderLen)
		}
		var h [HeaderLen]byte
		Encode(h[:], vni)
		if !bytes.Equal(h[:], pkt[:HeaderLen]) {
			t.Fatalf("Encode(Decode(% x)) = % x", pkt[:HeaderLen], h)
		}
	})
}

func TestZeroAllocs(t *testing.T) {
	pkt := []byte{0x08, 0, 0, 0, 0, 0, 0x2a, 0, 1, 2, 3}
	var sink uint32
	allocs := testing.AllocsPerRun(1000, func() {
		Encode(pkt, 42)
		vni, _, err := Decode(pkt)
		if err != nil {
			panic(err)
		}
		sink += vni
	})
	if allocs != 0 {
		t.Fatalf("Encode+Decode allocate %v times per call, want 0", allocs)
	}
	_ = sink
}

func BenchmarkDecode(b *testing.B) {
	pkt := []byte{0x08, 0, 0, 0, 0, 0, 0x2a, 0, 1, 2, 3}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOverheadByFamily(t *testing.T) {
	tests := []struct {
		addr   string
		want   int
		family string
	}{
		{"10.77.0.1", OverheadIPv4, "IPv4"},
		{"fd77::1", OverheadIPv6, "IPv6"},
		{"::ffff:10.77.0.1", OverheadIPv4, "IPv4"}, // IPv4-mapped: an IPv4 underlay
		{"2001:db8::1", 70, "IPv6"},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := Overhead(a); got != tt.want {
			t.Errorf("Overhead(%s) = %d, want %d", tt.addr, got, tt.want)
		}
		if got := Family(a); got != tt.family {
			t.Errorf("Family(%s) = %s, want %s", tt.addr, got, tt.family)
		}
	}
}

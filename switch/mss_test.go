package vswitch

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/vxlan"
)

// tcpFrame builds an Ethernet/IP/TCP frame macA -> macR (IPv6 when v6)
// with the given flags and options.
func tcpFrame(t testing.TB, v6, syn, ack bool, opts []layers.TCPOption) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, SYN: syn, ACK: ack, Window: 64240, Options: opts}
	e, ip := tcpLayers(v6, &layers.IPv4{}, tcp)
	return serialize(t, e, ip, tcp)
}

// tcpLayers returns the Ethernet and IP layers of a TCP frame macA -> macR
// over IPv6 (fd00::a -> fd00::20) when v6, else over ip4, which gets its
// version, TTL, protocol and addresses (ipA -> ipR) set; tcp's checksum is
// tied to the IP layer.
func tcpLayers(v6 bool, ip4 *layers.IPv4, tcp *layers.TCP) (*layers.Ethernet, gopacket.SerializableLayer) {
	e := &layers.Ethernet{DstMAC: net.HardwareAddr(macR[:]), SrcMAC: net.HardwareAddr(macA[:]), EthernetType: layers.EthernetTypeIPv4}
	if v6 {
		e.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: netip.MustParseAddr("fd00::a").AsSlice(), DstIP: netip.MustParseAddr("fd00::20").AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip6)
		return e, ip6
	}
	ip4.Version, ip4.IHL, ip4.TTL, ip4.Protocol = 4, 5, 64, layers.IPProtocolTCP
	ip4.SrcIP, ip4.DstIP = ipA.AsSlice(), ipR.AsSlice()
	tcp.SetNetworkLayerForChecksum(ip4)
	return e, ip4
}

func mssOpt(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: binary.BigEndian.AppendUint16(nil, v)}
}

var nop = layers.TCPOption{OptionType: layers.TCPOptionKindNop, OptionLength: 1}

// mssOf returns the MSS option of the TCP segment in frame, 0 if none.
func mssOf(t *testing.T, frame []byte) uint16 {
	t.Helper()
	tcp := decode(t, frame).Layer(layers.LayerTypeTCP).(*layers.TCP)
	for _, o := range tcp.Options {
		if o.OptionType == layers.TCPOptionKindMSS {
			return binary.BigEndian.Uint16(o.OptionData)
		}
	}
	return 0
}

func TestMSSClampFromPort(t *testing.T) {
	tests := []struct {
		name    string
		v6, ack bool
		opts    []layers.TCPOption
		noClamp bool
		want    uint16
		clamped uint64
	}{
		{"ipv4 syn", false, false, []layers.TCPOption{mssOpt(1460)}, false, 1410, 1},
		{"ipv4 syn-ack", false, true, []layers.TCPOption{mssOpt(8960)}, false, 1410, 1},
		{"ipv6 syn", true, false, []layers.TCPOption{mssOpt(1440)}, false, 1390, 1},
		{"odd offset", false, false, []layers.TCPOption{nop, mssOpt(1460), nop, nop, nop}, false, 1410, 1},
		{"after window scale", false, false, []layers.TCPOption{nop, {OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}, mssOpt(0xffff)}, false, 1410, 1},
		{"already small", false, false, []layers.TCPOption{mssOpt(1200)}, false, 1200, 0},
		{"exactly the limit", false, false, []layers.TCPOption{mssOpt(1410)}, false, 1410, 0},
		{"clamping off", false, false, []layers.TCPOption{mssOpt(1460)}, true, 1460, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newNamesWorld(t, Config{NoClampMSS: tt.noClamp}, 1450)
			frame := tcpFrame(t, tt.v6, true, tt.ack, tt.opts)
			w.fromPort(t, "a", frame)
			sent := w.u.waitPackets(t, 1)
			_, inner, err := vxlan.Decode(sent[0].pkt)
			if err != nil {
				t.Fatal(err)
			}
			if got := mssOf(t, inner); got != tt.want {
				t.Errorf("MSS %d, want %d", got, tt.want)
			}
			checkByOracle(t, inner) // the TCP checksum is right
			if tt.clamped == 0 && !bytes.Equal(inner, frame) {
				t.Error("frame changed although nothing was clamped")
			}
			if st := w.s.Stats(); st.MSSClamped != tt.clamped {
				t.Errorf("MSSClamped = %d, want %d", st.MSSClamped, tt.clamped)
			}
		})
	}
}

func TestMSSClampFromUnderlay(t *testing.T) {
	w := newNamesWorld(t, Config{}, 1450)
	frame := tcpFrame(t, false, true, true, []layers.TCPOption{mssOpt(1460)})
	copy(frame[0:6], macA[:]) // to port a
	copy(frame[6:12], macR[:])
	swapIPv4Addrs(frame)
	w.fromUnderlay(host2, 100, frame)
	got := onlyFrame(t, w.a.Written())
	if mss := mssOf(t, got); mss != 1410 {
		t.Errorf("MSS %d, want 1410", mss)
	}
	checkByOracle(t, got)
	if st := w.s.Stats(); st.MSSClamped != 1 {
		t.Errorf("MSSClamped = %d, want 1", st.MSSClamped)
	}
}

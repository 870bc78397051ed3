package vswitch

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// innerPacket builds an Ethernet frame macR -> macA with a correct TCP or
// UDP checksum computed by gopacket, and returns it with the offset of the
// transport checksum field and the folded pseudo-header sum the kernel would
// leave there for CHECKSUM_PARTIAL.
func innerPacket(t testing.TB, v6, udp, vlan bool) (frame []byte, csumAt int, partial uint16) {
	t.Helper()
	var ls []gopacket.SerializableLayer
	ethType := layers.EthernetTypeIPv4
	if v6 {
		ethType = layers.EthernetTypeIPv6
	}
	e := &layers.Ethernet{DstMAC: net.HardwareAddr(macA[:]), SrcMAC: net.HardwareAddr(macR[:]), EthernetType: ethType}
	ls = append(ls, e)
	l2 := 14
	if vlan {
		e.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: 5, Type: ethType})
		l2 += 4
	}
	var netLayer gopacket.NetworkLayer
	var src, dst net.IP
	l3 := 20
	proto := layers.IPProtocolTCP
	if udp {
		proto = layers.IPProtocolUDP
	}
	if v6 {
		src, dst = net.ParseIP("fd00::1"), net.ParseIP("fd00::2")
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src, DstIP: dst}
		netLayer, l3 = ip, 40
		ls = append(ls, ip)
	} else {
		src, dst = net.IP{192, 168, 7, 1}, net.IP{192, 168, 7, 2}
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: src, DstIP: dst}
		netLayer = ip
		ls = append(ls, ip)
	}
	payload := gopacket.Payload(bytes.Repeat([]byte("partial checksum "), 20)[:333]) // odd length
	if udp {
		u := &layers.UDP{SrcPort: 5353, DstPort: 9999}
		u.SetNetworkLayerForChecksum(netLayer)
		ls = append(ls, u)
		csumAt = l2 + l3 + 6
	} else {
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 12345, Ack: 678, ACK: true, PSH: true, Window: 502}
		tcp.SetNetworkLayerForChecksum(netLayer)
		ls = append(ls, tcp)
		csumAt = l2 + l3 + 16
	}
	ls = append(ls, payload)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	frame = buf.Bytes()

	// The pseudo-header sum, computed the long way: addresses, protocol,
	// transport length as 16-bit words.
	l4len := len(frame) - l2 - l3
	var words []byte
	if v6 {
		words = append(append(words, src.To16()...), dst.To16()...)
	} else {
		words = append(append(words, src.To4()...), dst.To4()...)
	}
	words = append(words, 0, byte(proto), byte(l4len>>8), byte(l4len))
	partial = refSum(words, 0)
	return frame, csumAt, partial
}

func TestPartialChecksumCompletion(t *testing.T) {
	tests := []struct {
		name          string
		v6, udp, vlan bool
	}{
		{"ipv4 tcp", false, false, false},
		{"ipv4 udp", false, true, false},
		{"ipv6 tcp", true, false, false},
		{"ipv6 udp", true, true, false},
		{"vlan ipv4 tcp", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good, at, partial := innerPacket(t, tt.v6, tt.udp, tt.vlan)
			sent := bytes.Clone(good)
			binary.BigEndian.PutUint16(sent[at:], partial)
			if bytes.Equal(sent, good) {
				t.Fatal("test packet's checksum equals its pseudo-header sum; pick other data")
			}
			w := newWorld(t, Config{})
			w.fromUnderlay(host2, 100, sent)
			got := w.a.Written()
			if len(got) != 1 {
				t.Fatalf("a got %d frames, want 1", len(got))
			}
			if !bytes.Equal(got[0], good) {
				t.Errorf("checksum %#04x, want gopacket's %#04x",
					binary.BigEndian.Uint16(got[0][at:]), binary.BigEndian.Uint16(good[at:]))
			}
			if n := w.s.Stats().CsumCompleted; n != 1 {
				t.Errorf("CsumCompleted = %d, want 1", n)
			}
		})
	}
}

func TestPartialChecksumLeftAlone(t *testing.T) {
	good, at, partial := innerPacket(t, false, false, false)
	bad := bytes.Clone(good)
	binary.BigEndian.PutUint16(bad[at:], partial^0x0101) // wrong and not partial
	fragment := bytes.Clone(good)
	binary.BigEndian.PutUint16(fragment[at:], partial)
	fragment[14+6] |= 0x20 // more fragments
	tests := []struct {
		name  string
		frame []byte
	}{
		{"correct checksum", good},
		{"wrong checksum", bad},
		{"fragment", fragment},
		{"truncated ip", good[:14+19]},
		{"arp", eth(macA, macR, 0x0806, 60)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := bytes.Clone(tt.frame)
			if completePartialChecksum(f) {
				t.Error("completePartialChecksum reported a change")
			}
			if !bytes.Equal(f, tt.frame) {
				t.Error("frame was modified")
			}
		})
	}
}

func FuzzCompletePartialChecksum(f *testing.F) {
	f.Add(eth(macA, macR, 0x0800, 60))
	for _, v6 := range []bool{false, true} {
		for _, udp := range []bool{false, true} {
			good, at, partial := innerPacket(f, v6, udp, false)
			f.Add(good)
			sent := bytes.Clone(good)
			binary.BigEndian.PutUint16(sent[at:], partial)
			f.Add(sent)
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		f := bytes.Clone(frame)
		changed := completePartialChecksum(f)
		if !changed && !bytes.Equal(f, frame) {
			t.Fatal("frame modified without reporting it")
		}
		if changed && completePartialChecksum(f) {
			t.Fatal("a completed checksum was completed again")
		}
	})
}

// refSum is the plain RFC 1071 one's complement sum, 16 bits at a time.
func refSum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

package vswitch

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/header"
	"vxswitch/tap"
	"vxswitch/vxlan"
)

// superFrame builds a TCP frame macA -> macR with payload bytes of data
// (byte i is i%251), timestamps, and PSH|ACK (plus extra flags), the way a
// TAP with TSO hands one over: one IP header for all of it.
func superFrame(t testing.TB, v6 bool, payload int, cwr, fin bool) []byte {
	t.Helper()
	ts := layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 2}}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: 0xfffff000, Ack: 77, ACK: true, PSH: true, CWR: cwr, FIN: fin, Window: 512,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop, OptionLength: 1}, {OptionType: layers.TCPOptionKindNop, OptionLength: 1}, ts}}
	e, ip := tcpLayers(v6, &layers.IPv4{Id: 0xfffe, Flags: layers.IPv4DontFragment}, tcp)
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(i % 251)
	}
	return serialize(t, e, ip, tcp, gopacket.Payload(data))
}

// checkTCP decodes a segment with gopacket, checks its IP and TCP
// checksums by summing, and returns the TCP layer.
func checkTCP(t *testing.T, frame []byte) *layers.TCP {
	t.Helper()
	h, ok := parseTCP(frame)
	if !ok || !ipLengthMatches(frame, h) {
		t.Fatalf("segment does not parse or has a wrong IP length: % x", frame[:min(len(frame), 80)])
	}
	if !h.v6 && header.Sum(frame[h.l3:h.l4], 0) != 0xffff {
		t.Error("IPv4 header checksum does not verify")
	}
	tcpSeg := frame[h.l4:]
	if header.Sum(tcpSeg, tcpPseudoSum(frame, h, len(tcpSeg))) != 0xffff {
		t.Error("TCP checksum does not verify")
	}
	p := decode(t, frame)
	if p.ErrorLayer() != nil {
		t.Fatalf("gopacket: %v", p.ErrorLayer().Error())
	}
	return p.Layer(layers.LayerTypeTCP).(*layers.TCP)
}

func TestSegmentTCP(t *testing.T) {
	tests := []struct {
		name         string
		v6           bool
		payload, mss int
		cwr, fin     bool
		wantSegs     int
	}{
		{"ipv4 even", false, 4000, 1000, false, false, 4},
		{"ipv4 short last", false, 4100, 1000, true, true, 5},
		{"ipv6", true, 2900, 1388, false, false, 3},
		{"one segment", false, 500, 1398, false, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			super := superFrame(t, tt.v6, tt.payload, tt.cwr, tt.fin)
			dst := make([]byte, segmentBuffer)
			stride, count := segmentTCP(dst, super, tt.mss, vxlan.HeaderLen)
			if count != tt.wantSegs {
				t.Fatalf("got %d segments, want %d", count, tt.wantSegs)
			}
			h, _ := parseTCP(super)
			var data []byte
			for i := range count {
				size := h.end + min(tt.mss, tt.payload-i*tt.mss)
				seg := dst[i*stride+vxlan.HeaderLen : i*stride+vxlan.HeaderLen+size]
				tcp := checkTCP(t, seg)
				if want := uint32(0xfffff000 + i*tt.mss); tcp.Seq != want {
					t.Errorf("segment %d: seq %#x, want %#x", i, tcp.Seq, want)
				}
				last := i == count-1
				if tcp.PSH != last || tcp.FIN != (last && tt.fin) || tcp.CWR != (i == 0 && tt.cwr) || !tcp.ACK {
					t.Errorf("segment %d: PSH %v FIN %v CWR %v ACK %v", i, tcp.PSH, tcp.FIN, tcp.CWR, tcp.ACK)
				}
				if !bytes.Equal(seg[:h.l3], super[:h.l3]) || !bytes.Equal(seg[h.l4+20:h.end], super[h.l4+20:h.end]) {
					t.Errorf("segment %d: Ethernet header or TCP options changed", i)
				}
				if !tt.v6 {
					if id := binary.BigEndian.Uint16(seg[h.l3+4:]); id != uint16(0xfffe+i) {
						t.Errorf("segment %d: IPv4 ID %#x, want %#x", i, id, uint16(0xfffe+i))
					}
				}
				data = append(data, tcp.Payload...)
			}
			if !bytes.Equal(data, super[h.end:]) {
				t.Error("the segments' payloads do not add up to the super-frame's")
			}
		})
	}
}

func TestSegmentTCPRefuses(t *testing.T) {
	super := superFrame(t, false, 3000, false, false)
	udp := eth(macR, macA, 0x0800, 100)
	tests := []struct {
		name  string
		dst   []byte
		frame []byte
		mss   int
	}{
		{"not TCP", make([]byte, segmentBuffer), udp, 1000},
		{"mss 0", make([]byte, segmentBuffer), super, 0},
		{"no payload", make([]byte, segmentBuffer), super[:66], 1000},
		{"buffer too small", make([]byte, 2000), super, 1000},
		{"runt", make([]byte, segmentBuffer), super[:30], 1000},
	}
	for _, tt := range tests {
		if _, n := segmentTCP(tt.dst, tt.frame, tt.mss, vxlan.HeaderLen); n != 0 {
			t.Errorf("%s: got %d segments, want none", tt.name, n)
		}
	}
}

// coalesce segments super at mss into datagrams the way a peer sends them,
// then joins them with a tcpRun the way serveGRO does, and returns the
// packet finish produces and the number of segments joined.
func coalesce(t *testing.T, super []byte, mss int, edit func(i int, frame []byte)) ([]byte, int, int) {
	t.Helper()
	const slack = tap.VnetHdrLen - vxlan.HeaderLen
	buf := make([]byte, segmentBuffer)
	stride, count := segmentTCP(buf[slack:], super, mss, vxlan.HeaderLen)
	if count == 0 {
		t.Fatal("segmentTCP refused the super-frame")
	}
	h, _ := parseTCP(super)
	payload := len(super) - h.end
	var r tcpRun
	q := &port{name: "q"}
	started := 0
	for i := range count {
		at := slack + i*stride + vxlan.HeaderLen
		frame := buf[at : at+h.end+min(mss, payload-i*mss)]
		if edit != nil {
			edit(i, frame)
		}
		if i == 0 {
			if !r.startRun(q, buf, at, frame) {
				t.Fatal("startRun refused the first segment")
			}
			started++
			continue
		}
		if !r.tryAppend(buf, frame) {
			return nil, r.n, count
		}
	}
	return r.finish(buf), r.n, count
}

func TestCoalesceRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		super := superFrame(t, v6, 20000, false, false)
		pkt, n, count := coalesce(t, super, 1398, nil)
		if n != count {
			t.Fatalf("v6=%v: joined %d of %d segments", v6, n, count)
		}
		hdr := tap.DecodeVnetHdr(pkt)
		h, _ := parseTCP(super)
		wantGSO := uint8(tap.VnetGSOTCPv4)
		if v6 {
			wantGSO = tap.VnetGSOTCPv6
		}
		want := tap.VnetHdr{Flags: tap.VnetNeedsCsum, GSOType: wantGSO, HdrLen: uint16(h.end), GSOSize: 1398, CsumStart: uint16(h.l4), CsumOffset: 16}
		if hdr != want {
			t.Errorf("v6=%v: vnet header %+v, want %+v", v6, hdr, want)
		}
		frame := pkt[tap.VnetHdrLen:]
		// The super-frame comes back except for the TCP checksum field,
		// which now holds the pseudo-header sum for the device to finish.
		got := bytes.Clone(frame)
		if !header.CompleteChecksum(got, int(hdr.CsumStart), int(hdr.CsumOffset)) {
			t.Fatal("checksum offsets do not fit")
		}
		if !bytes.Equal(got, super) {
			t.Errorf("v6=%v: coalesced frame differs from the original super-frame", v6)
		}
	}
}

func TestCoalesceStops(t *testing.T) {
	super := superFrame(t, false, 10000, false, false)
	h, _ := parseTCP(super)
	tests := []struct {
		name string
		edit func(i int, f []byte)
		want int // segments joined before the run stops
	}{
		{"other flow", func(i int, f []byte) {
			if i == 3 {
				f[h.l4+1]++ // source port
			}
		}, 3},
		{"gap in sequence", func(i int, f []byte) {
			if i == 2 {
				binary.BigEndian.PutUint32(f[h.l4+4:], 5)
			}
		}, 2},
		{"different ack", func(i int, f []byte) {
			if i == 4 {
				f[h.l4+11]++
			}
		}, 4},
		{"different options", func(i int, f []byte) {
			if i == 1 {
				f[h.end-1]++
			}
		}, 1},
		{"PSH ends the run after it", func(i int, f []byte) {
			if i == 2 {
				f[h.l4+13] |= header.TCPFlagPSH
			}
		}, 3},
		{"FIN", func(i int, f []byte) {
			if i == 5 {
				f[h.l4+13] |= header.TCPFlagFIN
			}
		}, 5},
		{"different TTL", func(i int, f []byte) {
			if i == 1 {
				f[h.l3+8]--
			}
		}, 1},
		{"other MAC", func(i int, f []byte) {
			if i == 6 {
				f[0] ^= 2
			}
		}, 6},
	}
	for _, tt := range tests {
		_, n, _ := coalesce(t, super, 1000, tt.edit)
		if n != tt.want {
			t.Errorf("%s: joined %d segments, want %d", tt.name, n, tt.want)
		}
	}
}

func TestStartRunRefuses(t *testing.T) {
	syn := tcpFrame(t, false, true, false, nil)
	ack := tcpFrame(t, false, false, true, nil) // no payload
	padded := append(superFrame(t, false, 100, false, false), 0, 0)
	var r tcpRun
	for name, f := range map[string][]byte{"syn": syn, "pure ack": ack, "padded": padded, "not tcp": eth(macR, macA, 0x0806, 60)} {
		buf := append(make([]byte, tap.VnetHdrLen), f...)
		if r.startRun(&port{}, buf, tap.VnetHdrLen, buf[tap.VnetHdrLen:]) {
			t.Errorf("%s: startRun accepted it", name)
		}
	}
}

func TestCompleteVnetChecksum(t *testing.T) {
	f := superFrame(t, false, 333, false, false) // odd length
	h, _ := parseTCP(f)
	want := binary.BigEndian.Uint16(f[h.l4+16:])
	binary.BigEndian.PutUint16(f[h.l4+16:], tcpPseudoSum(f, h, len(f)-h.l4))
	if !header.CompleteChecksum(f, h.l4, 16) {
		t.Fatal("offsets refused")
	}
	if got := binary.BigEndian.Uint16(f[h.l4+16:]); got != want {
		t.Errorf("checksum %#04x, want %#04x", got, want)
	}
	for _, c := range [][2]int{{len(f), 0}, {h.l4, len(f)}, {len(f) - 1, 16}} {
		if header.CompleteChecksum(f, c[0], c[1]) {
			t.Errorf("start %d offset %d: accepted", c[0], c[1])
		}
	}
}

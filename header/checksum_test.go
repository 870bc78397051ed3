package header

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"

	"github.com/google/gopacket"
	"testing"
)

// slowSum is the definition of RFC 1071 section 4.1, word by word, as the
// reference for Sum.
func slowSum(b []byte, initial uint16) uint16 {
	acc := uint32(initial)
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		acc += w
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

func TestSum(t *testing.T) {
	// RFC 1071 section 3's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
	if got := Sum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0); got != 0xddf2 {
		t.Errorf("RFC 1071 example: %#04x, want 0xddf2", got)
	}
	tests := []struct {
		b       []byte
		initial uint16
		want    uint16
	}{
		{nil, 0, 0},
		{nil, 0xffff, 0xffff},
		{[]byte{0xff, 0xff}, 0, 0xffff},
		{[]byte{0xff, 0xff}, 1, 1},
		{[]byte{0x12}, 0, 0x1200},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, 0xff00},
	}
	for _, tt := range tests {
		if got := Sum(tt.b, tt.initial); got != tt.want {
			t.Errorf("Sum(% x, %#x) = %#04x, want %#04x", tt.b, tt.initial, got, tt.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(300))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if r.IntN(4) == 0 { // all ones stresses the carries
			for i := range b {
				b[i] = 0xff
			}
		}
		initial := uint16(r.Uint32())
		if got, want := Sum(b, initial), slowSum(b, initial); got != want {
			t.Fatalf("Sum(%d bytes, %#x) = %#04x, want %#04x", len(b), initial, got, want)
		}
	}
}

func TestSumChains(t *testing.T) {
	b := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 40)
	for n := 0; n <= len(b); n += 2 {
		if Sum(b[n:], Sum(b[:n], 7)) != Sum(b, 7) {
			t.Fatalf("split at %d differs", n)
		}
	}
}

func TestPseudoSum(t *testing.T) {
	// IPv4: 10.0.0.1 > 10.0.0.2, UDP, 12 bytes; summed as the 12-byte
	// pseudo-header of RFC 768.
	src, dst := []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}
	ph := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, ProtoUDP, 0, 12}
	if got, want := PseudoSum(src, dst, ProtoUDP, 12), Sum(ph, 0); got != want {
		t.Errorf("IPv4 pseudo sum %#04x, want %#04x", got, want)
	}
	// IPv6: the 40-byte pseudo-header of RFC 8200 section 8.1 with a
	// length above 16 bits.
	s6, d6 := ip6A.As16(), ip6B.As16()
	ph6 := append(append(s6[:], d6[:]...), 0, 0, 0, 0, 0, 0, 0, ProtoICMPv6)
	binary.BigEndian.PutUint32(ph6[32:36], 70000)
	if got, want := PseudoSum(s6[:], d6[:], ProtoICMPv6, 70000), Sum(ph6, 0); got != want {
		t.Errorf("IPv6 pseudo sum %#04x, want %#04x", got, want)
	}
}

func TestCompleteChecksum(t *testing.T) {
	// A UDP datagram whose checksum field holds the pseudo-header sum, as
	// an offloading sender leaves it.
	ip := ip4(0)
	pkt := build(t, ip, udpOver(ip, 1000, 2000), gopacket.Payload("partial"))
	h := IPv4(pkt)
	u := UDP(h.Payload())
	want := u.Checksum()
	u.SetChecksum(h.PseudoSum(ProtoUDP, len(u)))
	if !CompleteChecksum(pkt, IPv4MinLen, 6) || u.Checksum() != want {
		t.Errorf("completed %#04x, want %#04x", u.Checksum(), want)
	}
	for _, c := range []struct{ start, offset int }{{len(pkt), 0}, {len(pkt) - 1, 0}, {IPv4MinLen, len(u)}, {-1, 6}, {IPv4MinLen, -1}} {
		before := bytes.Clone(pkt)
		if CompleteChecksum(pkt, c.start, c.offset) || !bytes.Equal(before, pkt) {
			t.Errorf("start %d offset %d accepted", c.start, c.offset)
		}
	}
	zero := []byte{0xff, 0xff, 0, 0} // sums to 0xffff: complement 0 is sent as 0xffff
	if !CompleteChecksum(zero, 0, 2) || zero[2] != 0xff || zero[3] != 0xff {
		t.Errorf("zero checksum stored as % x", zero[2:])
	}
}

func TestUpdateChecksum(t *testing.T) {
	b := []byte{0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	h := IPv4(b)
	h.UpdateChecksum()
	old := h.TotalLength()
	h.SetChecksum(UpdateChecksum(h.Checksum(), old, 1500))
	h.SetTotalLength(1500)
	if !h.VerifyChecksum() {
		t.Error("incremental update does not verify")
	}
}

// TestUpdateChecksumRFC1624 checks the example of RFC 1624 section 4:
// HC = 0xdd2f with m changing from 0x5555 to 0x3285 gives 0x0000.
func TestUpdateChecksumRFC1624(t *testing.T) {
	if got := UpdateChecksum(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Errorf("UpdateChecksum = %#04x, want 0x0000", got)
	}
}

func TestAddSums(t *testing.T) {
	tests := []struct{ a, b, want uint16 }{
		{0, 0, 0}, {1, 2, 3}, {0xffff, 1, 1}, {0xffff, 0xffff, 0xffff}, {0x8000, 0x8000, 1},
	}
	for _, tt := range tests {
		if got := AddSums(tt.a, tt.b); got != tt.want {
			t.Errorf("AddSums(%#x, %#x) = %#x, want %#x", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestCompleteChecksumUDP(t *testing.T) {
	// UDP 10.0.0.1:1 -> 10.0.0.2:2, payload "abc", behind 14 bytes of
	// Ethernet; the field holds the pseudo-header sum.
	frame := []byte{
		2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 31, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0, 1, 0, 2, 0, 11, 0x14, 0x1f, 'a', 'b', 'c',
	}
	if !CompleteChecksum(frame, 34, 6) {
		t.Fatal("offsets refused")
	}
	if got := binary.BigEndian.Uint16(frame[40:]); got != 0x2770 {
		t.Errorf("checksum %#04x, want 0x2770", got)
	}
	if CompleteChecksum(frame, 44, 6) || CompleteChecksum(frame, len(frame), 0) {
		t.Error("offsets outside the frame accepted")
	}
}

func BenchmarkSum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Sum(buf, 0)
	}
}

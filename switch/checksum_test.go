package vswitch

import (
	"math/rand/v2"
	"testing"
)

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

func TestOnesSumTable(t *testing.T) {
	tests := []struct {
		b       []byte
		initial uint16
		want    uint16
	}{
		{nil, 0, 0},
		{[]byte{0x12}, 0, 0x1200},
		{[]byte{0x12, 0x34}, 0, 0x1234},
		{[]byte{0xff, 0xff, 0x00, 0x01}, 0, 0x0001}, // end-around carry
		{[]byte{0x12, 0x34}, 0xedcb, 0xffff},
		// RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
		{[]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0, 0xddf2},
	}
	for _, tt := range tests {
		if got := onesSum(tt.b, tt.initial); got != tt.want {
			t.Errorf("onesSum(% x, %#x) = %#04x, want %#04x", tt.b, tt.initial, got, tt.want)
		}
	}
}

func TestOnesSumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2000)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	ones := make([]byte, 2000)
	for i := range ones {
		ones[i] = 0xff
	}
	for n := 0; n <= len(buf); n++ {
		for _, b := range [][]byte{buf[:n], buf[len(buf)-n:], ones[:n]} {
			init := uint16(r.Uint32())
			if got, want := onesSum(b, init), refSum(b, init); got != want {
				t.Fatalf("onesSum(len %d, %#x) = %#04x, reference %#04x", n, init, got, want)
			}
		}
	}
}

func FuzzOnesSum(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff}, uint16(0xffff))
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, initial uint16) {
		if got, want := onesSum(b, initial), refSum(b, initial); got != want {
			t.Fatalf("onesSum = %#04x, reference %#04x", got, want)
		}
	})
}

func TestAddOnes(t *testing.T) {
	tests := []struct{ a, b, want uint16 }{
		{0, 0, 0}, {1, 2, 3}, {0xffff, 1, 1}, {0xffff, 0xffff, 0xffff}, {0x8000, 0x8000, 1},
	}
	for _, tt := range tests {
		if got := addOnes(tt.a, tt.b); got != tt.want {
			t.Errorf("addOnes(%#x, %#x) = %#x, want %#x", tt.a, tt.b, got, tt.want)
		}
	}
}

func BenchmarkOnesSum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		onesSum(buf, 0)
	}
}

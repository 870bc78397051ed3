package esp

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// model is the obvious replay window: a set of every sequence number
// accepted and the highest one. The ring must agree with it.
type model struct {
	seen map[uint32]bool
	top  uint32
}

func (m *model) accept(seq uint32) bool {
	if seq == 0 || m.seen[seq] || (seq <= m.top && m.top-seq >= WindowSize) {
		return false
	}
	m.seen[seq] = true
	m.top = max(m.top, seq)
	return true
}

func TestWindowSize(t *testing.T) {
	if WindowSize < 1024 {
		t.Fatalf("WindowSize %d < 1024", WindowSize)
	}
}

func TestWindowCases(t *testing.T) {
	var w window
	steps := []struct {
		seq uint32
		ok  bool
	}{
		{0, false}, {1, true}, {1, false}, {3, true}, {2, true}, {2, false},
		{5000, true},               // far jump clears everything
		{5000 - WindowSize, false}, // just outside
		{5000 - WindowSize + 1, true},
		{5000 - WindowSize + 1, false},
		{4999, true}, {4999, false},
		{5000 + 64, true}, // one block further
		{5000 + 64 - WindowSize, false},
		{5000, false}, // still remembered
		{math.MaxUint32, true}, {math.MaxUint32, false}, {math.MaxUint32 - 1, true},
	}
	for i, s := range steps {
		if got := w.check(s.seq) && w.accept(s.seq); got != s.ok {
			t.Fatalf("step %d: seq %d accepted=%v, want %v", i, s.seq, got, s.ok)
		}
	}
}

// TestWindowModel runs random walks (in order, reordered, duplicated, far
// jumps) against the model.
func TestWindowModel(t *testing.T) {
	for walk := range 50 {
		r := rand.New(rand.NewPCG(uint64(walk), 7))
		var w window
		m := model{seen: map[uint32]bool{}}
		next := uint32(1)
		for i := range 20000 {
			var seq uint32
			switch r.IntN(10) {
			case 0: // a duplicate or late packet near the top
				seq = next - uint32(r.IntN(3*WindowSize))
			case 1: // a jump ahead
				next += uint32(r.IntN(5 * ringBits))
				seq = next
			default:
				seq = next
				next++
			}
			if seq > next { // wrapped below 1
				seq = 1
			}
			want := m.accept(seq)
			if got := w.check(seq) && w.accept(seq); got != want {
				t.Fatalf("walk %d step %d: seq %d (top %d) accepted=%v, model %v", walk, i, seq, m.top, got, want)
			}
		}
	}
}

// FuzzWindow feeds arbitrary sequences of sequence numbers to the ring and
// the model.
func FuzzWindow(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 20, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		var w window
		m := model{seen: map[uint32]bool{}}
		for len(data) >= 4 {
			seq := binary.BigEndian.Uint32(data)
			data = data[4:]
			want := m.accept(seq)
			if got := w.check(seq) && w.accept(seq); got != want {
				t.Fatalf("seq %d (top %d): accepted=%v, model %v", seq, m.top, got, want)
			}
		}
	})
}

// FuzzOpen: Open never panics, never returns a payload for a packet not
// sealed with the key, and round-trips whatever Seal made. The fuzzer
// mutates both sealed packets and raw bytes.
func FuzzOpen(f *testing.F) {
	send := testSA(f, 0x5000)
	for _, n := range []int{0, 1, 2, 3, 100, 1400} {
		f.Add(sealCopy(f, send, bytes.Repeat([]byte{7}, n)), false)
	}
	f.Add([]byte{0xff}, false)
	f.Add(make([]byte, 40), false)
	f.Add([]byte("payload"), true)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		var tab Table
		tab.Add(testSA(t, 0x5000))
		sender := testSA(t, 0x5000)
		pkt := data
		if seal {
			buf := make([]byte, Headroom+len(data)+MaxTailroom)
			copy(buf[Headroom:], data)
			var err error
			if pkt, err = sender.Seal(buf, len(data)); err != nil {
				t.Fatal(err)
			}
		}
		in := bytes.Clone(pkt)
		plain, sa, err := tab.Open(pkt)
		if seal {
			if err != nil || !bytes.Equal(plain, data) || sa == nil {
				t.Fatalf("sealed packet: err %v, plain %x, want %x", err, plain, data)
			}
			return
		}
		if err == nil {
			// Only a packet made with the key opens: re-seal the plaintext
			// with the same sequence number and compare.
			seq := binary.BigEndian.Uint32(in[4:8])
			sender.seq.Store(uint64(seq) - 1)
			buf := make([]byte, Headroom+len(plain)+MaxTailroom)
			copy(buf[Headroom:], plain)
			again, _ := sender.Seal(buf, len(plain))
			if !bytes.Equal(again, in) {
				t.Fatalf("opened a packet Seal would not make: %x", in)
			}
		}
		// Opening the same bytes again is a replay or the same drop.
		if _, _, err2 := tab.Open(in); err2 == nil {
			t.Fatalf("opened %x twice", in)
		}
	})
}

package pmap

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestModel applies random changes to a Map and to a Go map and
// checks after each that they agree, that the version before the change
// is unchanged, and that diff reports exactly the change.
func TestModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var m Map[string, int]
	model := map[string]int{}
	for step := range 20000 {
		prev, prevModel := m, maps.Clone(model)
		k := fmt.Sprintf("k%d", rng.IntN(3000))
		if rng.IntN(3) == 0 {
			m = m.Without(k)
			delete(model, k)
		} else {
			m = m.With(k, step)
			model[k] = step
		}
		if m.Len() != len(model) {
			t.Fatalf("step %d: Len %d, want %d", step, m.Len(), len(model))
		}
		if v, ok := m.Get(k); ok != (model[k] != 0 || hasKey(model, k)) || v != model[k] {
			t.Fatalf("step %d: get(%s) = %d %v, want %d", step, k, v, ok, model[k])
		}
		if v, ok := prev.Get(k); v != prevModel[k] || ok != hasKey(prevModel, k) {
			t.Fatalf("step %d: the previous version changed: get(%s) = %d %v, want %d", step, k, v, ok, prevModel[k])
		}
		var changes int
		prev.Diff(m, func(a, b int) bool { return a == b }, func(dk string, o, n *int) {
			changes++
			if dk != k {
				t.Fatalf("step %d: diff names %s, want %s", step, dk, k)
			}
		})
		if want := changed(prevModel, model, k); changes != want {
			t.Fatalf("step %d: diff reported %d changes, want %d", step, changes, want)
		}
		if step%1000 == 0 {
			got := maps.Collect(m.All())
			if !maps.Equal(got, model) {
				t.Fatalf("step %d: all() differs from the model", step)
			}
		}
	}
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func changed(a, b map[string]int, k string) int {
	va, oka := a[k]
	vb, okb := b[k]
	if oka == okb && va == vb {
		return 0
	}
	return 1
}

// TestSetInPlace: a map built with set holds what one built with with
// holds, and later persistent changes leave it intact.
func TestSetInPlace(t *testing.T) {
	var built, persistent Map[int, int]
	for i := range 5000 {
		built.Set(i%3000, i)
		persistent = persistent.With(i%3000, i)
	}
	if !maps.Equal(maps.Collect(built.All()), maps.Collect(persistent.All())) || built.Len() != 3000 {
		t.Fatalf("built with set: %d entries, differs from with", built.Len())
	}
	before := maps.Collect(built.All())
	for i := range 3000 {
		_ = built.With(i, -1).Without(i + 1)
	}
	if !maps.Equal(maps.Collect(built.All()), before) {
		t.Fatal("a persistent change modified the map built in place")
	}
}

// TestAddrKeys: IPv4 addresses and their IPv4-mapped IPv6 forms are
// different keys, and looking an address or a MAC up allocates nothing
// (the switch's data path looks them up per frame).
func TestAddrKeys(t *testing.T) {
	var m Map[netip.Addr, int]
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		m = m.With(a, i).With(netip.AddrFrom16(a.As16()), -i-1)
	}
	if m.Len() != 2000 {
		t.Fatalf("Len = %d, want 2000", m.Len())
	}
	a := netip.MustParseAddr("10.0.1.2")
	if v, ok := m.Get(a); !ok || v != 258 {
		t.Fatalf("Get(%v) = %d %v, want 258", a, v, ok)
	}
	if v, ok := m.Get(netip.AddrFrom16(a.As16())); !ok || v != -259 {
		t.Fatalf("Get(mapped %v) = %d %v, want -259", a, v, ok)
	}
	var macs Map[[6]byte, int]
	macs = macs.With([6]byte{2, 0, 0, 0, 0, 1}, 1)
	if n := testing.AllocsPerRun(100, func() {
		m.Get(a)
		macs.Get([6]byte{2, 0, 0, 0, 0, 1})
	}); n != 0 {
		t.Errorf("Get allocates %v times, want 0", n)
	}
}

// BenchmarkGet compares a lookup in a Map of 100,000 MACs (as numbers, as
// the switch's MACTable keeps them) with one in a Go map of the same keys,
// the keys taken in turn: more than the CPU's caches hold.
func BenchmarkGet(b *testing.B) {
	var m Map[uint64, int]
	g := map[uint64]int{}
	keys := make([]uint64, 100000)
	for i := range keys {
		keys[i] = 0x0200_0000_0000 | uint64(i)
		m.Set(keys[i], i)
		g[keys[i]] = i
	}
	b.Run("pmap", func(b *testing.B) {
		for i := range b.N {
			m.Get(keys[i%len(keys)])
		}
	})
	b.Run("gomap", func(b *testing.B) {
		for i := range b.N {
			_ = g[keys[i%len(keys)]]
		}
	})
}

// TestDiffMany: between versions many changes apart, and against the
// empty map (whole subtrees on one side), Diff reports exactly the keys
// whose values differ, with their old and new values.
func TestDiffMany(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var m Map[int, int]
	for round := range 60 {
		prev := m
		for range rng.IntN(400) {
			k := rng.IntN(2000)
			if rng.IntN(3) == 0 {
				m = m.Without(k)
			} else {
				m = m.With(k, round)
			}
		}
		for _, pair := range [][2]Map[int, int]{{prev, m}, {Map[int, int]{}, m}, {m, Map[int, int]{}}} {
			a, b := maps.Collect(pair[0].All()), maps.Collect(pair[1].All())
			want := map[int][2]*int{}
			for k, v := range a {
				if w, ok := b[k]; !ok || w != v {
					want[k] = [2]*int{&v, nil}
				}
			}
			for k, v := range b {
				if _, ok := a[k]; !ok || a[k] != v {
					w := want[k]
					w[1] = &v
					want[k] = w
				}
			}
			got := 0
			pair[0].Diff(pair[1], func(x, y int) bool { return x == y }, func(k int, o, n *int) {
				got++
				w, ok := want[k]
				if !ok || (o == nil) != (w[0] == nil) || (n == nil) != (w[1] == nil) ||
					(o != nil && *o != *w[0]) || (n != nil && *n != *w[1]) {
					t.Fatalf("round %d: diff reports key %d (%v -> %v), not a change", round, k, o, n)
				}
			})
			if got != len(want) {
				t.Fatalf("round %d: diff reported %d changes, want %d", round, got, len(want))
			}
		}
	}
}

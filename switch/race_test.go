package vswitch

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"vxswitch/vxlan"
)

// TestConcurrentUse drives the port goroutines, the underlay path, view
// swaps and table readers at once; run with -race it checks the locking.
func TestConcurrentUse(t *testing.T) {
	w := newWorld(t, Config{})
	const frames = 200
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		for i := range frames {
			w.a.Inject(eth(macB, MAC{0x02, 9, 0, 0, 0, byte(i % 8)}, 0x0800, 60))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range frames {
			w.b.Inject(eth(BroadcastMAC, macB, 0x0806, 60+i%10))
		}
	}()
	go func() {
		defer wg.Done()
		for i := range frames {
			pkt := encap(100, eth(BroadcastMAC, MAC{0x02, 8, 0, 0, 0, byte(i % 8)}, 0x0806, 60))
			w.s.HandleUnderlay(pkt, netip.AddrPortFrom(external, vxlan.Port))
		}
	}()
	go func() {
		defer wg.Done()
		for range frames / 10 {
			w.s.SetView(testView())
			_ = w.s.FDB()
			_ = w.s.Learned()
			_ = w.s.Stats()
		}
	}()
	wg.Wait()
	// b receives the frames from a and from the underlay.
	for range 2 * frames {
		if _, ok := w.b.Next(5 * time.Second); !ok {
			t.Fatalf("b got only %d frames, want %d", len(w.b.Written()), 2*frames)
		}
	}
	if err := w.s.Close(); err != nil {
		t.Fatal(err)
	}
}

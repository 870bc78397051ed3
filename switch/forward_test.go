package vswitch

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/vxlan"
)

// checkSent checks that the underlay got exactly one packet per VTEP in
// want, each a VXLAN packet for vni carrying frame.
func checkSent(t *testing.T, got []sentPacket, vni uint32, frame []byte, want ...netip.Addr) {
	t.Helper()
	var dsts []netip.Addr
	for _, p := range got {
		if p.dst.Port() != vxlan.Port {
			t.Errorf("sent to port %d, want %d", p.dst.Port(), vxlan.Port)
		}
		gvni, inner, err := vxlan.Decode(p.pkt)
		if err != nil || gvni != vni || !bytes.Equal(inner, frame) {
			t.Errorf("packet to %v: vni %d err %v, inner equal %v", p.dst, gvni, err, bytes.Equal(inner, frame))
		}
		dsts = append(dsts, p.dst.Addr())
	}
	slices.SortFunc(dsts, netip.Addr.Compare)
	want = slices.Clone(want)
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(dsts, want) {
		t.Errorf("sent to %v, want exactly %v", dsts, want)
	}
}

func TestBroadcastFloods(t *testing.T) {
	w := newWorld(t, Config{})
	frame := eth(BroadcastMAC, macA, 0x0806, 60)
	w.fromPort(t, "a", frame)

	if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{0, 1, 0}) {
		t.Fatalf("frames written to a, b, c = %v, want [0 1 0]", got)
	}
	if !bytes.Equal(w.b.Written()[0], frame) {
		t.Errorf("b got a different frame")
	}
	checkSent(t, w.u.packets(), 100, frame, host2, host3, external)
	st := w.s.Stats()
	if st.FloodCopies != 4 || st.EncapFrames != 3 || st.TxFrames != 1 || st.RxFrames != 1 || len(st.Drops) != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestMulticastFloods(t *testing.T) {
	w := newWorld(t, Config{})
	frame := eth(MAC{0x01, 0x00, 0x5e, 0, 0, 1}, macC, 0x0800, 60)
	w.fromPort(t, "c", frame) // VNI 200: no other local port, one VTEP
	if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{0, 0, 0}) {
		t.Fatalf("frames written to a, b, c = %v, want none", got)
	}
	checkSent(t, w.u.packets(), 200, frame, host3)
}

func TestUnicastToLocalPort(t *testing.T) {
	w := newWorld(t, Config{})
	frame := eth(macB, macA, 0x0800, 100)
	w.fromPort(t, "a", frame)
	if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{0, 1, 0}) {
		t.Fatalf("frames written to a, b, c = %v, want [0 1 0]", got)
	}
	if n := len(w.u.packets()); n != 0 {
		t.Errorf("underlay got %d packets, want 0", n)
	}
	if st := w.s.Stats(); st.LocalSwitched != 1 || st.TxBytes != 100 {
		t.Errorf("stats = %+v", st)
	}
}

func TestUnicastToOwnPortIsNotReflected(t *testing.T) {
	w := newWorld(t, Config{})
	w.fromPort(t, "a", eth(macA, macX, 0x0800, 60)) // learns macX on a
	w.fromPort(t, "a", eth(macX, macA, 0x0800, 60)) // to a MAC behind a itself
	if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{0, 0, 0}) {
		t.Fatalf("frames written to a, b, c = %v, want none", got)
	}
	if n := len(w.u.packets()); n != 0 {
		t.Errorf("underlay got %d packets, want 0", n)
	}
}

func TestUnicastToRemote(t *testing.T) {
	w := newWorld(t, Config{})
	frame := eth(macR, macA, 0x0800, 80)
	w.fromPort(t, "a", frame)
	got := w.u.packets()
	checkSent(t, got, 100, frame, host2)
	if n := writtenCount(w.a, w.b, w.c); !slices.Equal(n, []int{0, 0, 0}) {
		t.Errorf("local ports got %v, want none", n)
	}
	// gopacket, as an independent decoder, agrees on the header and inner frame.
	p := gopacket.NewPacket(got[0].pkt, layers.LayerTypeVXLAN, gopacket.Default)
	vx, ok := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	if !ok || !vx.ValidIDFlag || vx.VNI != 100 {
		t.Fatalf("gopacket decoded VXLAN %+v", vx)
	}
	inner, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ok || !bytes.Equal(inner.DstMAC, macR[:]) || !bytes.Equal(inner.SrcMAC, macA[:]) {
		t.Fatalf("gopacket decoded inner Ethernet %+v", inner)
	}
}

func TestUnknownUnicastFloods(t *testing.T) {
	w := newWorld(t, Config{})
	frame := eth(macX, macA, 0x0800, 60)
	w.fromPort(t, "a", frame)
	if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{0, 1, 0}) {
		t.Fatalf("frames written to a, b, c = %v, want [0 1 0]", got)
	}
	checkSent(t, w.u.packets(), 100, frame, host2, host3, external)
}

func TestLocalLearning(t *testing.T) {
	w := newWorld(t, Config{})
	w.fromPort(t, "a", eth(BroadcastMAC, macX, 0x0806, 60)) // macX lives behind a
	w.u = newFakeUnderlay()
	w.s.underlay = w.u
	w.fromPort(t, "b", eth(macX, macB, 0x0800, 60))
	if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{1, 1, 0}) {
		t.Fatalf("frames written to a, b, c = %v, want [1 1 0]", got)
	}
	if n := len(w.u.packets()); n != 0 {
		t.Errorf("underlay got %d packets for a learned local MAC", n)
	}
	want := []Learned{{VNI: 100, MAC: macX, Port: "a", Seen: w.clock.Now()}}
	if got := w.s.Learned(); !slices.Equal(got, want) {
		t.Errorf("Learned = %+v, want %+v", got, want)
	}
}

func TestNoLearningOfOwnMulticastOrZero(t *testing.T) {
	w := newWorld(t, Config{})
	w.fromPort(t, "a", eth(BroadcastMAC, macA, 0x0806, 60))
	w.fromPort(t, "a", eth(BroadcastMAC, MAC{0x03, 0, 0, 0, 0, 1}, 0x0806, 60))
	w.fromPort(t, "a", eth(BroadcastMAC, MAC{}, 0x0806, 60))
	if got := w.s.Learned(); len(got) != 0 {
		t.Errorf("Learned = %+v, want none", got)
	}
}

func TestLearnCap(t *testing.T) {
	w := newWorld(t, Config{LearnCap: 2})
	for i := range 3 {
		w.fromPort(t, "a", eth(macB, MAC{0x02, 1, 0, 0, 0, byte(i)}, 0x0800, 60))
	}
	if n := len(w.b.Written()); n != 3 {
		t.Errorf("b got %d frames, want 3: over the cap frames are still forwarded", n)
	}
	if got := len(w.s.Learned()); got != 2 {
		t.Errorf("learned %d MACs, want the cap 2", got)
	}
	if d := w.s.Stats().Drops["learn_cap"]; d != 1 {
		t.Errorf("learn_cap = %d, want 1", d)
	}
	// Refreshing a MAC already learned is not over the cap.
	w.fromPort(t, "a", eth(macB, MAC{0x02, 1, 0, 0, 0, 0}, 0x0800, 60))
	if d := w.s.Stats().Drops["learn_cap"]; d != 1 {
		t.Errorf("learn_cap after refresh = %d, want 1", d)
	}
}

func TestAging(t *testing.T) {
	w := newWorld(t, Config{AgeTime: time.Minute})
	w.fromPort(t, "a", eth(macB, macX, 0x0800, 60))
	w.clock.Advance(30 * time.Second)
	if got := w.s.FDB(); !hasEntry(got, FDBEntry{VNI: 100, Network: "blue", MAC: macX, Port: "a", Origin: "learned", Age: 30 * time.Second}) {
		t.Errorf("FDB = %+v, want macX learned 30s ago", got)
	}
	w.clock.Advance(31 * time.Second)
	w.fromPort(t, "b", eth(macX, macB, 0x0800, 60)) // aged out: unknown unicast
	checkSent(t, w.u.packets(), 100, eth(macX, macB, 0x0800, 60), host2, host3, external)
	if got := w.s.Learned(); len(got) != 0 {
		t.Errorf("Learned = %+v after aging, want none", got)
	}
}

func TestOversize(t *testing.T) {
	tests := []struct {
		name      string
		etherType uint16
		n         int
		drop      bool
	}{
		{"mtu", 0x0800, 1514, false},
		{"mtu+1", 0x0800, 1515, true},
		{"vlan mtu", 0x8100, 1518, false},
		{"vlan mtu+1", 0x8100, 1519, true},
		{"runt", 0x0800, 13, false}, // counted as runt_inner, not oversize
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, Config{})
			f := eth(macB, macA, tt.etherType, max(tt.n, 14))[:tt.n]
			w.fromPort(t, "a", f)
			if got := w.s.Stats().Drops["oversize"] == 1; got != tt.drop {
				t.Errorf("oversize drop = %v, want %v", got, tt.drop)
			}
			if tt.n < 14 {
				if w.s.Stats().Drops["runt_inner"] != 1 {
					t.Errorf("runt not counted")
				}
				return
			}
			if delivered := len(w.b.Written()) == 1; delivered == tt.drop {
				t.Errorf("delivered = %v, want %v", delivered, !tt.drop)
			}
		})
	}
}

func TestUnknownVNIFromPort(t *testing.T) {
	w := newWorld(t, Config{})
	w.s.SetView(nil)
	w.fromPort(t, "a", eth(macB, macA, 0x0800, 60))
	if d := w.s.Stats().Drops["unknown_vni"]; d != 1 || len(w.b.Written()) != 0 {
		t.Errorf("unknown_vni = %d, b got %d frames", d, len(w.b.Written()))
	}
}

func TestNoUnderlay(t *testing.T) {
	s := New(Config{})
	t.Cleanup(func() { s.Close() })
	s.SetView(testView())
	addPort(t, s, "a", 100, macA)
	p := s.ports.Load().byName["a"]
	buf := make([]byte, vxlan.HeaderLen+60)
	copy(buf[vxlan.HeaderLen:], eth(macR, macA, 0x0800, 60))
	s.fromPort(&portFrame{p: p, buf: buf, n: 60})
	if d := s.Stats().Drops["no_port"]; d != 1 {
		t.Errorf("no_port = %d, want 1", d)
	}
}

func hasEntry(entries []FDBEntry, want FDBEntry) bool {
	return slices.Contains(entries, want)
}

package vswitch

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"bytes"
	"vxswitch/tap/taptest"
	"vxswitch/vxlan"
	"vxswitch/vxlan/vxlantest"
)

func TestUnderlayDrops(t *testing.T) {
	frame := eth(macA, macR, 0x0800, 60)
	tests := []struct {
		name   string
		pkt    []byte
		src    netip.Addr
		reason string
	}{
		{"short", []byte{0x08, 0, 0, 0, 0, 0, 100}, host2, "short"},
		{"empty", nil, host2, "short"},
		{"I flag clear", append([]byte{0x00, 0, 0, 0, 0, 0, 100, 0}, frame...), host2, "bad_flags"},
		{"reserved flag", append([]byte{0x0c, 0, 0, 0, 0, 0, 100, 0}, frame...), host2, "reserved_bits"},
		{"reserved byte 7", append([]byte{0x08, 0, 0, 0, 0, 0, 100, 1}, frame...), host2, "reserved_bits"},
		{"unknown vni", encap(300, frame), host2, "unknown_vni"},
		{"stranger", encap(100, frame), stranger, "not_member"},
		{"external of another vni", encap(200, frame), external, "not_member"},
		{"runt inner", encap(100, frame[:13]), host2, "runt_inner"},
		{"no inner", encap(100, nil), host2, "runt_inner"},
		{"for a MAC that lives elsewhere", encap(100, eth(macR, macE, 0x0800, 60)), host3, "no_port"},
		{"broadcast into a vni without ports", encap(200, eth(BroadcastMAC, macR, 0x0806, 60)), host3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, Config{})
			w.s.HandleUnderlay(tt.pkt, netip.AddrPortFrom(tt.src, 40000))
			if tt.reason == "" {
				// VNI 200 has port c, so this one is delivered.
				if len(w.c.Written()) != 1 {
					t.Fatalf("c got %d frames, want 1", len(w.c.Written()))
				}
				return
			}
			st := w.s.Stats()
			if len(st.Drops) != 1 || st.Drops[tt.reason] != 1 {
				t.Errorf("drops = %v, want exactly one %q", st.Drops, tt.reason)
			}
			if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{0, 0, 0}) {
				t.Errorf("frames written to a, b, c = %v, want none", got)
			}
			if st.DecapFrames != 0 && tt.reason != "no_port" {
				t.Errorf("DecapFrames = %d for a dropped packet", st.DecapFrames)
			}
		})
	}
}

func TestUnderlayDelivery(t *testing.T) {
	tests := []struct {
		name  string
		dst   MAC
		vni   uint32
		wants []int // frames on a, b, c
	}{
		{"broadcast", BroadcastMAC, 100, []int{1, 1, 0}},
		{"multicast", MAC{0x33, 0x33, 0, 0, 0, 1}, 100, []int{1, 1, 0}},
		{"port MAC", macB, 100, []int{0, 1, 0}},
		{"unknown unicast", macX, 100, []int{1, 1, 0}},
		{"other vni", BroadcastMAC, 200, []int{0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, Config{})
			w.fromUnderlay(host2, tt.vni, eth(tt.dst, macR, 0x0800, 60))
			if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, tt.wants) {
				t.Errorf("frames written to a, b, c = %v, want %v", got, tt.wants)
			}
			if n := len(w.u.packets()); n != 0 {
				t.Errorf("split horizon broken: %d packets re-sent to the underlay", n)
			}
			if st := w.s.Stats(); st.DecapFrames != 1 {
				t.Errorf("DecapFrames = %d, want 1", st.DecapFrames)
			}
		})
	}
}

func TestUnderlayToLearnedLocalMAC(t *testing.T) {
	w := newWorld(t, Config{})
	w.fromPort(t, "b", eth(macA, macX, 0x0800, 60)) // macX behind b
	frame := eth(macX, macR, 0x0800, 60)
	w.fromUnderlay(host2, 100, frame)
	// a got only the local frame; b only the frame from the underlay.
	if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{1, 1, 0}) {
		t.Fatalf("frames written to a, b, c = %v, want [1 1 0]", got)
	}
	if got := w.b.Written()[0]; string(got) != string(frame) {
		t.Errorf("b got % x, want the underlay frame", got)
	}
}

func TestWireLearning(t *testing.T) {
	w := newWorld(t, Config{})
	// A frame from the external VTEP teaches macE; one from a member host
	// teaches nothing (those MACs come from raft).
	w.fromUnderlay(external, 100, eth(BroadcastMAC, macE, 0x0806, 60))
	w.fromUnderlay(host3, 100, eth(BroadcastMAC, macX, 0x0806, 60))
	if n := len(w.u.packets()); n != 0 {
		t.Fatalf("split horizon broken: %d packets re-sent", n)
	}
	frame := eth(macE, macA, 0x0800, 70)
	w.fromPort(t, "a", frame)
	checkSent(t, w.u.packets(), 100, frame, external)

	w.u = newFakeUnderlay()
	w.s.underlay = w.u
	frame = eth(macX, macA, 0x0800, 70)
	w.fromPort(t, "a", frame) // not learned: flooded
	checkSent(t, w.u.packets(), 100, frame, host2, host3, external)

	want := FDBEntry{VNI: 100, Network: "blue", MAC: macE, VTEP: external, Origin: "learned"}
	if got := w.s.FDB(); !hasEntry(got, want) {
		t.Errorf("FDB = %+v, want %+v in it", got, want)
	}
	// An underlay frame for the wire-learned MAC is not delivered locally.
	w.fromUnderlay(host2, 100, eth(macE, macR, 0x0800, 60))
	// a: the two broadcasts; b: those and the flooded macX frame.
	if got := writtenCount(w.a, w.b); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("frames written to a, b = %v, want [2 3]", got)
	}
}

func TestWireLearnCapAndAging(t *testing.T) {
	w := newWorld(t, Config{WireCap: 1, AgeTime: time.Minute})
	w.fromUnderlay(external, 100, eth(BroadcastMAC, macE, 0x0806, 60))
	w.fromUnderlay(external, 100, eth(BroadcastMAC, macX, 0x0806, 60))
	if d := w.s.Stats().Drops["learn_cap"]; d != 1 {
		t.Errorf("learn_cap = %d, want 1", d)
	}
	if n := len(w.b.Written()); n != 2 {
		t.Errorf("b got %d frames, want 2: over the cap frames are still delivered", n)
	}
	w.clock.Advance(2 * time.Minute) // macE ages out, freeing the cap
	w.fromUnderlay(external, 100, eth(BroadcastMAC, macX, 0x0806, 60))
	w.fromPort(t, "a", eth(macX, macA, 0x0800, 60))
	checkSent(t, w.u.packets(), 100, eth(macX, macA, 0x0800, 60), external)
}

func TestServeUnderlay(t *testing.T) {
	conn, err := vxlan.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	peer, err := vxlan.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })

	s := New(Config{Underlay: conn, Port: peer.LocalAddr().Port()})
	t.Cleanup(func() { s.Close() })
	lo := netip.MustParseAddr("127.0.0.1")
	s.SetView(&View{
		Hosts:    map[netip.Addr]string{lo: "peer"},
		Networks: map[uint32]*Network{7: {VNI: 7, MTU: 1500}},
	})
	d := taptest.New("eth0")
	if err := s.AddPort("p", 7, macA, d); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeUnderlay(conn) }()

	frame := eth(macA, macR, 0x0800, 100)
	if err := peer.WriteTo(encap(7, frame), conn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, ok := d.Next(5 * time.Second)
	if !ok || string(got) != string(frame) {
		t.Fatalf("port got % x (ok %v), want the inner frame", got, ok)
	}
	conn.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeUnderlay after Close = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeUnderlay did not return after Close")
	}
}

// TestServeUnderlayWithoutGRO: an underlay that cannot receive with GRO
// says so through EnableGRO, and ServeUnderlay reads datagram by datagram.
func TestServeUnderlayWithoutGRO(t *testing.T) {
	w := newWorld(t, Config{})
	c := vxlantest.New()
	c.NoGRO = true
	frame := eth(macA, macR, 0x0800, 100)
	c.Deliver(netip.AddrPortFrom(host2, vxlan.Port), encap(100, frame), encap(100, frame))
	c.Close()
	if err := w.s.ServeUnderlay(c); err != nil {
		t.Fatal(err)
	}
	got := w.a.Written()
	if len(got) != 2 || !bytes.Equal(got[0], frame) || !bytes.Equal(got[1], frame) {
		t.Fatalf("port a got %d frames, want the 2 datagrams' frames", len(got))
	}
}

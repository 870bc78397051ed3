package vswitch

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"vxswitch/tap"
	"vxswitch/tap/taptest"
)

// TestPortsEndToEnd runs frames through the port goroutines.
func TestPortsEndToEnd(t *testing.T) {
	w := newWorld(t, Config{})
	frame := eth(BroadcastMAC, macX, 0x0806, 42)
	w.a.Inject(frame)
	got, ok := w.b.Next(5 * time.Second)
	if !ok || !bytes.Equal(got, frame) {
		t.Fatalf("b got % x (ok %v), want the broadcast", got, ok)
	}
	w.u.waitPackets(t, 3)

	reply := eth(macX, macB, 0x0800, 60)
	w.b.Inject(reply)
	got, ok = w.a.Next(5 * time.Second)
	if !ok || !bytes.Equal(got, reply) {
		t.Fatalf("a got % x (ok %v), want the reply to the learned MAC", got, ok)
	}
	if n := len(w.c.Written()); n != 0 {
		t.Errorf("port c of another VNI got %d frames", n)
	}
}

func TestRemovePort(t *testing.T) {
	w := newWorld(t, Config{})
	w.fromPort(t, "a", eth(macB, macX, 0x0800, 60)) // learn macX on a
	if err := w.s.RemovePort("a"); err != nil {
		t.Fatal(err)
	}
	if !w.a.Closed() {
		t.Error("RemovePort did not close the device")
	}
	if got := w.s.Learned(); len(got) != 0 {
		t.Errorf("Learned = %+v after RemovePort, want none", got)
	}
	for _, e := range w.s.FDB() {
		if e.Port == "a" {
			t.Errorf("FDB still has %+v", e)
		}
	}
	if err := w.s.RemovePort("a"); err == nil {
		t.Error("second RemovePort succeeded")
	}
	// The name and MAC are free again.
	addPort(t, w.s, "a", 100, macA)
}

// TestPortReadErrorStopsGoroutine checks that a device failing on its own
// (an endpoint's namespace deleted) ends the goroutine, and RemovePort
// still works afterwards.
func TestPortReadErrorStopsGoroutine(t *testing.T) {
	s := New(Config{})
	t.Cleanup(func() { s.Close() })
	d := taptest.New("x")
	if err := s.AddPort("x", 1, macA, d); err != nil {
		t.Fatal(err)
	}
	p := s.ports.Load().byName["x"]
	d.Close()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("port goroutine still running after its device failed")
	}
	if err := s.RemovePort("x"); err != nil {
		t.Fatal(err)
	}
}

// TestPortStopped: Config.PortStopped hears of a device that failed on its
// own, with the port's name, device and error, once; never of one that
// RemovePort closed.
func TestPortStopped(t *testing.T) {
	type stop struct {
		name string
		dev  tap.Device
		err  error
	}
	stops := make(chan stop, 4)
	s := New(Config{PortStopped: func(name string, dev tap.Device, err error) { stops <- stop{name, dev, err} }})
	t.Cleanup(func() { s.Close() })
	gone, removed := taptest.NewOffload("gone"), taptest.New("removed")
	for i, d := range []*taptest.Device{gone, removed} {
		if err := s.AddPort(d.Name(), 1, MAC{0x02, 0, 0, 0, 0, byte(i + 1)}, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemovePort("removed"); err != nil {
		t.Fatal(err)
	}
	gone.Close()
	select {
	case st := <-stops:
		if st.name != "gone" || st.dev != tap.Device(gone) || !errors.Is(st.err, os.ErrClosed) {
			t.Errorf("PortStopped(%q, %v, %v), want the port gone, its device and os.ErrClosed", st.name, st.dev, st.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("PortStopped not called for a device that failed")
	}
	s.Close()
	if len(stops) != 0 {
		t.Errorf("PortStopped called %d more times: for a removed port or twice", len(stops))
	}
}

// TestPortStats: each port counts what its device carried, one frame per
// read or write (a super-frame once), bytes without the vnet header; the
// switch's own counters count every segment.
func TestPortStats(t *testing.T) {
	s, _, d, _ := vnetSwitch(t, true)
	b := addPort(t, s, "b", 100, macB)
	super := superFrame(t, false, 5000, false, false)
	copy(super[0:6], macB[:]) // to port b: cut into 4 segments there
	d.Inject(withVnet(tsoHeader(t, super, 1400), super))
	for range 4 {
		if _, ok := b.Next(5 * time.Second); !ok {
			t.Fatal("port b did not get the 4 segments")
		}
	}
	ping := eth(macA, macB, 0x0800, 98)
	b.Inject(ping)
	if _, ok := d.Next(5 * time.Second); !ok {
		t.Fatal("port a did not get the frame from b")
	}
	var segBytes uint64
	for _, f := range b.Written()[:4] {
		segBytes += uint64(len(f))
	}
	want := []PortStats{
		{Name: "a", VNI: 100, Network: "blue", RxFrames: 1, RxBytes: uint64(len(super)), TxFrames: 1, TxBytes: uint64(len(ping))},
		{Name: "b", VNI: 100, Network: "blue", RxFrames: 1, RxBytes: uint64(len(ping)), TxFrames: 4, TxBytes: segBytes},
	}
	// The fake device hands a frame to Next as soon as it is written; the
	// switch counts it right after Write returns, so wait for the counters.
	got := s.PortStats()
	for deadline := time.Now().Add(5 * time.Second); !reflect.DeepEqual(got, want) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		got = s.PortStats()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PortStats\n got %+v\nwant %+v", got, want)
	}
	if st := s.Stats(); st.RxFrames != 5 || st.TxFrames != 5 {
		t.Errorf("switch counters: rx %d tx %d frames, want 5 and 5 (each segment)", st.RxFrames, st.TxFrames)
	}
}

func TestAddPortErrors(t *testing.T) {
	s := New(Config{})
	t.Cleanup(func() { s.Close() })
	addPort(t, s, "a", 100, macA)
	tests := []struct {
		name, port string
		vni        uint32
		mac        MAC
		dev        bool
		want       string
	}{
		{"empty name", "", 100, macB, true, "empty name"},
		{"duplicate name", "a", 100, macB, true, "already in use"},
		{"duplicate MAC", "b", 100, macA, true, "already belongs"},
		{"vni too big", "b", 1 << 24, macB, true, "24-bit"},
		{"multicast MAC", "b", 100, BroadcastMAC, true, "not a unicast"},
		{"zero MAC", "b", 100, MAC{}, true, "not a unicast"},
		{"nil device", "b", 100, macB, false, "nil device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.dev {
				err = s.AddPort(tt.port, tt.vni, tt.mac, taptest.New("x"))
			} else {
				err = s.AddPort(tt.port, tt.vni, tt.mac, nil)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AddPort = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// The same MAC in another VNI is fine.
	addPort(t, s, "a2", 200, macA)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(s.ports.Load().byName) != 0 {
		t.Error("Close left ports behind")
	}
	if err := s.AddPort("z", 1, macB, taptest.New("z")); !errors.Is(err, ErrClosed) {
		t.Errorf("AddPort after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestFDB(t *testing.T) {
	w := newWorld(t, Config{})
	w.fromPort(t, "b", eth(macA, macX, 0x0800, 60))
	w.fromUnderlay(external, 100, eth(BroadcastMAC, macE, 0x0806, 60))
	w.clock.Advance(5 * time.Second)
	want := []FDBEntry{
		{VNI: 100, Network: "blue", MAC: macA, Port: "a", Origin: "local"},
		{VNI: 100, Network: "blue", MAC: macB, Port: "b", Origin: "local"},
		{VNI: 100, Network: "blue", MAC: macX, Port: "b", Origin: "learned", Age: 5 * time.Second},
		{VNI: 100, Network: "blue", MAC: macR, VTEP: host2, Origin: "raft"},
		{VNI: 100, Network: "blue", MAC: macE, VTEP: external, Origin: "learned", Age: 5 * time.Second},
		{VNI: 200, Network: "red", MAC: macC, Port: "c", Origin: "local"},
	}
	got := w.s.FDB()
	if len(got) != len(want) {
		t.Fatalf("FDB has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("FDB[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

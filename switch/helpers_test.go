package vswitch

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"vxswitch/header"
	"vxswitch/tap/taptest"
	"vxswitch/vxlan"
	"vxswitch/vxlan/vxlantest"
)

// Addresses and MACs of the test world.
var (
	self     = netip.MustParseAddr("10.0.0.1")
	host2    = netip.MustParseAddr("10.0.0.2")
	host3    = netip.MustParseAddr("10.0.0.3")
	external = netip.MustParseAddr("10.0.0.9")
	stranger = netip.MustParseAddr("10.9.9.9")

	macA = MAC{0x02, 0, 0, 0, 0, 0x0a}
	macB = MAC{0x02, 0, 0, 0, 0, 0x0b}
	macC = MAC{0x02, 0, 0, 0, 0, 0x0c}
	macR = MAC{0x02, 0, 0, 0, 0, 0x72} // lives on host2 (view Remote)
	macX = MAC{0x02, 0, 0, 0, 0, 0x58} // unknown / learned
	macE = MAC{0x02, 0, 0, 0, 0, 0xee} // behind the external VTEP
)

// testView: VNI 100 has ports a and b here, macR on host2, and an external
// VTEP; VNI 200 has port c.
func testView() *View {
	return &View{
		Self:  self,
		Hosts: map[netip.Addr]string{self: "h1", host2: "h2", host3: "h3"},
		Networks: map[uint32]*Network{
			100: {
				VNI: 100, Name: "blue", MTU: 1500,
				Flood:    []netip.Addr{host2, host3, external},
				External: map[netip.Addr]bool{external: true},
				Remote:   MACTable{}.With(macR, host2),
			},
			200: {VNI: 200, Name: "red", MTU: 1500, Flood: []netip.Addr{host3}},
		},
	}
}

// sentPacket is one datagram the switch sent to the underlay.
type sentPacket struct {
	pkt []byte
	dst netip.AddrPort
}

// fakeUnderlay is the in-memory underlay (vxlan/vxlantest) with the
// datagrams it got as sentPackets.
type fakeUnderlay struct{ *vxlantest.Conn }

var _ Underlay = fakeUnderlay{}
var _ UnderlayReader = fakeUnderlay{}

func newFakeUnderlay() *fakeUnderlay { return &fakeUnderlay{vxlantest.New()} }

// packets returns every datagram sent so far.
func (u *fakeUnderlay) packets() []sentPacket {
	return sentPackets(u.Sent())
}

// waitPackets waits until at least n datagrams were sent.
func (u *fakeUnderlay) waitPackets(t *testing.T, n int) []sentPacket {
	t.Helper()
	sent, ok := u.WaitSent(n, 5*time.Second)
	if !ok {
		t.Fatalf("underlay got %d packets, want %d", len(sent), n)
	}
	return sentPackets(sent)
}

func sentPackets(dgrams []vxlantest.Datagram) []sentPacket {
	out := make([]sentPacket, len(dgrams))
	for i, d := range dgrams {
		out[i] = sentPacket{d.Pkt, d.Addr}
	}
	return out
}

// fakeClock is a settable clock for aging tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// world is a switch with the test view, a fake underlay and three ports.
type world struct {
	s       *Switch
	u       *fakeUnderlay
	clock   *fakeClock
	a, b, c *taptest.Device
}

func newWorld(t *testing.T, cfg Config) *world {
	t.Helper()
	w := &world{u: newFakeUnderlay(), clock: &fakeClock{now: time.Unix(1_000_000, 0)}}
	cfg.Underlay = w.u
	cfg.Now = w.clock.Now
	w.s = New(cfg)
	t.Cleanup(func() { w.s.Close() })
	w.s.SetView(testView())
	w.a = addPort(t, w.s, "a", 100, macA)
	w.b = addPort(t, w.s, "b", 100, macB)
	w.c = addPort(t, w.s, "c", 200, macC)
	return w
}

func addPort(t *testing.T, s *Switch, name string, vni uint32, mac MAC) *taptest.Device {
	t.Helper()
	d := taptest.New(name)
	if err := s.AddPort(name, vni, mac, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// fromPort runs the per-frame TAP path synchronously, as the port's
// goroutine would after reading frame.
func (w *world) fromPort(t *testing.T, name string, frame []byte) {
	t.Helper()
	p := w.s.ports.Load().byName[name]
	if p == nil {
		t.Fatalf("no port %q", name)
	}
	buf := make([]byte, vxlan.HeaderLen+len(frame))
	copy(buf[vxlan.HeaderLen:], frame)
	w.s.fromPort(&portFrame{p: p, buf: buf, n: len(frame)})
}

// fromUnderlay runs HandleUnderlay on a VXLAN packet carrying frame.
func (w *world) fromUnderlay(src netip.Addr, vni uint32, frame []byte) {
	w.s.HandleUnderlay(encap(vni, frame), netip.AddrPortFrom(src, vxlan.Port))
}

func encap(vni uint32, frame []byte) []byte {
	pkt := make([]byte, vxlan.HeaderLen+len(frame))
	vxlan.Encode(pkt, vni)
	copy(pkt[vxlan.HeaderLen:], frame)
	return pkt
}

// eth builds an Ethernet frame of length n (at least 14) with the given
// addresses and EtherType; the payload counts up from 0.
func eth(dst, src MAC, etherType uint16, n int) []byte {
	f := make([]byte, n)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:14], etherType)
	for i := 14; i < n; i++ {
		f[i] = byte(i)
	}
	return f
}

// writtenCount returns how many frames each device got.
func writtenCount(devs ...*taptest.Device) []int {
	var n []int
	for _, d := range devs {
		n = append(n, len(d.Written()))
	}
	return n
}

// swapIPv4Addrs swaps the source and destination addresses of the untagged
// IPv4 frame f in place, turning a frame of A to B into one of B to A. The
// IPv4 and TCP/UDP checksums stay valid: both sum the two addresses.
func swapIPv4Addrs(f []byte) {
	src, dst := f[header.EthernetLen+12:header.EthernetLen+16], f[header.EthernetLen+16:header.EthernetLen+20]
	var tmp [4]byte
	copy(tmp[:], src)
	copy(src, dst)
	copy(dst, tmp[:])
}

package vswitch

import (
	"bytes"
	"net/netip"
	"testing"

	"vxswitch/tap/taptest"
	"vxswitch/vxlan"
	"vxswitch/vxlan/vxlantest"
)

// benchSwitch is a switch with one port on a discarding device, an
// underlay that only counts, and the test view.
func benchSwitch(tb testing.TB) (*Switch, *port, *taptest.Device, *vxlantest.Conn) {
	tb.Helper()
	u := vxlantest.New()
	u.CountOnly()
	s := New(Config{Underlay: u})
	tb.Cleanup(func() { s.Close() })
	s.SetView(testView())
	d := taptest.New("discard")
	d.CountOnly()
	if err := s.AddPort("a", 100, macA, d); err != nil {
		tb.Fatal(err)
	}
	return s, s.ports.Load().byName["a"], d, u
}

func TestZeroAllocsEncapUnicast(t *testing.T) {
	s, p, _, u := benchSwitch(t)
	frame := eth(macR, macX, 0x0800, 1400) // to a remote MAC; learns macX
	buf := make([]byte, vxlan.HeaderLen+len(frame))
	copy(buf[vxlan.HeaderLen:], frame)
	allocs := testing.AllocsPerRun(1000, func() { s.fromPort(&portFrame{p: p, buf: buf, n: len(frame)}) })
	if allocs != 0 {
		t.Fatalf("TAP -> underlay unicast allocates %v times per frame, want 0", allocs)
	}
	if u.Calls() < 1000 {
		t.Fatalf("underlay got %d packets, want every frame", u.Calls())
	}
}

func TestZeroAllocsDecap(t *testing.T) {
	s, _, d, _ := benchSwitch(t)
	good, at, partial := innerPacket(t, false, false, false)
	pkt := encap(100, good)
	// From the external VTEP, with a MAC behind it (macR lives on host2, so
	// the external VTEP may not send from it): learns macE from the wire too.
	copy(pkt[vxlan.HeaderLen+6:], macE[:])
	src := netip.AddrPortFrom(external, vxlan.Port)
	allocs := testing.AllocsPerRun(1000, func() {
		// Make the checksum partial again so completion runs every time.
		pkt[vxlan.HeaderLen+at] = byte(partial >> 8)
		pkt[vxlan.HeaderLen+at+1] = byte(partial)
		s.HandleUnderlay(pkt, src)
	})
	if allocs != 0 {
		t.Fatalf("underlay -> TAP allocates %v times per frame, want 0", allocs)
	}
	if d.Writes() < 1000 || s.Stats().CsumCompleted < 1000 {
		t.Fatalf("port got %d frames, %d checksums completed; want every frame", d.Writes(), s.Stats().CsumCompleted)
	}
}

func BenchmarkEncapUnicast(b *testing.B) {
	s, p, _, _ := benchSwitch(b)
	frame := eth(macR, macX, 0x0800, 1514)
	buf := make([]byte, vxlan.HeaderLen+len(frame))
	copy(buf[vxlan.HeaderLen:], frame)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		s.fromPort(&portFrame{p: p, buf: buf, n: len(frame)})
	}
}

func BenchmarkDecap(b *testing.B) {
	s, _, _, _ := benchSwitch(b)
	pkt := encap(100, eth(macA, macR, 0x0800, 1514))
	src := netip.AddrPortFrom(host2, vxlan.Port)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		s.HandleUnderlay(pkt, src)
	}
}

// TestZeroAllocsWithNames checks that the checks for ARP, the resolver and
// MSS clamping cost no allocation on plain unicast frames in both
// directions.
func TestZeroAllocsWithNames(t *testing.T) {
	s, p, d, u := benchSwitch(t)
	s.SetView(namesView(1450))
	frame := tcpFrame(t, false, false, true, nil) // IPv4 TCP ACK macA -> macR
	buf := make([]byte, vxlan.HeaderLen+len(frame))
	copy(buf[vxlan.HeaderLen:], frame)
	if allocs := testing.AllocsPerRun(1000, func() { s.fromPort(&portFrame{p: p, buf: buf, n: len(frame)}) }); allocs != 0 {
		t.Errorf("TAP -> underlay allocates %v times per frame, want 0", allocs)
	}
	in := bytes.Clone(frame)
	copy(in[0:6], macA[:])
	copy(in[6:12], macR[:])
	swapIPv4Addrs(in)
	pkt := encap(100, in)
	src := netip.AddrPortFrom(host2, vxlan.Port)
	if allocs := testing.AllocsPerRun(1000, func() { s.HandleUnderlay(pkt, src) }); allocs != 0 {
		t.Errorf("underlay -> TAP allocates %v times per frame, want 0", allocs)
	}
	if u.Calls() < 1000 || d.Writes() < 1000 {
		t.Fatalf("underlay got %d, port %d frames; want every frame", u.Calls(), d.Writes())
	}
}

package vswitch

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"

	"vxswitch/header"
	"vxswitch/tap"
	"vxswitch/tap/taptest"
	"vxswitch/vxlan"
	"vxswitch/vxlan/vxlantest"
)

// vnetSwitch is a switch with the test view, an in-memory underlay and port
// "a" (macA, VNI 100) on an in-memory device with offloads. Both record
// what they get when keep is set, else they only count it.
func vnetSwitch(t testing.TB, keep bool) (*Switch, *port, *taptest.Device, *vxlantest.Conn) {
	t.Helper()
	u := vxlantest.New()
	s := New(Config{Underlay: u})
	t.Cleanup(func() { s.Close() })
	s.SetView(testView())
	d := taptest.NewOffload("vnet")
	if !keep {
		u.CountOnly()
		d.CountOnly()
	}
	if err := s.AddPort("a", 100, macA, d); err != nil {
		t.Fatal(err)
	}
	return s, s.ports.Load().byName["a"], d, u
}

// withVnet puts a vnet header in front of frame.
func withVnet(h tap.VnetHdr, frame []byte) []byte {
	pkt := make([]byte, tap.VnetHdrLen+len(frame))
	h.Encode(pkt)
	copy(pkt[tap.VnetHdrLen:], frame)
	return pkt
}

// tsoHeader is the vnet header a TAP puts on the super-frame f.
func tsoHeader(t testing.TB, f []byte, mss int) tap.VnetHdr {
	h, ok := parseTCP(f)
	if !ok {
		t.Fatal("not a TCP frame")
	}
	gso := uint8(tap.VnetGSOTCPv4)
	if h.v6 {
		gso = tap.VnetGSOTCPv6
	}
	return tap.VnetHdr{Flags: tap.VnetNeedsCsum, GSOType: gso, HdrLen: uint16(h.end), GSOSize: uint16(mss), CsumStart: uint16(h.l4), CsumOffset: 16}
}

func TestSuperFrameToUnderlay(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		s, p, _, u := vnetSwitch(t, true)
		super := superFrame(t, v6, 60000, false, false)
		const mss = 1398
		s.fromVnet(p, withVnet(tsoHeader(t, super, mss), super), &txBatch{buf: make([]byte, segmentBuffer), expect: -1})
		h, _ := parseTCP(super)
		seg := vxlan.HeaderLen + h.end + mss
		if len(u.Sends()) != 1 || u.Sends()[0].Seg != seg || u.Sends()[0].Dst != netip.AddrPortFrom(host2, vxlan.Port) {
			t.Fatalf("v6=%v: want one GSO send of %d-byte datagrams to %s, got %d sends", v6, seg, host2, len(u.Sends()))
		}
		var data []byte
		pkt := u.Sends()[0].Pkt
		for off := 0; off < len(pkt); off += seg {
			vni, inner, err := vxlan.Decode(pkt[off:min(off+seg, len(pkt))])
			if err != nil || vni != 100 {
				t.Fatalf("datagram at %d: VNI %d, %v", off, vni, err)
			}
			data = append(data, checkTCP(t, inner).Payload...)
		}
		if !bytes.Equal(data, super[h.end:]) {
			t.Errorf("v6=%v: payload of the datagrams differs from the super-frame's", v6)
		}
		st := s.Stats()
		if want := uint64((60000 + mss - 1) / mss); st.EncapFrames != want || st.TSOFrames != 1 {
			t.Errorf("v6=%v: encap %d tso %d, want %d and 1", v6, st.EncapFrames, st.TSOFrames, want)
		}
	}
}

func TestSuperFrameToLocalPort(t *testing.T) {
	s, p, _, u := vnetSwitch(t, true)
	b := addPort(t, s, "b", 100, macB)
	super := superFrame(t, false, 5000, false, false)
	copy(super[0:6], macB[:])
	s.fromVnet(p, withVnet(tsoHeader(t, super, 1000), super), &txBatch{buf: make([]byte, segmentBuffer), expect: -1})
	got := b.Written()
	if len(got) != 5 || len(u.Sends()) != 0 {
		t.Fatalf("port b got %d frames, underlay %d sends; want 5 and 0", len(got), len(u.Sends()))
	}
	for _, f := range got {
		checkTCP(t, f)
	}
}

func TestNeedsCsumFrameToUnderlay(t *testing.T) {
	s, p, _, u := vnetSwitch(t, true)
	f := tcpFrame(t, false, false, true, nil) // a pure ACK macA -> macR
	h, _ := parseTCP(f)
	good := bytes.Clone(f)
	tcpLen := int(binary.BigEndian.Uint16(f[h.l3+2:])) - (h.l4 - h.l3) // f has Ethernet padding
	binary.BigEndian.PutUint16(f[h.l4+16:], tcpPseudoSum(f, h, tcpLen))
	hdr := tap.VnetHdr{Flags: tap.VnetNeedsCsum, CsumStart: uint16(h.l4), CsumOffset: 16}
	s.fromVnet(p, withVnet(hdr, f), &txBatch{buf: make([]byte, segmentBuffer), expect: -1})
	if len(u.Sends()) != 1 || !bytes.Equal(u.Sends()[0].Pkt[vxlan.HeaderLen:], good) {
		t.Fatalf("want the frame with its checksum completed, got %d sends", len(u.Sends()))
	}
	hdr.CsumStart = uint16(len(f)) // offsets outside the frame
	s.fromVnet(p, withVnet(hdr, f), &txBatch{buf: make([]byte, segmentBuffer), expect: -1})
	hdr = tap.VnetHdr{GSOType: 3} // UDP fragmentation offload: never asked for
	s.fromVnet(p, withVnet(hdr, f), &txBatch{buf: make([]byte, segmentBuffer), expect: -1})
	if n := s.Stats().Drops["bad_offload"]; n != 2 || len(u.Sends()) != 1 {
		t.Errorf("bad_offload %d, sends %d; want 2 and 1", n, len(u.Sends()))
	}
}

// groConn is an in-memory underlay that hands over reads (each of
// datagrams of seg bytes back to back, the last possibly shorter) from src
// with GRO, then reports it is closed.
func groConn(src netip.AddrPort, reads [][]byte, segs []int) *vxlantest.Conn {
	c := vxlantest.New()
	for i, r := range reads {
		seg := segs[i]
		if seg <= 0 {
			seg = len(r)
		}
		var dgrams [][]byte
		for off := 0; off < len(r); off += seg {
			dgrams = append(dgrams, r[off:min(off+seg, len(r))])
		}
		c.Deliver(src, dgrams...)
	}
	c.Close()
	return c
}

// peerSegments returns the super-frame macR -> macA cut the way a peer
// sends it: VXLAN datagrams of seg bytes back to back.
func peerSegments(t testing.TB, v6 bool, payload, mss int) (super, dgrams []byte, seg int) {
	super = superFrame(t, v6, payload, false, false)
	copy(super[0:6], macA[:])
	copy(super[6:12], macR[:])
	buf := make([]byte, segmentBuffer)
	stride, count := segmentTCP(buf, super, mss, vxlan.HeaderLen)
	h, _ := parseTCP(super)
	end := (count-1)*stride + vxlan.HeaderLen + h.end + payload - (count-1)*mss
	for i := range count {
		vxlan.Encode(buf[i*stride:], 100)
	}
	return super, buf[:end], stride
}

func TestServeUnderlayCoalesces(t *testing.T) {
	s, _, d, _ := vnetSwitch(t, true)
	super, dgrams, seg := peerSegments(t, false, 40000, 1398)
	ack := encap(100, func() []byte {
		f := tcpFrame(t, false, false, true, nil)
		copy(f[0:6], macA[:])
		copy(f[6:12], macR[:])
		return f
	}())
	g := groConn(netip.AddrPortFrom(host2, vxlan.Port), [][]byte{dgrams, ack}, []int{seg, len(ack)})
	if err := s.ServeUnderlay(g); err != nil {
		t.Fatal(err)
	}
	got := d.Written()
	if len(got) != 2 {
		t.Fatalf("port got %d packets, want 2 (one super-frame, one ACK)", len(got))
	}
	hdr := tap.DecodeVnetHdr(got[0])
	if hdr.GSOType != tap.VnetGSOTCPv4 || hdr.GSOSize != 1398 {
		t.Errorf("first packet: vnet header %+v, want a TCPv4 super-frame with MSS 1398", hdr)
	}
	frame := got[0][tap.VnetHdrLen:]
	header.CompleteChecksum(frame, int(hdr.CsumStart), int(hdr.CsumOffset))
	if !bytes.Equal(frame, super) {
		t.Error("the super-frame written to the port differs from the one the peer sent")
	}
	if hdr := tap.DecodeVnetHdr(got[1]); hdr != (tap.VnetHdr{}) || !bytes.Equal(got[1][tap.VnetHdrLen:], ack[vxlan.HeaderLen:]) {
		t.Errorf("second packet: header %+v; want the ACK as a plain frame", hdr)
	}
	st := s.Stats()
	if st.GROFrames != 1 || st.TxFrames != uint64((40000+1397)/1398)+1 {
		t.Errorf("GRO frames %d, tx frames %d", st.GROFrames, st.TxFrames)
	}
}

func TestZeroAllocsSuperFrame(t *testing.T) {
	s, p, _, u := vnetSwitch(t, false)
	super := superFrame(t, false, 60000, false, false)
	pkt := withVnet(tsoHeader(t, super, 1398), super)
	b := &txBatch{buf: make([]byte, segmentBuffer), expect: -1}
	allocs := testing.AllocsPerRun(200, func() { s.fromVnet(p, pkt, b) })
	if allocs != 0 {
		t.Fatalf("TAP super-frame -> underlay allocates %v times, want 0", allocs)
	}
	if u.Calls() < 200 {
		t.Fatalf("underlay got %d sends, want one per super-frame", u.Calls())
	}
}

func TestZeroAllocsCoalesce(t *testing.T) {
	s, _, d, _ := vnetSwitch(t, false)
	_, dgrams, seg := peerSegments(t, false, 60000, 1398)
	const slack = tap.VnetHdrLen - vxlan.HeaderLen
	r := &rxBatch{buf: make([]byte, slack+underlayBuffer)}
	src := netip.AddrPortFrom(host2, vxlan.Port)
	allocs := testing.AllocsPerRun(200, func() {
		n := copy(r.buf[slack:], dgrams) // coalescing rewrites the buffer
		s.handleGRO(r, n, seg, src)
	})
	if allocs != 0 {
		t.Fatalf("underlay segments -> TAP super-frame allocates %v times, want 0", allocs)
	}
	if d.Writes() < 200 || s.Stats().GROFrames < 200 {
		t.Fatalf("port got %d writes, %d super-frames; want one per read", d.Writes(), s.Stats().GROFrames)
	}
}

func BenchmarkSuperFrameToUnderlay(b *testing.B) {
	s, p, _, _ := vnetSwitch(b, false)
	super := superFrame(b, false, 64000, false, false)
	pkt := withVnet(tsoHeader(b, super, 1398), super)
	tb := &txBatch{buf: make([]byte, segmentBuffer), expect: -1}
	b.ReportAllocs()
	b.SetBytes(int64(len(super)))
	for b.Loop() {
		s.fromVnet(p, pkt, tb)
	}
}

func BenchmarkCoalesce(b *testing.B) {
	s, _, _, _ := vnetSwitch(b, false)
	_, dgrams, seg := peerSegments(b, false, 60000, 1398)
	const slack = tap.VnetHdrLen - vxlan.HeaderLen
	r := &rxBatch{buf: make([]byte, slack+underlayBuffer)}
	src := netip.AddrPortFrom(host2, vxlan.Port)
	b.ReportAllocs()
	b.SetBytes(int64(len(dgrams)))
	for b.Loop() {
		n := copy(r.buf[slack:], dgrams)
		s.handleGRO(r, n, seg, src)
	}
}

func TestSuperFrameFlooded(t *testing.T) {
	for _, dst := range []MAC{BroadcastMAC, macX} { // flooded, unknown unicast
		s, p, _, u := vnetSwitch(t, true)
		b := addPort(t, s, "b", 100, macB)
		super := superFrame(t, false, 5000, false, false)
		copy(super[0:6], dst[:])
		s.fromVnet(p, withVnet(tsoHeader(t, super, 1000), super), &txBatch{buf: make([]byte, segmentBuffer), expect: -1})
		perVTEP := map[netip.Addr]int{}
		for _, snd := range u.Sends() {
			perVTEP[snd.Dst.Addr()] += (len(snd.Pkt) + snd.Seg - 1) / snd.Seg
		}
		for _, vtep := range []netip.Addr{host2, host3, external} {
			if perVTEP[vtep] != 5 {
				t.Errorf("dst %s: VTEP %s got %d segments, want 5", dst, vtep, perVTEP[vtep])
			}
		}
		if n := len(b.Written()); n != 5 {
			t.Errorf("dst %s: port b got %d segments, want 5", dst, n)
		}
	}
}

func TestServeUnderlayGROToPlainPort(t *testing.T) {
	w := newWorld(t, Config{})
	_, dgrams, seg := peerSegments(t, false, 5000, 1000)
	g := groConn(netip.AddrPortFrom(host2, vxlan.Port), [][]byte{dgrams}, []int{seg})
	if err := w.s.ServeUnderlay(g); err != nil {
		t.Fatal(err)
	}
	got := w.a.Written()
	if len(got) != 5 {
		t.Fatalf("plain port got %d frames, want each of the 5 segments", len(got))
	}
	for _, f := range got {
		checkTCP(t, f)
	}
}

func TestDrainedFramesShareGSOSend(t *testing.T) {
	small := eth(macR, macX, 0x0800, 60) // to a remote MAC
	short := eth(macR, macX, 0x0800, 50)
	large := eth(macR, macX, 0x0800, 200)
	tests := []struct {
		name   string
		frames [][]byte
		sends  []int // datagrams per send, in order
	}{
		{"one frame", [][]byte{small}, []int{1}},
		{"equal frames", [][]byte{small, small, small}, []int{3}},
		{"shorter frame ends the run", [][]byte{small, small, short, small}, []int{3, 1}},
		{"longer frame starts a run", [][]byte{small, large, large}, []int{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, p, _, u := vnetSwitch(t, true)
			b := &txBatch{buf: make([]byte, segmentBuffer), expect: -1}
			at := 0
			for _, f := range tc.frames {
				at = s.fromVnetAt(p, withVnet(tap.VnetHdr{}, f), b, at)
			}
			s.flushTx(b)
			var got []int
			var out []byte
			for _, snd := range u.Sends() {
				got = append(got, (len(snd.Pkt)+snd.Seg-1)/snd.Seg)
				out = append(out, snd.Pkt...)
			}
			if !slices.Equal(got, tc.sends) {
				t.Fatalf("datagrams per send %v, want %v", got, tc.sends)
			}
			var want []byte
			for _, f := range tc.frames {
				hdr := make([]byte, vxlan.HeaderLen)
				vxlan.Encode(hdr, 100)
				want = append(append(want, hdr...), f...)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("sent bytes differ from the frames with their VXLAN headers")
			}
		})
	}
}

func TestZeroAllocsDrainedFrames(t *testing.T) {
	s, p, _, u := vnetSwitch(t, false)
	pkt := withVnet(tap.VnetHdr{}, eth(macR, macX, 0x0800, 60))
	b := &txBatch{buf: make([]byte, segmentBuffer), expect: -1}
	allocs := testing.AllocsPerRun(200, func() {
		at := 0
		for range drainMax {
			at = s.fromVnetAt(p, pkt, b, at)
		}
		s.flushTx(b)
	})
	if allocs != 0 {
		t.Fatalf("%d drained frames -> underlay allocate %v times, want 0", drainMax, allocs)
	}
	if u.Calls() < 200 || s.Stats().EncapFrames < 200*drainMax {
		t.Fatalf("underlay got %d sends, %d datagrams; want one send of %d per run", u.Calls(), s.Stats().EncapFrames, drainMax)
	}
}

// TestOffloadPortReadLoop runs a super-frame through the port's own read
// loop (ReadVnetIdle with the idle flush, as on a TAP with offloads): its
// segments leave with one GSO send once the device runs dry.
func TestOffloadPortReadLoop(t *testing.T) {
	_, _, d, u := vnetSwitch(t, true)
	super := superFrame(t, false, 5000, false, false)
	d.Inject(withVnet(tsoHeader(t, super, 1000), super))
	sent, ok := u.WaitSent(5, 5*time.Second)
	if !ok || len(sent) != 5 {
		t.Fatalf("underlay got %d datagrams, want the 5 segments", len(sent))
	}
	if sends := u.Sends(); len(sends) != 1 || sends[0].Dst != netip.AddrPortFrom(host2, vxlan.Port) {
		t.Errorf("got %d sends, want one GSO send to %s", len(sends), host2)
	}
	for _, dg := range sent {
		if _, inner, err := vxlan.Decode(dg.Pkt); err != nil {
			t.Fatal(err)
		} else {
			checkTCP(t, inner)
		}
	}
}

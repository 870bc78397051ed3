package vswitch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"vxswitch/header"
	"vxswitch/tap"
	"vxswitch/vxlan"
)

// The offload paths. A port whose device reports Offload (tap.Device)
// hands over TCP super-frames (TSO); the switch cuts them into segments
// (segmentTCP) and runs the first segment through the ordinary path,
// fromPort, so learning, MTU, MSS clamping and the in-band answers behave
// exactly as for single frames. Only the final sends change: consecutive
// segments for one VTEP are collected in a txBatch and leave with one UDP
// GSO send. Once a segment has simply joined such a run, the next ones
// (same headers, no longer) join it directly: the decision cannot differ.
// In the other direction, ServeUnderlay reads many datagrams per system
// call (UDP GRO); a datagram goes through HandleUnderlay's ordinary checks,
// and consecutive TCP segments of one flow for one vnet port are joined in
// place (tcpRun) and written to the TAP as one super-frame; a datagram of
// the same sender and VNI that continues the run joins it directly.

// segmentBuffer is the size of a port's buffer for the segments of one
// super-frame: room for 64 KiB of payload cut into segments as small as
// 536 bytes (the IPv4 default MSS), each with its own headers.
const segmentBuffer = 4 * 65536

// txBatch collects, for one port goroutine, consecutive VXLAN datagrams to
// one VTEP that lie back to back in buf, so they can leave with one GSO
// send. Only datagrams at buf[expect:] are collected; any other is sent at
// once (after what is pending). The zero value collects nothing.
type txBatch struct {
	buf    []byte
	expect int // offset in buf of the datagram being forwarded now, or -1
	start  int // pending run: buf[start:end]
	end    int
	seg    int // size of every pending datagram but the last
	dst    netip.AddrPort
	// flooded is set by floodFromPort: the frame went to several places,
	// so the next segment must take the whole path too.
	flooded bool
}

// sendBatched sends pkt to dst now, or adds it to the pending run of b (nil
// means no batching) when pkt is the datagram b expects.
func (s *Switch) sendBatched(b *txBatch, pkt []byte, dst netip.AddrPort) {
	if b == nil || b.expect < 0 || len(pkt) == 0 || &pkt[0] != &b.buf[b.expect] {
		if b != nil {
			s.flushTx(b)
		}
		if err := s.underlay.WriteTo(pkt, dst); err != nil {
			s.stats.drop(dropWriteError)
			return
		}
		s.stats.encap.Add(1)
		return
	}
	if b.end > b.start && dst == b.dst && b.expect == b.end && len(pkt) <= b.seg && (b.end-b.start)%b.seg == 0 {
		b.end += len(pkt)
		return
	}
	s.flushTx(b)
	b.start, b.end, b.seg, b.dst = b.expect, b.expect+len(pkt), len(pkt), dst
}

// flushTx sends the pending run of b, if any.
func (s *Switch) flushTx(b *txBatch) {
	if b.end == b.start {
		return
	}
	n := uint64((b.end - b.start + b.seg - 1) / b.seg)
	err := s.underlay.WriteGSO(b.buf[b.start:b.end], b.seg, b.dst)
	b.start, b.end = 0, 0
	if err != nil {
		s.stats.drops[dropWriteError].Add(n)
		return
	}
	s.stats.encap.Add(n)
}

// drainMax is the most packets a port goroutine reads from its device
// before it sends what they carry: frames that queued up while it was busy
// leave together, but none waits behind more than drainMax others.
const drainMax = 32

// readLoopVnet is readLoop for a device with offloads: every read starts
// with a vnet header. What the packets carry is sent to the underlay
// batched (fromVnetAt): equal frames for one VTEP leave with one GSO send.
// The batch goes out after drainMax packets, and whenever the device has
// nothing more to read: from inside the read that found nothing (the idle
// function of tap.Device.ReadVnetIdle).
func (s *Switch) readLoopVnet(p *port) {
	defer close(p.done)
	buf := make([]byte, tap.VnetHdrLen+maxFrame)
	b := &txBatch{buf: make([]byte, segmentBuffer), expect: -1}
	at, k := 0, 0 // where the next frame goes in b.buf; packets since the last send
	flush := func() {
		s.flushTx(b)
		at, k = 0, 0
	}
	for {
		n, err := p.dev.ReadVnetIdle(buf, flush)
		if err != nil {
			flush()
			s.stopped(p, err)
			return
		}
		if n < tap.VnetHdrLen {
			s.stats.drop(dropRuntInner)
		} else {
			p.count.read(n - tap.VnetHdrLen)
			at = s.fromVnetAt(p, buf[:n], b, at)
		}
		if k++; k == drainMax {
			flush()
		}
	}
}

// fromVnetAt is fromVnet for one of several packets read in a row, with the
// sends to the underlay collected in b until the caller flushes it. A single
// frame is copied into b.buf at offset at, behind room for its VXLAN header,
// so the frames for one VTEP lie back to back there and can leave as one
// GSO run. It returns the offset for the next frame.
func (s *Switch) fromVnetAt(p *port, pkt []byte, b *txBatch, at int) int {
	h := tap.DecodeVnetHdr(pkt)
	frame := pkt[tap.VnetHdrLen:]
	if s.underlay == nil || h.GSOType != tap.VnetGSONone {
		s.flushTx(b) // a super-frame is cut into b.buf from its start
		s.fromVnet(p, pkt, b)
		return 0
	}
	if h.Flags&tap.VnetNeedsCsum != 0 && !header.CompleteChecksum(frame, int(h.CsumStart), int(h.CsumOffset)) {
		s.stats.drop(dropBadOffload)
		return at
	}
	if at+vxlan.HeaderLen+len(frame) > len(b.buf) {
		s.flushTx(b)
		at = 0
	}
	copy(b.buf[at+vxlan.HeaderLen:], frame)
	b.expect, b.flooded = at, false
	s.fromPort(&portFrame{p: p, buf: b.buf[at:], n: len(frame), b: b})
	b.expect = -1
	return at + vxlan.HeaderLen + len(frame)
}

// headroomOff is where the VXLAN headroom starts in a vnet read buffer.
const headroomOff = tap.VnetHdrLen - vxlan.HeaderLen

// fromVnet handles one packet read from a vnet device: pkt starts with the
// vnet header. A frame with a checksum left to the device gets it
// completed; a super-frame is segmented and each segment forwarded, with
// the sends to the underlay batched in b.
func (s *Switch) fromVnet(p *port, pkt []byte, b *txBatch) {
	h := tap.DecodeVnetHdr(pkt)
	frame := pkt[tap.VnetHdrLen:]
	switch h.GSOType {
	case tap.VnetGSONone:
		if h.Flags&tap.VnetNeedsCsum != 0 && !header.CompleteChecksum(frame, int(h.CsumStart), int(h.CsumOffset)) {
			s.stats.drop(dropBadOffload)
			return
		}
		s.fromPort(&portFrame{p: p, buf: pkt[headroomOff:], n: len(frame)})
	case tap.VnetGSOTCPv4, tap.VnetGSOTCPv6:
		stride, count := segmentTCP(b.buf, frame, int(h.GSOSize), vxlan.HeaderLen)
		if count == 0 {
			s.stats.drop(dropBadOffload)
			return
		}
		s.stats.tsoFrames.Add(1)
		hdr := stride - vxlan.HeaderLen - int(h.GSOSize) // headers per segment
		payload := len(frame) - hdr
		for i := range count {
			size := hdr + min(int(h.GSOSize), payload-i*int(h.GSOSize))
			at := i * stride
			if i > 0 && !b.flooded && b.end == at && b.end > b.start && !s.observing() {
				// The previous segment went to one VTEP only and joined
				// the pending GSO run; this one has the same headers and
				// is no longer, so the same decision holds and it joins
				// the run directly.
				vxlan.Encode(b.buf[at:], p.vni)
				b.end += vxlan.HeaderLen + size
				s.stats.rxFrames.Add(1)
				s.stats.rxBytes.Add(uint64(size))
				continue
			}
			b.expect, b.flooded = at, false
			s.fromPort(&portFrame{p: p, buf: b.buf[at:], n: size, b: b})
		}
		b.expect = -1
		s.flushTx(b)
	default:
		s.stats.drop(dropBadOffload)
	}
}

// rxBatch is the state of one ServeUnderlay goroutine with GRO: the receive
// buffer and the coalescing run in it. expect is the offset in buf of the
// inner frame being handled now; only frames there may join a run.
type rxBatch struct {
	buf    []byte
	expect int
	run    tcpRun
	vxh    [vxlan.HeaderLen]byte // VXLAN header of the run's last segment
}

// deliver writes inner (a frame from the underlay) to the local port q, or
// joins it to the coalescing run of r when q takes super-frames.
func (s *Switch) deliver(r *rxBatch, q *port, inner []byte) {
	if r == nil || !q.offload || len(inner) == 0 || &inner[0] != &r.buf[r.expect] {
		if r != nil {
			s.flushRx(r)
		}
		s.writePort(q, inner)
		return
	}
	if r.run.q == q && r.run.tryAppend(r.buf, inner) {
		copy(r.vxh[:], r.buf[r.expect-vxlan.HeaderLen:r.expect])
		return
	}
	s.flushRx(r)
	if r.run.startRun(q, r.buf, r.expect, inner) {
		copy(r.vxh[:], r.buf[r.expect-vxlan.HeaderLen:r.expect])
	} else {
		// A frame that starts no run (a pure ACK, say) goes out alone,
		// with a zero vnet header in the free bytes in front of it.
		r.run = tcpRun{q: q, start: r.expect, end: r.expect + len(inner), n: 1}
		s.flushRx(r)
	}
}

// flushRx writes the pending run of r, if any, to its port.
func (s *Switch) flushRx(r *rxBatch) {
	run := &r.run
	if run.n == 0 {
		return
	}
	q, n := run.q, run.n
	pkt := run.finish(r.buf)
	*run = tcpRun{}
	if q.closing.Load() {
		s.stats.drops[dropNoPort].Add(uint64(n))
		return
	}
	if _, err := q.dev.WriteVnet(pkt); err != nil {
		s.stats.drops[dropWriteError].Add(uint64(n))
		return
	}
	if n > 1 {
		s.stats.groFrames.Add(1)
	}
	q.count.wrote(len(pkt) - tap.VnetHdrLen)
	s.stats.txFrames.Add(uint64(n))
	s.stats.txBytes.Add(uint64(len(pkt) - tap.VnetHdrLen))
}

// serveGRO is ServeUnderlay with UDP GRO: each read may hold many
// datagrams of one sender, seg bytes apart. They are read to buf[2:], so
// the first inner frame has VnetHdrLen bytes in front of it (and every
// later one has its VXLAN header plus the end of the previous datagram,
// already handled), where a run's vnet header goes.
func (s *Switch) serveGRO(c UnderlayReader) error {
	const slack = tap.VnetHdrLen - vxlan.HeaderLen
	buf := make([]byte, slack+underlayBuffer)
	r := &rxBatch{buf: buf}
	for {
		n, seg, src, err := c.ReadGRO(buf[slack:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("vswitch: read underlay: %w", err)
		}
		s.handleGRO(r, n, seg, src)
	}
}

// handleGRO handles one GRO read of n bytes at r.buf[2:]: datagrams of seg
// bytes (the last may be shorter) from src. A datagram that continues the
// pending run (same VXLAN header, the flow's next segment) joins it
// directly; every other goes through fromUnderlay. The run is written
// at the end.
func (s *Switch) handleGRO(r *rxBatch, n, seg int, src netip.AddrPort) {
	const slack = tap.VnetHdrLen - vxlan.HeaderLen
	buf := r.buf
	if seg <= 0 {
		seg = n
	}
	for off := 0; off < n; off += seg {
		end := min(off+seg, n)
		r.expect = slack + off + vxlan.HeaderLen
		pkt := buf[slack+off : slack+end]
		if r.run.n > 0 && !s.observing() && len(pkt) > vxlan.HeaderLen && string(pkt[:vxlan.HeaderLen]) == string(r.vxh[:]) &&
			r.run.tryAppend(buf, pkt[vxlan.HeaderLen:]) {
			// Same sender (one GRO read), same VNI, and the run's own
			// headers: the next segment of the flow just handled, so
			// it joins without the per-frame checks.
			s.stats.decap.Add(1)
			continue
		}
		s.fromUnderlay(&underlayPacket{pkt: pkt, src: src, r: r})
	}
	s.flushRx(r)
}

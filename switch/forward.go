package vswitch

import (
	"net/netip"
	"time"

	"vxswitch/header"
	"vxswitch/vxlan"
)

// portFrame is one frame from a local port on its way through the switch:
// everything the data path needs to know about it, in one place. The
// caller sets p, buf and n, and b when it batches; fromPort sets v and nw,
// and d when an observer watches. A portFrame lives for one call of
// fromPort and is not shared between goroutines.
type portFrame struct {
	p   *port
	buf []byte // vxlan.HeaderLen bytes of headroom, then the frame
	n   int    // length of the frame: buf[vxlan.HeaderLen : vxlan.HeaderLen+n]
	// b collects the sends to the underlay of a port with offloads
	// (offload.go); nil sends each packet at once.
	b *txBatch
	// d records what the switch does with the frame for the observer
	// (observe.go); nil when nobody observes, which costs a nil check.
	d  *decision
	v  *View    // the view the frame is switched in
	nw *Network // the frame's network in v
}

// frame returns the Ethernet frame of f.
func (f *portFrame) frame() []byte { return f.buf[vxlan.HeaderLen : vxlan.HeaderLen+f.n] }

// fromPort handles one frame read from a local port (see portFrame). The
// headroom in front of the frame is where the VXLAN header is written for
// encapsulation, so the frame is never copied. When an observer is set the
// frame is switched through observeFromPort, which records and reports
// what happens to it. It does not allocate once the tables are warm.
func (s *Switch) fromPort(f *portFrame) {
	if o := s.observer.Load(); o != nil {
		s.observeFromPort(o.o, f)
		return
	}
	s.admit(f)
}

// admit counts the frame f and checks it: its length, its network, the
// guard. A frame too long for the network MTU goes to oversize (mtu.go);
// every other one to forward.
func (s *Switch) admit(f *portFrame) {
	d := f.d
	s.stats.rxFrames.Add(1)
	s.stats.rxBytes.Add(uint64(f.n))
	if f.n < header.EthernetLen {
		s.drop(d, dropRuntInner)
		return
	}
	f.v = s.view.Load()
	f.nw = f.v.network(f.p.vni)
	if f.nw == nil {
		s.drop(d, dropUnknownVNI)
		return
	}
	frame := f.frame()
	if r, refuse := s.refuseFromPort(f.p, f.v, f.nw, frame); refuse { // guard.go
		s.drop(d, r)
		return
	}
	if tooLong(frame, f.nw.MTU) {
		if f.b != nil {
			s.flushTx(f.b) // keep the order of what is pending
		}
		s.oversize(f)
		return
	}
	s.forward(f)
}

// forward switches the frame f, which fits the network MTU: it learns the
// source MAC, answers what the switch answers itself (ARP for known
// addresses, traffic to the resolver), clamps the MSS of TCP SYNs, and
// sends the frame to a local port, a VTEP, or floods it.
func (s *Switch) forward(f *portFrame) {
	p, nw, d := f.p, f.nw, f.d
	frame := f.frame()
	now := s.now()
	dst, src := header.Ethernet(frame).Destination(), header.Ethernet(frame).Source()
	if src != p.mac && !src.IsMulticast() && !src.IsZero() {
		k := fdbKey{p.vni, src}
		// A MAC behind an external VTEP stays there until it ages out; the
		// wire table is only asked where the network has external VTEPs.
		if len(nw.External) > 0 {
			if _, ok := s.wire.holder(k, now); ok {
				s.drop(d, dropMACTaken)
				return
			}
		}
		switch s.local.learn(k, learnEntry{owner: owner{port: p}, port: p, seen: now}, s.learnCap) {
		case learnFull:
			s.stats.drop(dropLearnCap) // counted, but the frame is still forwarded
		case learnTaken: // behind another port (guard.go)
			s.drop(d, dropMACTaken)
			return
		}
	}
	if s.answerLocally(p, nw, frame, d) {
		return
	}
	s.clamp(frame, nw)
	ports := s.ports.Load()
	if dst.IsMulticast() {
		s.floodFromPort(ports, f)
		return
	}
	if q := s.localPort(ports, p.vni, dst, now); q != nil {
		d.foundPort(q, dst)
		if q != p { // never back out of the ingress port
			s.writePort(q, frame)
			d.toPort(q)
			s.stats.localSwitched.Add(1)
		} else {
			d.because("same_port")
		}
		return
	}
	if vtep, ok := nw.Remote.Get(dst); ok {
		d.found(LookupRaft)
		s.encapTo(f, vtep)
		return
	}
	if e, ok := s.wire.lookup(fdbKey{p.vni, dst}, now); ok {
		d.found(LookupLearned)
		s.encapTo(f, e.vtep)
		return
	}
	d.found(LookupMiss)
	s.floodFromPort(ports, f) // unknown unicast
}

// encapTo writes the VXLAN header into the headroom of f and sends the
// packet to vtep.
func (s *Switch) encapTo(f *portFrame, vtep netip.Addr) {
	vxlan.Encode(f.buf, f.p.vni)
	s.send(f.v, f.buf[:vxlan.HeaderLen+f.n], vtep, f.b)
	f.d.toVTEP(vtep)
}

// tooLong reports whether frame exceeds the network MTU plus the Ethernet
// header (and one 802.1Q tag if present). mtu 0 means no limit.
func tooLong(frame []byte, mtu int) bool {
	if mtu <= 0 {
		return false
	}
	return len(frame) > mtu+header.Ethernet(frame).HeaderLen()
}

// localPort returns the local port that owns or has learned dst in vni, or nil.
func (s *Switch) localPort(ports *portTable, vni uint32, dst MAC, now time.Time) *port {
	if q, ok := ports.byMAC[fdbKey{vni, dst}]; ok {
		return q
	}
	if e, ok := s.local.lookup(fdbKey{vni, dst}, now); ok {
		return e.port
	}
	return nil
}

// floodFromPort sends the frame f to every other local port of its network
// and once to every VTEP in the network's flood list.
func (s *Switch) floodFromPort(ports *portTable, f *portFrame) {
	p, v, nw, d := f.p, f.v, f.nw, f.d
	if !s.floodAllowed(p) { // guard.go
		s.drop(d, dropFloodLimit)
		return
	}
	d.flood()
	frame := f.frame()
	if f.b != nil {
		f.b.flooded = true // see fromVnet
	}
	copies := 0
	for _, q := range ports.byVNI[p.vni] {
		if q == p {
			continue
		}
		s.writePort(q, frame)
		d.toPort(q)
		copies++
	}
	if len(nw.Flood) > 0 {
		vxlan.Encode(f.buf, p.vni)
		for _, vtep := range nw.Flood {
			if vtep == v.Self {
				continue
			}
			s.send(v, f.buf[:vxlan.HeaderLen+f.n], vtep, f.b)
			d.toVTEP(vtep)
			copies++
		}
	}
	if copies == 0 {
		s.drop(d, dropNoPort)
		return
	}
	s.stats.floodCopies.Add(uint64(copies))
}

// writePort writes frame to the local port q.
func (s *Switch) writePort(q *port, frame []byte) {
	if q.closing.Load() {
		s.stats.drop(dropNoPort)
		return
	}
	if _, err := q.dev.Write(frame); err != nil {
		s.stats.drop(dropWriteError)
		return
	}
	q.count.wrote(len(frame))
	s.stats.txFrames.Add(1)
	s.stats.txBytes.Add(uint64(len(frame)))
}

// send writes one VXLAN packet (header already encoded) to the VTEP vtep,
// or adds it to the batch b (which may be nil) to leave with its
// neighbours. A VTEP equal to this host's own address is never sent to:
// that would only come back to us.
func (s *Switch) send(v *View, pkt []byte, vtep netip.Addr, b *txBatch) {
	if s.underlay == nil || vtep == v.Self || !vtep.IsValid() {
		s.stats.drop(dropNoPort)
		return
	}
	s.sendBatched(b, pkt, netip.AddrPortFrom(vtep, s.udpPort))
}

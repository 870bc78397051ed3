package vswitch

import (
	"net/netip"
	"time"

	"vxswitch/header"
	"vxswitch/vxlan"
)

// fromPort handles one frame read from the local port p. The frame is
// buf[vxlan.HeaderLen : vxlan.HeaderLen+n]; buf[:vxlan.HeaderLen] is
// headroom where the VXLAN header is written for encapsulation, so the
// frame is never copied. A frame too long for the network MTU goes to
// oversize (mtu.go); every other one to forward. It does not allocate once
// the tables are warm.
func (s *Switch) fromPort(p *port, buf []byte, n int) {
	s.fromPortBatch(p, buf, n, nil)
}

// fromPortBatch is fromPort with the sends to the underlay collected in b
// (offload.go); b may be nil.
func (s *Switch) fromPortBatch(p *port, buf []byte, n int, b *txBatch) {
	if o := s.observer.Load(); o != nil {
		s.observeFromPort(o.o, p, buf, n, b)
		return
	}
	s.fromPortDecide(p, buf, n, b, nil)
}

// fromPortDecide is fromPortBatch recording what it does in d, which is nil
// when nobody observes (observe.go).
func (s *Switch) fromPortDecide(p *port, buf []byte, n int, b *txBatch, d *decision) {
	frame := buf[vxlan.HeaderLen : vxlan.HeaderLen+n]
	s.stats.rxFrames.Add(1)
	s.stats.rxBytes.Add(uint64(n))
	if n < header.EthernetLen {
		s.drop(d, dropRuntInner)
		return
	}
	v := s.view.Load()
	nw := v.network(p.vni)
	if nw == nil {
		s.drop(d, dropUnknownVNI)
		return
	}
	if r, refuse := s.refuseFromPort(p, v, nw, frame); refuse { // guard.go
		s.drop(d, r)
		return
	}
	if tooLong(frame, nw.MTU) {
		if b != nil {
			s.flushTx(b) // keep the order of what is pending
		}
		s.oversize(p, v, nw, frame, d)
		return
	}
	s.forwardBatch(p, v, nw, buf, n, b, d)
}

// forward switches one frame from the local port p that fits the network
// MTU (buf and n as for fromPort): it learns the source MAC, answers what
// the switch answers itself (ARP for known addresses, traffic to the
// resolver), clamps the MSS of TCP SYNs, and sends the frame to a local
// port, a VTEP, or floods it. It records what it does in d unless d is nil.
func (s *Switch) forward(p *port, v *View, nw *Network, buf []byte, n int, d *decision) {
	s.forwardBatch(p, v, nw, buf, n, nil, d)
}

// forwardBatch is forward with the sends to the underlay collected in b
// (offload.go); b may be nil.
func (s *Switch) forwardBatch(p *port, v *View, nw *Network, buf []byte, n int, b *txBatch, d *decision) {
	frame := buf[vxlan.HeaderLen : vxlan.HeaderLen+n]
	now := s.now()
	dst, src := MAC(frame[0:6]), MAC(frame[6:12])
	if src != p.mac && !src.IsMulticast() && !src.IsZero() {
		k := fdbKey{p.vni, src}
		// A MAC behind an external VTEP stays there until it ages out; the
		// wire table is only asked where the network has external VTEPs.
		if nw != nil && len(nw.External) > 0 {
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
		s.floodFromPort(ports, v, nw, p, buf, n, b, d)
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
	if vtep, ok := nw.Remote[dst]; ok {
		d.found(LookupRaft)
		vxlan.Encode(buf, p.vni)
		s.send(v, buf[:vxlan.HeaderLen+n], vtep, b)
		d.toVTEP(vtep)
		return
	}
	if e, ok := s.wire.lookup(fdbKey{p.vni, dst}, now); ok {
		d.found(LookupLearned)
		vxlan.Encode(buf, p.vni)
		s.send(v, buf[:vxlan.HeaderLen+n], e.vtep, b)
		d.toVTEP(e.vtep)
		return
	}
	d.found(LookupMiss)
	s.floodFromPort(ports, v, nw, p, buf, n, b, d) // unknown unicast
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

// floodFromPort sends a frame from local port p to every other local port of
// its network and once to every VTEP in the network's flood list.
func (s *Switch) floodFromPort(ports *portTable, v *View, nw *Network, p *port, buf []byte, n int, b *txBatch, d *decision) {
	if !s.floodAllowed(p) { // guard.go
		s.drop(d, dropFloodLimit)
		return
	}
	d.flood()
	frame := buf[vxlan.HeaderLen : vxlan.HeaderLen+n]
	if b != nil {
		b.flooded = true // see fromVnet
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
		vxlan.Encode(buf, p.vni)
		for _, vtep := range nw.Flood {
			if vtep == v.Self {
				continue
			}
			s.send(v, buf[:vxlan.HeaderLen+n], vtep, b)
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

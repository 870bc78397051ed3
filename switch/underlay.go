package vswitch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"vxswitch/header"
	"vxswitch/vxlan"
)

// HandleUnderlay processes one UDP payload received from the underlay socket
// (VXLAN header and inner frame) sent by src. It checks the header, the VNI
// and that src is a member host or an external VTEP of that network, learns
// the inner source MAC when src is an external VTEP, and delivers the inner
// frame to local ports only: nothing from the underlay is ever sent back to
// the underlay (split horizon). It may rewrite a partial inner TCP/UDP
// checksum in pkt in place. It may be called from several goroutines at
// once, and does not allocate once the tables are warm.
func (s *Switch) HandleUnderlay(pkt []byte, src netip.AddrPort) {
	s.fromUnderlay(&underlayPacket{pkt: pkt, src: src})
}

// underlayPacket is one UDP payload from the underlay on its way through
// the switch, the counterpart of portFrame. The caller sets pkt and src,
// and r when it coalesces; d is set when an observer watches. It lives
// for one call of fromUnderlay and is not shared between goroutines.
type underlayPacket struct {
	pkt []byte         // VXLAN header and inner frame
	src netip.AddrPort // the sender
	// r joins unicast TCP segments for ports with offloads into
	// super-frames (offload.go); nil writes each frame at once.
	r *rxBatch
	// d records what the switch does with the packet for the observer
	// (observe.go); nil when nobody observes.
	d *decision
}

// fromUnderlay handles one packet from the underlay (see HandleUnderlay).
// When an observer is set the packet goes through observeUnderlay, which
// records and reports what happens to it.
func (s *Switch) fromUnderlay(u *underlayPacket) {
	if o := s.observer.Load(); o != nil {
		s.observeUnderlay(o.o, u)
		return
	}
	s.decap(u)
}

// decap checks the packet u (header, VNI, member source, guard), learns
// behind external VTEPs and delivers the inner frame to the local ports.
func (s *Switch) decap(u *underlayPacket) {
	src, r, d := u.src, u.r, u.d
	vni, inner, err := vxlan.Decode(u.pkt)
	if err != nil {
		switch err {
		case vxlan.ErrShort:
			s.drop(d, dropShort)
		case vxlan.ErrFlags:
			s.drop(d, dropBadFlags)
		default:
			s.drop(d, dropReserved)
		}
		return
	}
	v := s.view.Load()
	nw := v.network(vni)
	if nw == nil {
		s.drop(d, dropUnknownVNI)
		return
	}
	from := src.Addr().Unmap()
	external := nw.External[from]
	if !external {
		if _, ok := v.Hosts[from]; !ok {
			s.drop(d, dropNotMember)
			return
		}
	}
	if len(inner) < header.EthernetLen {
		s.drop(d, dropRuntInner)
		return
	}
	if r, refuse := s.refuseFromUnderlay(vni, nw, inner, from); refuse { // guard.go
		s.drop(d, r)
		return
	}
	now := s.now()
	dst, srcMAC := header.Ethernet(inner).Destination(), header.Ethernet(inner).Source()
	if external && !srcMAC.IsMulticast() && !srcMAC.IsZero() {
		k := fdbKey{vni, srcMAC}
		if _, ok := s.local.holder(k, now); ok { // behind a local port
			s.drop(d, dropMACTaken)
			return
		}
		switch s.wire.learn(k, learnEntry{owner: owner{vni: vni}, vtep: from, seen: now}, s.wireCap) {
		case learnFull:
			s.stats.drop(dropLearnCap)
		case learnTaken: // behind another external VTEP (guard.go)
			s.drop(d, dropMACTaken)
			return
		}
	}
	s.stats.decap.Add(1)
	ports := s.ports.Load()
	if !dst.IsMulticast() {
		if q := s.localPort(ports, vni, dst, now); q != nil {
			d.foundPort(q, dst)
			s.prepareInner(inner, nw)
			d.delivering(inner)
			s.deliver(r, q, inner)
			d.toPort(q)
			return
		}
		remote := nw.Remote.Has(dst)
		d.found(LookupRaft)
		if !remote {
			_, remote = s.wire.lookup(fdbKey{vni, dst}, now)
			d.found(LookupLearned)
		}
		if remote { // it lives behind another VTEP, not here
			s.drop(d, dropNoPort)
			return
		}
		d.found(LookupMiss)
	}
	// Broadcast, multicast or unknown unicast: every local port of the VNI.
	local := ports.byVNI[vni]
	d.flood()
	if len(local) == 0 {
		s.drop(d, dropNoPort)
		return
	}
	s.prepareInner(inner, nw)
	d.delivering(inner)
	if r != nil {
		s.flushRx(r) // keep the order of what is pending
	}
	for _, q := range local {
		s.writePort(q, inner)
		d.toPort(q)
	}
	s.stats.floodCopies.Add(uint64(len(local)))
}

// prepareInner readies a frame from the underlay for the local ports: it
// completes a partial inner checksum, then clamps the MSS of a TCP SYN (the
// checksum must be whole before it is updated incrementally). Both count.
func (s *Switch) prepareInner(frame []byte, nw *Network) {
	if completePartialChecksum(frame) {
		s.stats.csumCompleted.Add(1)
	}
	s.clamp(frame, nw)
}

// underlayBuffer is the size of the receive buffer of ServeUnderlay: the
// largest UDP payload.
const underlayBuffer = 65535

// ServeUnderlay reads packets from c and passes each to HandleUnderlay until
// c is closed; it returns nil then, and the wrapped error for any other read
// failure. Run it in its own goroutine; several may share one c.
//
// When GRO can be turned on (c.EnableGRO succeeds), it reads many
// datagrams per system call and joins consecutive TCP segments for ports
// with offloads into super-frames (offload.go).
func (s *Switch) ServeUnderlay(c UnderlayReader) error {
	if c.EnableGRO() == nil {
		return s.serveGRO(c)
	}
	buf := make([]byte, underlayBuffer)
	for {
		n, src, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("vswitch: read underlay: %w", err)
		}
		s.HandleUnderlay(buf[:n], src)
	}
}

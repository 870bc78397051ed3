package vswitch

import (
	"vxswitch/header"
)

// l3 returns the EtherType of frame and the offset of the network-layer
// packet behind the Ethernet header, skipping one 802.1Q tag; ok is false
// when frame is too short for its Ethernet header. It is header.Ethernet's
// Type and HeaderLen in one call, for the guard.
func l3(frame []byte) (etherType uint16, off int, ok bool) {
	if eth := header.Ethernet(frame); eth.IsValid() {
		return eth.Type(), eth.HeaderLen(), true
	}
	return 0, 0, false
}

// replyL2 writes into b the Ethernet header of a frame answering frame:
// the destination is frame's source, the source is src, the 802.1Q tag of
// frame (if any) is kept, and the EtherType is etherType. It returns the
// header length off, which must be header.Ethernet(frame).HeaderLen().
func replyL2(b, frame []byte, off int, src MAC, etherType uint16) int {
	in, out := header.Ethernet(frame), header.Ethernet(b)
	out.SetDestination(in.Source())
	out.SetSource(src)
	out.SetOuterType(in.OuterType())
	if in.Tagged() {
		out.SetTCI(in.TCI())
	}
	out.SetType(etherType)
	return off
}

// answerMAC is the source MAC of frames the switch sends on behalf of the
// network in answer to frame: the ResolverMAC when set, else the MAC the
// frame was sent to. It returns ok false when neither is a unicast address.
func answerMAC(nw *Network, frame []byte) (MAC, bool) {
	if !nw.ResolverMAC.IsZero() {
		return nw.ResolverMAC, true
	}
	m := header.Ethernet(frame).Destination()
	return m, !m.IsMulticast() && !m.IsZero()
}

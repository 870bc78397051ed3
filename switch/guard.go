package vswitch

import (
	"net/netip"
	"sync"
	"time"

	"vxswitch/header"
)

// This file holds the checks that keep one endpoint or one VTEP from
// pretending to be another: the data plane trusts no frame because of the
// addresses it carries. Each refused frame is counted by a named reason in
// Stats.Drops:
//
//   - "bad_src_mac": the source MAC is a group (multicast or broadcast)
//     address or 00:00:00:00:00:00; IEEE 802.3 allows only individual
//     addresses as a frame's source.
//   - "spoofed_mac": the source MAC (or the sender MAC of an ARP packet) is
//     the own MAC of another endpoint, so a frame cannot move another
//     endpoint's MAC to the sender ("no migration by spoofing").
//   - "spoofed_ip": the IPv4 or IPv6 source address, the ARP sender
//     address or a neighbour advertisement's target belongs to another
//     endpoint or to the network's resolver; or, outside the network's
//     IPv6 subnet, is another endpoint's EUI-64 address (refuseIPv6). A
//     neighbour discovery link-layer option naming a MAC other than the
//     frame's source is "spoofed_mac".
//   - "flood_limit": a port flooded more than its token bucket allows.
//   - "stacked_vlan": a frame with a second VLAN tag (802.1Q or 802.1ad)
//     inside the first: the checks read one tag, so a frame that hides its
//     ARP or IPv4 header behind two is refused rather than let through.
//   - "unassigned_ip": the IPv4 or IPv6 source address or the ARP sender
//     address is inside one of the network's subnets but IPAM assigned it
//     to no endpoint.
//     Addresses outside the subnet (routed sources) pass. Frames from
//     external VTEPs are not checked for it: their hosts have addresses
//     of their own.
//   - "router_advert": an endpoint sent an IPv6 Router Advertisement or
//     Redirect; a vxswitch network has no router, and the switch sends
//     none either.
//   - "mac_taken": the source MAC is learned, and not yet aged out, on
//     another port or behind another external VTEP (learn.go), so a frame
//     cannot move a learned MAC away from where it lives.
//
// Frames from a member VTEP get the same address checks as frames from a
// local port, with the VTEP in the role of the port: an endpoint address
// is used only from the host its endpoint is on (refuseFromUnderlay).
//
// MACs behind an endpoint (a VM, a bridge or a macvlan inside the
// container) keep working: they are neither another endpoint's MAC nor, as
// long as they use their own addresses, another endpoint's address.

// Flood limit of one port: a token bucket that refills at floodRate tokens
// per second up to floodBurst tokens; each broadcast, multicast or
// unknown-unicast frame read from the port takes one token, and a frame
// that finds the bucket empty is dropped as "flood_limit". 2000 frames/s is
// far above what ARP, DHCP and neighbour discovery of one endpoint need,
// and the burst of 4000 lets an endpoint that just started resolve many
// neighbours at once; a flood storm from one endpoint is cut to 2000
// copies per second per VTEP instead of saturating the underlay.
const (
	floodRate  = 2000 // tokens per second
	floodBurst = 4000 // bucket size
)

// floodBucket is the token bucket of one port (see floodRate). The zero
// value is a full bucket. It is safe for concurrent use.
type floodBucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time // when tokens was last refilled; zero = never used
}

// take refills the bucket for the time since the last call and takes one
// token. It reports false, taking nothing, when the bucket is empty. A
// clock that goes backwards refills nothing.
func (b *floodBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.last.IsZero():
		b.tokens = floodBurst
		b.last = now
	case now.After(b.last):
		b.tokens = min(floodBurst, b.tokens+now.Sub(b.last).Seconds()*floodRate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// floodAllowed reports whether port p may flood one more frame now; the
// caller counts "flood_limit" when it may not.
func (s *Switch) floodAllowed(p *port) bool {
	return p.flood.take(s.now())
}

// foreignMAC reports whether m is the own MAC of an endpoint of nw other
// than port p: another local port's MAC, a MAC the view places on another
// host, an endpoint MAC of nw.Addrs, or the resolver's MAC.
func (s *Switch) foreignMAC(nw *Network, p *port, m MAC) bool {
	if m == p.mac {
		return false
	}
	k := fdbKey{p.vni, m}
	if _, ok := s.ports.Load().byMAC[k]; ok {
		return true
	}
	if nw.Remote.Has(m) {
		return true
	}
	return nw.Addrs.HasMAC(m) || (m == nw.ResolverMAC && !m.IsZero())
}

// refuseFromPort checks a frame read from the local port p of network nw in
// view v (at least an Ethernet header long) and reports whether it must be
// dropped, and why: dropBadSrcMAC, dropSpoofedMAC, dropSpoofedIP,
// dropUnassignedIP or dropStackedVLAN. The
// caller counts the reason. The rules:
//
//   - the source MAC must be unicast and not zero;
//   - it must not be the own MAC of another endpoint (foreignMAC); nor may
//     the sender MAC of an ARP packet;
//   - the ARP sender address and the IPv4 source address must be 0.0.0.0
//     (DHCP, duplicate address detection) or an address that is neither
//     another endpoint's (nw.Addrs with a MAC other than p's) nor the
//     resolver's (else dropSpoofedIP), and not an address of the
//     network's subnet that IPAM assigned to no endpoint (else
//     dropUnassignedIP).
//
// An address outside the subnet is allowed with p's own MAC too, not only with
// a MAC behind p: Linux sends by route, not by source address (the weak
// host model), so a container with a macvlan or bridge on eth0 sends some
// of that device's traffic, and answers ARP for its address, from eth0's
// MAC. Refusing it would gain nothing, since the container may send the
// same from a MAC behind p. A MAC learned behind p thus passes as long as
// it uses no other endpoint's MAC or address. refuseFromPort does not
// allocate.
func (s *Switch) refuseFromPort(p *port, v *View, nw *Network, frame []byte) (dropReason, bool) {
	src := header.Ethernet(frame).Source()
	if src.IsMulticast() || src.IsZero() {
		return dropBadSrcMAC, true
	}
	if s.foreignMAC(nw, p, src) {
		return dropSpoofedMAC, true
	}
	etherType, off, ok := l3(frame)
	if !ok {
		return 0, false
	}
	if header.IsVLANTPID(etherType) {
		return dropStackedVLAN, true
	}
	if etherType == header.EtherTypeIPv6 {
		return refuseIPv6(nw, frame[off:], src, func(m MAC) bool { return s.foreignMAC(nw, p, m) },
			func(ip netip.Addr) bool { return ownAddr(nw, p, ip) }, true)
	}
	sha, isARP, ip, ok := l3Sender(etherType, frame[off:])
	if !ok {
		return 0, false
	}
	if isARP && s.foreignMAC(nw, p, sha) {
		return dropSpoofedMAC, true
	}
	if !ownAddr(nw, p, ip) {
		return dropSpoofedIP, true
	}
	if unassigned(nw, ip) {
		return dropUnassignedIP, true
	}
	return 0, false
}

// unassigned reports whether ip is an address of one of nw's subnets
// (IPv4, or IPv6 on a dual-stack network) that IPAM has given to no
// endpoint. The unspecified address (ARP probes, DHCP)
// and the resolver's are not: the callers judge those.
func unassigned(nw *Network, ip netip.Addr) bool {
	if ip.IsUnspecified() || ip == nw.Resolver || ip == nw.Resolver6 || !nw.Subnet.Contains(ip) && !nw.Subnet6.Contains(ip) {
		return false
	}
	_, ok := nw.Addrs.Get(ip)
	return !ok
}

// ownAddr reports whether a frame from port p may use the address ip as
// its source, or claim it in a neighbour advertisement (see
// refuseFromPort).
func ownAddr(nw *Network, p *port, ip netip.Addr) bool {
	if ip.IsUnspecified() {
		return true
	}
	if ip == nw.Resolver || ip == nw.Resolver6 && ip.IsValid() {
		return false
	}
	m, ok := nw.Addrs.Get(ip)
	return !ok || m == p.mac
}

// refuseFromUnderlay checks the inner frame of a VXLAN packet of network nw
// (VNI vni) sent by the VTEP from, and reports whether it must be dropped,
// and why (the caller counts the reason). The rules mirror refuseFromPort,
// with the VTEP in the place of the port:
//
//   - an inner source MAC that is multicast or zero is dropBadSrcMAC;
//   - a source MAC, or ARP sender MAC, that is a local port's own MAC or
//     that nw.Remote places at a VTEP other than from is dropSpoofedMAC;
//   - an ARP sender address or IPv4 source address that is the resolver's,
//     or that belongs to an endpoint which is not behind from (its MAC is
//     a local port's or nw.Remote places it elsewhere), is dropSpoofedIP:
//     a member host cannot claim another host's endpoint address, for
//     example with an ARP reply that would poison a neighbour cache;
//   - a second VLAN tag is dropStackedVLAN.
//
// Addresses of no endpoint pass (external VTEPs' hosts, routed sources).
// inner is at least an Ethernet header long.
func (s *Switch) refuseFromUnderlay(vni uint32, nw *Network, inner []byte, from netip.Addr) (dropReason, bool) {
	src := header.Ethernet(inner).Source()
	if src.IsMulticast() || src.IsZero() {
		return dropBadSrcMAC, true
	}
	ports := s.ports.Load()
	elsewhere := func(m MAC) bool {
		if _, ok := ports.byMAC[fdbKey{vni, m}]; ok {
			return true
		}
		vtep, ok := nw.Remote.Get(m)
		return ok && vtep != from
	}
	if elsewhere(src) {
		return dropSpoofedMAC, true
	}
	etherType, off, ok := l3(inner)
	if !ok {
		return 0, false
	}
	if header.IsVLANTPID(etherType) {
		return dropStackedVLAN, true
	}
	if etherType == header.EtherTypeIPv6 {
		return refuseIPv6(nw, inner[off:], src, elsewhere, func(ip netip.Addr) bool { return remoteAddr(nw, from, ip) }, !nw.External[from])
	}
	sha, isARP, ip, ok := l3Sender(etherType, inner[off:])
	if !ok {
		return 0, false
	}
	if isARP && elsewhere(sha) {
		return dropSpoofedMAC, true
	}
	if !ip.IsUnspecified() && !remoteAddr(nw, from, ip) {
		return dropSpoofedIP, true
	}
	if !nw.External[from] && unassigned(nw, ip) {
		return dropUnassignedIP, true
	}
	return 0, false
}

// remoteAddr reports whether a frame from the VTEP from may use the IPv4
// address ip as its source: ip is not the resolver's (the resolver answers
// on every host itself, never through the underlay), and if it is an
// endpoint's, that endpoint is behind from.
func remoteAddr(nw *Network, from, ip netip.Addr) bool {
	if ip == nw.Resolver || ip == nw.Resolver6 && ip.IsValid() {
		return false
	}
	m, ok := nw.Addrs.Get(ip)
	if !ok {
		return true
	}
	vtep, ok := nw.Remote.Get(m)
	return ok && vtep == from
}

// refuseIPv6 checks an IPv6 packet b of network nw sent from the MAC src,
// where foreign tells whether a MAC belongs to another endpoint (or lives
// elsewhere), mayUse whether the sender may use an address (ownAddr for a
// port, remoteAddr for a VTEP), and strict whether the sender is an
// endpoint (a port, or a member host) rather than an external VTEP. The
// rules:
//
//   - a source address that the sender may not use (another endpoint's
//     IPv4 or IPv6 address, the resolver's) is dropSpoofedIP, and so is a
//     Neighbor Advertisement whose target is such an address: an endpoint
//     cannot take over, or point a neighbour cache at, another's address;
//   - from an endpoint, a source address inside the IPv6 subnet that IPAM
//     gave to nobody is dropUnassignedIP, as for IPv4 (link-local and
//     other addresses outside the subnet pass, and so does the unspecified
//     address of duplicate address detection);
//   - outside the subnet, where no IPAM knows the addresses, a source
//     address or advertised target whose interface ID is a modified EUI-64
//     (RFC 4291 appendix A, the default of Linux) derived from another
//     endpoint's MAC is dropSpoofedIP: an endpoint cannot take over
//     another's link-local address;
//   - from an endpoint, a Router Advertisement or a Redirect (RFC 4861
//     sections 4.2 and 4.5), which only routers send and a vxswitch network
//     has none, is dropRouterAdvert: an endpoint cannot make itself the
//     others' default router;
//   - the link-layer address option of a Neighbor Solicitation (source) or
//     Advertisement (target) (RFC 4861 section 4.6.1) must be src, or it is
//     dropSpoofedMAC: an endpoint cannot point a neighbour cache at
//     another MAC, as with an ARP sender address.
//
// Packets that do not parse pass: nothing in them claims an address.
func refuseIPv6(nw *Network, b []byte, src MAC, foreign func(MAC) bool, mayUse func(netip.Addr) bool, strict bool) (dropReason, bool) {
	ip := header.IPv6(b)
	if !ip.IsValid() {
		return 0, false
	}
	from := ip.Source()
	if !mayUse(from) {
		return dropSpoofedIP, true
	}
	if strict && unassigned(nw, from) {
		return dropUnassignedIP, true
	}
	if m, ok := eui64MAC(from); ok && foreign(m) {
		return dropSpoofedIP, true
	}
	proto, off, ok := ip.UpperLayer()
	if !ok || proto != header.ProtoICMPv6 {
		return 0, false
	}
	msg := header.ICMPv6(b[off : header.IPv6Len+int(ip.PayloadLength())])
	if !msg.IsValid() {
		return 0, false
	}
	if t := msg.Type(); strict && (t == header.ICMPv6RouterAdvertisement || t == header.ICMPv6Redirect) {
		return dropRouterAdvert, true
	}
	if !msg.IsNeighbor() {
		return 0, false
	}
	opt := uint8(header.NDPOptionSourceLinkAddr)
	if msg.Type() == header.ICMPv6NeighborAdvertisement {
		opt = header.NDPOptionTargetLinkAddr
		target := msg.Target()
		if !mayUse(target) {
			return dropSpoofedIP, true
		}
		if m, ok := eui64MAC(target); ok && foreign(m) {
			return dropSpoofedIP, true
		}
	}
	if ll, ok := msg.NDPOptions().LinkAddr(opt); ok && ll != src {
		return dropSpoofedMAC, true
	}
	return 0, false
}

// eui64MAC returns the MAC an IPv6 address's modified EUI-64 interface ID
// was made from (RFC 4291 appendix A: the MAC with ff:fe in its middle and
// the universal/local bit inverted), or ok false for another kind of
// interface ID.
func eui64MAC(a netip.Addr) (MAC, bool) {
	b := a.As16()
	if !a.Is6() || a.Is4In6() || b[11] != 0xff || b[12] != 0xfe {
		return MAC{}, false
	}
	return MAC{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}, true
}

// l3Sender returns who the packet b of type etherType says sent it: for
// ARP over Ethernet/IPv4 (RFC 826) the sender hardware and protocol
// addresses (isARP true), for IPv4 the source address. ok is false for any
// other packet and for a truncated or foreign-format header, which the
// guard lets pass: nothing in it can claim an address.
func l3Sender(etherType uint16, b []byte) (sha MAC, isARP bool, ip netip.Addr, ok bool) {
	switch etherType {
	case header.EtherTypeARP:
		if a := header.ARP(b); a.IsValid() {
			return a.SenderMAC(), true, a.SenderIP(), true
		}
	case header.EtherTypeIPv4:
		// Only the fixed header: a source address is checked even when
		// the header length field lies.
		if h := header.IPv4(b); len(h) >= header.IPv4MinLen && h.Version() == 4 {
			return MAC{}, false, h.Source(), true
		}
	}
	return MAC{}, false, netip.Addr{}, false
}

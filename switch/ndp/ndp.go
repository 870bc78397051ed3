// Package ndp holds the switch's own IPv6 neighbour discovery answers (RFC
// 4861), beside package arp for IPv4: it parses a Neighbor Solicitation,
// decides from the network's addresses whether the switch answers it, and
// writes the Neighbor Advertisement. It also writes the unsolicited
// advertisement that announces an address whose MAC changed, the IPv6
// counterpart of a gratuitous ARP.
//
// A solicitation from the unspecified address is duplicate address
// detection (RFC 4862 section 5.4): when another endpoint owns the target,
// the switch answers for it with an advertisement to all nodes, and the
// asking kernel marks its tentative address "dadfailed" (RFC 4862 section
// 5.4.4), exactly as if the owner had answered.
//
// The package knows nothing of ports, views or counters: the switch hands
// it the IPv6 packet and plain values from its view, and writes what it
// returns into the port. Nothing in it allocates or keeps its arguments.
package ndp

import (
	"net/netip"

	"vxswitch/header"
)

// Solicitation holds the fields of a Neighbor Solicitation the switch may
// answer. The zero value is no solicitation.
type Solicitation struct {
	SenderMAC header.MAC // the Ethernet source of the frame: where an answer goes
	Source    netip.Addr // the IPv6 source; unspecified for duplicate address detection
	Target    netip.Addr // the address asked for
}

// IsDAD reports whether s is a duplicate address detection probe: its
// source is the unspecified address (RFC 4862 section 5.4.2).
func (s Solicitation) IsDAD() bool { return s.Source.IsUnspecified() }

// ParseSolicitation returns the solicitation in the IPv6 packet b sent
// from the MAC src, or ok false when b is not a Neighbor Solicitation that
// passes the checks of RFC 4861 section 7.1.1 (header.IPv6.Neighbor). A
// source link-layer address option other than src is refused too: the
// answer goes to src, and the guard drops such frames anyway. It does not
// allocate.
func ParseSolicitation(b []byte, src header.MAC) (sol Solicitation, ok bool) {
	ip := header.IPv6(b)
	if !ip.IsValid() {
		return Solicitation{}, false
	}
	m, ok := ip.Neighbor()
	if !ok || m.Type() != header.ICMPv6NeighborSolicitation {
		return Solicitation{}, false
	}
	if ll, has := m.NDPOptions().LinkAddr(header.NDPOptionSourceLinkAddr); has && ll != src {
		return Solicitation{}, false
	}
	return Solicitation{SenderMAC: src, Source: ip.Source(), Target: m.Target()}, true
}

// Lookup returns the MAC the switch answers sol with, or ok false when it
// must not answer: the resolver's MAC for the resolver's address (when
// resolverMAC is set), else the MAC that addrs (the network's endpoint
// addresses) holds for the target, unless that MAC is zero or is the
// asker's own MAC, or the asker asks for its own address. So a probe for
// an address the asker owns is left to the network (nobody else answers
// it), and a probe for another endpoint's address is answered: the asker's
// duplicate address detection fails.
func Lookup[A interface {
	Get(netip.Addr) (header.MAC, bool)
}](sol Solicitation, resolver netip.Addr, resolverMAC header.MAC, addrs A) (header.MAC, bool) {
	if !sol.Target.Is6() || sol.Target.Is4In6() {
		return header.MAC{}, false
	}
	if sol.Target == resolver && !resolverMAC.IsZero() {
		return resolverMAC, true
	}
	m, known := addrs.Get(sol.Target)
	if known && sol.Target != sol.Source && m != sol.SenderMAC && !m.IsZero() {
		return m, true
	}
	return header.MAC{}, false
}

// AdvertisementLen is the length of the IPv6 packet PutAdvertisement
// writes: the IPv6 header and an advertisement with a target link-layer
// address option.
const AdvertisementLen = header.IPv6Len + header.NDPAdvertLen

// PutAdvertisement writes into dst[:AdvertisementLen] the IPv6 packet of
// the Neighbor Advertisement answering sol with mac (RFC 4861 section
// 7.2.4): from the target address, hop limit 255, Override set, and a
// target link-layer address option holding mac. It returns the Ethernet
// destination of the frame the caller sends it in. An answer to a
// solicitation from a unicast address goes to that address and its MAC
// with Solicited set; an answer to duplicate address detection goes to all
// nodes (ff02::1, 33:33:00:00:00:01) without it. It panics if dst is
// shorter.
func PutAdvertisement(dst []byte, sol Solicitation, mac header.MAC) (ethDst header.MAC) {
	to, flags, ethDst := sol.Source, uint8(header.NDPFlagSolicited|header.NDPFlagOverride), sol.SenderMAC
	if sol.IsDAD() {
		to, flags, ethDst = header.IPv6AllNodes, header.NDPFlagOverride, header.IPv6MulticastMAC(header.IPv6AllNodes)
	}
	putAdvert(dst, sol.Target, to, flags, mac)
	return ethDst
}

// UnsolicitedLen is the length of the frame PutUnsolicited writes.
const UnsolicitedLen = header.EthernetLen + AdvertisementLen

// PutUnsolicited writes into dst[:UnsolicitedLen] an Ethernet frame with
// an unsolicited Neighbor Advertisement announcing that ip is at mac (RFC
// 4861 section 7.2.6): from mac to all nodes, Override set, Solicited not,
// which makes every neighbour cache holding ip take the new MAC. It panics
// if dst is shorter.
func PutUnsolicited(dst []byte, ip netip.Addr, mac header.MAC) {
	eth := header.Ethernet(dst[:UnsolicitedLen])
	eth.SetDestination(header.IPv6MulticastMAC(header.IPv6AllNodes))
	eth.SetSource(mac)
	eth.SetOuterType(header.EtherTypeIPv6)
	putAdvert(dst[header.EthernetLen:], ip, header.IPv6AllNodes, header.NDPFlagOverride, mac)
}

// putAdvert writes the IPv6 packet of an advertisement for target at mac,
// sent from target to to with flags, into dst[:AdvertisementLen].
func putAdvert(dst []byte, target, to netip.Addr, flags uint8, mac header.MAC) {
	ip := header.IPv6(dst[:AdvertisementLen])
	ip.Encode(header.NDPAdvertLen, header.ProtoICMPv6, header.NDPHopLimit, target, to)
	m := header.ICMPv6(ip[header.IPv6Len:])
	m.EncodeNeighborAdvert(flags, target, mac)
	m.SetChecksum(m.ComputeChecksum(ip.PseudoSum(header.ProtoICMPv6, header.NDPAdvertLen)))
}

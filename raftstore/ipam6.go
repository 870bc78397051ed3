package raftstore

import (
	"fmt"
	"net/netip"
)

// A dual-stack network has an IPv6 subnet (Network.Subnet6) beside its
// IPv4 one, and every endpoint of it gets one address of each family
// (Endpoint.IP, Endpoint.IP6) in the same endpoint.attach. The IPv6
// addresses follow the rules of the IPv4 ones: assigned inside FSM.Apply,
// so never twice, even across a leader failover; serial (next-fit after
// LastIP6); and the resolver takes the first address after the subnet's
// own (fd20::1 in fd20::/64).
//
// The allocator (allocator.go) never walks a subnet: it starts after the
// address it gave last and takes the first one no endpoint of the network
// holds, whatever the prefix length. An IPv6 subnet is far too large to
// run out in practice; it wraps around at the end like the IPv4 one.

// lastUsable6 returns the highest address of an IPv6 prefix that may be
// given to an endpoint: below the 128 reserved subnet anycast addresses
// at the top of every IPv6 subnet (RFC 2526 section 2).
func lastUsable6(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	host := 128 - p.Bits()
	for i := 15; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	// Step below the anycast block: the low 7 bits are all ones, so
	// clearing bit 7 of the last byte moves down exactly 128.
	b[15] &^= 0x80
	return netip.AddrFrom16(b)
}

// allocateIP6 returns the first free IPv6 endpoint address of the
// dual-stack network nw after the one it handed out last (LastIP6),
// wrapping around at the end of the subnet, with the allocator the IPv4
// addresses use (allocator.go): every endpoint of a dual-stack network
// holds one IPv6 address, found through the network's address index.
func allocateIP6(st *State, nw Network) (netip.Addr, error) {
	inUse := uint64(st.Endpoints.NetworkLen(nw.Name))
	for _, r := range st.Reserved {
		if r.Network == nw.Name && r.IP.Is6() {
			inUse++
		}
	}
	used := func(a netip.Addr) bool {
		if _, ok := st.Endpoints.ByIP(nw.Name, a); ok {
			return true
		}
		_, ok := st.Reserved[ReservationKey(nw.Name, a)]
		return ok
	}
	a, ok := newAllocator(nw.Resolver6.Next(), lastUsable6(nw.Subnet6), inUse, used).next(nw.LastIP6)
	if !ok {
		return netip.Addr{}, fmt.Errorf("IPv6 subnet %s of network %s is exhausted (%d addresses in use): create a network with a larger IPv6 subnet",
			nw.Subnet6, nw.Name, inUse)
	}
	return a, nil
}

// checkRequestedIP6 validates an IPv6 address asked for in endpoint.attach.
func checkRequestedIP6(st *State, nw Network, ip netip.Addr) error {
	switch {
	case !nw.Subnet6.IsValid():
		return fmt.Errorf("network %s has no IPv6 subnet: leave the IPv6 address empty, or create a dual-stack network with a second --subnet", nw.Name)
	case !ip.Is6() || ip.Is4In6() || !nw.Subnet6.Contains(ip):
		return fmt.Errorf("address %s is not inside IPv6 subnet %s of network %s: pick one inside it or leave it empty", ip, nw.Subnet6, nw.Name)
	case ip == nw.Subnet6.Addr():
		return fmt.Errorf("address %s is the subnet-router anycast address of %s: pick another or leave it empty", ip, nw.Subnet6)
	case ip == nw.Resolver6:
		return fmt.Errorf("address %s is the resolver of network %s: pick another or leave it empty", ip, nw.Name)
	case lastUsable6(nw.Subnet6).Less(ip):
		return fmt.Errorf("address %s is a reserved subnet anycast address of %s (RFC 2526): pick another or leave it empty", ip, nw.Subnet6)
	}
	if ep, ok := st.Endpoints.ByIP(nw.Name, ip); ok {
		return fmt.Errorf("address %s is already used by endpoint %s in network %s: pick another or leave it empty", ip, ep.Name, nw.Name)
	}
	if r, ok := st.Reserved[ReservationKey(nw.Name, ip)]; ok {
		return fmt.Errorf("address %s of network %s is reserved by %s on host %s: pick another or leave it empty", ip, nw.Name, r.Owner, r.Host)
	}
	return nil
}

// reserveIP6 gives the reservation r of address.reserve its IPv6 address:
// the one it asked for, checked, or the next free one of nw, recorded in
// LastIP6 as an endpoint's would be.
func reserveIP6(st *State, nw Network, r *Reservation) error {
	if !nw.Subnet6.IsValid() {
		return fmt.Errorf("reserve an address: network %s has no IPv6 subnet: reserve an IPv4 address, or create a dual-stack network", nw.Name)
	}
	if r.IP.IsValid() {
		return checkRequestedIP6(st, nw, r.IP)
	}
	ip, err := allocateIP6(st, nw)
	if err != nil {
		return err
	}
	r.IP = ip
	nw.LastIP6 = ip
	st.networks()[nw.Name] = nw
	return nil
}

// createSubnet6 checks the IPv6 subnet of the network n that network.create
// makes, when it has one, and sets its resolver address; without one it
// clears what the command may have put in the IPv6 fields.
func createSubnet6(st *State, n *Network) error {
	n.Resolver6, n.LastIP6 = netip.Addr{}, netip.Addr{}
	if n.Subnet6 == (netip.Prefix{}) {
		return nil
	}
	if err := CheckSubnet6(n.Subnet6); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if o, ok := OverlappingNetwork(st, n.Subnet6); ok {
		return fmt.Errorf("network %s: IPv6 subnet %s overlaps IPv6 subnet %s of network %s: pick a subnet that does not overlap", n.Name, n.Subnet6, o.Subnet6, o.Name)
	}
	n.Resolver6 = n.Subnet6.Addr().Next()
	return nil
}

// attachIP6 gives the endpoint e that endpoint.attach makes its IPv6
// address when its network is dual-stack: the one it asked for, checked,
// or the next free one, recorded in the network's LastIP6. An endpoint of
// an IPv4-only network may not ask for one.
func attachIP6(st *State, e *Endpoint) error {
	nw := st.Networks[e.Network]
	if e.IP6.IsValid() {
		e.IP6 = e.IP6.WithZone("")
		key := ReservationKey(nw.Name, e.IP6)
		if r, ok := st.Reserved[key]; ok && r.Host == e.Host {
			delete(st.reserved(), key) // the endpoint takes the reserved address over
		}
		if err := checkRequestedIP6(st, nw, e.IP6); err != nil {
			return fmt.Errorf("endpoint %s: %w", e.Name, err)
		}
		return nil
	}
	if !nw.Subnet6.IsValid() {
		return nil
	}
	ip, err := allocateIP6(st, nw)
	if err != nil {
		return fmt.Errorf("endpoint %s: %w", e.Name, err)
	}
	e.IP6 = ip
	nw.LastIP6 = ip
	st.Networks[nw.Name] = nw
	return nil
}

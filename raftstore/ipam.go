package raftstore

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"vxswitch/vxlan"
)

// MaxVNI is the largest VXLAN network identifier: the VNI is 24 bits wide
// (RFC 7348 section 5).
const MaxVNI = vxlan.MaxVNI

// FirstAutoVNI is the first VNI the FSM hands out when network.create asks
// for VNI 0. Lower VNIs stay free for networks created with an explicit VNI
// (for example to match an existing kernel vxlan device).
const FirstAutoVNI = 100

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// usableCount returns how many endpoint addresses an IPv4 prefix offers:
// all but the network address, the resolver and the broadcast address.
func usableCount(p netip.Prefix) int {
	return 1<<(32-p.Bits()) - 3
}

// allocateIP returns the first free endpoint address of nw after the one it
// handed out last, wrapping around at the end of the subnet: serial
// allocation, as DHCP servers and Docker's IPAM do, so a freed address is
// given again only when every other one was used since. That keeps reuse
// rare, and with it the stale neighbour caches a reused address meets
// (the switch also announces a reused address: switch/arp.go).
//
// An address is used when an endpoint of nw has it (the per-network
// index of State.Endpoints) or it is reserved; see allocator for the cost.
func allocateIP(st *State, nw Network) (netip.Addr, error) {
	inUse := uint64(st.Endpoints.NetworkLen(nw.Name))
	for _, r := range st.Reserved {
		if r.Network == nw.Name && r.IP.Is4() {
			inUse++
		}
	}
	used := func(a netip.Addr) bool {
		if _, ok := st.Endpoints.ByIP(nw.Name, a); ok {
			return true
		}
		if len(st.Reserved) == 0 {
			return false
		}
		_, ok := st.Reserved[ReservationKey(nw.Name, a)]
		return ok
	}
	first, last := nw.Resolver.Next(), broadcast(nw.Subnet).Prev()
	a, ok := newAllocator(first, last, inUse, used).next(nw.LastIP)
	if !ok {
		return netip.Addr{}, fmt.Errorf("subnet %s of network %s is exhausted (%d addresses in use): create a larger network",
			nw.Subnet, nw.Name, inUse)
	}
	return a, nil
}

// checkRequestedIP validates an address asked for in endpoint.attach.
func checkRequestedIP(st *State, nw Network, ip netip.Addr) error {
	if !ip.Is4() || !nw.Subnet.Contains(ip) {
		return fmt.Errorf("address %s is not inside subnet %s of network %s: pick one inside it or leave it empty", ip, nw.Subnet, nw.Name)
	}
	switch ip {
	case nw.Subnet.Addr():
		return fmt.Errorf("address %s is the network address of %s: pick another or leave it empty", ip, nw.Subnet)
	case broadcast(nw.Subnet):
		return fmt.Errorf("address %s is the broadcast address of %s: pick another or leave it empty", ip, nw.Subnet)
	case nw.Resolver:
		return fmt.Errorf("address %s is the resolver of network %s: pick another or leave it empty", ip, nw.Name)
	}
	if ep, ok := st.Endpoints.ByIP(nw.Name, ip); ok {
		return fmt.Errorf("address %s is already used by endpoint %s in network %s: pick another or leave it empty", ip, ep.Name, nw.Name)
	}
	if r, ok := st.Reserved[ReservationKey(nw.Name, ip)]; ok {
		return fmt.Errorf("address %s of network %s is reserved by %s on host %s: pick another or leave it empty", ip, nw.Name, r.Owner, r.Host)
	}
	return nil
}

// allocateVNI returns the lowest unused VNI starting at FirstAutoVNI.
func allocateVNI(st *State) (uint32, error) {
	used := map[uint32]bool{}
	for _, n := range st.Networks {
		used[n.VNI] = true
	}
	for v := uint32(FirstAutoVNI); v <= MaxVNI; v++ {
		if !used[v] {
			return v, nil
		}
	}
	return 0, fmt.Errorf("no free VNI left between %d and %d: remove unused networks", FirstAutoVNI, MaxVNI)
}

// Package stateview translates the replicated state (raftstore.State) into
// what one host's data path uses: the switch's forwarding view and the
// in-band resolver's name table. The agent publishes them after every
// change; `vxswitch replay` and the fleet simulator (internal/sim) build
// them the same way without an agent. Every function only reads the state
// it is given and is safe for concurrent use.
package stateview

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"

	"vxswitch/raftstore"
	"vxswitch/resolver"
	vswitch "vxswitch/switch"
)

// Build turns the replicated state into the forwarding view of host
// self: who may send us VXLAN, where each remote MAC lives, and which VTEPs
// get a copy of a flooded frame in each network. endpointMTU gives the
// endpoint MTU of a network on this host. Each flood list is sorted by
// address, so the same state always gives the same view (and the same order
// of flooded copies). The result is new and not yet shared: the caller may
// pass it to vswitch.Switch.SetView. Build only reads st.
func Build(st *raftstore.State, self string, endpointMTU func(raftstore.Network) int) *vswitch.View {
	v := &vswitch.View{
		Self:     st.Hosts[self].VTEP,
		Hosts:    make(map[netip.Addr]string, len(st.Hosts)),
		Networks: make(map[uint32]*vswitch.Network, len(st.Networks)),
	}
	for _, h := range st.Hosts {
		v.Hosts[h.VTEP] = h.Name
	}
	byName := make(map[string]*vswitch.Network, len(st.Networks))
	for _, n := range st.Networks {
		vn := &vswitch.Network{
			VNI: n.VNI, Name: n.Name, MTU: endpointMTU(n),
			External: map[netip.Addr]bool{}, Remote: map[vswitch.MAC]netip.Addr{},
			Resolver: n.Resolver, ResolverMAC: ResolverMAC(n.Name), Addrs: map[netip.Addr]vswitch.MAC{},
			Subnet: n.Subnet,
		}
		v.Networks[n.VNI] = vn
		byName[n.Name] = vn
	}
	// flood collects each network's replication set without duplicates.
	flood := map[*vswitch.Network]map[netip.Addr]bool{}
	addFlood := func(n *vswitch.Network, addr netip.Addr) {
		if flood[n] == nil {
			flood[n] = map[netip.Addr]bool{}
		}
		if !flood[n][addr] {
			flood[n][addr] = true
			n.Flood = append(n.Flood, addr)
		}
	}
	for _, e := range st.Endpoints.All() {
		n, h := byName[e.Network], st.Hosts[e.Host]
		if n == nil {
			continue
		}
		mac, err := vswitch.ParseMAC(e.MAC)
		if err != nil {
			continue
		}
		n.Addrs[e.IP] = mac
		if e.Host == self || !h.VTEP.IsValid() {
			continue
		}
		addFlood(n, h.VTEP)
		n.Remote[mac] = h.VTEP
	}
	for _, m := range st.MACs {
		n, h := byName[m.Network], st.Hosts[m.Host]
		if n == nil || m.Host == self || !h.VTEP.IsValid() {
			continue
		}
		if mac, err := vswitch.ParseMAC(m.MAC); err == nil {
			n.Remote[mac] = h.VTEP
		}
	}
	for _, x := range st.VTEPs {
		if n := byName[x.Network]; n != nil {
			n.External[x.Addr] = true
			addFlood(n, x.Addr)
		}
	}
	for _, n := range v.Networks {
		slices.SortFunc(n.Flood, netip.Addr.Compare)
	}
	return v
}

// Names builds the in-band resolver's table from the replicated state:
// every network and the names of every endpoint in it. It only reads st.
func Names(st *raftstore.State) *resolver.Table {
	nets := make([]resolver.Network, 0, len(st.Networks))
	for _, n := range st.Networks {
		nets = append(nets, resolver.Network{Name: n.Name, VNI: n.VNI, Subnet: n.Subnet, Resolver: n.Resolver})
	}
	recs := make([]resolver.Record, 0, st.Endpoints.Len())
	for _, e := range st.Endpoints.All() {
		recs = append(recs, resolver.Record{Name: e.Name, Network: e.Network, IP: e.IP, Aliases: e.Aliases})
	}
	return resolver.NewTable(nets, recs)
}

// StableMAC derives a locally administered unicast MAC from the network and
// endpoint names, so re-attaching the same name gives the same MAC. salt
// picks another one when the first is taken.
func StableMAC(network, name string, salt int) vswitch.MAC {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", network, name, salt))
	return vswitch.MAC{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
}

// ResolverMAC is the MAC every host's switch answers for a network's
// resolver address: the same on every host, so an endpoint's ARP cache stays
// right wherever it moves.
func ResolverMAC(network string) vswitch.MAC {
	return StableMAC(network, "resolver.", 0)
}

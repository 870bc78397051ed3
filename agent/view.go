package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"vxswitch/raftstore"
	vswitch "vxswitch/switch"
)

// BuildView turns the replicated state into the forwarding view of host
// self: who may send us VXLAN, where each remote MAC lives, and which VTEPs
// get a copy of a flooded frame in each network. endpointMTU gives the
// endpoint MTU of a network on this host. Each flood list is sorted by
// address, so the same state always gives the same view (and the same order
// of flooded copies). The result is new and not yet shared: the caller may
// pass it to vswitch.Switch.SetView. BuildView only reads st.
func BuildView(st *raftstore.State, self string, endpointMTU func(raftstore.Network) int) *vswitch.View {
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
	for _, e := range st.Endpoints {
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

// refresh publishes a new view built from the current state and brings the
// local ports in line with it.
func (a *Agent) refresh() {
	st := a.store.State()
	a.updateTrust()
	a.dns.SetTable(NameTable(st))
	a.sw.SetView(BuildView(st, a.cfg.Name, a.endpointMTU))
	a.reconcile()
}

// watch refreshes after every state change until the agent stops.
func (a *Agent) watch(changes <-chan struct{}) {
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-changes:
			a.refresh()
		}
	}
}

// waitState waits until the local state satisfies ok, for at most
// writeTimeout.
func (a *Agent) waitState(ctx context.Context, ok func(*raftstore.State) bool) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !ok(a.store.State()) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("agent: committed, but this host has not applied it after %v: is it cut off from the leader?", writeTimeout)
		}
	}
	return nil
}

// ResolverMAC is the MAC every host's switch answers for a network's
// resolver address: the same on every host, so an endpoint's ARP cache stays
// right wherever it moves.
func ResolverMAC(network string) vswitch.MAC {
	return stableMAC(network, "resolver.", 0)
}

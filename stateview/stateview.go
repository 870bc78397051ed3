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

	"vxswitch/esp"
	"vxswitch/raftstore"
	"vxswitch/resolver"
	vswitch "vxswitch/switch"
	"vxswitch/vxlan"
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
		Hosts:    hostVTEPs(st),
		Networks: make(map[uint32]*vswitch.Network, len(st.Networks)),
	}
	macs := macsByNetwork(st)
	for _, n := range st.Networks {
		v.Networks[n.VNI] = buildNetwork(st, n, self, endpointMTU(n), macs[n.Name])
	}
	return v
}

// Update returns the view of st for host self, as Build does, given prev,
// the view Build or Update made of prevSt for the same self (both may be
// nil). It reuses the networks of prev that the changes from prevSt to st
// left alone (same network, same endpoints, external VTEPs and MTU), and
// patches the persistent tables of a network whose endpoints changed, so
// it costs O(log n) per changed endpoint (plus a copy of the network's
// flood list when a host joins or leaves the network); a change to the
// learned MACs of a network rebuilds that network, and a change to the
// hosts rebuilds everything. prev and its networks are not modified: the result
// is a new View that shares the unchanged *vswitch.Network values and
// tables, which are immutable once in a view.
func Update(prev *vswitch.View, prevSt, st *raftstore.State, self string, endpointMTU func(raftstore.Network) int) *vswitch.View {
	if prev == nil || prevSt == nil || !st.SameHosts(prevSt) {
		return Build(st, self, endpointMTU)
	}
	var learned map[string]bool // networks whose learned MACs changed
	if !st.SameMACs(prevSt) {
		learned = macNetworksChanged(prevSt, st)
	}
	v := &vswitch.View{Self: prev.Self, Hosts: prev.Hosts, Networks: make(map[uint32]*vswitch.Network, len(st.Networks))}
	var macs map[string][]raftstore.MACEntry
	for name, n := range st.Networks {
		mtu := endpointMTU(n)
		old, ok := prevSt.Networks[name]
		vn := prev.Networks[n.VNI]
		old.LastIP = n.LastIP // the allocator's cursor is not part of the view
		if ok && old == n && vn != nil && vn.Name == n.Name && vn.MTU == mtu && !learned[name] &&
			slices.Equal(networkVTEPs(prevSt, name), networkVTEPs(st, name)) {
			if st.Endpoints.SameNetwork(prevSt.Endpoints, name) {
				v.Networks[n.VNI] = vn
			} else {
				v.Networks[n.VNI] = patchNetwork(vn, prevSt, st, n, self)
			}
			continue
		}
		if macs == nil {
			macs = macsByNetwork(st)
		}
		v.Networks[n.VNI] = buildNetwork(st, n, self, mtu, macs[name])
	}
	return v
}

// macNetworksChanged returns the networks whose learned MAC entries differ
// between prevSt and st.
func macNetworksChanged(prevSt, st *raftstore.State) map[string]bool {
	changed := map[string]bool{}
	for k, m := range prevSt.MACs {
		if st.MACs[k] != m {
			changed[m.Network] = true
		}
	}
	for k, m := range st.MACs {
		if prevSt.MACs[k] != m {
			changed[m.Network] = true
		}
	}
	return changed
}

// patchNetwork returns a copy of vn, the view of network n in prevSt,
// changed by what the endpoints of n did between prevSt and st. The hosts,
// and the network's learned MACs, are the same in the two states. vn's
// tables are persistent: the copy shares them but for the entries of the
// endpoints that changed, so a change costs O(log n) and not a copy of the
// network.
func patchNetwork(vn *vswitch.Network, prevSt, st *raftstore.State, n raftstore.Network, self string) *vswitch.Network {
	c := *vn
	var gone, added []raftstore.Endpoint
	prevSt.Endpoints.DiffNetwork(st.Endpoints, n.Name, func(old, new *raftstore.Endpoint) {
		if old != nil {
			gone = append(gone, *old)
		}
		if new != nil {
			added = append(added, *new)
		}
	})
	for _, e := range gone {
		mac, err := vswitch.ParseMAC(e.MAC)
		if err != nil {
			continue
		}
		for _, ip := range []netip.Addr{e.IP, e.IP6} {
			if m, ok := c.Addrs.Get(ip); ok && ip.IsValid() && m == mac {
				c.Addrs = c.Addrs.Without(ip)
			}
		}
		if h := st.Hosts[e.Host]; e.Host != self && h.VTEP.IsValid() {
			if vtep, ok := c.Remote.Get(mac); ok && vtep == h.VTEP {
				c.Remote = c.Remote.Without(mac)
			}
		}
	}
	for _, e := range added {
		mac, err := vswitch.ParseMAC(e.MAC)
		if err != nil {
			continue
		}
		for _, ip := range []netip.Addr{e.IP, e.IP6} {
			if ip.IsValid() {
				c.Addrs = c.Addrs.With(ip, mac)
			}
		}
		if h := st.Hosts[e.Host]; e.Host != self && h.VTEP.IsValid() {
			c.Remote = c.Remote.With(mac, h.VTEP)
		}
	}
	c.Flood = patchFlood(vn.Flood, prevSt, st, n.Name, self, gone, added)
	return &c
}

// patchFlood returns the flood list of network in st, given flood, its
// list in prevSt (the hosts and external VTEPs of the two states are the
// same), and the endpoints that left (gone) and came (added). Only a host
// other than self that gained its first endpoint in the network or lost
// its last changes the list: a copy then gets that host's VTEP inserted
// or removed in order. Most changes do neither and return flood itself,
// which is never modified: the list, one entry per host of the network,
// is neither rebuilt nor sorted again.
func patchFlood(flood []netip.Addr, prevSt, st *raftstore.State, network, self string, gone, added []raftstore.Endpoint) []netip.Addr {
	copied := false
	for _, list := range [][]raftstore.Endpoint{gone, added} {
		for _, e := range list {
			was, is := prevSt.Endpoints.NetworkHasHost(network, e.Host), st.Endpoints.NetworkHasHost(network, e.Host)
			vtep := st.Hosts[e.Host].VTEP
			if e.Host == self || was == is || !vtep.IsValid() {
				continue
			}
			i, found := slices.BinarySearchFunc(flood, vtep, netip.Addr.Compare)
			if found == is || (!is && isExternal(st, network, vtep)) {
				continue // done already (the host is in both lists), or kept as an external VTEP
			}
			if !copied {
				flood, copied = slices.Clone(flood), true
			}
			if is {
				flood = slices.Insert(flood, i, vtep)
			} else {
				flood = slices.Delete(flood, i, i+1)
			}
		}
	}
	if len(flood) == 0 {
		return nil // as Build makes it
	}
	return flood
}

// isExternal reports whether addr is an external VTEP of network.
func isExternal(st *raftstore.State, network string, addr netip.Addr) bool {
	return slices.ContainsFunc(networkVTEPs(st, network), func(x raftstore.VTEP) bool { return x.Addr == addr })
}

// hostVTEPs maps the VTEP address of every host to its name.
func hostVTEPs(st *raftstore.State) map[netip.Addr]string {
	m := make(map[netip.Addr]string, len(st.Hosts))
	for _, h := range st.Hosts {
		m[h.VTEP] = h.Name
	}
	return m
}

// macsByNetwork groups the learned MAC entries of st by network.
func macsByNetwork(st *raftstore.State) map[string][]raftstore.MACEntry {
	out := map[string][]raftstore.MACEntry{}
	for _, m := range st.MACs {
		out[m.Network] = append(out[m.Network], m)
	}
	return out
}

// networkVTEPs returns the external VTEPs of network, in State order.
func networkVTEPs(st *raftstore.State, network string) []raftstore.VTEP {
	var out []raftstore.VTEP
	for _, x := range st.VTEPs {
		if x.Network == network {
			out = append(out, x)
		}
	}
	return out
}

// buildNetwork makes the view of network n for host self from its
// endpoints, its learned MACs (macs) and its external VTEPs. The flood
// list holds the VTEPs of the other hosts that have an endpoint in n,
// and n's external VTEPs: a host without an endpoint in n gets no copy
// of n's broadcasts.
func buildNetwork(st *raftstore.State, n raftstore.Network, self string, mtu int, macs []raftstore.MACEntry) *vswitch.Network {
	vn := &vswitch.Network{
		VNI: n.VNI, Name: n.Name, MTU: mtu,
		External: map[netip.Addr]bool{},
		Resolver: n.Resolver, ResolverMAC: ResolverMAC(n.Name),
		Subnet: n.Subnet, Subnet6: n.Subnet6, Resolver6: n.Resolver6,
	}
	flood := map[netip.Addr]bool{}
	addFlood := func(addr netip.Addr) {
		if !flood[addr] {
			flood[addr] = true
			vn.Flood = append(vn.Flood, addr)
		}
	}
	for _, e := range st.Endpoints.InNetwork(n.Name) {
		mac, err := vswitch.ParseMAC(e.MAC)
		if err != nil {
			continue
		}
		for _, ip := range []netip.Addr{e.IP, e.IP6} {
			if ip.IsValid() {
				vn.Addrs.Set(ip, mac)
			}
		}
		h := st.Hosts[e.Host]
		if e.Host == self || !h.VTEP.IsValid() {
			continue
		}
		addFlood(h.VTEP)
		vn.Remote.Set(mac, h.VTEP)
	}
	for _, m := range macs {
		h := st.Hosts[m.Host]
		if m.Host == self || !h.VTEP.IsValid() {
			continue
		}
		if mac, err := vswitch.ParseMAC(m.MAC); err == nil {
			vn.Remote.Set(mac, h.VTEP)
		}
	}
	for _, x := range networkVTEPs(st, n.Name) {
		vn.External[x.Addr] = true
		addFlood(x.Addr)
	}
	slices.SortFunc(vn.Flood, netip.Addr.Compare)
	vn.Addrs.Trim()
	vn.Remote.Trim()
	return vn
}

// EndpointMTU returns the largest IP packet an endpoint of n can send over
// an underlay of MTU underlayMTU reached through the address vtep (its
// family gives the outer IP header): the underlay MTU less the VXLAN
// overhead (vxlan.Overhead: 50 over IPv4, 70 over IPv6), or less the ESP
// in UDP overhead as well for an encrypted network (esp.EndpointMTU), not
// counting n.MTU, which may lower it further.
func EndpointMTU(n raftstore.Network, underlayMTU int, vtep netip.Addr) int {
	if !n.Encrypted {
		return underlayMTU - vxlan.Overhead(vtep)
	}
	ipHeader := 20
	if vtep.Is6() && !vtep.Is4In6() {
		ipHeader = 40
	}
	return esp.EndpointMTU(underlayMTU, ipHeader)
}

// Names builds the in-band resolver's table from the replicated state:
// every network and the names of every endpoint in it. It only reads st.
func Names(st *raftstore.State) *resolver.Table {
	zones := make([]*resolver.Zone, 0, len(st.Networks))
	for _, name := range sortedNames(st.Networks) {
		zones = append(zones, buildZone(st, st.Networks[name]))
	}
	return resolver.TableOf(zones)
}

// zoneNetwork is what the resolver knows of a network.
func zoneNetwork(n raftstore.Network) resolver.Network {
	return resolver.Network{Name: n.Name, VNI: n.VNI, Subnet: n.Subnet, Resolver: n.Resolver, Subnet6: n.Subnet6, Resolver6: n.Resolver6}
}

// buildZone builds the resolver's zone of network n from its endpoints.
func buildZone(st *raftstore.State, n raftstore.Network) *resolver.Zone {
	recs := make([]resolver.Record, 0, st.Endpoints.NetworkLen(n.Name))
	for _, e := range st.Endpoints.InNetwork(n.Name) {
		recs = append(recs, record(e))
	}
	return resolver.NewZone(zoneNetwork(n), recs)
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

// Builder makes a host's successive views and name tables, rebuilding
// only the networks that changed since its last call (see Update). The
// zero value is ready to use; a Builder is not safe for concurrent use
// (the agent's refresh loop owns one).
type Builder struct {
	viewSt *raftstore.State
	view   *vswitch.View

	namesSt *raftstore.State
	zones   map[string]*resolver.Zone // by network name, built from namesSt
}

// View returns the view of st for host self, rebuilding only what changed
// since the last call (see Update). Every call must use the same self.
func (b *Builder) View(st *raftstore.State, self string, endpointMTU func(raftstore.Network) int) *vswitch.View {
	b.view = Update(b.view, b.viewSt, st, self, endpointMTU)
	b.viewSt = st
	return b.view
}

// Names returns the name table of st, as Names does; it rebuilds only
// the zones of networks whose endpoints or addresses changed since the
// last call and shares the others with the last table.
func (b *Builder) Names(st *raftstore.State) *resolver.Table {
	zones := make(map[string]*resolver.Zone, len(st.Networks))
	list := make([]*resolver.Zone, 0, len(st.Networks))
	for _, name := range sortedNames(st.Networks) {
		n := st.Networks[name]
		z, ok := b.zones[name]
		switch {
		case !ok || !b.sameNetwork(n):
			z = buildZone(st, n)
		case !st.Endpoints.SameNetwork(b.namesSt.Endpoints, name):
			z = patchZone(z, b.namesSt, st, name)
		}
		zones[name] = z
		list = append(list, z)
	}
	b.namesSt, b.zones = st, zones
	return resolver.TableOf(list)
}

// sameNetwork reports whether network n is what the resolver knew of it
// in the last state.
func (b *Builder) sameNetwork(n raftstore.Network) bool {
	if b.namesSt == nil {
		return false
	}
	old, ok := b.namesSt.Networks[n.Name]
	return ok && zoneNetwork(old) == zoneNetwork(n)
}

// patchZone returns zone z of network, made from prevSt, changed by what
// the endpoints of network did between prevSt and st.
func patchZone(z *resolver.Zone, prevSt, st *raftstore.State, network string) *resolver.Zone {
	var gone, added []resolver.Record
	prevSt.Endpoints.DiffNetwork(st.Endpoints, network, func(old, new *raftstore.Endpoint) {
		if old != nil {
			gone = append(gone, record(*old))
		}
		if new != nil {
			added = append(added, record(*new))
		}
	})
	return z.Patch(gone, added)
}

// record is what the resolver knows of an endpoint.
func record(e raftstore.Endpoint) resolver.Record {
	return resolver.Record{Name: e.Name, Network: e.Network, IP: e.IP, IP6: e.IP6, Aliases: e.Aliases}
}

// sortedNames returns the keys of m in order.
func sortedNames(m map[string]raftstore.Network) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

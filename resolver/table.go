package resolver

import (
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"vxswitch/pmap"
)

// Network is one overlay network as the resolver sees it. The zero value
// has no name, and NewTable ignores networks without a name. A dual-stack
// network has a subnet and a resolver address of each family; the two
// pairs are treated alike, so either may hold either family, and a zero
// Subnet6 and Resolver6 mean a single-family network.
type Network struct {
	Name      string       // network name, e.g. "web"; endpoints answer as NAME.web
	VNI       uint32       // the VXLAN network identifier queries arrive with
	Subnet    netip.Prefix // PTR queries for addresses inside it are answered here
	Resolver  netip.Addr   // the network's resolver address; its PTR is resolver.NAME
	Subnet6   netip.Prefix // the network's second (IPv6) subnet, or zero; PTR queries as for Subnet
	Resolver6 netip.Addr   // the resolver's address in Subnet6, or zero; its PTR is resolver.NAME
}

// Record is one endpoint: a name, the network it is attached to, its
// addresses and optional extra names. The zero value names nothing and is
// ignored by NewTable.
type Record struct {
	Name    string     // endpoint name, unique in the cluster
	Network string     // name of the network the endpoint is attached to
	IP      netip.Addr // the endpoint's address in that network: an A (or AAAA) record
	IP6     netip.Addr // the endpoint's second (IPv6) address, or zero: an AAAA record
	Aliases []string   // extra names, answered like Name
}

// Name is one name a network answers with one address, as listed by
// Server.Names; a dual-stack endpoint's name is listed once per address.
type Name struct {
	Name    string     // fully qualified name without the trailing dot, e.g. "api.web"
	Network string     // the network the name belongs to
	IP      netip.Addr // the address the name resolves to
	Kind    string     // "name" for an endpoint's own name, "alias" for an alias
}

// Table is an immutable index of networks and their names. Build one with
// NewTable and hand it to Server.SetTable; never change it afterwards, so
// any number of goroutines may read it without locks. A nil *Table holds
// no networks.
type Table struct {
	byVNI  map[uint32]*zone
	byName map[string]*zone
}

// zone is everything one network answers. Its indexes are persistent
// maps (package pmap), so Patch makes the zone of the next table from
// this one in O(log n) per changed record and shares the rest.
type zone struct {
	net    Network
	origin string // lower-case "web."
	// addrs maps a lower-case name without a trailing dot ("api", not
	// "api." nor "api.web.") to its addresses, sorted; "api." and
	// "api.web." both answer them (see lookup). The key is the endpoint's
	// own string when it is in lower case already, so the table keeps no
	// second copy of it.
	addrs pmap.Map[string, []nameAddr]
	// ptrs maps an endpoint address inside one of the subnets (unmapped)
	// to its name as in addrs; its reverse name (in-addr.arpa or
	// ip6.arpa) answers name.origin. The resolver's own addresses answer
	// "resolver."+origin (see ptr).
	ptrs pmap.Map[netip.Addr, string]
}

// nameAddr is one address of a name, and whether the name is an alias
// there (Name.Kind).
type nameAddr struct {
	ip    netip.Addr
	alias bool
}

// NewTable indexes networks by VNI and by name and attaches every record to
// its network. Names are compared case-insensitively (RFC 4343), so they
// are stored in lower case. Networks without a name are ignored, and so are
// records whose network is not in nets or that have no name or no valid
// address. A record with both IP and IP6 answers A and AAAA queries, and
// each address inside one of the network's subnets gets a PTR record, under
// in-addr.arpa or ip6.arpa (RFC 3596 section 2.5). When two networks share
// a VNI or a name, the later one wins.
func NewTable(nets []Network, recs []Record) *Table {
	last := make(map[string]int, len(nets)) // network name -> index of the last network with it
	for i, n := range nets {
		last[zoneName(n.Name)] = i
	}
	byNet := map[string][]Record{}
	for _, r := range recs {
		byNet[strings.ToLower(r.Network)] = append(byNet[strings.ToLower(r.Network)], r)
	}
	zones := make([]*Zone, 0, len(nets))
	for i, n := range nets {
		var rs []Record
		if name := zoneName(n.Name); last[name] == i {
			rs = byNet[name]
		}
		zones = append(zones, NewZone(n, rs))
	}
	return TableOf(zones)
}

// Zone is the part of a Table that answers one network, immutable like
// it. NewZone builds one and TableOf puts zones together, so a caller
// that keeps the zones of the last table rebuilds only those of the
// networks that changed.
type Zone struct{ z *zone }

// zoneName is the form a network name is kept in.
func zoneName(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// NewZone builds the zone of network n from the records of its endpoints;
// records of other networks, without a name or without a valid address
// are ignored. It returns nil for a network without a name.
func NewZone(n Network, recs []Record) *Zone {
	n.Name = zoneName(n.Name)
	if n.Name == "" {
		return nil
	}
	z := &zone{net: n, origin: dns.Fqdn(n.Name)}
	for _, r := range recs {
		if !z.accepts(r) {
			continue
		}
		for _, ip := range recordAddrs(r) {
			for _, rn := range names(r) {
				old, _ := z.addrs.Get(rn.name)
				z.addrs.Set(rn.name, withAddr(old, nameAddr{ip, rn.alias}))
			}
			if z.inSubnet(ip) {
				z.ptrs.Set(ip.Unmap(), lowerName(r.Name))
			}
		}
	}
	z.addrs.Trim()
	z.ptrs.Trim()
	return &Zone{z}
}

// Patch returns a new zone: z without the records in gone and with those
// in added, records of z's network as NewZone takes them (gone are records
// NewZone was given for z or a zone z was patched from). It gives what
// NewZone gives for the changed records when no two records share a name
// or an address, as in vxswitch's state. The new zone shares all of z but
// the entries of the changed records, so it costs O(log n) per record; z
// is not modified.
func (z *Zone) Patch(gone, added []Record) *Zone {
	c := *z.z
	for _, r := range gone {
		if !c.accepts(r) {
			continue
		}
		for _, ip := range recordAddrs(r) {
			for _, rn := range names(r) {
				addrs := slices.DeleteFunc(slices.Clone(get(c.addrs, rn.name)), func(a nameAddr) bool { return a.ip == ip })
				if len(addrs) == 0 {
					c.addrs = c.addrs.Without(rn.name)
				} else {
					c.addrs = c.addrs.With(rn.name, addrs)
				}
			}
			if name, ok := c.ptrs.Get(ip.Unmap()); ok && name == lowerName(r.Name) {
				c.ptrs = c.ptrs.Without(ip.Unmap())
			}
		}
	}
	for _, r := range added {
		if !c.accepts(r) {
			continue
		}
		for _, ip := range recordAddrs(r) {
			for _, rn := range names(r) {
				c.addrs = c.addrs.With(rn.name, withAddr(slices.Clone(get(c.addrs, rn.name)), nameAddr{ip, rn.alias}))
			}
			if c.inSubnet(ip) {
				c.ptrs = c.ptrs.With(ip.Unmap(), lowerName(r.Name))
			}
		}
	}
	return &Zone{&c}
}

// accepts reports whether r is a record z takes: one of its network, with
// a name (its addresses are recordAddrs).
func (z *zone) accepts(r Record) bool {
	return strings.ToLower(r.Network) == z.net.Name && r.Name != ""
}

// recordName is one name of a record, as a key of zone.addrs.
type recordName struct {
	name  string
	alias bool
}

// names returns the names of r: its own, then its aliases ("" skipped).
func names(r Record) []recordName {
	out := make([]recordName, 0, 1+len(r.Aliases))
	out = append(out, recordName{lowerName(r.Name), false})
	for _, a := range r.Aliases {
		if a != "" {
			out = append(out, recordName{lowerName(a), true})
		}
	}
	return out
}

// lowerName is name as a key of zone.addrs: lower case, no trailing dot.
// It is name itself (no copy) when name is in that form already.
func lowerName(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// get returns the addresses of name in addrs.
func get(addrs pmap.Map[string, []nameAddr], name string) []nameAddr {
	a, _ := addrs.Get(name)
	return a
}

// withAddr returns addrs with a inserted in address order, unless its
// address is there already. addrs may be changed: pass a copy of a
// slice someone else holds.
func withAddr(addrs []nameAddr, a nameAddr) []nameAddr {
	i, found := slices.BinarySearchFunc(addrs, a.ip, func(x nameAddr, ip netip.Addr) int { return x.ip.Compare(ip) })
	if found {
		return addrs
	}
	return slices.Insert(addrs, i, a)
}

// lookup returns the addresses that the lower-case, fully qualified name
// answers in z, sorted, and whether name is a name of z: "X." and
// "X.N." (N the network) both answer the name X.
func (z *zone) lookup(name string) ([]nameAddr, bool) {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return nil, false
	}
	full, ok := z.addrs.Get(n)
	short, cut := strings.CutSuffix(n, "."+z.net.Name)
	if !cut || short == "" {
		return full, ok
	}
	more, ok2 := z.addrs.Get(short)
	switch {
	case !ok2:
		return full, ok
	case !ok:
		return more, true
	}
	all := slices.Clone(full)
	for _, a := range more {
		all = withAddr(all, a)
	}
	return all, true
}

// ptr returns the target of the PTR record of address ip in z.
func (z *zone) ptr(ip netip.Addr) (string, bool) {
	if name, ok := z.ptrs.Get(ip); ok {
		return name + "." + z.origin, true
	}
	for _, r := range []netip.Addr{z.net.Resolver, z.net.Resolver6} {
		if r.IsValid() && ip == r.Unmap() {
			return "resolver." + z.origin, true
		}
	}
	return "", false
}

// names returns the names z answers, one per address, sorted by name,
// then address.
func (z *zone) names() []Name {
	out := make([]Name, 0, z.addrs.Len())
	for name, addrs := range z.addrs.All() {
		for _, a := range addrs {
			kind := "name"
			if a.alias {
				kind = "alias"
			}
			out = append(out, Name{Name: name + "." + z.net.Name, Network: z.net.Name, IP: a.ip, Kind: kind})
		}
	}
	sortNames(out)
	return out
}

// recordAddrs returns the valid addresses of r: IP, then IP6.
func recordAddrs(r Record) []netip.Addr {
	var out []netip.Addr
	for _, ip := range []netip.Addr{r.IP, r.IP6} {
		if ip.IsValid() {
			out = append(out, ip)
		}
	}
	return out
}

// sortNames sorts names by name, then address.
func sortNames(names []Name) {
	sort.Slice(names, func(i, j int) bool {
		if names[i].Name != names[j].Name {
			return names[i].Name < names[j].Name
		}
		return names[i].IP.Less(names[j].IP)
	})
}

// TableOf returns a Table of zones; nil zones are skipped, and when two
// zones share a VNI or a name, the later one wins.
func TableOf(zones []*Zone) *Table {
	t := &Table{
		byVNI:  make(map[uint32]*zone, len(zones)),
		byName: make(map[string]*zone, len(zones)),
	}
	for _, z := range zones {
		if z == nil {
			continue
		}
		t.byVNI[z.z.net.VNI] = z.z
		t.byName[z.z.net.Name] = z.z
	}
	return t
}

// inSubnet reports whether ip is inside one of z's subnets.
func (z *zone) inSubnet(ip netip.Addr) bool {
	return z.net.Subnet.Contains(ip) || z.net.Subnet6.Contains(ip)
}

// zoneByVNI returns the network with that VNI, or nil.
func (t *Table) zoneByVNI(vni uint32) *zone {
	if t == nil {
		return nil
	}
	return t.byVNI[vni]
}

// zoneByName returns the network with that name (any case), or nil.
func (t *Table) zoneByName(name string) *zone {
	if t == nil {
		return nil
	}
	return t.byName[strings.ToLower(name)]
}

// isNetwork reports whether label is the name of any network in t.
func (t *Table) isNetwork(label string) bool {
	return t.zoneByName(label) != nil
}

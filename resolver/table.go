package resolver

import (
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
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

// zone is everything one network answers.
type zone struct {
	net    Network
	origin string                  // lower-case "web."
	addrs  map[string][]netip.Addr // lower-case fqdn ("api." and "api.web.") -> addresses, sorted
	ptrs   map[string]string       // reverse name ("4.0.0.10.in-addr.arpa.", "...ip6.arpa.") -> target ("api.web.")
	names  []Name                  // sorted by Name
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
	z := &zone{
		net:    n,
		origin: dns.Fqdn(n.Name),
		addrs:  make(map[string][]netip.Addr),
		ptrs:   make(map[string]string),
	}
	for _, a := range []netip.Addr{n.Resolver, n.Resolver6} {
		if a.IsValid() {
			z.addPTR(a, "resolver."+z.origin)
		}
	}
	for _, r := range recs {
		if strings.ToLower(r.Network) != n.Name || r.Name == "" {
			continue
		}
		for _, ip := range recordAddrs(r) {
			z.add(r.Name, ip, "name")
			for _, a := range r.Aliases {
				if a != "" {
					z.add(a, ip, "alias")
				}
			}
			if z.inSubnet(ip) {
				z.addPTR(ip, strings.ToLower(dns.Fqdn(r.Name))+z.origin)
			}
		}
	}
	for _, addrs := range z.addrs {
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	}
	sortNames(z.names)
	return &Zone{z}
}

// Patch returns a new zone: z without the records in gone and with those
// in added, records of z's network as NewZone takes them (gone are records
// NewZone was given for z or a zone z was patched from). It gives what
// NewZone gives for the changed records when no two records share a name
// or an address, as in vxswitch's state. It copies z's indexes, which is
// much cheaper than building them, and changes only the changed records'
// entries; z is not modified.
func (z *Zone) Patch(gone, added []Record) *Zone {
	old := z.z
	c := &zone{net: old.net, origin: old.origin, addrs: maps.Clone(old.addrs), ptrs: maps.Clone(old.ptrs)}
	drop := map[Name]bool{}
	for _, r := range gone {
		if strings.ToLower(r.Network) != c.net.Name || r.Name == "" {
			continue
		}
		for _, ip := range recordAddrs(r) {
			for i, name := range append([]string{r.Name}, r.Aliases...) {
				if name == "" {
					continue
				}
				name = strings.TrimSuffix(strings.ToLower(name), ".")
				for _, fqdn := range []string{name + ".", name + "." + c.origin} {
					addrs := slices.DeleteFunc(slices.Clone(c.addrs[fqdn]), func(a netip.Addr) bool { return a == ip })
					if len(addrs) == 0 {
						delete(c.addrs, fqdn)
					} else {
						c.addrs[fqdn] = addrs
					}
				}
				kind := "alias"
				if i == 0 {
					kind = "name"
				}
				drop[Name{Name: name + "." + c.net.Name, Network: c.net.Name, IP: ip, Kind: kind}] = true
			}
			if rev, err := dns.ReverseAddr(ip.String()); err == nil && c.inSubnet(ip) &&
				c.ptrs[rev] == strings.ToLower(dns.Fqdn(r.Name))+c.origin {
				delete(c.ptrs, rev)
			}
		}
	}
	c.names = make([]Name, 0, len(old.names)+len(added))
	for _, n := range old.names {
		if !drop[n] {
			c.names = append(c.names, n)
		}
	}
	changed := map[string]bool{}
	for _, r := range added {
		if strings.ToLower(r.Network) != c.net.Name || r.Name == "" {
			continue
		}
		for _, ip := range recordAddrs(r) {
			for i, name := range append([]string{r.Name}, r.Aliases...) {
				if name == "" {
					continue
				}
				name = strings.TrimSuffix(strings.ToLower(name), ".")
				for _, fqdn := range []string{name + ".", name + "." + c.origin} {
					if !changed[fqdn] {
						c.addrs[fqdn] = slices.Clone(c.addrs[fqdn]) // shared with z until now
						changed[fqdn] = true
					}
				}
				kind := "alias"
				if i == 0 {
					kind = "name"
				}
				c.add(name, ip, kind)
			}
			if c.inSubnet(ip) {
				c.addPTR(ip, strings.ToLower(dns.Fqdn(r.Name))+c.origin)
			}
		}
	}
	for fqdn := range changed {
		addrs := c.addrs[fqdn]
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	}
	sortNames(c.names)
	return &Zone{c}
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

// add makes name answer ip in z, both as "name." and as "name.network.".
func (z *zone) add(name string, ip netip.Addr, kind string) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	for _, fqdn := range []string{name + ".", name + "." + z.origin} {
		z.addrs[fqdn] = appendNew(z.addrs[fqdn], ip)
	}
	z.names = append(z.names, Name{Name: name + "." + z.net.Name, Network: z.net.Name, IP: ip, Kind: kind})
}

// addPTR makes the reverse name of ip (under in-addr.arpa or ip6.arpa)
// point to target in z.
func (z *zone) addPTR(ip netip.Addr, target string) {
	if rev, err := dns.ReverseAddr(ip.Unmap().String()); err == nil {
		z.ptrs[rev] = target
	}
}

// inSubnet reports whether ip is inside one of z's subnets.
func (z *zone) inSubnet(ip netip.Addr) bool {
	return z.net.Subnet.Contains(ip) || z.net.Subnet6.Contains(ip)
}

// appendNew appends ip to addrs unless it is already there.
func appendNew(addrs []netip.Addr, ip netip.Addr) []netip.Addr {
	for _, a := range addrs {
		if a == ip {
			return addrs
		}
	}
	return append(addrs, ip)
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

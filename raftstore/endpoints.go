package raftstore

import (
	"encoding/json"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"vxswitch/pmap"
)

// EndpointMap is the set of endpoints of a State, by name, indexed per
// network by name, MAC, address and DNS name. It is persistent: a change
// makes a new EndpointMap that shares all but a few nodes with the old
// one, so attaching one endpoint to a state of 100,000 costs the same as to
// a state of ten, and every State keeps its own version unchanged.
//
// The zero value is empty. An EndpointMap is immutable: any number of
// goroutines may read it. Its JSON form is the object a
// map[string]Endpoint encodes to, with the keys sorted.
type EndpointMap struct {
	network pmap.Map[string, string]       // endpoint name -> its network; the endpoint is in nets
	nets    pmap.Map[string, netEndpoints] // by network name
}

// netEndpoints indexes the endpoints of one network.
type netEndpoints struct {
	byName pmap.Map[string, Endpoint]
	byMAC  pmap.Map[string, string]     // MAC -> endpoint name
	byIP   pmap.Map[netip.Addr, string] // address (IPv4 and IPv6) -> endpoint name
	dns    pmap.Map[string, string]     // endpoint name or alias -> endpoint name
	hosts  pmap.Map[string, int]        // host name -> how many endpoints it has here
}

// NewEndpointMap returns an EndpointMap holding the endpoints of m (keyed
// by their names), for tests and tools that build a State by hand.
func NewEndpointMap(m map[string]Endpoint) EndpointMap {
	// The maps are new and shared with no one yet, so they are built by
	// changing their nodes in place (set), much faster than with.
	var em EndpointMap
	nets := map[string]*netEndpoints{}
	// The few distinct networks, hosts and interface names are kept once
	// each, not once per endpoint as decoding makes them.
	strs := map[string]string{}
	intern := func(s string) string {
		if v, ok := strs[s]; ok {
			return v
		}
		strs[s] = s
		return s
	}
	for _, name := range sortedKeys(m) {
		e := m[name]
		e.Name = name
		e.Network, e.Host, e.IfName = intern(e.Network), intern(e.Host), intern(e.IfName)
		em.network.Set(name, e.Network)
		n := nets[e.Network]
		if n == nil {
			n = &netEndpoints{}
			nets[e.Network] = n
		}
		n.byName.Set(name, e)
		if _, ok := n.byMAC.Get(e.MAC); !ok {
			n.byMAC.Set(e.MAC, name)
		}
		for _, ip := range []netip.Addr{e.IP, e.IP6} {
			if _, ok := n.byIP.Get(ip); !ok && ip.IsValid() {
				n.byIP.Set(ip, name)
			}
		}
		if _, ok := n.dns.Get(name); !ok {
			n.dns.Set(name, name)
		}
		for _, a := range e.Aliases {
			if _, ok := n.dns.Get(a); !ok {
				n.dns.Set(a, name)
			}
		}
		c, _ := n.hosts.Get(e.Host)
		n.hosts.Set(e.Host, c+1)
	}
	em.network.Trim()
	for _, name := range sortedKeys(nets) {
		n := nets[name]
		n.byName.Trim()
		n.byMAC.Trim()
		n.byIP.Trim()
		n.dns.Trim()
		em.nets.Set(name, *n)
	}
	return em
}

// Len returns the number of endpoints.
func (m EndpointMap) Len() int { return m.network.Len() }

// Get returns the endpoint called name.
func (m EndpointMap) Get(name string) (Endpoint, bool) {
	network, ok := m.network.Get(name)
	if !ok {
		return Endpoint{}, false
	}
	n, _ := m.nets.Get(network)
	return n.byName.Get(name)
}

// All yields every endpoint by name, in no particular order.
func (m EndpointMap) All() iter.Seq2[string, Endpoint] {
	return func(yield func(string, Endpoint) bool) {
		for _, n := range m.nets.All() {
			for name, e := range n.byName.All() {
				if !yield(name, e) {
					return
				}
			}
		}
	}
}

// InNetwork yields the endpoints of network by name, in no particular
// order; it visits only that network's endpoints.
func (m EndpointMap) InNetwork(network string) iter.Seq2[string, Endpoint] {
	n, _ := m.nets.Get(network)
	return n.byName.All()
}

// NetworkLen returns the number of endpoints in network.
func (m EndpointMap) NetworkLen(network string) int {
	n, _ := m.nets.Get(network)
	return n.byName.Len()
}

// ByIP returns the endpoint of network that has address ip (its IPv4 or,
// on a dual-stack network, its IPv6 address).
func (m EndpointMap) ByIP(network string, ip netip.Addr) (Endpoint, bool) {
	n, _ := m.nets.Get(network)
	return n.endpoint(n.byIP.Get(ip))
}

// ByMAC returns the endpoint of network that has mac (lower-case colon
// form).
func (m EndpointMap) ByMAC(network, mac string) (Endpoint, bool) {
	n, _ := m.nets.Get(network)
	return n.endpoint(n.byMAC.Get(mac))
}

// ByDNSName returns the endpoint of network that has name as its name or
// as one of its aliases.
func (m EndpointMap) ByDNSName(network, name string) (Endpoint, bool) {
	n, _ := m.nets.Get(network)
	return n.endpoint(n.dns.Get(name))
}

// SameNetwork reports whether the endpoints of network are the same in m
// and o because neither was changed since one was made from the other. It
// may report false for equal contents, never true for different ones.
func (m EndpointMap) SameNetwork(o EndpointMap, network string) bool {
	a, _ := m.nets.Get(network)
	b, _ := o.nets.Get(network)
	return a.byName.Same(b.byName)
}

// NetworkHasHost reports whether host has at least one endpoint in
// network.
func (m EndpointMap) NetworkHasHost(network, host string) bool {
	n, _ := m.nets.Get(network)
	_, ok := n.hosts.Get(host)
	return ok
}

// diff calls change for every endpoint that differs between m (old) and
// o (new), as DiffNetwork does for every network; it visits only the
// networks, and their parts, that differ.
func (m EndpointMap) diff(o EndpointMap, change func(old, new *Endpoint)) {
	same := func(a, b netEndpoints) bool { return a.byName.Same(b.byName) }
	m.nets.Diff(o.nets, same, func(_ string, a, b *netEndpoints) {
		var old, new pmap.Map[string, Endpoint]
		if a != nil {
			old = a.byName
		}
		if b != nil {
			new = b.byName
		}
		old.Diff(new, sameEndpoint, func(_ string, x, y *Endpoint) { change(x, y) })
	})
}

// DiffNetwork calls change for every endpoint of network that differs
// between m (old) and o (new): old is nil for an endpoint only in o, new
// nil for one only in m. It visits only the parts of the two maps that
// differ, so two versions one change apart cost O(log n).
func (m EndpointMap) DiffNetwork(o EndpointMap, network string, change func(old, new *Endpoint)) {
	a, _ := m.nets.Get(network)
	b, _ := o.nets.Get(network)
	a.byName.Diff(b.byName, sameEndpoint, func(_ string, old, new *Endpoint) { change(old, new) })
}

func (n netEndpoints) endpoint(name string, ok bool) (Endpoint, bool) {
	if !ok {
		return Endpoint{}, false
	}
	return n.byName.Get(name)
}

// with returns m with e added, or replacing the endpoint of the same name.
func (m EndpointMap) with(e Endpoint) EndpointMap {
	if _, ok := m.network.Get(e.Name); ok {
		m = m.without(e.Name)
	}
	n, _ := m.nets.Get(e.Network)
	n.byName = n.byName.With(e.Name, e)
	n.byMAC = n.byMAC.With(e.MAC, e.Name)
	for _, ip := range []netip.Addr{e.IP, e.IP6} {
		if ip.IsValid() {
			n.byIP = n.byIP.With(ip, e.Name)
		}
	}
	n.dns = n.dns.With(e.Name, e.Name)
	for _, a := range e.Aliases {
		n.dns = n.dns.With(a, e.Name)
	}
	c, _ := n.hosts.Get(e.Host)
	n.hosts = n.hosts.With(e.Host, c+1)
	return EndpointMap{network: m.network.With(e.Name, e.Network), nets: m.nets.With(e.Network, n)}
}

// without returns m without the endpoint called name.
func (m EndpointMap) without(name string) EndpointMap {
	e, ok := m.Get(name)
	if !ok {
		return m
	}
	n, _ := m.nets.Get(e.Network)
	n.byName = n.byName.Without(name)
	// An index entry goes only if it names this endpoint: a hand-built
	// state may hold duplicates the FSM would have refused.
	drop := func(p pmap.Map[string, string], k string) pmap.Map[string, string] {
		if v, _ := p.Get(k); v == name {
			return p.Without(k)
		}
		return p
	}
	n.byMAC = drop(n.byMAC, e.MAC)
	for _, ip := range []netip.Addr{e.IP, e.IP6} {
		if v, ok := n.byIP.Get(ip); ok && v == name {
			n.byIP = n.byIP.Without(ip)
		}
	}
	n.dns = drop(n.dns, e.Name)
	for _, a := range e.Aliases {
		n.dns = drop(n.dns, a)
	}
	if c, _ := n.hosts.Get(e.Host); c > 1 {
		n.hosts = n.hosts.With(e.Host, c-1)
	} else {
		n.hosts = n.hosts.Without(e.Host)
	}
	nets := m.nets.With(e.Network, n)
	if n.byName.Len() == 0 {
		nets = m.nets.Without(e.Network)
	}
	return EndpointMap{network: m.network.Without(name), nets: nets}
}

// Names returns the names of all endpoints, sorted.
func (m EndpointMap) Names() []string {
	names := make([]string, 0, m.Len())
	for name := range m.All() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// MarshalJSON encodes m as the JSON object a map[string]Endpoint encodes
// to (keys sorted), so snapshots and State.Hash are those of the plain map.
func (m EndpointMap) MarshalJSON() ([]byte, error) {
	return json.Marshal(maps.Collect(m.All()))
}

// UnmarshalJSON decodes a JSON object by endpoint name (or null) into m.
// An endpoint's Name is taken from its key.
func (m *EndpointMap) UnmarshalJSON(b []byte) error {
	if strings.TrimSpace(string(b)) == "null" {
		*m = EndpointMap{}
		return nil
	}
	var raw map[string]Endpoint
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = NewEndpointMap(raw)
	return nil
}

// At returns the endpoint called name, or the zero Endpoint.
func (m EndpointMap) At(name string) Endpoint {
	e, _ := m.Get(name)
	return e
}

// shareWith makes m, an EndpointMap just decoded, share every part that
// equals the same part of o (see pmap.shareWith): a snapshot holds the
// current state and the history's base state, which differ only by the
// retained commands, and would otherwise take twice the memory.
func (m *EndpointMap) shareWith(o EndpointMap) {
	eq := func(a, b string) bool { return a == b }
	m.network.ShareWith(o.network, eq)
	for name, n := range m.nets.All() {
		b, _ := o.nets.Get(name)
		n.byName.ShareWith(b.byName, sameEndpoint)
		n.byMAC.ShareWith(b.byMAC, eq)
		n.byIP.ShareWith(b.byIP, eq)
		n.dns.ShareWith(b.dns, eq)
		n.hosts.ShareWith(b.hosts, func(x, y int) bool { return x == y })
		m.nets.Set(name, n)
	}
	m.nets.ShareWith(o.nets, func(a, b netEndpoints) bool {
		return a.byName.Same(b.byName) && a.byMAC.Same(b.byMAC) && a.byIP.Same(b.byIP) && a.dns.Same(b.dns) && a.hosts.Same(b.hosts)
	})
}

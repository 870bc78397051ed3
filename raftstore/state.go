// Package raftstore holds the replicated state of a vxswitch cluster: hosts,
// networks, endpoints (with their MAC and IP addresses), external VTEPs and
// MAC addresses learned by hosts. Every change is a Command committed through
// hashicorp/raft and applied by a deterministic FSM, which also assigns IP
// addresses (IPAM), so an address is never handed out twice, even across a
// leader failover.
//
// Readers never lock: the FSM publishes a new immutable *State after each
// change and readers load the current pointer. A new State shares what
// did not change with the one before (see State), so a write costs what
// it changes, not the size of the state.
package raftstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"sort"
)

// Host is one member of the cluster: a machine running `vxswitch agent`.
// The zero value is not a valid host; Name and VTEP are required.
type Host struct {
	Name     string     // unique host name, also the raft node id
	VTEP     netip.Addr // underlay address VXLAN packets are sent to
	RaftAddr string     // raft TCP address "ip:port"; may be empty
	APIAddr  string     // agent API TCP address "ip:port"; may be empty
	JoinedAt int64      // unix nanoseconds of the first host.add, taken from Command.Time
	// KeyFP is the fingerprint of the public key of the host's certificate
	// (pki.KeyFingerprint): the host is its name and this key. "" for a
	// host recorded before keys were (it is set at its next join).
	KeyFP string `json:",omitempty"`
	// CertCA is the hex SHA-256 of the CA certificate that signed the
	// host's current certificate, as the host last reported it ("" if it
	// never did): the leader retires a replaced CA once no host uses it.
	CertCA string `json:",omitempty"`
	// ESP is the host's current public key for encrypted networks, set by
	// host.key (esp.go); nil until the host's agent published one.
	ESP *HostKey `json:",omitempty"`
	// ESPStatic is the hex X25519 public key the host keeps in its data
	// dir and never rotates: SAs with external (kernel) VTEPs are derived
	// from it so that commands printed by 'vtep xfrm' stay valid. Set by
	// host.key; "" until the host published one.
	ESPStatic string `json:",omitempty"`
}

// Network is one virtual layer-2 network: one VXLAN network identifier (VNI,
// RFC 7348 section 5) and one IPv4 subnet managed by the FSM's IPAM, plus
// an IPv6 subnet when the network is dual-stack.
type Network struct {
	Name      string
	VNI       uint32       // 1..MaxVNI; 0 in a network.create command asks the FSM to allocate one
	Subnet    netip.Prefix // masked IPv4 prefix, /8../29
	Resolver  netip.Addr   // first usable address of Subnet, reserved for the in-band DNS resolver
	MTU       int          // endpoint MTU; 0 means "derive from the underlay" (agents clamp anyway)
	CreatedAt int64        // unix nanoseconds, taken from Command.Time
	// LastIP is the address the allocator handed out last (zero before the
	// first); the next allocation starts after it (ipam.go).
	LastIP netip.Addr `json:",omitempty"`
	// Subnet6 is the IPv6 subnet of a dual-stack network (masked,
	// /32../120, usually /64); zero for an IPv4-only network. Every
	// endpoint of a dual-stack network has an address in each subnet.
	Subnet6 netip.Prefix `json:",omitzero"`
	// Resolver6 is the resolver's IPv6 address, the first after the
	// subnet's own (fd20::1 in fd20::/64); zero without Subnet6.
	Resolver6 netip.Addr `json:",omitzero"`
	// LastIP6 is the IPv6 address the allocator handed out last
	// (ipam6.go), as LastIP is for IPv4.
	LastIP6 netip.Addr `json:",omitzero"`
	// Encrypted networks carry their frames between hosts as ESP (package
	// esp); their endpoint MTU is lower by the ESP overhead.
	Encrypted bool `json:",omitempty"`
}

// Endpoint is one attached interface (a TAP inside a container's network
// namespace) on one host, in one network.
type Endpoint struct {
	Name      string     // unique in the whole cluster
	Network   string     // name of the network
	Host      string     // name of the host owning the TAP
	MAC       string     // lower-case "02:00:00:00:00:01" form
	IP        netip.Addr // assigned by the FSM unless requested in endpoint.attach
	NetNS     string     // network namespace name or path, as given by the user
	IfName    string     // interface name inside NetNS, e.g. "eth0"
	Aliases   []string   // extra DNS names; never modified in place
	CreatedAt int64      // unix nanoseconds, taken from Command.Time
	// Owner names what asked for the endpoint when that is not a person,
	// for example "cni:CONTAINERID/IFNAME" or "docker:ENDPOINTID", so the
	// integration can find and clean up its own endpoints; "" for attach.
	Owner string
	// IP6 is the endpoint's IPv6 address in a dual-stack network
	// (Network.Subnet6), assigned like IP; zero in an IPv4-only network.
	IP6 netip.Addr `json:",omitzero"`
}

// Reservation is an address of a network that IPAM keeps for an endpoint
// that is not attached yet. Docker's IPAM protocol asks for an address
// before its network driver creates the endpoint; the reservation holds the
// address in between, cluster-wide. An endpoint.attach on the same Host
// that asks for the address takes the reservation over (it disappears and
// the endpoint holds the address); address.release drops it.
type Reservation struct {
	Network string
	IP      netip.Addr // zero in address.reserve asks the FSM to allocate one
	// IPv6 is the family of the address: in address.reserve with a zero
	// IP it asks for an IPv6 address of the network's Subnet6 instead of
	// an IPv4 one (entries written before it existed ask for IPv4); with
	// an IP the FSM sets it from the address.
	IPv6      bool   `json:",omitempty"`
	Host      string // the host that asked; removed with it
	Owner     string // what asked, for example "docker"; shown to people
	CreatedAt int64  // unix nanoseconds, taken from Command.Time
}

// ReservationKey returns the key of a Reservation in State.Reserved.
func ReservationKey(network string, ip netip.Addr) string { return network + "/" + ip.String() }

// VTEP is an external VXLAN tunnel endpoint (for example a Linux kernel vxlan
// device) that takes part in one network without running an agent.
type VTEP struct {
	Network string
	Addr    netip.Addr
	// ESP is the hex X25519 public key of the peer on an encrypted network
	// ('vtep xfrm'), "" for none: each host derives its SAs with the peer
	// from it and its own static key (Host.ESPStatic).
	ESP string `json:",omitempty"`
}

// MACEntry is a MAC address learned on a TAP port of Host (a MAC behind an
// endpoint, other than the endpoint's own) and announced to the cluster so
// other hosts can forward to it without flooding.
type MACEntry struct {
	Network string
	MAC     string // lower-case colon form
	Host    string
	Port    string // local port (endpoint) name on Host
}

// State is the whole replicated state. A *State obtained from Store.State or
// FSM.State is immutable: never modify it or the maps and slices it holds;
// any number of goroutines may read it without locking.
//
// The FSM makes a new State for every change and shares with the previous
// one everything the change leaves alone: Endpoints, the part that grows,
// is a persistent map (a change copies a few small nodes), and each of the
// other maps and VTEPs is copied only by a command that changes it (copy
// on write). So an endpoint.attach costs the same at 100 or 100,000
// endpoints; a host.add still copies Hosts.
type State struct {
	Index     uint64              // raft index of the last command that changed the state
	Hosts     map[string]Host     // by host name
	Networks  map[string]Network  // by network name
	Endpoints EndpointMap         // by endpoint name (unique cluster-wide), indexed per network
	VTEPs     []VTEP              // sorted by Network, then Addr
	MACs      map[string]MACEntry // key MACKey(Network, MAC)
	// Reserved holds the addresses kept for endpoints not attached yet,
	// by ReservationKey(Network, IP).
	Reserved map[string]Reservation `json:",omitempty"`
	// Removed maps the key fingerprint of every removed host to its name:
	// a certificate with such a key is refused everywhere, so a removed
	// host comes back only by enrolling again with a join token (new key).
	Removed map[string]string `json:",omitempty"`
	// Cluster is the cluster's CA and join token check; nil until the
	// bootstrapping host applies cluster.init. It holds the CA's private
	// key: see Cluster.
	Cluster *Cluster `json:",omitempty"`
	// Tokens are the extra join tokens (token.create) by the hash of their
	// secret; nil when there are none. The map is shared between states
	// and copied on write by the commands that change it.
	Tokens map[string]JoinToken `json:",omitempty"`

	// owned marks the maps (and VTEPs) this State holds its own copy of,
	// so a command copies each at most once (see write). Only the FSM's
	// State under construction has bits set.
	owned uint8
}

// Bits of State.owned.
const (
	ownHosts uint8 = 1 << iota
	ownNetworks
	ownMACs
	ownReserved
	ownRemoved
	ownVTEPs
)

// MACKey returns the key of a MACEntry in State.MACs.
func MACKey(network, mac string) string { return network + "/" + mac }

// emptyState returns a State with all maps allocated.
func emptyState() *State {
	return &State{
		Hosts:    map[string]Host{},
		Networks: map[string]Network{},
		MACs:     map[string]MACEntry{},
		Reserved: map[string]Reservation{},
		Removed:  map[string]string{},
	}
}

// clone returns a State for the next command: it shares every map and
// slice with s, and the command copies a map before its first change
// (hosts, networks, macs, reserved, removed, vteps). Endpoints is
// persistent and never needs a copy. Slices inside values
// (Endpoint.Aliases) are never modified in place.
func (s *State) clone() *State {
	c := *s
	c.owned = 0
	return &c
}

// own copies *m the first time the command changes it (bit: which map).
func own[V any](s *State, bit uint8, m *map[string]V) map[string]V {
	if s.owned&bit == 0 {
		*m = maps.Clone(*m)
		if *m == nil {
			*m = map[string]V{}
		}
		s.owned |= bit
	}
	return *m
}

// hosts, networks, macs, reserved and removed return the map to change,
// copied for this command on first use.
func (s *State) hosts() map[string]Host           { return own(s, ownHosts, &s.Hosts) }
func (s *State) networks() map[string]Network     { return own(s, ownNetworks, &s.Networks) }
func (s *State) macs() map[string]MACEntry        { return own(s, ownMACs, &s.MACs) }
func (s *State) reserved() map[string]Reservation { return own(s, ownReserved, &s.Reserved) }
func (s *State) removed() map[string]string       { return own(s, ownRemoved, &s.Removed) }

// vteps returns VTEPs to change, copied for this command on first use.
func (s *State) vteps() []VTEP {
	if s.owned&ownVTEPs == 0 {
		s.VTEPs = slices.Clone(s.VTEPs)
		s.owned |= ownVTEPs
	}
	return s.VTEPs
}

// normalize allocates nil maps (after decoding a snapshot) and sorts VTEPs.
func (s *State) normalize() {
	if s.Hosts == nil {
		s.Hosts = map[string]Host{}
	}
	if s.Networks == nil {
		s.Networks = map[string]Network{}
	}
	if s.MACs == nil {
		s.MACs = map[string]MACEntry{}
	}
	if s.Removed == nil {
		s.Removed = map[string]string{}
	}
	if s.Reserved == nil {
		s.Reserved = map[string]Reservation{}
	}
	sortVTEPs(s.VTEPs)
}

func sortVTEPs(v []VTEP) {
	sort.Slice(v, func(i, j int) bool {
		if v[i].Network != v[j].Network {
			return v[i].Network < v[j].Network
		}
		return v[i].Addr.Less(v[j].Addr)
	})
}

// Hash returns the hex SHA-256 of a canonical encoding of the state's
// contents. Two hosts that applied the same commands have the same Hash.
// Index is not part of the hash, so a rejected command leaves it unchanged.
//
// The encoding is JSON: encoding/json writes map keys in sorted order and
// VTEPs are kept sorted, so equal contents give equal bytes.
func (s *State) Hash() string {
	contents := struct {
		Hosts     map[string]Host
		Networks  map[string]Network
		Endpoints EndpointMap
		VTEPs     []VTEP
		MACs      map[string]MACEntry
		Reserved  map[string]Reservation `json:",omitempty"`
		Removed   map[string]string      `json:",omitempty"`
		Cluster   *Cluster               `json:",omitempty"`
		Tokens    map[string]JoinToken   `json:",omitempty"`
	}{s.Hosts, s.Networks, s.Endpoints, s.VTEPs, s.MACs, s.Reserved, s.Removed, s.Cluster, s.Tokens}
	b, err := json.Marshal(contents)
	if err != nil {
		// Only plain values are encoded; this cannot happen.
		return "error: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// HostEndpoints returns the endpoints placed on host, sorted by name. It
// visits every endpoint.
func (s *State) HostEndpoints(host string) []Endpoint {
	var out []Endpoint
	for _, ep := range s.Endpoints.All() {
		if ep.Host == host {
			out = append(out, ep)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NetworkEndpoints returns the endpoints attached to network, sorted by
// name. It visits only that network's endpoints.
func (s *State) NetworkEndpoints(network string) []Endpoint {
	out := make([]Endpoint, 0, s.Endpoints.NetworkLen(network))
	for _, ep := range s.Endpoints.InNetwork(network) {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NetworkByVNI returns the network with that VNI.
func (s *State) NetworkByVNI(vni uint32) (Network, bool) {
	for _, n := range s.Networks {
		if n.VNI == vni {
			return n, true
		}
	}
	return Network{}, false
}

// SameHosts reports whether s and o share their Hosts map: neither
// changed the hosts since one was made from the other. It may report
// false for equal contents, never true for different ones.
func (s *State) SameHosts(o *State) bool { return sameMap(s.Hosts, o.Hosts) }

// SameMACs reports whether s and o share their MACs map (see SameHosts).
func (s *State) SameMACs(o *State) bool { return sameMap(s.MACs, o.MACs) }

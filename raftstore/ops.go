package raftstore

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"vxswitch/pki"
)

// MaxMACsPerHost is how many learned MAC entries one host may announce in
// one network; mac.announce ignores entries beyond it.
const MaxMACsPerHost = 64

// Limits on endpoint MTUs in network.create (0 means "from the underlay").
const (
	MinMTU = 576
	MaxMTU = 65000
)

// run applies cmd to st, which the caller owns (a clone of the published
// state). It returns the command's Result; on error st may be partly
// modified and the caller must throw it away.
func run(st *State, cmd Command) (*Result, error) {
	switch cmd.Op {
	case OpHostAdd:
		return hostAdd(st, cmd)
	case OpHostRemove:
		return hostRemove(st, cmd)
	case OpNetworkCreate:
		return networkCreate(st, cmd)
	case OpNetworkRemove:
		return networkRemove(st, cmd)
	case OpEndpointAttach:
		return endpointAttach(st, cmd)
	case OpEndpointDetach:
		return endpointDetach(st, cmd)
	case OpEndpointUpdate:
		return endpointUpdate(st, cmd)
	case OpAddressReserve:
		return addressReserve(st, cmd)
	case OpAddressRelease:
		return addressRelease(st, cmd)
	case OpVTEPAdd:
		return vtepAdd(st, cmd)
	case OpVTEPRemove:
		return vtepRemove(st, cmd)
	case OpMACAnnounce:
		return macAnnounce(st, cmd)
	case OpMACWithdraw:
		return macWithdraw(st, cmd)
	case OpClusterInit:
		return clusterInit(st, cmd)
	case OpTokenRotate:
		return tokenRotate(st, cmd)
	case OpCARotate:
		return caRotate(st, cmd)
	case OpCARetire:
		return caRetire(st, cmd)
	case OpTokenCreate:
		return tokenCreate(st, cmd)
	case OpTokenUse:
		return tokenUse(st, cmd)
	case OpHostKey:
		return hostKey(st, cmd)
	}
	return nil, fmt.Errorf("unknown operation %q: use one of host.add, host.remove, network.create, network.remove, "+
		"endpoint.attach, endpoint.detach, endpoint.update, address.reserve, address.release, vtep.add, vtep.remove, mac.announce, mac.withdraw, cluster.init, token.rotate, token.create, token.use, ca.rotate, ca.retire, host.key", cmd.Op)
}

// checkUnicast validates an underlay address that VXLAN packets are sent to
// and returns it without an IPv4-in-IPv6 mapping.
func checkUnicast(what string, a netip.Addr) (netip.Addr, error) {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return a, fmt.Errorf("%s address is missing: give the underlay IP address", what)
	case a.Zone() != "":
		return a, fmt.Errorf("%s address %s has an IPv6 zone: give a global address", what, a)
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return a, fmt.Errorf("%s address %s is not a unicast address: give the underlay unicast address", what, a)
	}
	return a, nil
}

// parseMAC returns the MAC in lower-case colon form; only unicast MACs are
// accepted.
func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("MAC %q is invalid: use the form 02:00:00:00:00:01", s)
	}
	if hw[0]&1 != 0 {
		return "", fmt.Errorf("MAC %s is a multicast address: use a unicast MAC such as 02:00:00:00:00:01", hw)
	}
	if string(hw) == "\x00\x00\x00\x00\x00\x00" {
		return "", fmt.Errorf("MAC %s is all zeros: use a unicast MAC such as 02:00:00:00:00:01", hw)
	}
	return hw.String(), nil
}

// checkHostPort validates an optional "ip:port" address.
func checkHostPort(what, s string) error {
	if s == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return fmt.Errorf("%s address %q is not host:port: give it as 10.0.0.1:7946", what, s)
	}
	return nil
}

// deleteWhere deletes the entries of *m for which drop is true; it copies
// the map (bit: which map) only when there is one.
func deleteWhere[V any](st *State, bit uint8, m *map[string]V, drop func(V) bool) {
	for key, v := range *m {
		if drop(v) {
			delete(own(st, bit, m), key)
		}
	}
}

// sortedKeys returns the keys of m in order, so that checks which may match
// several entries always name the same one.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func hostAdd(st *State, cmd Command) (*Result, error) {
	if cmd.Host == nil {
		return nil, errors.New("host.add needs a Host: give its name and VTEP address")
	}
	h := *cmd.Host
	if h.Name == "" {
		return nil, errors.New("host name is empty: give the host a name (its raft node id)")
	}
	if pki.CheckName(h.Name) != nil {
		return nil, fmt.Errorf("host name %q is invalid: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", h.Name)
	}
	vtep, err := checkUnicast("VTEP", h.VTEP)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	h.VTEP = vtep
	if err := checkHostPort("raft", h.RaftAddr); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	if err := checkHostPort("API", h.APIAddr); err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	for _, name := range sortedKeys(st.Hosts) {
		if o := st.Hosts[name]; name != h.Name && o.VTEP == h.VTEP {
			return nil, fmt.Errorf("VTEP address %s is already used by host %s: give each host its own underlay address", h.VTEP, name)
		}
	}
	for _, v := range st.VTEPs {
		if v.Addr == h.VTEP {
			return nil, fmt.Errorf("VTEP address %s is an external VTEP of network %s: remove it with vtep.remove first", h.VTEP, v.Network)
		}
	}
	if h.CertCA != "" {
		if err := checkHash("CertCA", h.CertCA); err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	if name, ok := st.Removed[h.KeyFP]; ok && h.KeyFP != "" {
		return nil, fmt.Errorf("host %s: its key belongs to host %s, which was removed from the cluster: enrol again with a join token (remove node.crt and node.key from its data dir, then start it with --join and --token)", h.Name, name)
	}
	if old, ok := st.Hosts[h.Name]; ok && old.KeyFP != "" && h.KeyFP != "" && old.KeyFP != h.KeyFP {
		return nil, fmt.Errorf("host %s is already a member with another key: remove it with 'vxswitch members rm %s' before a new host takes its name", h.Name, h.Name)
	}
	// A known host keeps its JoinedAt; only its addresses change (for
	// example a restarted host with a new underlay address). Endpoints and
	// MAC entries refer to the host by name, so they follow automatically.
	if old, ok := st.Hosts[h.Name]; ok {
		h.JoinedAt = old.JoinedAt
		if h.KeyFP == "" {
			h.KeyFP = old.KeyFP
		}
		if h.CertCA == "" {
			h.CertCA = old.CertCA
		}
		h.ESP = old.ESP // changed by host.key only
		h.ESPStatic = old.ESPStatic
	} else {
		h.JoinedAt = cmd.Time
		h.ESP = nil // changed by host.key only
		h.ESPStatic = ""
	}
	st.hosts()[h.Name] = h
	return &Result{Host: &h}, nil
}

func hostRemove(st *State, cmd Command) (*Result, error) {
	h, ok := st.Hosts[cmd.Name]
	if !ok {
		return nil, fmt.Errorf("host %q is not a member: nothing to remove", cmd.Name)
	}
	delete(st.hosts(), h.Name)
	if h.KeyFP != "" {
		st.removed()[h.KeyFP] = h.Name
	}
	for _, ep := range st.HostEndpoints(h.Name) {
		st.Endpoints = st.Endpoints.without(ep.Name) // its address returns to the pool
	}
	deleteWhere(st, ownMACs, &st.MACs, func(m MACEntry) bool { return m.Host == h.Name })
	deleteWhere(st, ownReserved, &st.Reserved, func(r Reservation) bool { return r.Host == h.Name })
	return &Result{Host: &h}, nil
}

func networkCreate(st *State, cmd Command) (*Result, error) {
	if cmd.Network == nil {
		return nil, errors.New("network.create needs a Network: give its name and subnet")
	}
	n := *cmd.Network
	if err := checkName("network", n.Name); err != nil {
		return nil, err
	}
	if old, ok := st.Networks[n.Name]; ok {
		return nil, fmt.Errorf("network %s already exists (VNI %d, subnet %s): pick another name or remove it first", n.Name, old.VNI, old.Subnet)
	}
	// An IPv6-only network has Subnet6 and no (IPv4) Subnet.
	v6only := n.Subnet == (netip.Prefix{}) && n.Subnet6 != (netip.Prefix{})
	if !v6only {
		if err := CheckSubnet(n.Subnet); err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		if o, ok := OverlappingNetwork(st, n.Subnet); ok {
			return nil, fmt.Errorf("network %s: subnet %s overlaps subnet %s of network %s: pick a subnet that does not overlap", n.Name, n.Subnet, o.Subnet, o.Name)
		}
	}
	switch {
	case n.VNI == 0:
		vni, err := allocateVNI(st)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
		n.VNI = vni
	case n.VNI > MaxVNI:
		return nil, fmt.Errorf("network %s: VNI %d is out of range: use 1..%d, or 0 to allocate one", n.Name, n.VNI, MaxVNI)
	default:
		if o, ok := st.NetworkByVNI(n.VNI); ok {
			return nil, fmt.Errorf("network %s: VNI %d is already used by network %s: pick another VNI, or 0 to allocate one", n.Name, n.VNI, o.Name)
		}
	}
	if n.MTU != 0 && (n.MTU < MinMTU || n.MTU > MaxMTU) {
		return nil, fmt.Errorf("network %s: MTU %d is out of range: use %d..%d, or 0 to derive it from the underlay", n.Name, n.MTU, MinMTU, MaxMTU)
	}
	n.Resolver = netip.Addr{}
	if !v6only {
		n.Resolver = n.Subnet.Addr().Next()
	}
	if err := createSubnet6(st, &n); err != nil {
		return nil, err
	}
	n.CreatedAt = cmd.Time
	st.networks()[n.Name] = n
	return &Result{Network: &n}, nil
}

func networkRemove(st *State, cmd Command) (*Result, error) {
	n, ok := st.Networks[cmd.Name]
	if !ok {
		return nil, fmt.Errorf("network %q does not exist: nothing to remove", cmd.Name)
	}
	if eps := st.NetworkEndpoints(n.Name); len(eps) > 0 {
		var names []string
		for i, ep := range eps {
			if i == 5 {
				names = append(names, "...")
				break
			}
			names = append(names, ep.Name)
		}
		return nil, fmt.Errorf("network %s still has %d endpoints (%s): detach them first", n.Name, len(eps), strings.Join(names, ", "))
	}
	for _, key := range sortedKeys(st.Reserved) {
		if r := st.Reserved[key]; r.Network == n.Name {
			return nil, fmt.Errorf("network %s has address %s reserved by %s on host %s for an endpoint about to attach: remove the %s network there first", n.Name, r.IP, r.Owner, r.Host, r.Owner)
		}
	}
	delete(st.networks(), n.Name)
	st.VTEPs = slices.DeleteFunc(st.vteps(), func(v VTEP) bool { return v.Network == n.Name })
	deleteWhere(st, ownMACs, &st.MACs, func(m MACEntry) bool { return m.Network == n.Name })
	return &Result{Network: &n}, nil
}

func endpointAttach(st *State, cmd Command) (*Result, error) {
	if cmd.Endpoint == nil {
		return nil, errors.New("endpoint.attach needs an Endpoint: give its name, network, host and MAC")
	}
	e := *cmd.Endpoint
	if err := checkEndpointName(cmd.Rules, e.Name); err != nil {
		return nil, err
	}
	if old, ok := st.Endpoints.Get(e.Name); ok {
		return nil, fmt.Errorf("endpoint %s already exists in network %s on host %s: pick another name or detach it first", e.Name, old.Network, old.Host)
	}
	nw, ok := st.Networks[e.Network]
	if !ok {
		return nil, fmt.Errorf("endpoint %s: network %q does not exist: create it first", e.Name, e.Network)
	}
	if _, ok := st.Hosts[e.Host]; !ok {
		return nil, fmt.Errorf("endpoint %s: host %q is not a member of the cluster: start its agent and join it first", e.Name, e.Host)
	}
	mac, err := parseMAC(e.MAC)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", e.Name, err)
	}
	e.MAC = mac
	if e.IfName != "" && (len(e.IfName) > 15 || strings.ContainsAny(e.IfName, "/: \t\r\n")) {
		return nil, fmt.Errorf("endpoint %s: interface name %q is invalid: use at most 15 characters without '/', ':' or spaces", e.Name, e.IfName)
	}
	if len(e.Owner) > 256 {
		return nil, fmt.Errorf("endpoint %s: owner tag is %d bytes: at most 256", e.Name, len(e.Owner))
	}
	if err := checkAliases(st, e); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", e.Name, err)
	}
	if ep, ok := st.Endpoints.ByMAC(nw.Name, mac); ok {
		return nil, fmt.Errorf("endpoint %s: MAC %s is already used by endpoint %s in network %s: pick another MAC", e.Name, mac, ep.Name, nw.Name)
	}
	switch {
	case !nw.Subnet.IsValid() && e.IP.IsValid():
		return nil, fmt.Errorf("endpoint %s: network %s is IPv6-only: leave the IPv4 address empty", e.Name, nw.Name)
	case !nw.Subnet.IsValid():
		// IPv6-only: the endpoint gets its one address from attachIP6.
	case e.IP.IsValid():
		e.IP = e.IP.Unmap()
		key := ReservationKey(nw.Name, e.IP)
		if r, ok := st.Reserved[key]; ok && r.Host == e.Host {
			delete(st.reserved(), key) // the endpoint takes the reserved address over
		}
		if err := checkRequestedIP(st, nw, e.IP); err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", e.Name, err)
		}
	default:
		ip, err := allocateIP(st, nw)
		if err != nil {
			return nil, err
		}
		e.IP = ip
		nw.LastIP = ip
		st.networks()[nw.Name] = nw
	}
	if err := attachIP6(st, &e); err != nil {
		return nil, err
	}
	if len(e.Aliases) > 0 {
		e.Aliases = append([]string(nil), e.Aliases...)
	} else {
		e.Aliases = nil
	}
	e.CreatedAt = cmd.Time
	// The endpoint's own MAC wins over an entry learned elsewhere.
	if _, ok := st.MACs[MACKey(nw.Name, mac)]; ok {
		delete(st.macs(), MACKey(nw.Name, mac))
	}
	st.Endpoints = st.Endpoints.with(e)
	res := &Result{Endpoint: &e}
	return res.clone(), nil
}

// checkAliases checks that the DNS names of e (its name and aliases) are
// well formed and not used by another endpoint of the same network.
func checkAliases(st *State, e Endpoint) error {
	if owner, ok := st.Endpoints.ByDNSName(e.Network, e.Name); ok {
		return fmt.Errorf("name %s is an alias of endpoint %s in network %s: pick another name", e.Name, owner.Name, e.Network)
	}
	seen := map[string]bool{e.Name: true}
	for _, a := range e.Aliases {
		if err := checkName("alias", a); err != nil {
			return err
		}
		if seen[a] {
			return fmt.Errorf("alias %s is given twice: list each alias once", a)
		}
		seen[a] = true
		if owner, ok := st.Endpoints.ByDNSName(e.Network, a); ok {
			return fmt.Errorf("alias %s is already used by endpoint %s in network %s: pick another alias", a, owner.Name, e.Network)
		}
	}
	return nil
}

func endpointDetach(st *State, cmd Command) (*Result, error) {
	e, ok := st.Endpoints.Get(cmd.Name)
	if !ok {
		return nil, fmt.Errorf("endpoint %q does not exist: nothing to detach", cmd.Name)
	}
	st.Endpoints = st.Endpoints.without(e.Name)
	// MACs learned behind the port go with it.
	deleteWhere(st, ownMACs, &st.MACs, func(m MACEntry) bool {
		return m.Network == e.Network && m.Host == e.Host && m.Port == e.Name
	})
	res := &Result{Endpoint: &e}
	return res.clone(), nil
}

// endpointUpdate changes where an endpoint's interface is (NetNS, IfName:
// a container runtime moved the TAP) and its DNS aliases. The network,
// host, MAC and address of an endpoint never change.
func endpointUpdate(st *State, cmd Command) (*Result, error) {
	if cmd.Endpoint == nil {
		return nil, errors.New("endpoint.update needs an Endpoint: give its name and the new netns, interface name and aliases")
	}
	u := *cmd.Endpoint
	e, ok := st.Endpoints.Get(u.Name)
	if !ok {
		return nil, fmt.Errorf("endpoint %q does not exist: nothing to update", u.Name)
	}
	if u.IfName != "" && (len(u.IfName) > 15 || strings.ContainsAny(u.IfName, "/: \t\r\n")) {
		return nil, fmt.Errorf("endpoint %s: interface name %q is invalid: use at most 15 characters without '/', ':' or spaces", e.Name, u.IfName)
	}
	st.Endpoints = st.Endpoints.without(e.Name) // its own aliases do not conflict with the new ones
	e.NetNS, e.IfName = u.NetNS, u.IfName
	e.Aliases = nil
	if len(u.Aliases) > 0 {
		e.Aliases = append([]string(nil), u.Aliases...)
	}
	if err := checkAliases(st, e); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", e.Name, err)
	}
	st.Endpoints = st.Endpoints.with(e)
	res := &Result{Endpoint: &e}
	return res.clone(), nil
}

// addressReserve keeps an address of a network for an endpoint that is
// about to attach on the reserving host (see Reservation).
func addressReserve(st *State, cmd Command) (*Result, error) {
	if cmd.Reservation == nil {
		return nil, errors.New("address.reserve needs a Reservation: give the network and host")
	}
	r := *cmd.Reservation
	nw, ok := st.Networks[r.Network]
	if !ok {
		return nil, fmt.Errorf("reserve an address: network %q does not exist: create it first", r.Network)
	}
	if _, ok := st.Hosts[r.Host]; !ok {
		return nil, fmt.Errorf("reserve an address: host %q is not a member of the cluster", r.Host)
	}
	if len(r.Owner) > 256 {
		return nil, fmt.Errorf("reserve an address: owner tag is %d bytes: at most 256", len(r.Owner))
	}
	if r.IP.IsValid() {
		r.IP = r.IP.Unmap()
		r.IPv6 = r.IP.Is6()
	}
	switch {
	case r.IPv6:
		if err := reserveIP6(st, nw, &r); err != nil {
			return nil, err
		}
	case !nw.Subnet.IsValid():
		return nil, fmt.Errorf("reserve an address: network %s is IPv6-only: reserve an IPv6 address", nw.Name)
	case r.IP.IsValid():
		if err := checkRequestedIP(st, nw, r.IP); err != nil {
			return nil, err
		}
	default:
		ip, err := allocateIP(st, nw)
		if err != nil {
			return nil, err
		}
		r.IP = ip
		nw.LastIP = ip
		st.networks()[nw.Name] = nw
	}
	r.CreatedAt = cmd.Time
	st.reserved()[ReservationKey(nw.Name, r.IP)] = r
	return &Result{Reservation: &r}, nil
}

// addressRelease drops a reservation. An address that an endpoint took over
// meanwhile is not touched: only endpoint.detach frees it.
func addressRelease(st *State, cmd Command) (*Result, error) {
	if cmd.Reservation == nil {
		return nil, errors.New("address.release needs a Reservation: give the network and address")
	}
	key := ReservationKey(cmd.Reservation.Network, cmd.Reservation.IP.Unmap())
	r, ok := st.Reserved[key]
	if !ok {
		return nil, fmt.Errorf("address %s of network %s is not reserved: nothing to release", cmd.Reservation.IP, cmd.Reservation.Network)
	}
	delete(st.reserved(), key)
	return &Result{Reservation: &r}, nil
}

// findVTEP returns the index of v in st.VTEPs, or -1.
func findVTEP(st *State, v VTEP) int {
	for i, o := range st.VTEPs {
		if o.Network == v.Network && o.Addr == v.Addr {
			return i
		}
	}
	return -1
}

func vtepArg(st *State, cmd Command) (VTEP, error) {
	if cmd.VTEP == nil {
		return VTEP{}, fmt.Errorf("%s needs a VTEP: give its network and address", cmd.Op)
	}
	v := *cmd.VTEP
	if _, ok := st.Networks[v.Network]; !ok {
		return VTEP{}, fmt.Errorf("network %q does not exist: create it first", v.Network)
	}
	addr, err := checkUnicast("VTEP", v.Addr)
	if err != nil {
		return VTEP{}, err
	}
	v.Addr = addr
	return v, nil
}

func vtepAdd(st *State, cmd Command) (*Result, error) {
	v, err := vtepArg(st, cmd)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(st.Hosts) {
		if st.Hosts[name].VTEP == v.Addr {
			return nil, fmt.Errorf("address %s is the VTEP of member host %s: external VTEPs are for peers without an agent", v.Addr, name)
		}
	}
	if v.ESP != "" {
		if err := checkX25519Hex(v.ESP); err != nil {
			return nil, fmt.Errorf("VTEP %s: %w", v.Addr, err)
		}
		if !st.Networks[v.Network].Encrypted {
			return nil, fmt.Errorf("VTEP %s: network %s is not encrypted: a key is only for encrypted networks", v.Addr, v.Network)
		}
	}
	if i := findVTEP(st, v); i >= 0 {
		if v.ESP != "" {
			vs := slices.Clone(st.vteps())
			vs[i].ESP = v.ESP // vtep xfrm: a new key for the peer
			st.VTEPs = vs
			return &Result{}, nil
		}
		return nil, fmt.Errorf("VTEP %s is already in network %s: nothing to add", v.Addr, v.Network)
	}
	st.VTEPs = append(st.vteps(), v)
	sortVTEPs(st.VTEPs)
	return &Result{}, nil
}

func vtepRemove(st *State, cmd Command) (*Result, error) {
	v, err := vtepArg(st, cmd)
	if err != nil {
		return nil, err
	}
	i := findVTEP(st, v)
	if i < 0 {
		return nil, fmt.Errorf("VTEP %s is not in network %s: nothing to remove", v.Addr, v.Network)
	}
	st.VTEPs = slices.Delete(st.vteps(), i, i+1)
	return &Result{}, nil
}

// macArgs validates and normalizes the MAC entries of a command.
func macArgs(st *State, cmd Command, needRefs bool) ([]MACEntry, error) {
	if len(cmd.MACs) == 0 {
		return nil, fmt.Errorf("%s needs at least one MAC entry", cmd.Op)
	}
	out := make([]MACEntry, len(cmd.MACs))
	for i, m := range cmd.MACs {
		mac, err := parseMAC(m.MAC)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		m.MAC = mac
		if needRefs {
			if _, ok := st.Networks[m.Network]; !ok {
				return nil, fmt.Errorf("entry %d (%s): network %q does not exist: announce only MACs of existing networks", i, mac, m.Network)
			}
			if _, ok := st.Hosts[m.Host]; !ok {
				return nil, fmt.Errorf("entry %d (%s): host %q is not a member of the cluster: join it first", i, mac, m.Host)
			}
		}
		out[i] = m
	}
	return out, nil
}

func macAnnounce(st *State, cmd Command) (*Result, error) {
	entries, err := macArgs(st, cmd, true)
	if err != nil {
		return nil, err
	}
	perHost := map[string]int{} // host+"/"+network -> entries
	for _, m := range st.MACs {
		perHost[m.Host+"/"+m.Network]++
	}
	res := &Result{}
	for _, m := range entries {
		key := MACKey(m.Network, m.MAC)
		if _, ok := st.Endpoints.ByMAC(m.Network, m.MAC); ok {
			res.Ignored++ // an endpoint's own MAC is not a learned MAC
			continue
		}
		old, exists := st.MACs[key]
		if !exists || old.Host != m.Host {
			if perHost[m.Host+"/"+m.Network] >= MaxMACsPerHost {
				res.Ignored++
				continue
			}
			perHost[m.Host+"/"+m.Network]++
			if exists {
				perHost[old.Host+"/"+old.Network]-- // the MAC moved to another host
			}
		}
		st.macs()[key] = m
		res.Accepted++
	}
	return res, nil
}

func macWithdraw(st *State, cmd Command) (*Result, error) {
	entries, err := macArgs(st, cmd, false)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for _, m := range entries {
		key := MACKey(m.Network, m.MAC)
		if old, ok := st.MACs[key]; ok && old.Host == m.Host {
			delete(st.macs(), key)
			res.Accepted++
		} else {
			res.Ignored++ // unknown, or owned by another host now
		}
	}
	return res, nil
}

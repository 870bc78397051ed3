package agent

import (
	"net/http"
	"net/netip"
	"sort"

	"vxswitch/api"
	"vxswitch/raftstore"
	"vxswitch/stateview"
	vswitch "vxswitch/switch"
	"vxswitch/vxlan"
)

// overhead is what VXLAN adds in front of an inner IP packet on this host's
// underlay: 70 bytes over IPv6, 50 over IPv4 (the advertised address's
// family).
func (a *Agent) overhead() int { return vxlan.Overhead(a.cfg.Advertise) }

// endpointMTU is the MTU this host gives endpoints of n: what the underlay
// carries after the VXLAN overhead (and the ESP overhead for an encrypted
// network, stateview.EndpointMTU), lowered further if the network asks.
func (a *Agent) endpointMTU(n raftstore.Network) int {
	mtu := stateview.EndpointMTU(n, a.underlayMTU, a.cfg.Advertise)
	if n.MTU > 0 && n.MTU < mtu {
		mtu = n.MTU
	}
	return mtu
}

func (a *Agent) apiNetwork(st *raftstore.State, n raftstore.Network) api.Network {
	out := api.Network{
		Name: n.Name, VNI: n.VNI, Subnet: n.Subnet, Resolver: n.Resolver, MTU: n.MTU, Encrypted: n.Encrypted,
		EndpointMTU: a.endpointMTU(n), VTEPs: []string{}, Hosts: []string{},
		Subnet6: n.Subnet6, Resolver6: n.Resolver6,
	}
	hosts := map[string]bool{}
	for _, e := range st.Endpoints.All() {
		if e.Network == n.Name {
			out.Endpoints++
			hosts[e.Host] = true
		}
	}
	for h := range hosts {
		out.Hosts = append(out.Hosts, h)
	}
	sort.Strings(out.Hosts)
	for _, v := range st.VTEPs {
		if v.Network == n.Name {
			out.VTEPs = append(out.VTEPs, v.Addr.String())
		}
	}
	for _, r := range st.Reserved {
		if r.Network == n.Name {
			out.Reserved = append(out.Reserved, api.Reservation{IP: r.IP, Host: r.Host, Owner: r.Owner})
		}
	}
	sort.Slice(out.Reserved, func(i, j int) bool { return out.Reserved[i].IP.Less(out.Reserved[j].IP) })
	return out
}

func (a *Agent) handleNetworks(w http.ResponseWriter, r *http.Request) {
	a.networksAt(w, r, a.store.State())
}

func (a *Agent) handleNetwork(w http.ResponseWriter, r *http.Request) {
	a.networkAt(w, r, a.store.State())
}

func (a *Agent) handleNetworkCreate(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkRequest
	if err := decode(r, &req); err != nil {
		reply(w, nil, err)
		return
	}
	var subnet netip.Prefix
	var err error
	if req.Subnet != "" || req.Subnet6 == "" { // an IPv6-only network has no IPv4 subnet
		if subnet, err = raftstore.ParseSubnet(req.Subnet); err != nil {
			reply(w, nil, badRequest("%v", err))
			return
		}
	}
	if max := a.underlayMTU - a.overhead(); req.MTU > max {
		reply(w, nil, badRequest("--mtu %d is more than the underlay carries: underlay MTU %d (%s) - %d VXLAN overhead (outer %s %d + UDP 8 + VXLAN 8 + inner Ethernet 14) = %d; use --mtu %d or less",
			req.MTU, a.underlayMTU, a.mtuSource, a.overhead(), vxlan.Family(a.cfg.Advertise), a.overhead()-30, max, max))
		return
	}
	var subnet6 netip.Prefix
	if req.Subnet6 != "" {
		if subnet6, err = raftstore.ParseSubnet6(req.Subnet6); err != nil {
			reply(w, nil, badRequest("%v", err))
			return
		}
		if req.MTU != 0 && req.MTU < minMTU6 {
			reply(w, nil, badRequest("--mtu %d is too small for IPv6 subnet %s: IPv6 needs a link MTU of at least %d (RFC 8200 section 5); use --mtu %d or more, or leave it out", req.MTU, subnet6, minMTU6, minMTU6))
			return
		}
	}
	cmd := raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: req.Name, Subnet: subnet, VNI: req.VNI, MTU: req.MTU, Subnet6: subnet6, Encrypted: req.Encrypted}}
	res, err := a.apply(r.Context(), cmd)
	if err != nil {
		reply(w, nil, err)
		return
	}
	reply(w, a.apiNetwork(a.store.State(), *res.Network), nil)
}

func (a *Agent) handleNetworkRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := a.store.State().Networks[name]; !ok {
		reply(w, nil, notFound("no network named %q: see 'vxswitch network ls'", name))
		return
	}
	_, err := a.apply(r.Context(), raftstore.Command{Op: raftstore.OpNetworkRemove, Name: name})
	reply(w, struct{}{}, err)
}

// endpointList returns the endpoints of network (all if ""), sorted by name.
func (a *Agent) endpointList(st *raftstore.State, network string) []api.Endpoint {
	out := []api.Endpoint{}
	for _, e := range st.Endpoints.All() {
		if network != "" && e.Network != network {
			continue
		}
		out = append(out, a.apiEndpoint(st, e))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (a *Agent) apiEndpoint(st *raftstore.State, e raftstore.Endpoint) api.Endpoint {
	n := st.Networks[e.Network]
	out := api.Endpoint{
		Name: e.Name, Network: e.Network, Host: e.Host, MAC: e.MAC, IP: e.IP, Prefix: prefixLen(e.IP, n.Subnet),
		NetNS: e.NetNS, IfName: e.IfName, MTU: a.endpointMTU(n), Aliases: e.Aliases, Resolver: n.Resolver,
		Owner: e.Owner, IP6: e.IP6, Resolver6: n.Resolver6,
	}
	if e.IP6.IsValid() {
		out.Prefix6 = n.Subnet6.Bits()
	}
	return out
}

func (a *Agent) handleEndpoints(w http.ResponseWriter, r *http.Request) {
	a.endpointsAt(w, r, a.store.State())
}

func (a *Agent) handleVTEPs(w http.ResponseWriter, r *http.Request) {
	st := a.store.State()
	out := []api.VTEP{}
	for _, v := range st.VTEPs {
		out = append(out, api.VTEP{Network: v.Network, VNI: st.Networks[v.Network].VNI, Addr: v.Addr, ESP: v.ESP})
	}
	reply(w, out, nil)
}

func (a *Agent) vtepCommand(r *http.Request, op string) (raftstore.Command, error) {
	var req api.VTEPRequest
	if err := decode(r, &req); err != nil {
		return raftstore.Command{}, err
	}
	addr, err := netip.ParseAddr(req.Addr)
	if err != nil || addr.Zone() != "" {
		return raftstore.Command{}, badRequest("VTEP address %q is not an IP address: give the underlay address of the kernel vxlan device's host, like 10.0.0.9 or fd77::9", req.Addr)
	}
	addr = addr.Unmap()
	if err := sameFamily(a.cfg.Advertise, addr); err != nil {
		return raftstore.Command{}, badRequest("VTEP %s: %v", addr, err)
	}
	return raftstore.Command{Op: op, VTEP: &raftstore.VTEP{Network: req.Network, Addr: addr, ESP: req.ESP}}, nil
}

func (a *Agent) handleVTEPAdd(w http.ResponseWriter, r *http.Request) {
	cmd, err := a.vtepCommand(r, raftstore.OpVTEPAdd)
	if err == nil {
		_, err = a.apply(r.Context(), cmd)
	}
	if err != nil || cmd.VTEP.ESP == "" {
		reply(w, struct{}{}, err)
		return
	}
	// vtep xfrm: the hosts whose SAs with the peer the CLI prints.
	st := a.store.State()
	out := []api.XfrmHost{}
	for _, h := range st.Hosts {
		x := api.XfrmHost{Name: h.Name, VTEP: h.VTEP, Static: h.ESPStatic}
		if h.ESP != nil {
			x.Index = h.ESP.Index
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	reply(w, out, nil)
}

func (a *Agent) handleVTEPRemove(w http.ResponseWriter, r *http.Request) {
	cmd, err := a.vtepCommand(r, raftstore.OpVTEPRemove)
	if err == nil {
		_, err = a.apply(r.Context(), cmd)
	}
	reply(w, struct{}{}, err)
}

func (a *Agent) handleFDB(w http.ResponseWriter, r *http.Request) {
	network := r.URL.Query().Get("network")
	st := a.store.State()
	if _, ok := st.Networks[network]; network != "" && !ok {
		reply(w, nil, notFound("no network named %q: see 'vxswitch network ls'", network))
		return
	}
	hostByVTEP := map[netip.Addr]string{}
	for _, h := range st.Hosts {
		hostByVTEP[h.VTEP] = h.Name
	}
	out := []api.FDBEntry{}
	for _, e := range a.sw.FDB() {
		if network != "" && e.Network != network {
			continue
		}
		row := api.FDBEntry{Network: e.Network, VNI: e.VNI, MAC: e.MAC.String(), Port: e.Port, Origin: e.Origin, AgeSeconds: e.Age.Seconds()}
		if e.VTEP.IsValid() {
			row.VTEP = e.VTEP.String()
			row.Host = hostByVTEP[e.VTEP]
		}
		out = append(out, row)
	}
	reply(w, out, nil)
}

func (a *Agent) handleStats(w http.ResponseWriter, r *http.Request) {
	s := apiStats(a.sw.Stats())
	s.Ports = a.portStats()
	s.ESP = a.espStats()
	reply(w, s, nil)
}

func apiStats(s vswitch.Stats) api.Stats {
	return api.Stats{
		RxFrames: s.RxFrames, TxFrames: s.TxFrames, RxBytes: s.RxBytes, TxBytes: s.TxBytes,
		EncapFrames: s.EncapFrames, DecapFrames: s.DecapFrames, FloodCopies: s.FloodCopies,
		LocalSwitched: s.LocalSwitched, CsumCompleted: s.CsumCompleted, Drops: s.Drops,
		ARPSuppressed: s.ARPSuppressed, ARPFlooded: s.ARPFlooded, GARPSent: s.GARPSent,
		NDPAnswered: s.NDPAnswered, NDPDADAnswered: s.NDPDADAnswered, NDPFlooded: s.NDPFlooded, UNASent: s.UNASent,
		DNSQueries: s.DNSQueries, EchoReplies: s.EchoReplies, ICMPFragNeeded: s.ICMPFragNeeded,
		ICMPv6TooBig: s.ICMPv6TooBig, Fragmented: s.Fragmented, MSSClamped: s.MSSClamped,
		DNSTCPConns: s.DNSTCPConns, DNSTCPQueries: s.DNSTCPQueries, DNSTCPResets: s.DNSTCPResets,
	}
}

// minMTU6 is the smallest link MTU IPv6 works over (RFC 8200 section 5):
// below it the kernel disables IPv6 on the endpoint's interface.
const minMTU6 = 1280

// prefixLen is the length of subnet for an endpoint address ip of it, 0
// when the endpoint has no address of that family (an IPv6-only network
// has no IPv4 subnet).
func prefixLen(ip netip.Addr, subnet netip.Prefix) int {
	if !ip.IsValid() {
		return 0
	}
	return subnet.Bits()
}

// Package dockerplugin is vxswitch's Docker network driver and IPAM driver:
// it serves Docker's remote driver protocols (protocol.go) on a unix socket
// so that `docker network create -d vxswitch --ipam-driver vxswitch` and
// `docker run --network NAME` put containers on a vxswitch network, with
// addresses from the cluster's IPAM and names in the cluster's DNS.
//
// How a container joins, call by call:
//
//   - IpamDriver.RequestPool: the pool is the --subnet; its ID is the
//     subnet itself (vxswitch subnets never overlap, so a subnet names one
//     network). With --ipv6 Docker asks for a second pool, the IPv6
//     --subnet, and the network is dual-stack.
//   - IpamDriver.RequestAddress: the gateway address Docker asks for is the
//     network's resolver address (vxswitch networks have no gateway); a
//     container's address is reserved cluster-wide (address.reserve), one
//     per pool, so two on a dual-stack network.
//   - NetworkDriver.CreateNetwork: Docker does not pass the network's name,
//     so the plugin asks the engine for it, then creates the vxswitch
//     network of that name or checks that its subnet agrees.
//   - NetworkDriver.CreateEndpoint: the endpoint is attached under the name
//     "docker-" and 12 hex digits of Docker's endpoint ID; it takes the
//     reserved address over, and its TAP is created in the agent's own
//     network namespace.
//   - NetworkDriver.Join: the plugin records the container's namespace and
//     answers with the TAP's name; Docker moves it into the container.
//   - Leave, DeleteEndpoint, ReleaseAddress undo it; each is idempotent.
//
// Docker does not tell network drivers container names, so a watcher
// (engine.go) follows the engine's events and registers each container's
// name and network aliases as DNS aliases of its endpoint, and collects
// endpoints, reservations and TAPs that the engine no longer knows (a
// container killed while the agent was down).
package dockerplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"vxswitch/raftstore"
)

// Name is the plugin's name: Docker finds it as Name.sock in its plugin
// directory, and it is the driver name in `docker network create -d`.
const Name = "vxswitch"

// DefaultSocket is where Docker looks for the plugin's socket.
const DefaultSocket = "/run/docker/plugins/" + Name + ".sock"

// Prefixes of what the plugin makes for a Docker endpoint with ID id: the
// endpoint's name in the cluster (EndpointPrefix + id[:12]), its TAP's name
// in the agent's namespace (TAPPrefix + id[:12], 15 bytes) and its owner tag
// (OwnerPrefix + id).
const (
	EndpointPrefix = "docker-"
	TAPPrefix      = "vxd"
	OwnerPrefix    = "docker:"
	// ReservationOwner is the owner of the addresses RequestAddress keeps.
	ReservationOwner = "docker"
)

// Cluster is the local vxswitch agent as the plugin uses it. Methods that
// take a context commit through Raft and return once this host has applied
// the change; they are safe for concurrent use.
type Cluster interface {
	// HostName is this host's name in the cluster.
	HostName() string
	// State returns this host's current copy of the replicated state; it
	// must not be modified.
	State() *raftstore.State
	// EnsureNetwork returns the network name, creating it with subnet and
	// subnet6 (zero for an IPv4-only network) when absent; it fails if
	// the network exists with other subnets (CheckSubnets).
	EnsureNetwork(ctx context.Context, name string, subnet, subnet6 netip.Prefix) (raftstore.Network, error)
	// Reserve keeps an address of network for this host: ip, or any
	// address of the family v6 says when ip is zero.
	Reserve(ctx context.Context, network string, ip netip.Addr, v6 bool, owner string) (netip.Addr, error)
	// Release drops a reservation; not an error if there is none.
	Release(ctx context.Context, network string, ip netip.Addr) error
	// Attach commits ep on this host and creates its TAP, called
	// ep.IfName, in the agent's own network namespace.
	Attach(ctx context.Context, ep raftstore.Endpoint) (raftstore.Endpoint, error)
	// Update records where an endpoint's TAP is now and its DNS aliases.
	Update(ctx context.Context, ep raftstore.Endpoint) error
	// Detach removes an endpoint and deletes the TAP tapName from the
	// agent's namespace; not an error if either is gone already.
	Detach(ctx context.Context, name, tapName string) error
}

// Config configures a Plugin. Cluster and Engine are required.
type Config struct {
	Cluster Cluster
	Engine  Engine
	// Grace is how old an endpoint or reservation must be before the
	// collector may remove it for being unknown to the engine; 0 = 1 min.
	Grace time.Duration
	// Every is the period of the name and garbage sweeps between engine
	// events; 0 = 10 s.
	Every  time.Duration
	Logger *slog.Logger
}

// Plugin serves Docker's network and IPAM driver calls. Create it with New;
// its methods are safe for concurrent use.
type Plugin struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// subnets maps Docker network IDs to their IPv4 and IPv6 subnets,
	// from CreateNetwork; an ID missing here is looked up in the engine.
	subnets map[string][2]netip.Prefix
	// warned holds the last warning logged per subject, so a warning
	// that repeats at every sweep is logged once.
	warned map[string]string
}

// New returns a plugin for cfg.
func New(cfg Config) *Plugin {
	if cfg.Grace == 0 {
		cfg.Grace = time.Minute
	}
	if cfg.Every == 0 {
		cfg.Every = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Plugin{cfg: cfg, log: cfg.Logger.With("component", "docker-plugin"),
		subnets: map[string][2]netip.Prefix{}, warned: map[string]string{}}
}

// Listen creates the plugin's unix socket at path (its directory too),
// replacing a stale socket that nothing answers on.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("docker plugin: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("docker plugin: %s is served by another process: stop it or pick another --docker-plugin path", path)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("docker plugin: listen on %s: %w", path, err)
	}
	return l, nil
}

// Handler returns the HTTP handler of the plugin protocols.
func (p *Plugin) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(call string, h func(context.Context, []byte) (any, error)) {
		mux.HandleFunc("POST /"+call, func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			var out any
			if err == nil {
				out, err = h(r.Context(), body)
			}
			w.Header().Set("Content-Type", mediaType)
			if err != nil {
				// Docker reads Err from an answer with an error status
				// for every driver (the IPAM protocol's own field in
				// a 200 answer is another one).
				p.log.Warn("docker call failed", "call", call, "err", err)
				out = errorResponse{Err: err.Error()}
				w.WriteHeader(http.StatusInternalServerError)
			}
			json.NewEncoder(w).Encode(out)
		})
	}
	empty := func(context.Context, []byte) (any, error) { return struct{}{}, nil }
	route("Plugin.Activate", func(context.Context, []byte) (any, error) {
		return activateResponse{Implements: []string{"NetworkDriver", "IpamDriver"}}, nil
	})
	// Scope local: without Swarm, Docker keeps a global-scope network in a
	// cluster store it does not have. Each engine keeps its own network
	// object; vxswitch makes them one network, hence connectivity global.
	route("NetworkDriver.GetCapabilities", func(context.Context, []byte) (any, error) {
		return capabilitiesResponse{Scope: "local", ConnectivityScope: "global"}, nil
	})
	route("NetworkDriver.CreateNetwork", p.createNetwork)
	route("NetworkDriver.DeleteNetwork", p.deleteNetwork)
	route("NetworkDriver.CreateEndpoint", p.createEndpoint)
	route("NetworkDriver.EndpointOperInfo", func(context.Context, []byte) (any, error) {
		return endpointInfoResponse{Value: map[string]string{}}, nil
	})
	route("NetworkDriver.DeleteEndpoint", p.deleteEndpoint)
	route("NetworkDriver.Join", p.join)
	route("NetworkDriver.Leave", p.leave)
	for _, call := range []string{"DiscoverNew", "DiscoverDelete", "ProgramExternalConnectivity",
		"RevokeExternalConnectivity", "AllocateNetwork", "FreeNetwork"} {
		route("NetworkDriver."+call, empty)
	}
	route("IpamDriver.GetCapabilities", func(context.Context, []byte) (any, error) {
		return ipamCapabilitiesResponse{}, nil
	})
	route("IpamDriver.GetDefaultAddressSpaces", func(context.Context, []byte) (any, error) {
		return addressSpacesResponse{LocalDefaultAddressSpace: Name, GlobalDefaultAddressSpace: Name}, nil
	})
	route("IpamDriver.RequestPool", p.requestPool)
	route("IpamDriver.ReleasePool", empty)
	route("IpamDriver.RequestAddress", p.requestAddress)
	route("IpamDriver.ReleaseAddress", p.releaseAddress)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", mediaType)
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(errorResponse{Err: fmt.Sprintf("vxswitch plugin: unknown call %s", r.URL.Path)})
	})
	return mux
}

// maxBody bounds a request body; Docker's are well under 64 KiB.
const maxBody = 1 << 20

// decode parses a request body into v, naming the call on error.
func decode(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("vxswitch plugin: bad request: %w", err)
	}
	return nil
}

// parseSubnet parses a pool given as CIDR and checks it with the cluster's
// subnet rule of its family (raftstore.CheckSubnet, CheckSubnet6).
func parseSubnet(s string) (netip.Prefix, error) {
	parse := raftstore.ParseSubnet
	if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() {
		parse = raftstore.ParseSubnet6
	}
	p, err := parse(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("vxswitch: --subnet: %w", err)
	}
	return p, nil
}

// CheckSubnets returns an error unless network n has exactly the subnets
// of a Docker network: subnet and subnet6 (zero when IPv4-only).
func CheckSubnets(n raftstore.Network, subnet, subnet6 netip.Prefix) error {
	if n.Subnet != subnet || n.Subnet6 != subnet6 {
		return fmt.Errorf("vxswitch network %s has subnets %s, not %s: remove this docker network and create it again with %s",
			n.Name, subnetList(n.Subnet, n.Subnet6), subnetList(subnet, subnet6), subnetFlags(n.Subnet, n.Subnet6))
	}
	return nil
}

// subnetList is "10.20.0.0/24" or "10.20.0.0/24,fd20::/64".
func subnetList(subnet, subnet6 netip.Prefix) string {
	if subnet6.IsValid() {
		return subnet.String() + "," + subnet6.String()
	}
	return subnet.String()
}

// subnetFlags is the docker network create flags that make a network of
// subnet and subnet6.
func subnetFlags(subnet, subnet6 netip.Prefix) string {
	if subnet6.IsValid() {
		return fmt.Sprintf("--ipv6 --subnet %s --subnet %s", subnet, subnet6)
	}
	return "--subnet " + subnet.String()
}

// resolverAddr is the first address of a subnet: the vxswitch resolver,
// which the plugin gives Docker as the network's gateway.
func resolverAddr(subnet netip.Prefix) netip.Addr { return subnet.Addr().Next() }

// checkSubnet refuses a subnet that overlaps a vxswitch network with
// another subnet; the network with the same subnet is the one Docker's
// network maps to.
func (p *Plugin) checkSubnet(subnet netip.Prefix) error {
	if n, ok := raftstore.OverlappingNetwork(p.cfg.Cluster.State(), subnet); ok && n.Subnet != subnet && n.Subnet6 != subnet {
		return fmt.Errorf("vxswitch: subnet %s overlaps subnet %s of vxswitch network %s: use %s with --name %s, or a subnet that overlaps none ('vxswitch network ls' lists them)",
			subnet, subnetList(n.Subnet, n.Subnet6), n.Name, subnetFlags(n.Subnet, n.Subnet6), n.Name)
	}
	return nil
}

func (p *Plugin) requestPool(_ context.Context, body []byte) (any, error) {
	var req requestPoolRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	switch {
	case req.Pool == "" && req.V6:
		return nil, errors.New("vxswitch: with --ipv6 an IPv6 subnet is required: add --subnet, like --subnet fd30::/64, beside the IPv4 one")
	case req.Pool == "":
		return nil, errors.New("vxswitch: a subnet is required: add --subnet, like --subnet 10.30.0.0/24")
	case req.SubPool != "":
		return nil, errors.New("vxswitch: --ip-range is not supported: the whole subnet is the pool")
	}
	subnet, err := parseSubnet(req.Pool)
	if err != nil {
		return nil, err
	}
	switch v6 := subnet.Addr().Is6(); {
	case v6 && !req.V6:
		return nil, fmt.Errorf("vxswitch: --subnet %s is IPv6: add --ipv6, and an IPv4 --subnet such as 10.20.0.0/24 beside it (a Docker network has one of each)", subnet)
	case !v6 && req.V6:
		return nil, fmt.Errorf("vxswitch: --subnet %s is IPv4 where Docker asks for the IPv6 pool: give an IPv6 --subnet such as fd30::/64 too", subnet)
	}
	if err := p.checkSubnet(subnet); err != nil {
		return nil, err
	}
	return requestPoolResponse{PoolID: subnet.String(), Pool: subnet.String(), Data: map[string]string{}}, nil
}

func (p *Plugin) requestAddress(ctx context.Context, body []byte) (any, error) {
	var req requestAddressRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	subnet, err := parseSubnet(req.PoolID)
	if err != nil {
		return nil, err
	}
	var want netip.Addr
	if req.Address != "" {
		if want, err = netip.ParseAddr(req.Address); err != nil || !subnet.Contains(want) {
			return nil, fmt.Errorf("vxswitch: address %q is not inside subnet %s", req.Address, subnet)
		}
	}
	if req.Options["RequestAddressType"] == gatewayRequest {
		gw := resolverAddr(subnet)
		if want.IsValid() && want != gw {
			return nil, fmt.Errorf("vxswitch: the gateway must be %s, the network's resolver address: leave out --gateway", gw)
		}
		return requestAddressResponse{Address: netip.PrefixFrom(gw, subnet.Bits()).String()}, nil
	}
	n, err := p.networkBySubnet(ctx, subnet)
	if err != nil {
		return nil, err
	}
	host := p.cfg.Cluster.HostName()
	if want.IsValid() {
		// Docker asks again for the addresses of its endpoints when the
		// engine restarts: what this host already holds is the answer.
		st := p.cfg.Cluster.State()
		if r, ok := st.Reserved[raftstore.ReservationKey(n.Name, want)]; ok && r.Host == host {
			return requestAddressResponse{Address: netip.PrefixFrom(want, subnet.Bits()).String()}, nil
		}
		for _, e := range st.HostEndpoints(host) {
			if e.Network == n.Name && (e.IP == want || e.IP6 == want) && strings.HasPrefix(e.Owner, OwnerPrefix) {
				return requestAddressResponse{Address: netip.PrefixFrom(want, subnet.Bits()).String()}, nil
			}
		}
	}
	ip, err := p.cfg.Cluster.Reserve(ctx, n.Name, want, subnet.Addr().Is6(), ReservationOwner)
	if err != nil {
		return nil, fmt.Errorf("vxswitch: %w", err)
	}
	return requestAddressResponse{Address: netip.PrefixFrom(ip, subnet.Bits()).String()}, nil
}

func (p *Plugin) releaseAddress(ctx context.Context, body []byte) (any, error) {
	var req releaseAddressRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	subnet, err := parseSubnet(req.PoolID)
	if err != nil {
		return nil, err
	}
	ip, err := netip.ParseAddr(req.Address)
	if err != nil {
		return nil, fmt.Errorf("vxswitch: address %q is not an IP address", req.Address)
	}
	st := p.cfg.Cluster.State()
	n, ok := networkWithSubnet(st, subnet)
	if !ok || ip == resolverAddr(subnet) {
		return struct{}{}, nil
	}
	// Only this host's reservation: the address may have been freed and
	// reserved by another host since this engine deleted the endpoint.
	if r, ok := st.Reserved[raftstore.ReservationKey(n.Name, ip)]; !ok || r.Host != p.cfg.Cluster.HostName() {
		return struct{}{}, nil
	}
	if err := p.cfg.Cluster.Release(ctx, n.Name, ip); err != nil {
		return nil, fmt.Errorf("vxswitch: %w", err)
	}
	return struct{}{}, nil
}

// networkWithSubnet returns the vxswitch network with subnet, of either
// family.
func networkWithSubnet(st *raftstore.State, subnet netip.Prefix) (raftstore.Network, bool) {
	for _, n := range st.Networks {
		if n.Subnet == subnet || n.Subnet6.IsValid() && n.Subnet6 == subnet {
			return n, true
		}
	}
	return raftstore.Network{}, false
}

// networkBySubnet returns the vxswitch network of a Docker pool, creating
// it under the Docker network's name if it does not exist yet.
func (p *Plugin) networkBySubnet(ctx context.Context, subnet netip.Prefix) (raftstore.Network, error) {
	if n, ok := networkWithSubnet(p.cfg.Cluster.State(), subnet); ok {
		return n, nil
	}
	v, err := p.cfg.Engine.View(ctx)
	if err != nil {
		return raftstore.Network{}, err
	}
	for _, dn := range v.Networks {
		if dn.Subnet == subnet || dn.Subnet6.IsValid() && dn.Subnet6 == subnet {
			return p.cfg.Cluster.EnsureNetwork(ctx, dn.Name, dn.Subnet, dn.Subnet6)
		}
	}
	return raftstore.Network{}, fmt.Errorf("vxswitch: no vxswitch network has subnet %s and no docker network of driver %s has it", subnet, Name)
}

func (p *Plugin) createNetwork(ctx context.Context, body []byte) (any, error) {
	var req createNetworkRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if len(req.IPv4Data) != 1 || req.IPv4Data[0].AddressSpace != Name || len(req.IPv6Data) > 1 || len(req.IPv6Data) == 1 && req.IPv6Data[0].AddressSpace != Name {
		return nil, fmt.Errorf("vxswitch: use the vxswitch IPAM driver with one subnet, and one IPv6 subnet besides for a dual-stack network: docker network create -d %s --ipam-driver %s --subnet 10.30.0.0/24 [--ipv6 --subnet fd30::/64] NAME", Name, Name)
	}
	var subnets [2]netip.Prefix
	for i, data := range [][]ipData{req.IPv4Data, req.IPv6Data} {
		if len(data) == 0 {
			continue
		}
		subnet, err := parseSubnet(data[0].Pool)
		if err != nil {
			return nil, err
		}
		if err := p.checkSubnet(subnet); err != nil {
			return nil, err
		}
		subnets[i] = subnet
	}
	p.mu.Lock()
	p.subnets[req.NetworkID] = subnets
	p.mu.Unlock()
	// The engine stores the network, with its name, after this call
	// returns: create the vxswitch network right after that.
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			_, err := p.network(ctx, req.NetworkID)
			if err == nil || !errors.Is(err, errUnknownNetwork) {
				if err != nil {
					p.log.Error("docker network cannot be used", "network_id", req.NetworkID, "err", err)
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return struct{}{}, nil
}

// errUnknownNetwork reports a Docker network ID the engine does not list.
var errUnknownNetwork = errors.New("the engine does not list the docker network")

// network returns the vxswitch network of the Docker network id, created
// under the Docker network's name when absent.
func (p *Plugin) network(ctx context.Context, id string) (raftstore.Network, error) {
	dn, err := p.cfg.Engine.Network(ctx, id)
	if err != nil {
		return raftstore.Network{}, err
	}
	p.mu.Lock()
	subnets, ok := p.subnets[id]
	p.mu.Unlock()
	if !ok {
		subnets = [2]netip.Prefix{dn.Subnet, dn.Subnet6}
	}
	n, err := p.cfg.Cluster.EnsureNetwork(ctx, dn.Name, subnets[0], subnets[1])
	if err != nil {
		return raftstore.Network{}, fmt.Errorf("vxswitch: docker network %s: %w", dn.Name, err)
	}
	return n, nil
}

func (p *Plugin) deleteNetwork(_ context.Context, body []byte) (any, error) {
	var req networkRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	// The vxswitch network stays: other engines and attach endpoints
	// may use it ('vxswitch network rm' removes it).
	p.mu.Lock()
	delete(p.subnets, req.NetworkID)
	p.mu.Unlock()
	return struct{}{}, nil
}

// endpointNames returns the cluster name and the TAP name of a Docker
// endpoint.
func endpointNames(id string) (name, tap string, err error) {
	if len(id) < 12 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", "", fmt.Errorf("vxswitch: endpoint ID %q is not a docker endpoint ID", id)
	}
	return EndpointPrefix + id[:12], TAPPrefix + id[:12], nil
}

func (p *Plugin) createEndpoint(ctx context.Context, body []byte) (any, error) {
	var req createEndpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	name, tapName, err := endpointNames(req.EndpointID)
	if err != nil {
		return nil, err
	}
	if req.Interface == nil || req.Interface.Address == "" {
		return nil, fmt.Errorf("vxswitch: the endpoint has no address: create the network with --ipam-driver %s", Name)
	}
	addr, err := netip.ParsePrefix(req.Interface.Address)
	if err != nil {
		return nil, fmt.Errorf("vxswitch: endpoint address %q: %w", req.Interface.Address, err)
	}
	var addr6 netip.Prefix
	if req.Interface.AddressIPv6 != "" {
		if addr6, err = netip.ParsePrefix(req.Interface.AddressIPv6); err != nil {
			return nil, fmt.Errorf("vxswitch: endpoint IPv6 address %q: %w", req.Interface.AddressIPv6, err)
		}
	}
	n, err := p.network(ctx, req.NetworkID)
	if err != nil {
		return nil, err
	}
	owner := OwnerPrefix + req.EndpointID
	if e, ok := p.cfg.Cluster.State().Endpoints.Get(name); ok && e.Owner == owner {
		return endpointResponse(req, e), nil // a repeated call
	}
	ep, err := p.cfg.Cluster.Attach(ctx, raftstore.Endpoint{
		Name: name, Network: n.Name, Host: p.cfg.Cluster.HostName(), IP: addr.Addr(), IP6: addr6.Addr(),
		MAC: req.Interface.MacAddress, IfName: tapName, Owner: owner,
	})
	if err != nil {
		return nil, fmt.Errorf("vxswitch: %w", err)
	}
	return endpointResponse(req, ep), nil
}

// endpointResponse gives Docker the MAC the plugin chose, if it chose one.
func endpointResponse(req createEndpointRequest, ep raftstore.Endpoint) createEndpointResponse {
	if req.Interface.MacAddress != "" {
		return createEndpointResponse{}
	}
	return createEndpointResponse{Interface: &endpointInterface{MacAddress: ep.MAC}}
}

func (p *Plugin) deleteEndpoint(ctx context.Context, body []byte) (any, error) {
	var req endpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	name, tapName, err := endpointNames(req.EndpointID)
	if err != nil {
		return nil, err
	}
	if err := p.cfg.Cluster.Detach(ctx, name, tapName); err != nil {
		return nil, fmt.Errorf("vxswitch: %w", err)
	}
	return struct{}{}, nil
}

// ownEndpoint returns this host's record of the Docker endpoint id.
func (p *Plugin) ownEndpoint(id string) (raftstore.Endpoint, error) {
	name, _, err := endpointNames(id)
	if err != nil {
		return raftstore.Endpoint{}, err
	}
	e, ok := p.cfg.Cluster.State().Endpoints.Get(name)
	if !ok || e.Owner != OwnerPrefix+id || e.Host != p.cfg.Cluster.HostName() {
		return raftstore.Endpoint{}, fmt.Errorf("vxswitch: endpoint %s is not attached on this host: disconnect and connect the container again", name)
	}
	return e, nil
}

func (p *Plugin) join(ctx context.Context, body []byte) (any, error) {
	var req joinRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	e, err := p.ownEndpoint(req.EndpointID)
	if err != nil {
		return nil, err
	}
	if e.NetNS != req.SandboxKey {
		e.NetNS = req.SandboxKey
		if err := p.cfg.Cluster.Update(ctx, e); err != nil {
			return nil, fmt.Errorf("vxswitch: %w", err)
		}
	}
	return joinResponse{InterfaceName: interfaceName{SrcName: e.IfName, DstPrefix: "eth"}, DisableGatewayService: true}, nil
}

func (p *Plugin) leave(ctx context.Context, body []byte) (any, error) {
	var req endpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	e, err := p.ownEndpoint(req.EndpointID)
	if err != nil {
		return struct{}{}, nil // gone already: nothing to leave
	}
	// Docker moves the TAP back into its own namespace, the agent's.
	if e.NetNS != "" {
		e.NetNS = ""
		if err := p.cfg.Cluster.Update(ctx, e); err != nil {
			return nil, fmt.Errorf("vxswitch: %w", err)
		}
	}
	return struct{}{}, nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"vxswitch/api"
)

// callTimeout bounds each call to the agent; an attach commits through
// Raft, which takes a few round trips.
const callTimeout = 30 * time.Second

// errPluginUnavailable is CNI 1.1's code for "the plugin cannot serve ADD
// now" (STATUS).
const errPluginUnavailable = 50

// netConf is the network configuration the runtime passes on stdin.
type netConf struct {
	types.PluginConf
	// Network names the vxswitch network; "" means the configuration's
	// name.
	Network string `json:"network"`
	// Socket is the local agent's unix socket; "" means api.DefaultSocket.
	Socket string `json:"socket"`
}

// cniArgs are the CNI_ARGS the plugin reads. Podman and Kubernetes
// runtimes put the container's (pod's) name in K8S_POD_NAME.
type cniArgs struct {
	types.CommonArgs
	K8S_POD_NAME      types.UnmarshallableString
	K8S_POD_NAMESPACE types.UnmarshallableString
}

// parseConf decodes and checks the network configuration.
func parseConf(stdin []byte) (*netConf, error) {
	var c netConf
	if err := json.Unmarshal(stdin, &c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "vxswitch-cni: the network configuration is not valid JSON", err.Error())
	}
	if c.Network == "" {
		c.Network = c.Name
	}
	if c.Network == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, `vxswitch-cni: the network configuration names no network: add "network": "NAME" (a network made with 'vxswitch network create NAME --subnet ...')`, "")
	}
	if c.Socket == "" {
		c.Socket = api.DefaultSocket
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "vxswitch-cni: cannot read prevResult", err.Error())
	}
	return &c, nil
}

// owner is the tag of the endpoint of one container interface.
func owner(containerID, ifName string) string {
	return "cni:" + containerID + "/" + ifName
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// endpointName is the DNS name the endpoint gets: the container's name from
// CNI_ARGS K8S_POD_NAME when present, made a valid DNS label (lower case,
// runs of other characters become '-', at most 63), else "c-" and the
// first 12 characters of the container ID.
func endpointName(args, containerID string) (string, error) {
	var a cniArgs
	if err := types.LoadArgs(args, &a); err != nil {
		return "", types.NewError(types.ErrInvalidEnvironmentVariables, "vxswitch-cni: cannot parse CNI_ARGS: give KEY=VALUE pairs separated by ';'", err.Error())
	}
	if n := dnsLabel(string(a.K8S_POD_NAME)); n != "" {
		return n, nil
	}
	id := dnsLabel(containerID)
	if len(id) > 12 {
		id = id[:12]
	}
	if id == "" {
		return "", types.NewError(types.ErrInvalidEnvironmentVariables, "vxswitch-cni: CNI_CONTAINERID has no letter or digit to name the endpoint by: pass K8S_POD_NAME=NAME in CNI_ARGS", "")
	}
	return strings.TrimRight("c-"+id, "-"), nil
}

// dnsLabel makes s a DNS label, or "" if nothing of it is left.
func dnsLabel(s string) string {
	s = notDNS.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// agentError turns an error of a call to the agent into a CNI error: agent
// unreachable or without a leader is "try again later" (11), a refusal of
// the request is a configuration error (7), a missing netns is 8.
func agentError(op string, err error) *types.Error {
	var se *api.StatusError
	switch {
	case errors.Is(err, api.ErrUnreachable):
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("vxswitch-cni: %s: the vxswitch agent is not reachable: start it ('vxswitch agent ...') or set \"socket\" in the network configuration to its socket", op), err.Error())
	case errors.As(err, &se) && se.Code >= 500:
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("vxswitch-cni: %s: the vxswitch agent cannot do it now (no Raft leader?): try again later", op), se.Message)
	case errors.As(err, &se) && strings.Contains(se.Message, "netns"):
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("vxswitch-cni: %s: %s", op, se.Message), "")
	case errors.As(err, &se):
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("vxswitch-cni: %s: %s", op, se.Message), "")
	}
	return types.NewError(types.ErrInternal, fmt.Sprintf("vxswitch-cni: %s", op), err.Error())
}

// session is one plugin call's configuration and agent client.
type session struct {
	conf   *netConf
	client *api.Client
	ctx    context.Context
}

func newSession(args *skel.CmdArgs) (*session, context.CancelFunc, error) {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	return &session{conf: conf, client: api.NewUnixClient(conf.Socket), ctx: ctx}, cancel, nil
}

// network returns the vxswitch network the configuration names.
func (s *session) network() (api.Network, error) {
	n, err := s.client.Network(s.ctx, s.conf.Network, "")
	var se *api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return n, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("vxswitch-cni: no vxswitch network %q: create it with 'vxswitch network create %s --subnet 10.20.0.0/24' or fix \"network\" in the configuration", s.conf.Network, s.conf.Network), se.Message)
	}
	if err != nil {
		return n, agentError("read network "+s.conf.Network, err)
	}
	return n, nil
}

// endpoints returns this host's name and every endpoint of the cluster.
func (s *session) endpoints() (host string, eps []api.Endpoint, err error) {
	st, err := s.client.Status(s.ctx)
	if err != nil {
		return "", nil, agentError("read agent status", err)
	}
	if eps, err = s.client.Endpoints(s.ctx, "", ""); err != nil {
		return "", nil, agentError("list endpoints", err)
	}
	return st.Name, eps, nil
}

// find returns the endpoint tagged own on host, if any.
func find(eps []api.Endpoint, host, own string) (api.Endpoint, bool) {
	for _, e := range eps {
		if e.Owner == own && e.Host == host {
			return e, true
		}
	}
	return api.Endpoint{}, false
}

// detach removes endpoint name; an endpoint already gone is success.
func (s *session) detach(name string) error {
	err := s.client.Detach(s.ctx, name)
	var se *api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return agentError("detach endpoint "+name, err)
	}
	return nil
}

func cmdAdd(args *skel.CmdArgs) error {
	s, cancel, err := newSession(args)
	if err != nil {
		return err
	}
	defer cancel()
	name, err := endpointName(args.Args, args.ContainerID)
	if err != nil {
		return err
	}
	n, err := s.network()
	if err != nil {
		return err
	}
	own := owner(args.ContainerID, args.IfName)
	host, eps, err := s.endpoints()
	if err != nil {
		return err
	}
	ep, ok := find(eps, host, own)
	if !ok {
		for _, e := range eps {
			if e.Name == name {
				return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("vxswitch-cni: endpoint name %q is already used (network %s, host %s, owner %q): give the container another name (K8S_POD_NAME in CNI_ARGS), or detach the old one with 'vxswitch detach %s'", name, e.Network, e.Host, e.Owner, name), "")
			}
		}
		req := api.AttachRequest{Network: n.Name, Name: name, NetNS: args.Netns, IfName: args.IfName, Owner: own}
		if ep, err = s.client.Attach(s.ctx, req); err != nil {
			return agentError("attach "+name+" to network "+n.Name, err)
		}
	}
	res, err := buildResult(s.conf, n, ep, args.Netns)
	if err != nil {
		return err
	}
	return types.PrintResult(res, s.conf.CNIVersion)
}

// buildResult describes endpoint ep of network n in netns: its interface,
// one address per family the network has (IPv4, then IPv6), the on-link
// route of each subnet (vxswitch has no gateway, so no IP has one), MTU
// and DNS (the resolver's address of each family). A previous plugin's
// result, if any, comes first.
func buildResult(conf *netConf, n api.Network, ep api.Endpoint, netns string) (*current.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if conf.PrevResult != nil {
		prev, err := current.NewResultFromResult(conf.PrevResult)
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "vxswitch-cni: cannot convert prevResult", err.Error())
		}
		res = prev
	}
	mtu := ep.MTU
	if mtu == 0 {
		mtu = n.EndpointMTU
	}
	idx := len(res.Interfaces)
	res.Interfaces = append(res.Interfaces, &current.Interface{Name: ep.IfName, Mac: ep.MAC, Mtu: mtu, Sandbox: netns})
	family := func(ip netip.Addr, bits int, subnet netip.Prefix, resolver netip.Addr) {
		if !ip.IsValid() {
			return
		}
		res.IPs = append(res.IPs, &current.IPConfig{Interface: &idx, Address: ipNet(netip.PrefixFrom(ip, bits))})
		if subnet.IsValid() {
			res.Routes = append(res.Routes, &types.Route{Dst: ipNet(subnet.Masked())})
		}
		if resolver.IsValid() {
			res.DNS.Nameservers = append(res.DNS.Nameservers, resolver.String())
		}
	}
	family(ep.IP, ep.Prefix, n.Subnet, n.Resolver)
	family(ep.IP6, ep.Prefix6, n.Subnet6, n.Resolver6)
	res.DNS.Search = append(res.DNS.Search, n.Name)
	return res, nil
}

// ipNet converts p to the net.IPNet CNI's types use.
func ipNet(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func cmdDel(args *skel.CmdArgs) error {
	s, cancel, err := newSession(args)
	if err != nil {
		return err
	}
	defer cancel()
	host, eps, err := s.endpoints()
	if err != nil {
		return err
	}
	ep, ok := find(eps, host, owner(args.ContainerID, args.IfName))
	if !ok {
		return nil
	}
	return s.detach(ep.Name)
}

func cmdCheck(args *skel.CmdArgs) error {
	s, cancel, err := newSession(args)
	if err != nil {
		return err
	}
	defer cancel()
	host, eps, err := s.endpoints()
	if err != nil {
		return err
	}
	own := owner(args.ContainerID, args.IfName)
	ep, ok := find(eps, host, own)
	if !ok {
		return types.NewError(types.ErrUnknownContainer, fmt.Sprintf("vxswitch-cni: no endpoint on host %s is tagged %q: the container is not attached; ADD it again", host, own), "")
	}
	if ep.Network != s.conf.Network {
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("vxswitch-cni: endpoint %s is on network %s, the configuration names %s", ep.Name, ep.Network, s.conf.Network), "")
	}
	if err := checkInterface(args.Netns, ep); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("vxswitch-cni: endpoint %s: %v: DEL and ADD the container again", ep.Name, err), "")
	}
	return nil
}

func cmdGC(args *skel.CmdArgs) error {
	s, cancel, err := newSession(args)
	if err != nil {
		return err
	}
	defer cancel()
	valid := map[string]bool{}
	for _, a := range s.conf.ValidAttachments {
		valid[owner(a.ContainerID, a.IfName)] = true
	}
	host, eps, err := s.endpoints()
	if err != nil {
		return err
	}
	for _, e := range eps {
		if e.Host != host || e.Network != s.conf.Network || !strings.HasPrefix(e.Owner, "cni:") || valid[e.Owner] {
			continue
		}
		if err := s.detach(e.Name); err != nil {
			return err
		}
	}
	return nil
}

func cmdStatus(args *skel.CmdArgs) error {
	s, cancel, err := newSession(args)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := s.client.Status(s.ctx)
	if err != nil {
		return types.NewError(errPluginUnavailable, "vxswitch-cni: the vxswitch agent is not reachable: start it ('vxswitch agent ...') or set \"socket\" in the network configuration to its socket", err.Error())
	}
	if st.Leader == "" {
		return types.NewError(errPluginUnavailable, fmt.Sprintf("vxswitch-cni: the cluster of host %s has no Raft leader now (a majority of hosts is down?): ADD would fail until one is elected", st.Name), "")
	}
	if _, err := s.network(); err != nil {
		var e *types.Error
		if errors.As(err, &e) {
			e.Code = errPluginUnavailable
		}
		return err
	}
	return nil
}

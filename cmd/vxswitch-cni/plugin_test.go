package main

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"vxswitch/api"
	"vxswitch/raftstore"
)

func code(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 1000
}

func TestParseConf(t *testing.T) {
	c, err := parseConf([]byte(`{"cniVersion":"1.1.0","name":"web","type":"vxswitch-cni"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Network != "web" || c.Socket != api.DefaultSocket {
		t.Fatalf("defaults: network %q socket %q", c.Network, c.Socket)
	}
	c, err = parseConf([]byte(`{"cniVersion":"0.4.0","name":"x","type":"vxswitch-cni","network":"web","socket":"/s"}`))
	if err != nil || c.Network != "web" || c.Socket != "/s" {
		t.Fatalf("explicit: %+v %v", c, err)
	}
	if _, err := parseConf([]byte(`{"cniVersion":"1.1.0","type":"vxswitch-cni"}`)); code(err) != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), `"network"`) {
		t.Fatalf("no network: %v", err)
	}
	if _, err := parseConf([]byte(`{`)); code(err) != types.ErrDecodingFailure {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestEndpointName(t *testing.T) {
	for _, tc := range []struct{ args, id, want string }{
		{"IgnoreUnknown=1;K8S_POD_NAME=Web_Server.1", "abc", "web-server-1"},
		{"K8S_POD_NAMESPACE=x", "0123456789ABCDEF", "c-0123456789ab"},
		{"", "--ab--", "c-ab"},
		{"K8S_POD_NAME=" + strings.Repeat("a", 70), "x", strings.Repeat("a", 63)},
	} {
		got, err := endpointName(tc.args, tc.id)
		if err != nil || got != tc.want {
			t.Errorf("endpointName(%q, %q) = %q, %v; want %q", tc.args, tc.id, got, err, tc.want)
		}
		// The plugin makes names the cluster's one rule accepts.
		if err := raftstore.CheckEndpointName(got); err != nil {
			t.Errorf("endpointName(%q, %q) = %q: %v", tc.args, tc.id, got, err)
		}
	}
	if _, err := endpointName("", "___"); code(err) != types.ErrInvalidEnvironmentVariables {
		t.Errorf("container ID without letters: %v", err)
	}
	if _, err := endpointName("garbage", "abc"); code(err) != types.ErrInvalidEnvironmentVariables {
		t.Errorf("bad CNI_ARGS: %v", err)
	}
}

func testNetwork() (api.Network, api.Endpoint) {
	n := api.Network{Name: "web", Subnet: netip.MustParsePrefix("10.20.0.0/24"), Resolver: netip.MustParseAddr("10.20.0.1"), EndpointMTU: 1450}
	ep := api.Endpoint{Name: "a", IfName: "eth0", MAC: "02:00:00:00:00:01", IP: netip.MustParseAddr("10.20.0.5"), Prefix: 24}
	return n, ep
}

func TestBuildResult(t *testing.T) {
	n, ep := testNetwork()
	conf, err := parseConf([]byte(`{"cniVersion":"1.1.0","name":"web","type":"vxswitch-cni"}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := buildResult(conf, n, ep, "/var/run/netns/x")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintln(res.Interfaces[0].Name, res.Interfaces[0].Mac, res.Interfaces[0].Mtu, res.Interfaces[0].Sandbox); got != "eth0 02:00:00:00:00:01 1450 /var/run/netns/x\n" {
		t.Errorf("interface: %s", got)
	}
	if res.IPs[0].Address.String() != "10.20.0.5/24" || res.IPs[0].Gateway != nil || *res.IPs[0].Interface != 0 {
		t.Errorf("ip: %+v", res.IPs[0])
	}
	if res.Routes[0].Dst.String() != "10.20.0.0/24" || res.Routes[0].GW != nil {
		t.Errorf("route: %+v", res.Routes[0])
	}
	if fmt.Sprint(res.DNS.Nameservers, res.DNS.Search) != "[10.20.0.1] [web]" {
		t.Errorf("dns: %+v", res.DNS)
	}
	old, err := res.GetAsVersion("0.4.0")
	if err != nil || old.Version() != "0.4.0" {
		t.Errorf("as 0.4.0: %v %v", old, err)
	}

	// After another plugin, its interface stays first and ours points at
	// index 1.
	conf, err = parseConf([]byte(`{"cniVersion":"1.0.0","name":"web","type":"vxswitch-cni","prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"lo"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err = buildResult(conf, n, ep, "/p")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Interfaces) != 2 || res.Interfaces[0].Name != "lo" || *res.IPs[0].Interface != 1 {
		t.Errorf("with prevResult: %+v", res)
	}
}

// TestBuildResultDualStack: an endpoint of a dual-stack network gets both
// addresses on its one interface, both on-link routes and both resolvers,
// and the IPv6 address survives conversion to the old result formats.
func TestBuildResultDualStack(t *testing.T) {
	n, ep := testNetwork()
	n.Subnet6, n.Resolver6 = netip.MustParsePrefix("fd20::/64"), netip.MustParseAddr("fd20::1")
	ep.IP6, ep.Prefix6 = netip.MustParseAddr("fd20::7"), 64
	conf, err := parseConf([]byte(`{"cniVersion":"1.1.0","name":"web","type":"vxswitch-cni"}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := buildResult(conf, n, ep, "/p")
	if err != nil {
		t.Fatal(err)
	}
	var ips, routes []string
	for _, ip := range res.IPs {
		if *ip.Interface != 0 || ip.Gateway != nil {
			t.Errorf("ip %+v: want interface 0 and no gateway", ip)
		}
		ips = append(ips, ip.Address.String())
	}
	for _, r := range res.Routes {
		routes = append(routes, r.Dst.String())
	}
	if got := fmt.Sprint(ips, routes, res.DNS.Nameservers); got != "[10.20.0.5/24 fd20::7/64] [10.20.0.0/24 fd20::/64] [10.20.0.1 fd20::1]" {
		t.Errorf("dual-stack result: %s", got)
	}
	old, err := res.GetAsVersion("0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := old.PrintTo(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"ip6"`) || !strings.Contains(b.String(), "fd20::7/64") {
		t.Errorf("as 0.2.0 the IPv6 address is lost: %s", b.String())
	}

	// An IPv6-only network: one address, one route, one resolver.
	n.Subnet, n.Resolver, ep.IP, ep.Prefix = netip.Prefix{}, netip.Addr{}, netip.Addr{}, 0
	res, err = buildResult(conf, n, ep, "/p")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != "fd20::7/64" || len(res.Routes) != 1 || fmt.Sprint(res.DNS.Nameservers) != "[fd20::1]" {
		t.Errorf("IPv6-only result: %+v", res)
	}
}

func TestAgentError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want uint
	}{
		{fmt.Errorf("%w at /s: refused", api.ErrUnreachable), types.ErrTryAgainLater},
		{&api.StatusError{Code: 503, Message: "no leader"}, types.ErrTryAgainLater},
		{&api.StatusError{Code: 400, Message: `tap: netns "x" not found`}, types.ErrInvalidNetNS},
		{&api.StatusError{Code: 400, Message: "bad name"}, types.ErrInvalidNetworkConfig},
		{errors.New("odd"), types.ErrInternal},
	} {
		if got := agentError("op", tc.err).Code; got != tc.want {
			t.Errorf("agentError(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

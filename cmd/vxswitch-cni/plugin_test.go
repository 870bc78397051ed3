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

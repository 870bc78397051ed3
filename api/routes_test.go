package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRouteParts(t *testing.T) {
	r := RouteNetwork
	if r.Method() != "GET" || r.Path() != "/v1/networks/{name}" || r.Pattern() != "GET /v1/networks/{name}" {
		t.Fatalf("RouteNetwork: method %q path %q pattern %q", r.Method(), r.Path(), r.Pattern())
	}
}

func TestRouteURL(t *testing.T) {
	for _, tc := range []struct {
		r     Route
		query url.Values
		args  []string
		want  string // "" = an error
	}{
		{RouteNetworks, nil, nil, "/v1/networks"},
		{RouteNetworks, url.Values{}, nil, "/v1/networks"},
		{RouteNetworks, url.Values{"at": {"10m"}}, nil, "/v1/networks?at=10m"},
		{RouteNetwork, nil, []string{"web"}, "/v1/networks/web"},
		{RouteNetwork, url.Values{"at": {"7"}}, []string{"a/b c"}, "/v1/networks/a%2Fb%20c?at=7"},
		{RouteDetach, nil, []string{"web-1"}, "/v1/endpoints/web-1"},
		{RouteNetwork, nil, nil, ""},
		{RouteNetworks, nil, []string{"x"}, ""},
		{RouteDetach, nil, []string{"a", "b"}, ""},
	} {
		got, err := tc.r.URL(tc.query, tc.args...)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s %q: URL = %q, want an error", tc.r, tc.args, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %q: URL = %q, %v; want %q", tc.r, tc.args, got, err, tc.want)
		}
	}
}

// TestClientMethods: each typed method calls the method and path of its
// route, with the query it documents, through a ServeMux that knows only
// the Route patterns (as the agent's does).
func TestClientMethods(t *testing.T) {
	var mu sync.Mutex
	var gotRoute Route
	var gotURL string
	mux := http.NewServeMux()
	routes := []Route{
		RouteStatus, RouteCA, RouteCARotate, RouteToken, RouteTokenRotate, RouteTokenCreate,
		RouteMembers, RouteMemberRemove, RouteLeave, RouteNetworks, RouteNetwork, RouteNetworkCreate,
		RouteNetworkRemove, RouteEndpoints, RouteAttach, RouteDetach, RouteVTEPs, RouteVTEPAdd,
		RouteVTEPRemove, RouteFDB, RouteStats, RouteESPSAs, RouteMTU, RouteDNS, RouteDNSLookup, RouteSnapshot,
		RouteCapture, RouteTrace, RouteExplain, RouteEvents,
		RouteInternalApply, RouteInternalJoin, RouteInternalReadIndex, RouteInternalRemove,
		RouteEnroll, RouteInternalCAKey, RouteInternalRenew, RouteInternalCARotate,
	}
	for _, r := range routes {
		// ServeMux panics on a malformed or duplicate pattern.
		mux.HandleFunc(r.Pattern(), func(w http.ResponseWriter, req *http.Request) {
			mu.Lock()
			gotRoute, gotURL = r, req.URL.RequestURI()
			mu.Unlock()
			io.WriteString(w, "null")
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	c := NewTCPClient(ln.Addr().String(), 10*time.Second)
	ctx := context.Background()
	stream := func(rc io.ReadCloser, err error) error {
		if err == nil {
			rc.Close()
		}
		return err
	}

	for _, tc := range []struct {
		call    func() error
		route   Route
		wantURL string
	}{
		{func() error { _, err := c.Status(ctx); return err }, RouteStatus, "/v1/status"},
		{func() error { _, err := c.CA(ctx); return err }, RouteCA, "/v1/ca"},
		{func() error { _, err := c.RotateCA(ctx); return err }, RouteCARotate, "/v1/ca/rotate"},
		{func() error { _, err := c.Token(ctx); return err }, RouteToken, "/v1/token"},
		{func() error { _, err := c.RotateToken(ctx, TokenRequest{}); return err }, RouteTokenRotate, "/v1/token/rotate"},
		{func() error { _, err := c.CreateToken(ctx, TokenRequest{}); return err }, RouteTokenCreate, "/v1/tokens"},
		{func() error { _, err := c.Members(ctx, ""); return err }, RouteMembers, "/v1/members"},
		{func() error { _, err := c.Members(ctx, "10m"); return err }, RouteMembers, "/v1/members?at=10m"},
		{func() error { return c.RemoveMember(ctx, "h2") }, RouteMemberRemove, "/v1/members/h2"},
		{func() error { return c.Leave(ctx) }, RouteLeave, "/v1/leave"},
		{func() error { _, err := c.Networks(ctx, "42"); return err }, RouteNetworks, "/v1/networks?at=42"},
		{func() error { _, err := c.Network(ctx, "web", ""); return err }, RouteNetwork, "/v1/networks/web"},
		{func() error { _, err := c.CreateNetwork(ctx, NetworkRequest{}); return err }, RouteNetworkCreate, "/v1/networks"},
		{func() error { return c.RemoveNetwork(ctx, "web") }, RouteNetworkRemove, "/v1/networks/web"},
		{func() error { _, err := c.Endpoints(ctx, "web", ""); return err }, RouteEndpoints, "/v1/endpoints?network=web"},
		{func() error { _, err := c.Endpoints(ctx, "", ""); return err }, RouteEndpoints, "/v1/endpoints"},
		{func() error { _, err := c.Attach(ctx, AttachRequest{}); return err }, RouteAttach, "/v1/endpoints"},
		{func() error { return c.Detach(ctx, "c1") }, RouteDetach, "/v1/endpoints/c1"},
		{func() error { _, err := c.VTEPs(ctx); return err }, RouteVTEPs, "/v1/vteps"},
		{func() error { return c.AddVTEP(ctx, VTEPRequest{}) }, RouteVTEPAdd, "/v1/vteps"},
		{func() error { return c.RemoveVTEP(ctx, VTEPRequest{}) }, RouteVTEPRemove, "/v1/vteps/remove"},
		{func() error { _, err := c.FDB(ctx, "web", "5"); return err }, RouteFDB, "/v1/fdb?at=5&network=web"},
		{func() error { _, err := c.Stats(ctx); return err }, RouteStats, "/v1/stats"},
		{func() error { _, err := c.MTU(ctx, "web"); return err }, RouteMTU, "/v1/mtu?network=web"},
		{func() error { _, err := c.DNSNames(ctx, ""); return err }, RouteDNS, "/v1/dns"},
		{func() error { _, err := c.LookupDNS(ctx, "web", "c1"); return err }, RouteDNSLookup, "/v1/dns/lookup?name=c1&network=web"},
		{func() error { return c.Snapshot(ctx) }, RouteSnapshot, "/v1/snapshot"},
		{func() error { return stream(c.Capture(ctx, StreamQuery{Network: "web", Count: 3}, true)) }, RouteCapture, "/v1/capture?count=3&network=web&underlay=1"},
		{func() error { return stream(c.Trace(ctx, StreamQuery{Endpoint: "c1"}, true)) }, RouteTrace, "/v1/trace?endpoint=c1&format=json"},
		{func() error { _, err := c.Explain(ctx, "10.0.0.2", ""); return err }, RouteExplain, "/v1/history/explain?q=10.0.0.2"},
		{func() error {
			s, err := c.Events(ctx, EventsQuery{NoFollow: true})
			if err == nil {
				s.Close()
			}
			return err
		}, RouteEvents, "/v1/history/events?follow=0"},
		{func() error { _, err := c.Join(ctx, JoinRequest{}); return err }, RouteInternalJoin, "/v1/internal/join"},
		{func() error { _, err := c.Enroll(ctx, EnrollRequest{}); return err }, RouteEnroll, "/v1/internal/enroll"},
		{func() error { return c.Call(ctx, RouteInternalApply, struct{}{}, nil) }, RouteInternalApply, "/v1/internal/apply"},
	} {
		mu.Lock()
		gotRoute, gotURL = "", ""
		mu.Unlock()
		if err := tc.call(); err != nil {
			t.Errorf("%s: %v", tc.route, err)
			continue
		}
		mu.Lock()
		if gotRoute != tc.route || gotURL != tc.wantURL {
			t.Errorf("call for %s reached %q as %q, want %q", tc.route, gotRoute, gotURL, tc.wantURL)
		}
		mu.Unlock()
	}

	// A route with wildcards is refused by Call, before any request.
	if err := c.Call(ctx, RouteDetach, nil, nil); err == nil || !strings.Contains(err.Error(), "needs more than 0 arguments") {
		t.Errorf("Call(RouteDetach) = %v, want an error about its arguments", err)
	}
}

package api

import (
	"fmt"
	"net/url"
	"strings"
)

// Route is one route of the agent's API: an HTTP method, a space and a path
// in the pattern syntax of net/http.ServeMux, where {name} matches one path
// segment ("GET /v1/networks/{name}"). The agent registers its handlers
// under these patterns and the Client's methods call them, so each path is
// written once, here. The zero value is no route.
type Route string

// Routes of the local API, served on the agent's unix socket to the CLI,
// the CNI plugin and the lab. RouteStatus is served to peers too.
const (
	RouteStatus = Route("GET /v1/status")

	RouteCA       = Route("GET /v1/ca")
	RouteCARotate = Route("POST /v1/ca/rotate")

	RouteToken       = Route("GET /v1/token")
	RouteTokenRotate = Route("POST /v1/token/rotate")
	RouteTokenCreate = Route("POST /v1/tokens")

	RouteMembers      = Route("GET /v1/members")
	RouteMemberRemove = Route("DELETE /v1/members/{name}")
	RouteLeave        = Route("POST /v1/leave")

	RouteNetworks      = Route("GET /v1/networks")
	RouteNetwork       = Route("GET /v1/networks/{name}")
	RouteNetworkCreate = Route("POST /v1/networks")
	RouteNetworkRemove = Route("DELETE /v1/networks/{name}")

	RouteEndpoints = Route("GET /v1/endpoints")
	RouteAttach    = Route("POST /v1/endpoints")
	RouteDetach    = Route("DELETE /v1/endpoints/{name}")

	RouteVTEPs      = Route("GET /v1/vteps")
	RouteVTEPAdd    = Route("POST /v1/vteps")
	RouteVTEPRemove = Route("POST /v1/vteps/remove")

	RouteFDB   = Route("GET /v1/fdb")
	RouteStats = Route("GET /v1/stats")
	// RouteESPSAs lists this host's ESP SAs with their keys: on the local
	// socket only, never on the peer API.
	RouteESPSAs    = Route("GET /v1/esp/sa")
	RouteMTU       = Route("GET /v1/mtu")
	RouteDNS       = Route("GET /v1/dns")
	RouteDNSLookup = Route("GET /v1/dns/lookup")
	RouteSnapshot  = Route("POST /v1/snapshot")

	// RouteCapture and RouteTrace stream (pcapng, text or JSON lines).
	RouteCapture = Route("GET /v1/capture")
	RouteTrace   = Route("GET /v1/trace")

	RouteExplain = Route("GET /v1/history/explain")
	RouteEvents  = Route("GET /v1/history/events")
)

// Routes of the peer API, served over mutual TLS at the advertised address
// to the other agents of the cluster. RouteEnroll is the only one open to a
// client without a node certificate. The agent forwards most of them to
// the leader with Client.Call.
const (
	RouteInternalApply     = Route("POST /v1/internal/apply")
	RouteInternalJoin      = Route("POST /v1/internal/join")
	RouteInternalReadIndex = Route("POST /v1/internal/readindex")
	RouteInternalRemove    = Route("POST /v1/internal/remove")
	RouteEnroll            = Route("POST /v1/internal/enroll")
	RouteInternalCAKey     = Route("POST /v1/internal/cakey")
	RouteInternalRenew     = Route("POST /v1/internal/renew")
	RouteInternalCARotate  = Route("POST /v1/internal/ca-rotate")
)

// Pattern returns r as a net/http.ServeMux pattern.
func (r Route) Pattern() string { return string(r) }

// Method returns the HTTP method of r, like "GET".
func (r Route) Method() string {
	m, _, _ := strings.Cut(string(r), " ")
	return m
}

// Path returns the path pattern of r, wildcards included, like
// "/v1/networks/{name}".
func (r Route) Path() string {
	_, p, _ := strings.Cut(string(r), " ")
	return p
}

// URL returns the path of a request to r: each {wildcard} of the pattern
// replaced by the next of args, path-escaped, then query when it is not
// empty. It fails when args do not match the wildcards one for one.
func (r Route) URL(query url.Values, args ...string) (string, error) {
	segs := strings.Split(r.Path(), "/")
	n := 0
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
			continue
		}
		if n == len(args) {
			return "", fmt.Errorf("api: route %q needs more than %d arguments", r, len(args))
		}
		segs[i] = url.PathEscape(args[n])
		n++
	}
	if n != len(args) {
		return "", fmt.Errorf("api: route %q takes %d arguments, not %d", r, n, len(args))
	}
	p := strings.Join(segs, "/")
	if len(query) > 0 {
		p += "?" + query.Encode()
	}
	return p, nil
}

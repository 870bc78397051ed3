package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Client calls one agent's API. The zero value is not usable; build one with
// NewUnixClient or NewTCPClient. A Client is safe for concurrent use.
type Client struct {
	// Stale, when set before the first request, asks the agent to answer
	// reads from its own applied state without first catching up with the
	// leader (?stale=1): faster, and possible without a leader, but it may
	// miss writes acknowledged elsewhere a moment ago.
	Stale bool

	http *http.Client
	base string
	// where names the agent in error messages: the socket path or TCP address.
	where string
}

// NewUnixClient returns a client for the agent listening on the unix socket
// at path.
func NewUnixClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://agent", where: path}
}

// NewTCPClient returns a client for the agent API at addr (host:port). Each
// request gives up after timeout.
func NewTCPClient(addr string, timeout time.Duration) *Client {
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: timeout}).DialContext}
	return &Client{http: &http.Client{Transport: tr, Timeout: timeout}, base: "http://" + addr, where: addr}
}

// NewTLSClient returns a client for the agent API at addr (host:port) over
// TLS with conf. Each request gives up after timeout.
func NewTLSClient(addr string, timeout time.Duration, conf *tls.Config) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		TLSClientConfig:     conf,
		TLSHandshakeTimeout: timeout,
		// Many concurrent requests queue here rather than open more
		// connections than a peer accepts from one address
		// (pki.MaxConnsPerSource, 64).
		MaxConnsPerHost:     MaxConnsPerPeer,
		MaxIdleConnsPerHost: MaxConnsPerPeer,
	}
	return &Client{http: &http.Client{Transport: tr, Timeout: timeout}, base: "https://" + addr, where: addr}
}

// MaxConnsPerPeer bounds the connections a client of NewTLSClient opens.
const MaxConnsPerPeer = 16

// ErrUnreachable is wrapped by errors returned when the agent could not be
// reached at all (nothing listening, connection refused, timeout).
var ErrUnreachable = errors.New("agent unreachable")

// StatusError is returned when the agent answered with an error.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

// Do sends in (if not nil) as the JSON body of a request and decodes the
// answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	if c.Stale {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "stale=1"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("api: read answer of %s %s from %s: %w", method, path, c.where, err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("agent at %s answered %s", c.where, resp.Status)
		}
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("api: decode answer of %s %s from %s: %w", method, path, c.where, err)
	}
	return nil
}

func (c *Client) unreachable(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		hint = ": is the agent running? start it with 'vxswitch agent ...' or point --socket / VXSWITCH_SOCKET at its socket"
	case errors.Is(err, syscall.EACCES):
		hint = ": permission denied, run as root"
	}
	return fmt.Errorf("%w at %s: %w%s", ErrUnreachable, c.where, err, hint)
}

// Do, Get, Post, Delete and Stream take a raw path: tests use them to
// probe the wire. Programs call the typed methods below, which take their
// paths from the Route constants.

// Get is Do with GET and no body.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodGet, path, nil, out)
}

// Post is Do with POST.
func (c *Client) Post(ctx context.Context, path string, in, out any) error {
	return c.Do(ctx, http.MethodPost, path, in, out)
}

// Delete is Do with DELETE and no body.
func (c *Client) Delete(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodDelete, path, nil, out)
}

// Stream sends a GET request for path and returns the body of the answer
// as it arrives, for the streaming routes (RouteCapture, RouteTrace,
// RouteEvents). The caller must close it; cancelling ctx ends the stream.
func (c *Client) Stream(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("api: GET %s: %w", path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("agent at %s answered %s", c.where, resp.Status)
		}
		return nil, &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	return resp.Body, nil
}

// Call sends in (if not nil) to route r, which has no wildcards, and
// decodes the answer into out (if not nil). The agent forwards the peer
// routes to the leader with it; the typed methods below serve every other
// caller.
func (c *Client) Call(ctx context.Context, r Route, in, out any) error {
	return c.call(ctx, r, nil, nil, in, out)
}

// call is Call for a route with wildcards, filled from args in order, and
// a query.
func (c *Client) call(ctx context.Context, r Route, args []string, query url.Values, in, out any) error {
	path, err := r.URL(query, args...)
	if err != nil {
		return err
	}
	return c.Do(ctx, r.Method(), path, in, out)
}

// stream is Stream for route r with a query.
func (c *Client) stream(ctx context.Context, r Route, query url.Values) (io.ReadCloser, error) {
	path, err := r.URL(query)
	if err != nil {
		return nil, err
	}
	return c.Stream(ctx, path)
}

// query returns the query of keys and values given in turn, without the
// keys whose value is "".
func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// Reads that take at show the state as it was after a Raft index ("1234"),
// at a time ("2025-01-02T15:04:05Z") or this long ago ("10m"), rebuilt from
// the agent's history; at "" reads the current state.

// Status returns the agent's state (RouteStatus).
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.call(ctx, RouteStatus, nil, nil, nil, &out)
	return out, err
}

// CA describes the cluster CA and this host's certificate (RouteCA).
func (c *Client) CA(ctx context.Context) (CAInfo, error) {
	var out CAInfo
	err := c.call(ctx, RouteCA, nil, nil, nil, &out)
	return out, err
}

// RotateCA makes a new cluster CA and join token and describes them
// (RouteCARotate).
func (c *Client) RotateCA(ctx context.Context) (CAInfo, error) {
	var out CAInfo
	err := c.call(ctx, RouteCARotate, nil, nil, nil, &out)
	return out, err
}

// Token returns the cluster's current join token (RouteToken).
func (c *Client) Token(ctx context.Context) (Token, error) {
	var out Token
	err := c.call(ctx, RouteToken, nil, nil, nil, &out)
	return out, err
}

// RotateToken replaces the cluster's join token and returns the new one
// (RouteTokenRotate).
func (c *Client) RotateToken(ctx context.Context, req TokenRequest) (Token, error) {
	var out Token
	err := c.call(ctx, RouteTokenRotate, nil, nil, req, &out)
	return out, err
}

// CreateToken makes an extra join token (RouteTokenCreate).
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (Token, error) {
	var out Token
	err := c.call(ctx, RouteTokenCreate, nil, nil, req, &out)
	return out, err
}

// Members lists the hosts of the cluster as of at (RouteMembers).
func (c *Client) Members(ctx context.Context, at string) ([]Member, error) {
	var out []Member
	err := c.call(ctx, RouteMembers, nil, query("at", at), nil, &out)
	return out, err
}

// RemoveMember removes host name and its endpoints from the cluster
// (RouteMemberRemove).
func (c *Client) RemoveMember(ctx context.Context, name string) error {
	return c.call(ctx, RouteMemberRemove, []string{name}, nil, nil, nil)
}

// Leave removes the agent's own host from the cluster, then stops the
// agent (RouteLeave).
func (c *Client) Leave(ctx context.Context) error {
	return c.call(ctx, RouteLeave, nil, nil, nil, nil)
}

// Networks lists the networks as of at (RouteNetworks).
func (c *Client) Networks(ctx context.Context, at string) ([]Network, error) {
	var out []Network
	err := c.call(ctx, RouteNetworks, nil, query("at", at), nil, &out)
	return out, err
}

// Network returns network name with its endpoints as of at
// (RouteNetwork).
func (c *Client) Network(ctx context.Context, name, at string) (Network, error) {
	var out Network
	err := c.call(ctx, RouteNetwork, []string{name}, query("at", at), nil, &out)
	return out, err
}

// CreateNetwork creates a network (RouteNetworkCreate).
func (c *Client) CreateNetwork(ctx context.Context, req NetworkRequest) (Network, error) {
	var out Network
	err := c.call(ctx, RouteNetworkCreate, nil, nil, req, &out)
	return out, err
}

// RemoveNetwork removes network name, which must have no endpoints
// (RouteNetworkRemove).
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	return c.call(ctx, RouteNetworkRemove, []string{name}, nil, nil, nil)
}

// Endpoints lists the endpoints of network, or of every network when
// network is "", as of at (RouteEndpoints).
func (c *Client) Endpoints(ctx context.Context, network, at string) ([]Endpoint, error) {
	var out []Endpoint
	err := c.call(ctx, RouteEndpoints, nil, query("network", network, "at", at), nil, &out)
	return out, err
}

// Attach attaches a new endpoint on the agent's host (RouteAttach).
func (c *Client) Attach(ctx context.Context, req AttachRequest) (Endpoint, error) {
	var out Endpoint
	err := c.call(ctx, RouteAttach, nil, nil, req, &out)
	return out, err
}

// Detach detaches endpoint name: its TAP goes and its address is freed
// (RouteDetach).
func (c *Client) Detach(ctx context.Context, name string) error {
	return c.call(ctx, RouteDetach, []string{name}, nil, nil, nil)
}

// VTEPs lists the external VTEPs (RouteVTEPs).
func (c *Client) VTEPs(ctx context.Context) ([]VTEP, error) {
	var out []VTEP
	err := c.call(ctx, RouteVTEPs, nil, nil, nil, &out)
	return out, err
}

// AddVTEP registers an external VTEP of a network (RouteVTEPAdd).
func (c *Client) AddVTEP(ctx context.Context, req VTEPRequest) error {
	return c.call(ctx, RouteVTEPAdd, nil, nil, req, nil)
}

// XfrmVTEP registers an external VTEP of an encrypted network with the
// peer's public key req.ESP, or replaces its key, and returns the member
// hosts (RouteVTEPAdd).
func (c *Client) XfrmVTEP(ctx context.Context, req VTEPRequest) ([]XfrmHost, error) {
	var out []XfrmHost
	err := c.call(ctx, RouteVTEPAdd, nil, nil, req, &out)
	return out, err
}

// RemoveVTEP removes an external VTEP from a network (RouteVTEPRemove).
func (c *Client) RemoveVTEP(ctx context.Context, req VTEPRequest) error {
	return c.call(ctx, RouteVTEPRemove, nil, nil, req, nil)
}

// FDB returns the agent's forwarding table for network, or for every
// network when network is "", as of at (RouteFDB).
func (c *Client) FDB(ctx context.Context, network, at string) ([]FDBEntry, error) {
	var out []FDBEntry
	err := c.call(ctx, RouteFDB, nil, query("network", network, "at", at), nil, &out)
	return out, err
}

// Stats returns the agent's data-plane counters (RouteStats).
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	err := c.call(ctx, RouteStats, nil, nil, nil, &out)
	return out, err
}

// ESPSAs lists this host's ESP SAs, keys included (RouteESPSAs).
func (c *Client) ESPSAs(ctx context.Context) ([]ESPSA, error) {
	var out []ESPSA
	err := c.call(ctx, RouteESPSAs, nil, nil, nil, &out)
	return out, err
}

// MTU explains the agent's MTU numbers for network, or for every network
// when network is "", and probes the path MTU to each peer (RouteMTU).
func (c *Client) MTU(ctx context.Context, network string) (MTUReport, error) {
	var out MTUReport
	err := c.call(ctx, RouteMTU, nil, query("network", network), nil, &out)
	return out, err
}

// DNSNames lists the names the resolver of network answers, or of every
// network when network is "" (RouteDNS).
func (c *Client) DNSNames(ctx context.Context, network string) ([]DNSName, error) {
	var out []DNSName
	err := c.call(ctx, RouteDNS, nil, query("network", network), nil, &out)
	return out, err
}

// LookupDNS asks the agent's resolver for name as an endpoint of network
// would (RouteDNSLookup).
func (c *Client) LookupDNS(ctx context.Context, network, name string) (DNSLookup, error) {
	var out DNSLookup
	err := c.call(ctx, RouteDNSLookup, nil, query("network", network, "name", name), nil, &out)
	return out, err
}

// Snapshot asks Raft on the agent's host to take a snapshot now and
// compact its log (RouteSnapshot).
func (c *Client) Snapshot(ctx context.Context) error {
	return c.call(ctx, RouteSnapshot, nil, nil, nil, nil)
}

// StreamQuery selects the frames of Capture and Trace. The zero value
// selects every frame, without end.
type StreamQuery struct {
	Network  string // only frames of this network ("" = all)
	Endpoint string // only frames of this endpoint's port ("" = all)
	Count    int    // end the stream after this many frames (0 = never)
}

func (q StreamQuery) values() url.Values {
	v := query("network", q.Network, "endpoint", q.Endpoint)
	if q.Count > 0 {
		v.Set("count", strconv.Itoa(q.Count))
	}
	return v
}

// Capture streams the frames the agent switches as pcapng; underlay keeps
// only the packets on the underlay (RouteCapture). Close the stream when
// done; cancelling ctx ends it too.
func (c *Client) Capture(ctx context.Context, q StreamQuery, underlay bool) (io.ReadCloser, error) {
	v := q.values()
	if underlay {
		v.Set("underlay", "1")
	}
	return c.stream(ctx, RouteCapture, v)
}

// Trace streams one line per frame the agent switches: text, or with
// jsonLines one JSON object a line (RouteTrace). Close the stream when
// done; cancelling ctx ends it too.
func (c *Client) Trace(ctx context.Context, q StreamQuery, jsonLines bool) (io.ReadCloser, error) {
	v := q.values()
	if jsonLines {
		v.Set("format", "json")
	}
	return c.stream(ctx, RouteTrace, v)
}

// Join asks a member of the cluster to admit the host of req
// (RouteInternalJoin, peer API).
func (c *Client) Join(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	var out JoinResponse
	err := c.Call(ctx, RouteInternalJoin, req, &out)
	return out, err
}

// Enroll asks the cluster for a node certificate (RouteEnroll, peer API,
// the only route open without a certificate).
func (c *Client) Enroll(ctx context.Context, req EnrollRequest) (EnrollResponse, error) {
	var out EnrollResponse
	err := c.Call(ctx, RouteEnroll, req, &out)
	return out, err
}

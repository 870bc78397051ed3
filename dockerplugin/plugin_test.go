package dockerplugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vishvananda/netlink"

	"vxswitch/raftstore"
)

// ---------------------------------------------------------------------------
// Fakes

// fakeCluster is a Cluster backed by a real in-memory raftstore FSM: every
// write is a raftstore command applied as a raft log with an increasing
// index, so the FSM's own checks (IPAM, reservations, aliases) apply. It
// records the calls the plugin makes so tests can assert on them. Its hosts
// are "h1" (this host) and "h2".
type fakeCluster struct {
	host string

	mu    sync.Mutex // serialises writes and guards what follows
	fsm   *raftstore.FSM
	index uint64
	clock time.Time // Command.Time of writes; zero: time.Now()
	macs  int       // MACs handed out by Attach

	attached []raftstore.Endpoint
	updated  []raftstore.Endpoint
	detached []string // TAP names passed to Detach
	released []string // ReservationKey of every Release call
	reserved []netip.Addr
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	f := &fakeCluster{host: "h1", fsm: raftstore.NewFSM()}
	f.must(t, raftstore.Command{Op: raftstore.OpHostAdd, Host: &raftstore.Host{Name: "h1", VTEP: netip.MustParseAddr("192.0.2.1")}})
	f.must(t, raftstore.Command{Op: raftstore.OpHostAdd, Host: &raftstore.Host{Name: "h2", VTEP: netip.MustParseAddr("192.0.2.2")}})
	return f
}

// applyLocked applies cmd as the next raft log; f.mu is held.
func (f *fakeCluster) applyLocked(cmd raftstore.Command) (*raftstore.Result, error) {
	if cmd.Time == 0 {
		now := f.clock
		if now.IsZero() {
			now = time.Now()
		}
		cmd.Time = now.UnixNano()
	}
	data, err := raftstore.EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	f.index++
	res, ok := f.fsm.Apply(&raft.Log{Index: f.index, Type: raft.LogCommand, Data: data}).(*raftstore.Result)
	if !ok || res == nil {
		return nil, fmt.Errorf("apply %s: the FSM answered no *Result", cmd.Op)
	}
	if res.Err != "" {
		return nil, errors.New(res.Err)
	}
	return res, nil
}

func (f *fakeCluster) apply(cmd raftstore.Command) (*raftstore.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applyLocked(cmd)
}

// must applies cmd directly (not through the plugin) and fails the test if
// the FSM rejects it. Call it from the test goroutine only.
func (f *fakeCluster) must(t *testing.T, cmd raftstore.Command) *raftstore.Result {
	t.Helper()
	res, err := f.apply(cmd)
	if err != nil {
		t.Fatalf("apply %s: %v", cmd.Op, err)
	}
	return res
}

// setClock sets the Command.Time of the following writes; zero: now.
func (f *fakeCluster) setClock(t time.Time) {
	f.mu.Lock()
	f.clock = t
	f.mu.Unlock()
}

func (f *fakeCluster) HostName() string { return f.host }

func (f *fakeCluster) State() *raftstore.State { return f.fsm.State() }

func (f *fakeCluster) EnsureNetwork(_ context.Context, name string, subnet, subnet6 netip.Prefix) (raftstore.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.fsm.State().Networks[name]
	if !ok {
		res, err := f.applyLocked(raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: name, Subnet: subnet, Subnet6: subnet6}})
		if err != nil {
			return raftstore.Network{}, err
		}
		n = *res.Network
	}
	return n, CheckSubnets(n, subnet, subnet6)
}

func (f *fakeCluster) Reserve(_ context.Context, network string, ip netip.Addr, v6 bool, owner string) (netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res, err := f.applyLocked(raftstore.Command{Op: raftstore.OpAddressReserve,
		Reservation: &raftstore.Reservation{Network: network, IP: ip, IPv6: v6, Host: f.host, Owner: owner}})
	if err != nil {
		return netip.Addr{}, err
	}
	f.reserved = append(f.reserved, res.Reservation.IP)
	return res.Reservation.IP, nil
}

func (f *fakeCluster) Release(_ context.Context, network string, ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := raftstore.ReservationKey(network, ip)
	f.released = append(f.released, key)
	if _, ok := f.fsm.State().Reserved[key]; !ok {
		return nil
	}
	_, err := f.applyLocked(raftstore.Command{Op: raftstore.OpAddressRelease, Reservation: &raftstore.Reservation{Network: network, IP: ip}})
	return err
}

func (f *fakeCluster) Attach(_ context.Context, ep raftstore.Endpoint) (raftstore.Endpoint, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ep.Host, ep.NetNS = f.host, ""
	if ep.MAC == "" {
		taken := map[string]bool{}
		for _, e := range f.fsm.State().NetworkEndpoints(ep.Network) {
			taken[e.MAC] = true
		}
		for {
			f.macs++
			ep.MAC = fmt.Sprintf("02:00:00:00:%02x:%02x", f.macs>>8&0xff, f.macs&0xff)
			if !taken[ep.MAC] {
				break
			}
		}
	}
	res, err := f.applyLocked(raftstore.Command{Op: raftstore.OpEndpointAttach, Endpoint: &ep})
	if err != nil {
		return raftstore.Endpoint{}, err
	}
	f.attached = append(f.attached, *res.Endpoint)
	return *res.Endpoint, nil
}

func (f *fakeCluster) Update(_ context.Context, ep raftstore.Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updated = append(f.updated, ep)
	_, err := f.applyLocked(raftstore.Command{Op: raftstore.OpEndpointUpdate, Endpoint: &ep})
	return err
}

func (f *fakeCluster) Detach(_ context.Context, name, tapName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detached = append(f.detached, tapName)
	if _, ok := f.fsm.State().Endpoints.Get(name); !ok {
		return nil
	}
	_, err := f.applyLocked(raftstore.Command{Op: raftstore.OpEndpointDetach, Name: name})
	return err
}

// calls returns copies of what the plugin asked for so far.
func (f *fakeCluster) calls() (attached, updated []raftstore.Endpoint, detached, released []string, reserved []netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attached), slices.Clone(f.updated), slices.Clone(f.detached), slices.Clone(f.released), slices.Clone(f.reserved)
}

// attachAs attaches an endpoint directly, as host host, with a fixed MAC,
// IP, owner and creation time, bypassing the plugin.
func (f *fakeCluster) attachAs(t *testing.T, host, name, network, ip, owner, ifName string, created time.Time, aliases ...string) raftstore.Endpoint {
	t.Helper()
	f.mu.Lock()
	f.macs++
	mac := fmt.Sprintf("02:00:00:01:%02x:%02x", f.macs>>8&0xff, f.macs&0xff)
	f.mu.Unlock()
	ep := &raftstore.Endpoint{Name: name, Network: network, Host: host, MAC: mac, IfName: ifName, Owner: owner, Aliases: aliases}
	if ip != "" {
		ep.IP = netip.MustParseAddr(ip)
	}
	return *f.must(t, raftstore.Command{Op: raftstore.OpEndpointAttach, Time: created.UnixNano(), Endpoint: ep}).Endpoint
}

// reserveAs reserves ip directly, as host host, at time created.
func (f *fakeCluster) reserveAs(t *testing.T, host, network, ip, owner string, created time.Time) {
	t.Helper()
	f.must(t, raftstore.Command{Op: raftstore.OpAddressReserve, Time: created.UnixNano(),
		Reservation: &raftstore.Reservation{Network: network, IP: netip.MustParseAddr(ip), Host: host, Owner: owner}})
}

var _ Cluster = (*fakeCluster)(nil)

// fakeEngine is an Engine whose View the test sets; Watch only waits.
type fakeEngine struct {
	mu    sync.Mutex
	view  View
	err   error
	views int
}

func (e *fakeEngine) set(v View, err error) {
	e.mu.Lock()
	e.view, e.err = v, err
	e.mu.Unlock()
}

func (e *fakeEngine) View(context.Context) (View, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.views++
	return e.view, e.err
}

func (e *fakeEngine) Network(_ context.Context, id string) (EngineNetwork, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return EngineNetwork{}, e.err
	}
	for _, n := range e.view.Networks {
		if n.ID == id {
			return EngineNetwork{ID: n.ID, Name: n.Name, Subnet: n.Subnet}, nil
		}
	}
	return EngineNetwork{}, fmt.Errorf("docker network %.12s: %w", id, errUnknownNetwork)
}

func (e *fakeEngine) Watch(ctx context.Context, changed func()) { <-ctx.Done() }

var _ Engine = (*fakeEngine)(nil)

// syncBuffer is a log sink safe for the plugin's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ---------------------------------------------------------------------------
// Harness

// testPlugin is a plugin on a fakeCluster and a fakeEngine.
type testPlugin struct {
	p   *Plugin
	h   http.Handler
	c   *fakeCluster
	e   *fakeEngine
	log *syncBuffer
}

func newTestPlugin(t *testing.T, grace time.Duration) *testPlugin {
	t.Helper()
	tp := &testPlugin{c: newFakeCluster(t), e: &fakeEngine{}, log: &syncBuffer{}}
	tp.p = New(Config{Cluster: tp.c, Engine: tp.e, Grace: grace,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(tp.log), nil))})
	tp.h = tp.p.Handler()
	return tp
}

// hexID returns a Docker-like 64 hex digit ID derived from seed.
func hexID(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:])
}

// post sends one plugin call the way Docker does and returns the status
// and body of the answer.
func (tp *testPlugin) post(t *testing.T, call, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/"+call, strings.NewReader(body))
	req.Header.Set("Accept", mediaType)
	rec := httptest.NewRecorder()
	tp.h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != mediaType {
		t.Errorf("%s: Content-Type %q, want %q", call, ct, mediaType)
	}
	return rec.Code, rec.Body.Bytes()
}

// ok sends a call that must succeed and decodes its answer into out (if
// not nil).
func (tp *testPlugin) ok(t *testing.T, call, body string, out any) {
	t.Helper()
	code, b := tp.post(t, call, body)
	var e struct{ Err string }
	_ = json.Unmarshal(b, &e)
	if code != http.StatusOK || e.Err != "" {
		t.Fatalf("%s %s: status %d, answer %s", call, body, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: answer %s: %v", call, b, err)
		}
	}
}

// fail sends a call that must fail as Docker sees a failure: an error
// status with a JSON {"Err": ...}; it returns Err.
func (tp *testPlugin) fail(t *testing.T, call, body string) string {
	t.Helper()
	code, b := tp.post(t, call, body)
	if code < 400 {
		t.Fatalf("%s %s: status %d (answer %s), want an error status", call, body, code, b)
	}
	var e struct{ Err string }
	if err := json.Unmarshal(b, &e); err != nil || e.Err == "" {
		t.Fatalf("%s: answer %s is not a JSON {\"Err\": ...} (%v)", call, b, err)
	}
	return e.Err
}

// Request bodies exactly as Docker 20.10 sends them.

func poolReq(pool string) string {
	return fmt.Sprintf(`{"AddressSpace":"vxswitch","Pool":%q,"SubPool":"","Options":{},"V6":false}`, pool)
}

func gatewayReq(pool, addr string) string {
	return fmt.Sprintf(`{"PoolID":%q,"Address":%q,"Options":{"RequestAddressType":"com.docker.network.gateway"}}`, pool, addr)
}

func addrReq(pool, addr string) string {
	return fmt.Sprintf(`{"PoolID":%q,"Address":%q,"Options":{}}`, pool, addr)
}

func releaseReq(pool, addr string) string {
	return fmt.Sprintf(`{"PoolID":%q,"Address":%q}`, pool, addr)
}

func createNetReq(netID, space, pool, gateway string) string {
	return fmt.Sprintf(`{"NetworkID":%q,"Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{}},"IPv4Data":[{"AddressSpace":%q,"Gateway":%q,"Pool":%q}],"IPv6Data":[]}`,
		netID, space, gateway, pool)
}

func createEpReq(netID, epID, addr, mac string) string {
	return fmt.Sprintf(`{"NetworkID":%q,"EndpointID":%q,"Interface":{"Address":%q,"AddressIPv6":"","MacAddress":%q},"Options":{}}`,
		netID, epID, addr, mac)
}

func joinReq(netID, epID, sandbox string) string {
	return fmt.Sprintf(`{"NetworkID":%q,"EndpointID":%q,"SandboxKey":%q,"Options":{}}`, netID, epID, sandbox)
}

func epReq(netID, epID string) string {
	return fmt.Sprintf(`{"NetworkID":%q,"EndpointID":%q}`, netID, epID)
}

// Answers as Docker decodes them.

type poolAnswer struct {
	PoolID string
	Pool   string
	Data   map[string]string
}

type addrAnswer struct {
	Address string
	Data    map[string]string
}

type createEpAnswer struct {
	Interface *struct {
		Address, AddressIPv6, MacAddress string
	}
}

type joinAnswer struct {
	InterfaceName struct {
		SrcName, DstPrefix string
	}
	DisableGatewayService bool
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dockerNetwork creates a Docker network of the plugin as `docker network
// create -d vxswitch --ipam-driver vxswitch --subnet pool name` does (pool
// request, gateway address, CreateNetwork, then the engine lists it) and
// waits until the cluster has the vxswitch network.
func (tp *testPlugin) dockerNetwork(t *testing.T, netID, name, pool string) {
	t.Helper()
	subnet := netip.MustParsePrefix(pool)
	var pa poolAnswer
	tp.ok(t, "IpamDriver.RequestPool", poolReq(pool), &pa)
	var gw addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", gatewayReq(pa.PoolID, ""), &gw)
	tp.ok(t, "NetworkDriver.CreateNetwork", createNetReq(netID, Name, pa.Pool, gw.Address), nil)
	v, _ := tp.e.View(context.Background())
	v.Networks = append(slices.Clone(v.Networks), EngineNetwork{ID: netID, Name: name, Subnet: subnet})
	tp.e.set(v, nil)
	waitFor(t, "vxswitch network "+name, func() bool {
		n, ok := tp.c.State().Networks[name]
		return ok && n.Subnet == subnet
	})
}

// ---------------------------------------------------------------------------
// Tests

// TestLifecycle proves that a container's whole life on a vxswitch network,
// call by call as Docker makes them, does what the package documentation
// says: the gateway is the resolver, CreateNetwork creates the vxswitch
// network under the engine's name, RequestAddress reserves cluster-wide,
// CreateEndpoint takes the reservation over under the docker-<12 hex> name
// and tells Docker the MAC, Join and Leave move NetNS, DeleteEndpoint
// detaches and ReleaseAddress then has nothing left to do.
func TestLifecycle(t *testing.T) {
	tp := newTestPlugin(t, 0)
	netID, epID := hexID("net-web"), hexID("ep-1")
	epName, tapName := "docker-"+epID[:12], "vxd"+epID[:12]

	var act struct{ Implements []string }
	tp.ok(t, "Plugin.Activate", "", &act)
	if !slices.Contains(act.Implements, "NetworkDriver") || !slices.Contains(act.Implements, "IpamDriver") {
		t.Fatalf("Activate implements %v, want NetworkDriver and IpamDriver", act.Implements)
	}
	var caps struct{ Scope, ConnectivityScope string }
	tp.ok(t, "NetworkDriver.GetCapabilities", "", &caps)
	if caps.Scope != "local" || caps.ConnectivityScope != "global" {
		t.Errorf("capabilities %+v, want local scope, global connectivity", caps)
	}

	var pa poolAnswer
	tp.ok(t, "IpamDriver.RequestPool", poolReq("10.9.0.0/24"), &pa)
	if pa.PoolID != "10.9.0.0/24" || pa.Pool != "10.9.0.0/24" {
		t.Fatalf("RequestPool = %+v, want pool and ID 10.9.0.0/24", pa)
	}
	var gw addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", gatewayReq(pa.PoolID, ""), &gw)
	if gw.Address != "10.9.0.1/24" {
		t.Fatalf("gateway = %q, want the resolver 10.9.0.1/24", gw.Address)
	}
	// The engine stores the network (and its name) only after
	// CreateNetwork returns: the plugin must create it after that.
	tp.ok(t, "NetworkDriver.CreateNetwork", createNetReq(netID, Name, pa.Pool, gw.Address), nil)
	tp.e.set(View{Networks: []EngineNetwork{{ID: netID, Name: "web", Subnet: netip.MustParsePrefix("10.9.0.0/24")}}}, nil)
	waitFor(t, "vxswitch network web", func() bool {
		n, ok := tp.c.State().Networks["web"]
		return ok && n.Subnet == netip.MustParsePrefix("10.9.0.0/24")
	})

	var addr addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", addrReq(pa.PoolID, ""), &addr)
	if addr.Address != "10.9.0.2/24" {
		t.Fatalf("RequestAddress = %q, want 10.9.0.2/24 (first after the resolver)", addr.Address)
	}
	ip := netip.MustParseAddr("10.9.0.2")
	r, ok := tp.c.State().Reserved[raftstore.ReservationKey("web", ip)]
	if !ok || r.Host != "h1" || r.Owner != ReservationOwner {
		t.Fatalf("reservation of 10.9.0.2 = %+v (present %v), want one of host h1 by %q", r, ok, ReservationOwner)
	}

	var ce createEpAnswer
	tp.ok(t, "NetworkDriver.CreateEndpoint", createEpReq(netID, epID, addr.Address, ""), &ce)
	st := tp.c.State()
	if len(st.Reserved) != 0 {
		t.Errorf("reservations after CreateEndpoint: %v, want none (taken over)", st.Reserved)
	}
	e, ok := st.Endpoints.Get(epName)
	if !ok {
		t.Fatalf("no endpoint %s after CreateEndpoint; endpoints %v", epName, st.Endpoints)
	}
	if e.Owner != "docker:"+epID || e.Network != "web" || e.Host != "h1" || e.IP != ip || e.IfName != tapName || e.NetNS != "" {
		t.Errorf("endpoint = %+v, want owner docker:%s, network web, host h1, IP 10.9.0.2, TAP %s, no netns", e, epID, tapName)
	}
	if ce.Interface == nil || ce.Interface.MacAddress == "" || ce.Interface.MacAddress != e.MAC {
		t.Errorf("CreateEndpoint answer %+v, want the endpoint's MAC %s", ce.Interface, e.MAC)
	}

	var j joinAnswer
	tp.ok(t, "NetworkDriver.Join", joinReq(netID, epID, "/var/run/docker/netns/abc"), &j)
	if j.InterfaceName.SrcName != tapName || j.InterfaceName.DstPrefix != "eth" || !j.DisableGatewayService {
		t.Errorf("Join = %+v, want SrcName %s, DstPrefix eth, gateway service off", j, tapName)
	}
	if got := tp.c.State().Endpoints.At(epName).NetNS; got != "/var/run/docker/netns/abc" {
		t.Errorf("NetNS after Join = %q, want the sandbox key", got)
	}
	var info struct{ Value map[string]string }
	tp.ok(t, "NetworkDriver.EndpointOperInfo", epReq(netID, epID), &info)

	tp.ok(t, "NetworkDriver.Leave", epReq(netID, epID), nil)
	if e, ok := tp.c.State().Endpoints.Get(epName); !ok || e.NetNS != "" {
		t.Errorf("after Leave: endpoint %+v (present %v), want it with NetNS reset", e, ok)
	}

	tp.ok(t, "NetworkDriver.DeleteEndpoint", epReq(netID, epID), nil)
	if _, ok := tp.c.State().Endpoints.Get(epName); ok {
		t.Errorf("endpoint %s still exists after DeleteEndpoint", epName)
	}
	_, _, detached, _, _ := tp.c.calls()
	if !slices.Equal(detached, []string{tapName}) {
		t.Errorf("TAPs detached = %v, want [%s]", detached, tapName)
	}

	before := tp.c.State().Index
	tp.ok(t, "IpamDriver.ReleaseAddress", releaseReq(pa.PoolID, "10.9.0.2"), nil)
	tp.ok(t, "IpamDriver.ReleaseAddress", releaseReq(pa.PoolID, "10.9.0.1"), nil) // the gateway
	tp.ok(t, "NetworkDriver.DeleteNetwork", `{"NetworkID":"`+netID+`"}`, nil)
	tp.ok(t, "IpamDriver.ReleasePool", `{"PoolID":"10.9.0.0/24"}`, nil)
	if st := tp.c.State(); st.Index != before || len(st.Reserved) != 0 {
		t.Errorf("release and delete changed the state (index %d -> %d, reserved %v), want no-ops", before, st.Index, st.Reserved)
	}
	if _, ok := tp.c.State().Networks["web"]; !ok {
		t.Error("DeleteNetwork removed the vxswitch network; it must stay for other engines")
	}
}

// TestIdempotentCalls proves that Docker's repeated calls are harmless:
// CreateEndpoint again answers the same endpoint without a second attach,
// Join and Leave again change nothing, DeleteEndpoint and ReleaseAddress
// succeed twice, and RequestAddress for an address this host's Docker
// endpoint or reservation already holds (the engine replays them when it
// restarts) succeeds without a new reservation, while an address held by
// another host, or by a non-Docker endpoint, is refused.
func TestIdempotentCalls(t *testing.T) {
	tp := newTestPlugin(t, 0)
	netID, epID := hexID("net-web"), hexID("ep-1")
	epName := "docker-" + epID[:12]
	tp.dockerNetwork(t, netID, "web", "10.9.0.0/24")

	var addr addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", addrReq("10.9.0.0/24", ""), &addr)
	var ce1, ce2 createEpAnswer
	tp.ok(t, "NetworkDriver.CreateEndpoint", createEpReq(netID, epID, addr.Address, ""), &ce1)
	tp.ok(t, "NetworkDriver.CreateEndpoint", createEpReq(netID, epID, addr.Address, ""), &ce2)
	attached, _, _, _, _ := tp.c.calls()
	if len(attached) != 1 {
		t.Errorf("Attach called %d times for one endpoint, want 1", len(attached))
	}
	if ce1.Interface == nil || ce2.Interface == nil || ce1.Interface.MacAddress != ce2.Interface.MacAddress {
		t.Errorf("repeated CreateEndpoint answered %+v then %+v, want the same MAC", ce1.Interface, ce2.Interface)
	}

	// Engine restart: Docker asks again for the address its endpoint holds.
	index := tp.c.State().Index
	var again addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", addrReq("10.9.0.0/24", "10.9.0.2"), &again)
	if again.Address != "10.9.0.2/24" || tp.c.State().Index != index {
		t.Errorf("replayed RequestAddress = %q (state index %d -> %d), want 10.9.0.2/24 and no change", again.Address, index, tp.c.State().Index)
	}
	// ... and for an address reserved by this host.
	var held addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", addrReq("10.9.0.0/24", "10.9.0.40"), &held)
	index = tp.c.State().Index
	tp.ok(t, "IpamDriver.RequestAddress", addrReq("10.9.0.0/24", "10.9.0.40"), &again)
	if held.Address != "10.9.0.40/24" || again.Address != "10.9.0.40/24" || tp.c.State().Index != index {
		t.Errorf("RequestAddress 10.9.0.40 twice = %q, %q (index %d -> %d), want 10.9.0.40/24 twice and one reservation", held.Address, again.Address, index, tp.c.State().Index)
	}
	// Addresses this host's Docker does not hold are refused.
	tp.c.attachAs(t, "h2", "docker-"+hexID("other")[:12], "web", "10.9.0.50", "docker:"+hexID("other"), "vxd"+hexID("other")[:12], time.Now())
	tp.c.reserveAs(t, "h2", "web", "10.9.0.51", ReservationOwner, time.Now())
	tp.c.attachAs(t, "h1", "manual", "web", "10.9.0.52", "", "eth0", time.Now())
	for _, ip := range []string{"10.9.0.50", "10.9.0.51", "10.9.0.52"} {
		if msg := tp.fail(t, "IpamDriver.RequestAddress", addrReq("10.9.0.0/24", ip)); !strings.Contains(msg, ip) {
			t.Errorf("RequestAddress %s held elsewhere: error %q does not name the address", ip, msg)
		}
	}

	_, updatesBefore, _, _, _ := tp.c.calls()
	tp.ok(t, "NetworkDriver.Join", joinReq(netID, epID, "/var/run/docker/netns/abc"), nil)
	tp.ok(t, "NetworkDriver.Join", joinReq(netID, epID, "/var/run/docker/netns/abc"), nil)
	tp.ok(t, "NetworkDriver.Leave", epReq(netID, epID), nil)
	tp.ok(t, "NetworkDriver.Leave", epReq(netID, epID), nil)
	if _, updates, _, _, _ := tp.c.calls(); len(updates)-len(updatesBefore) != 2 {
		t.Errorf("Join, Join, Leave, Leave made %d updates, want 2", len(updates)-len(updatesBefore))
	}

	tp.ok(t, "NetworkDriver.DeleteEndpoint", epReq(netID, epID), nil)
	tp.ok(t, "NetworkDriver.DeleteEndpoint", epReq(netID, epID), nil)
	tp.ok(t, "NetworkDriver.Leave", epReq(netID, epID), nil) // gone: nothing to leave
	if _, ok := tp.c.State().Endpoints.Get(epName); ok {
		t.Errorf("endpoint %s survived DeleteEndpoint", epName)
	}
	tp.ok(t, "IpamDriver.ReleaseAddress", releaseReq("10.9.0.0/24", "10.9.0.2"), nil)
	tp.ok(t, "IpamDriver.ReleaseAddress", releaseReq("10.9.0.0/24", "10.9.0.40"), nil)
	tp.ok(t, "IpamDriver.ReleaseAddress", releaseReq("10.9.0.0/24", "10.9.0.40"), nil)
	if _, ok := tp.c.State().Reserved[raftstore.ReservationKey("web", netip.MustParseAddr("10.9.0.40"))]; ok {
		t.Error("10.9.0.40 is still reserved after ReleaseAddress")
	}
}

// TestReleaseAddressKeepsOtherHostsReservation proves that a Docker engine
// releasing an address (it does so after DeleteEndpoint) never drops a
// reservation another host made for the same address meanwhile.
func TestReleaseAddressKeepsOtherHostsReservation(t *testing.T) {
	tp := newTestPlugin(t, 0)
	tp.dockerNetwork(t, hexID("net-web"), "web", "10.9.0.0/24")
	tp.c.reserveAs(t, "h2", "web", "10.9.0.20", ReservationOwner, time.Now())
	tp.ok(t, "IpamDriver.ReleaseAddress", releaseReq("10.9.0.0/24", "10.9.0.20"), nil)
	if _, ok := tp.c.State().Reserved[raftstore.ReservationKey("web", netip.MustParseAddr("10.9.0.20"))]; !ok {
		t.Fatal("ReleaseAddress dropped another host's reservation")
	}
}

// TestErrorsNameTheFix proves that refused requests reach Docker as an
// error status with a JSON {"Err": ...} whose message says what to do.
func TestErrorsNameTheFix(t *testing.T) {
	netID := hexID("net")
	cases := []struct {
		name  string
		setup func(t *testing.T, tp *testPlugin)
		call  string
		body  string
		want  []string // substrings of Err
	}{
		{name: "IPv6 pool", call: "IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxswitch","Pool":"","SubPool":"","Options":{},"V6":true}`, want: []string{"IPv6 subnet is required", "--subnet fd30::/64"}},
		{name: "missing subnet", call: "IpamDriver.RequestPool", body: poolReq(""), want: []string{"--subnet"}},
		{name: "ip range", call: "IpamDriver.RequestPool",
			body: `{"AddressSpace":"vxswitch","Pool":"10.9.0.0/16","SubPool":"10.9.1.0/24","Options":{},"V6":false}`, want: []string{"--ip-range"}},
		{name: "host bits", call: "IpamDriver.RequestPool", body: poolReq("10.9.0.5/24"), want: []string{"--subnet", "use 10.9.0.0/24"}},
		{name: "IPv6 subnet", call: "IpamDriver.RequestPool", body: poolReq("fd00::/64"), want: []string{"--subnet", "add --ipv6", "10.20.0.0/24"}},
		{name: "not a prefix", call: "IpamDriver.RequestPool", body: poolReq("10.9.0.0"), want: []string{"--subnet", "not a prefix", "10.20.0.0/24"}},
		{name: "too small", call: "IpamDriver.RequestPool", body: poolReq("10.9.0.0/30"), want: []string{"--subnet", "between /8 and /29"}},
		{name: "overlapping subnet",
			setup: func(t *testing.T, tp *testPlugin) {
				tp.c.must(t, raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: "db", Subnet: netip.MustParsePrefix("10.9.0.0/16")}})
			},
			call: "IpamDriver.RequestPool", body: poolReq("10.9.1.0/24"), want: []string{"overlaps", "--subnet 10.9.0.0/16", "--name db"}},
		{name: "overlapping subnet at CreateNetwork",
			setup: func(t *testing.T, tp *testPlugin) {
				tp.c.must(t, raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: "db", Subnet: netip.MustParsePrefix("10.9.0.0/16")}})
			},
			call: "NetworkDriver.CreateNetwork", body: createNetReq(netID, Name, "10.9.1.0/24", "10.9.1.1/24"), want: []string{"--subnet 10.9.0.0/16"}},
		{name: "gateway", call: "IpamDriver.RequestAddress", body: gatewayReq("10.9.0.0/24", "10.9.0.254"),
			want: []string{"10.9.0.1", "leave out --gateway"}},
		{name: "address outside the subnet", call: "IpamDriver.RequestAddress", body: addrReq("10.9.0.0/24", "10.8.0.2"),
			want: []string{"10.8.0.2", "not inside subnet 10.9.0.0/24"}},
		{name: "other IPAM driver", call: "NetworkDriver.CreateNetwork", body: createNetReq(netID, "LocalDefault", "172.18.0.0/16", "172.18.0.1/16"),
			want: []string{"--ipam-driver vxswitch"}},
		{name: "two IPv6 subnets", call: "NetworkDriver.CreateNetwork",
			body: `{"NetworkID":"` + netID + `","Options":{"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{}},"IPv4Data":[{"AddressSpace":"vxswitch","Gateway":"10.9.0.1/24","Pool":"10.9.0.0/24"}],"IPv6Data":[{"AddressSpace":"vxswitch","Gateway":"fd00::1/64","Pool":"fd00::/64"},{"AddressSpace":"vxswitch","Gateway":"fd01::1/64","Pool":"fd01::/64"}]}`,
			want: []string{"one IPv6 subnet", "--ipv6 --subnet fd30::/64"}},
		{name: "name taken with another subnet, RequestAddress",
			setup: nameTaken, call: "IpamDriver.RequestAddress", body: addrReq("10.9.0.0/24", ""), want: []string{"--subnet 10.50.0.0/24"}},
		{name: "name taken with another subnet, CreateEndpoint",
			setup: nameTaken, call: "NetworkDriver.CreateEndpoint", body: createEpReq(netID, hexID("ep"), "10.9.0.2/24", ""),
			want: []string{"web", "--subnet 10.50.0.0/24"}},
		{name: "endpoint without address", call: "NetworkDriver.CreateEndpoint", body: createEpReq(netID, hexID("ep"), "", ""),
			want: []string{"--ipam-driver vxswitch"}},
		{name: "not a docker endpoint ID", call: "NetworkDriver.CreateEndpoint", body: createEpReq(netID, "Bad-ID", "10.9.0.2/24", ""),
			want: []string{"Bad-ID"}},
		{name: "join of an unknown endpoint", call: "NetworkDriver.Join", body: joinReq(netID, hexID("ep"), "/var/run/docker/netns/x"),
			want: []string{"disconnect and connect"}},
		{name: "bad JSON", call: "IpamDriver.RequestPool", body: `{"Pool":`, want: []string{"bad request"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTestPlugin(t, 0)
			if tc.setup != nil {
				tc.setup(t, tp)
			}
			msg := tp.fail(t, tc.call, tc.body)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: error %q does not contain %q", tc.call, msg, w)
				}
			}
		})
	}

	t.Run("unknown call", func(t *testing.T) {
		tp := newTestPlugin(t, 0)
		code, b := tp.post(t, "NetworkDriver.NoSuchCall", "{}")
		var e struct{ Err string }
		if code != http.StatusNotFound || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Err, "NoSuchCall") {
			t.Errorf("unknown call: status %d, answer %s; want 404 naming the call", code, b)
		}
	})
}

// nameTaken sets up a cluster network "web" on 10.50.0.0/24 and a Docker
// network "web" on 10.9.0.0/24 whose pool and CreateNetwork succeeded (the
// name is not known at that time).
func nameTaken(t *testing.T, tp *testPlugin) {
	t.Helper()
	tp.c.must(t, raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: "web", Subnet: netip.MustParsePrefix("10.50.0.0/24")}})
	netID := hexID("net")
	tp.ok(t, "IpamDriver.RequestPool", poolReq("10.9.0.0/24"), nil)
	tp.ok(t, "NetworkDriver.CreateNetwork", createNetReq(netID, Name, "10.9.0.0/24", "10.9.0.1/24"), nil)
	tp.e.set(View{Networks: []EngineNetwork{{ID: netID, Name: "web", Subnet: netip.MustParsePrefix("10.9.0.0/24")}}}, nil)
}

// TestRequestPoolRefusesSubnetsTheClusterRefuses proves that a subnet
// vxswitch cannot create (here a /30, smaller than the /29 minimum) is
// refused at `docker network create`, not only at the first `docker run`.
func TestRequestPoolRefusesSubnetsTheClusterRefuses(t *testing.T) {
	tp := newTestPlugin(t, 0)
	code, b := tp.post(t, "IpamDriver.RequestPool", poolReq("10.9.0.0/30"))
	if code == http.StatusOK {
		t.Fatalf("a /30 pool was accepted: %s", b)
	}
}

// skipIfDockerTAPs skips a test that runs Sweep when this network namespace
// has TAPs named like the plugin's: Sweep deletes those without an endpoint
// in the (fake) cluster state, which would break a real agent here.
func skipIfDockerTAPs(t *testing.T) {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		return
	}
	for _, l := range links {
		if l.Type() == "tuntap" && strings.HasPrefix(l.Attrs().Name, TAPPrefix) {
			t.Skipf("TAP %s exists in this namespace: Sweep would delete it", l.Attrs().Name)
		}
	}
}

// TestSweepRegistersNames proves that Sweep registers a container's name
// and network aliases as DNS aliases of its endpoint (lower-cased, invalid
// and duplicate names dropped, never the endpoint's own name), touches only
// this host's Docker endpoints, and does not update names that are right.
func TestSweepRegistersNames(t *testing.T) {
	skipIfDockerTAPs(t)
	tp := newTestPlugin(t, 0)
	tp.c.must(t, raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: "web", Subnet: netip.MustParsePrefix("10.9.0.0/24")}})
	id1, id2 := hexID("ep-1"), hexID("ep-2")
	name1 := "docker-" + id1[:12]
	tp.c.attachAs(t, "h1", name1, "web", "10.9.0.2", "docker:"+id1, "vxd"+id1[:12], time.Now())
	name2 := "docker-" + id2[:12]
	tp.c.attachAs(t, "h2", name2, "web", "10.9.0.3", "docker:"+id2, "vxd"+id2[:12], time.Now())
	tp.e.set(View{Networks: []EngineNetwork{{ID: hexID("net"), Name: "web", Subnet: netip.MustParsePrefix("10.9.0.0/24"),
		Endpoints: []EngineEndpoint{
			{ID: id1, Container: "Web-1", IP: netip.MustParseAddr("10.9.0.2"),
				Aliases: []string{"web-1", "API", "bad name!", name1, "api", id1[:12], "-dash", strings.Repeat("x", 64)}},
			{ID: id2, Container: "elsewhere", IP: netip.MustParseAddr("10.9.0.3")}, // h2's: not ours
		}}}}, nil)

	tp.p.Sweep(context.Background())
	want := []string{"web-1", "api", id1[:12]}
	if got := tp.c.State().Endpoints.At(name1).Aliases; !slices.Equal(got, want) {
		t.Errorf("aliases = %q, want %q", got, want)
	}
	if got := tp.c.State().Endpoints.At(name2).Aliases; len(got) != 0 {
		t.Errorf("another host's endpoint got aliases %q", got)
	}
	_, updates, _, _, _ := tp.c.calls()
	tp.p.Sweep(context.Background())
	if _, again, _, _, _ := tp.c.calls(); len(again) != len(updates) {
		t.Errorf("a second Sweep made %d updates, want none", len(again)-len(updates))
	}
	if got := dnsAliases("docker-x", "", nil); len(got) != 0 {
		t.Errorf("dnsAliases of no name = %q, want none", got)
	}
}

// TestSweepKeepsNamesWhenAnAliasIsTaken proves that a network alias used by
// another endpoint of the network (docker compose gives every replica, on
// every host, its service name as alias) costs a container only that
// alias, not its own name.
func TestSweepKeepsNamesWhenAnAliasIsTaken(t *testing.T) {
	skipIfDockerTAPs(t)
	tp := newTestPlugin(t, 0)
	tp.c.must(t, raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: "web", Subnet: netip.MustParsePrefix("10.9.0.0/24")}})
	other := hexID("ep-h2")
	tp.c.attachAs(t, "h2", "docker-"+other[:12], "web", "10.9.0.3", "docker:"+other, "vxd"+other[:12], time.Now(), "proj-web-1", "web")
	id := hexID("ep-1")
	name := "docker-" + id[:12]
	tp.c.attachAs(t, "h1", name, "web", "10.9.0.2", "docker:"+id, "vxd"+id[:12], time.Now())
	tp.e.set(View{Networks: []EngineNetwork{{ID: hexID("net"), Name: "web", Subnet: netip.MustParsePrefix("10.9.0.0/24"),
		Endpoints: []EngineEndpoint{{ID: id, Container: "proj-web-2", Aliases: []string{"web", id[:12]}, IP: netip.MustParseAddr("10.9.0.2")}}}}}, nil)
	tp.p.Sweep(context.Background())
	if got := tp.c.State().Endpoints.At(name).Aliases; !slices.Contains(got, "proj-web-2") {
		t.Fatalf("container proj-web-2 got no DNS name (aliases %q)", got)
	}
}

// TestSweepCollectsStale proves that Sweep removes, once they are older
// than Config.Grace, this host's Docker endpoints whose ID the engine no
// longer lists and this host's Docker reservations whose address the
// engine does not list, and leaves everything else alone: young ones,
// listed ones, other hosts', and those that are not Docker's.
func TestSweepCollectsStale(t *testing.T) {
	skipIfDockerTAPs(t)
	tp, names := staleSetup(t)
	tp.p.Sweep(context.Background())
	st := tp.c.State()
	for name, wantGone := range names.endpoints {
		if _, ok := st.Endpoints.Get(name); ok == wantGone {
			t.Errorf("endpoint %s: present %v after Sweep, want %v", name, ok, !wantGone)
		}
	}
	for key, wantGone := range names.reservations {
		if _, ok := st.Reserved[key]; ok == wantGone {
			t.Errorf("reservation %s: present %v after Sweep, want %v", key, ok, !wantGone)
		}
	}
	_, _, detached, released, _ := tp.c.calls()
	if !slices.Equal(detached, []string{names.staleTAP}) {
		t.Errorf("TAPs detached = %v, want [%s]", detached, names.staleTAP)
	}
	if len(released) != 1 {
		t.Errorf("releases = %v, want one", released)
	}
}

// TestSweepRemovesNothingWithoutEngine proves that when the engine cannot
// be asked (View fails) Sweep changes nothing, however old everything is,
// and warns once, not at every sweep.
func TestSweepRemovesNothingWithoutEngine(t *testing.T) {
	skipIfDockerTAPs(t)
	tp, _ := staleSetup(t)
	tp.e.set(View{}, errors.New("docker plugin: list docker networks: connection refused"))
	before := tp.c.State()
	tp.p.Sweep(context.Background())
	tp.p.Sweep(context.Background())
	if after := tp.c.State(); after.Index != before.Index || after.Hash() != before.Hash() {
		t.Errorf("Sweep changed the state without an engine (index %d -> %d)", before.Index, after.Index)
	}
	if _, updates, detached, released, _ := tp.c.calls(); len(updates)+len(detached)+len(released) != 0 {
		t.Errorf("Sweep without an engine called the cluster: updates %v, detached %v, released %v", updates, detached, released)
	}
	if n := strings.Count(tp.log.String(), "cannot reach the docker engine"); n != 1 {
		t.Errorf("engine warning logged %d times over two sweeps, want 1", n)
	}
}

type staleNames struct {
	endpoints    map[string]bool // name -> removed by Sweep
	reservations map[string]bool // key -> released by Sweep
	staleTAP     string
}

// staleSetup makes a plugin with Grace 1 min on network web (10.9.0.0/24)
// and endpoints and reservations old and young, listed by the engine and
// not, of host h1 and h2, of Docker and not.
func staleSetup(t *testing.T) (*testPlugin, staleNames) {
	t.Helper()
	tp := newTestPlugin(t, time.Minute)
	tp.c.must(t, raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: "web", Subnet: netip.MustParsePrefix("10.9.0.0/24")}})
	old, young := time.Now().Add(-time.Hour), time.Now()
	names := staleNames{endpoints: map[string]bool{}, reservations: map[string]bool{}}
	ep := func(host, seed, ip string, created time.Time, docker, gone bool) string {
		id := hexID(seed)
		owner := ""
		if docker {
			owner = "docker:" + id
		}
		e := tp.c.attachAs(t, host, "docker-"+id[:12], "web", ip, owner, "vxd"+id[:12], created)
		names.endpoints[e.Name] = gone
		return id
	}
	listed := ep("h1", "listed", "10.9.0.2", old, true, false)
	ep("h1", "stale", "10.9.0.3", old, true, true)
	names.staleTAP = "vxd" + hexID("stale")[:12]
	ep("h1", "young", "10.9.0.4", young, true, false)
	ep("h1", "not-docker", "10.9.0.5", old, false, false)
	ep("h2", "other-host", "10.9.0.6", old, true, false)
	res := func(host, ip, owner string, created time.Time, gone bool) {
		tp.c.reserveAs(t, host, "web", ip, owner, created)
		names.reservations[raftstore.ReservationKey("web", netip.MustParseAddr(ip))] = gone
	}
	res("h1", "10.9.0.20", ReservationOwner, old, true)
	res("h1", "10.9.0.21", ReservationOwner, old, false) // the engine lists its address
	res("h1", "10.9.0.22", ReservationOwner, young, false)
	res("h2", "10.9.0.23", ReservationOwner, old, false)
	res("h1", "10.9.0.24", "someone-else", old, false)
	tp.e.set(View{Networks: []EngineNetwork{{ID: hexID("net"), Name: "web", Subnet: netip.MustParsePrefix("10.9.0.0/24"),
		Endpoints: []EngineEndpoint{
			{ID: listed, Container: "listed", IP: netip.MustParseAddr("10.9.0.2")},
			{ID: hexID("starting"), Container: "starting", IP: netip.MustParseAddr("10.9.0.21")},
		}}}}, nil)
	return tp, names
}

// TestRunSweepsUntilDone proves that Run sweeps every Config.Every and
// returns when its context is done.
func TestRunSweepsUntilDone(t *testing.T) {
	skipIfDockerTAPs(t)
	tp := newTestPlugin(t, 0)
	tp.p.cfg.Every = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tp.p.Run(ctx); close(done) }()
	waitFor(t, "two sweeps", func() bool {
		tp.e.mu.Lock()
		defer tp.e.mu.Unlock()
		return tp.e.views >= 2
	})
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was canceled")
	}
}

// TestDualStackLifecycle: docker network create --ipv6 with an IPv4 and an
// IPv6 subnet makes a dual-stack vxswitch network; each container gets an
// address of each pool, reserved cluster-wide and taken over by its
// endpoint; a vxswitch network of the same name without the IPv6 subnet is
// refused with the flags that match it.
func TestDualStackLifecycle(t *testing.T) {
	tp := newTestPlugin(t, 0)
	netID, epID := hexID("net-dual"), hexID("ep-dual")
	var pa4, pa6 poolAnswer
	tp.ok(t, "IpamDriver.RequestPool", poolReq("10.9.0.0/24"), &pa4)
	tp.ok(t, "IpamDriver.RequestPool", `{"AddressSpace":"vxswitch","Pool":"fd09::/64","SubPool":"","Options":{},"V6":true}`, &pa6)
	if pa6.PoolID != "fd09::/64" || pa6.Pool != "fd09::/64" {
		t.Fatalf("IPv6 RequestPool = %+v, want pool and ID fd09::/64", pa6)
	}
	var gw4, gw6 addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", gatewayReq(pa4.PoolID, ""), &gw4)
	tp.ok(t, "IpamDriver.RequestAddress", gatewayReq(pa6.PoolID, ""), &gw6)
	if gw6.Address != "fd09::1/64" {
		t.Fatalf("IPv6 gateway = %q, want the resolver fd09::1/64", gw6.Address)
	}
	body := fmt.Sprintf(`{"NetworkID":%q,"Options":{"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{}},"IPv4Data":[{"AddressSpace":"vxswitch","Gateway":%q,"Pool":"10.9.0.0/24"}],"IPv6Data":[{"AddressSpace":"vxswitch","Gateway":%q,"Pool":"fd09::/64"}]}`,
		netID, gw4.Address, gw6.Address)
	tp.ok(t, "NetworkDriver.CreateNetwork", body, nil)
	tp.e.set(View{Networks: []EngineNetwork{{ID: netID, Name: "dual", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Subnet6: netip.MustParsePrefix("fd09::/64")}}}, nil)
	waitFor(t, "dual-stack vxswitch network dual", func() bool {
		n, ok := tp.c.State().Networks["dual"]
		return ok && n.Subnet6 == netip.MustParsePrefix("fd09::/64") && n.Resolver6 == netip.MustParseAddr("fd09::1")
	})

	var a4, a6 addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", addrReq(pa4.PoolID, ""), &a4)
	tp.ok(t, "IpamDriver.RequestAddress", addrReq(pa6.PoolID, ""), &a6)
	if a4.Address != "10.9.0.2/24" || a6.Address != "fd09::2/64" {
		t.Fatalf("RequestAddress = %q and %q, want 10.9.0.2/24 and fd09::2/64", a4.Address, a6.Address)
	}
	if r, ok := tp.c.State().Reserved[raftstore.ReservationKey("dual", netip.MustParseAddr("fd09::2"))]; !ok || !r.IPv6 || r.Host != "h1" {
		t.Fatalf("reservation of fd09::2 = %+v (present %v), want an IPv6 one of h1", r, ok)
	}
	// A repeated request for the address this host holds is answered with it.
	var again addrAnswer
	tp.ok(t, "IpamDriver.RequestAddress", addrReq(pa6.PoolID, "fd09::2"), &again)
	if again.Address != "fd09::2/64" {
		t.Errorf("repeated RequestAddress of fd09::2 = %q", again.Address)
	}

	ep := fmt.Sprintf(`{"NetworkID":%q,"EndpointID":%q,"Interface":{"Address":%q,"AddressIPv6":%q,"MacAddress":""},"Options":{}}`, netID, epID, a4.Address, a6.Address)
	tp.ok(t, "NetworkDriver.CreateEndpoint", ep, nil)
	st := tp.c.State()
	e, ok := st.Endpoints.Get("docker-" + epID[:12])
	if !ok || e.IP != netip.MustParseAddr("10.9.0.2") || e.IP6 != netip.MustParseAddr("fd09::2") {
		t.Fatalf("endpoint = %+v (present %v), want 10.9.0.2 and fd09::2", e, ok)
	}
	if len(st.Reserved) != 0 {
		t.Errorf("reservations after CreateEndpoint: %v, want none (both taken over)", st.Reserved)
	}
	tp.ok(t, "NetworkDriver.DeleteEndpoint", epReq(netID, epID), nil)
	tp.ok(t, "IpamDriver.ReleaseAddress", addrReq(pa6.PoolID, "fd09::2"), nil)

	// A Docker network "dual" without --ipv6 does not match the
	// dual-stack vxswitch network.
	netID2 := hexID("net-dual-4")
	tp.e.set(View{Networks: []EngineNetwork{{ID: netID2, Name: "dual", Subnet: netip.MustParsePrefix("10.9.0.0/24")}}}, nil)
	tp.ok(t, "NetworkDriver.CreateNetwork", createNetReq(netID2, Name, "10.9.0.0/24", "10.9.0.1/24"), nil)
	msg := tp.fail(t, "NetworkDriver.CreateEndpoint", createEpReq(netID2, hexID("ep-4"), "10.9.0.3/24", ""))
	if !strings.Contains(msg, "--ipv6 --subnet 10.9.0.0/24 --subnet fd09::/64") {
		t.Errorf("IPv4-only docker network on a dual-stack vxswitch network: %q, want the flags that match it", msg)
	}
}

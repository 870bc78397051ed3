package raftstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// harness applies commands to an FSM the way raft does: encoded, with
// increasing log indexes.
type harness struct {
	t     testing.TB
	f     *FSM
	index uint64
}

func newHarness(t testing.TB) *harness { return &harness{t: t, f: NewFSM()} }

func (h *harness) apply(cmd Command) *Result {
	h.t.Helper()
	data, err := EncodeCommand(cmd)
	if err != nil {
		h.t.Fatalf("encode %s: %v", cmd.Op, err)
	}
	h.index++
	res, ok := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}).(*Result)
	if !ok || res == nil {
		h.t.Fatalf("apply %s: response is not a *Result", cmd.Op)
	}
	return res
}

func (h *harness) must(cmd Command) *Result {
	h.t.Helper()
	res := h.apply(cmd)
	if res.Err != "" {
		h.t.Fatalf("apply %s: rejected: %s", cmd.Op, res.Err)
	}
	return res
}

func addHost(name, vtep string) Command {
	return Command{Op: OpHostAdd, Time: 1, Host: &Host{Name: name, VTEP: netip.MustParseAddr(vtep), RaftAddr: vtep + ":7946"}}
}

func createNet(name, subnet string, vni uint32) Command {
	return Command{Op: OpNetworkCreate, Time: 2, Network: &Network{Name: name, Subnet: netip.MustParsePrefix(subnet), VNI: vni}}
}

func attach(name, network, host, mac string) Command {
	return Command{Op: OpEndpointAttach, Time: 3, Endpoint: &Endpoint{Name: name, Network: network, Host: host, MAC: mac, IfName: "eth0"}}
}

func mac(i int) string { return fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8&0xff, i&0xff) }

// script is a mixed sequence of commands, some rejected on purpose.
func script() []Command {
	return []Command{
		addHost("a", "10.0.0.1"),
		addHost("b", "10.0.0.2"),
		createNet("web", "10.20.0.0/24", 0),
		createNet("db", "10.30.0.0/29", 5000),
		createNet("bad", "10.20.0.0/16", 0), // overlaps web: rejected
		attach("api", "web", "a", "02:00:00:00:00:01"),
		attach("front", "web", "b", "02:00:00:00:00:02"),
		attach("pg", "db", "b", "02:00:00:00:00:03"),
		attach("dup", "web", "b", "02:00:00:00:00:01"), // MAC in use: rejected
		{Op: OpVTEPAdd, VTEP: &VTEP{Network: "web", Addr: netip.MustParseAddr("10.0.0.9")}},
		{Op: OpMACAnnounce, MACs: []MACEntry{{Network: "web", MAC: "02:aa:00:00:00:01", Host: "a", Port: "api"}}},
		{Op: OpEndpointDetach, Name: "front"},
		attach("front2", "web", "a", "02:00:00:00:00:04"),
		addHost("b", "10.0.0.22"),
	}
}

func TestFSMDeterminism(t *testing.T) {
	h1, h2 := newHarness(t), newHarness(t)
	empty := h1.f.State().Hash()
	for i, cmd := range script() {
		r1, r2 := h1.apply(cmd), h2.apply(cmd)
		j1, _ := json.Marshal(r1)
		j2, _ := json.Marshal(r2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("command %d (%s): results differ: %+v vs %+v", i, cmd.Op, r1, r2)
		}
	}
	s1, s2 := h1.f.State(), h2.f.State()
	if s1.Hash() != s2.Hash() || s1.Index != s2.Index {
		t.Fatalf("states differ: %s@%d vs %s@%d", s1.Hash(), s1.Index, s2.Hash(), s2.Index)
	}
	if s1.Hash() == empty {
		t.Fatal("hash did not change after the script")
	}
	if got := s1.Endpoints.At("front2").IP; got != netip.MustParseAddr("10.20.0.4") {
		t.Errorf("front2 got %s, want 10.20.0.4 (serial allocation: the freed 10.20.0.3 comes last)", got)
	}
	if got := s1.Hosts["b"].VTEP; got != netip.MustParseAddr("10.0.0.22") {
		t.Errorf("host b VTEP = %s after re-add, want 10.0.0.22", got)
	}
}

// bufferSink is an in-memory raft.SnapshotSink.
type bufferSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (s *bufferSink) ID() string    { return "test" }
func (s *bufferSink) Cancel() error { s.canceled = true; return nil }
func (s *bufferSink) Close() error  { s.closed = true; return nil }

func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink bufferSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.canceled {
		t.Fatalf("sink closed=%v canceled=%v, want closed only", sink.closed, sink.canceled)
	}
	return sink.Bytes()
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	h := newHarness(t)
	for _, cmd := range script() {
		h.apply(cmd)
	}
	first := h.must(Command{Op: OpEndpointAttach, ReqID: "req-1", Endpoint: &Endpoint{Name: "x", Network: "web", Host: "a", MAC: "02:00:00:00:00:77", Aliases: []string{"xx"}}})

	h2 := newHarness(t)
	changes := h2.f.Changes()
	if err := h2.f.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	default:
		t.Error("Restore did not notify Changes")
	}
	s1, s2 := h.f.State(), h2.f.State()
	if s1.Hash() != s2.Hash() || s1.Index != s2.Index {
		t.Fatalf("restored state differs: %s@%d vs %s@%d", s1.Hash(), s1.Index, s2.Hash(), s2.Index)
	}
	// The request log survives the snapshot: a retry changes nothing.
	h2.index = s2.Index
	again := h2.must(Command{Op: OpEndpointAttach, ReqID: "req-1", Endpoint: &Endpoint{Name: "x", Network: "web", Host: "a", MAC: "02:00:00:00:00:77"}})
	if again.Endpoint == nil || again.Endpoint.IP != first.Endpoint.IP {
		t.Fatalf("retry after restore = %+v, want the recorded result %+v", again.Endpoint, first.Endpoint)
	}
	if h2.f.State() != s2 {
		t.Fatal("retry after restore published a new state")
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	before := h.f.State()
	for _, in := range []string{"", "{", `{"Version":99}`, "\x00\x01"} {
		if err := h.f.Restore(io.NopCloser(strings.NewReader(in))); err == nil {
			t.Errorf("Restore(%q) = nil error, want one", in)
		}
	}
	if h.f.State() != before {
		t.Fatal("a failed Restore replaced the state")
	}
}

func TestIPAMSequenceAndExhaustion(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	res := h.must(createNet("web", "10.20.0.0/29", 0))
	if res.Network.Resolver != netip.MustParseAddr("10.20.0.1") || res.Network.VNI != FirstAutoVNI {
		t.Fatalf("network = %+v, want resolver 10.20.0.1 and VNI %d", res.Network, FirstAutoVNI)
	}
	for i, want := range []string{"10.20.0.2", "10.20.0.3", "10.20.0.4", "10.20.0.5", "10.20.0.6"} {
		r := h.must(attach(fmt.Sprintf("e%d", i), "web", "a", mac(i+1)))
		if r.Endpoint.IP.String() != want {
			t.Fatalf("attach %d got %s, want %s", i, r.Endpoint.IP, want)
		}
	}
	before := h.f.State()
	r := h.apply(attach("e5", "web", "a", mac(6)))
	want := "subnet 10.20.0.0/29 of network web is exhausted (5 addresses in use): create a larger network"
	if r.Err != want {
		t.Fatalf("6th attach: Err = %q, want %q", r.Err, want)
	}
	if h.f.State() != before {
		t.Fatal("a rejected attach changed the state")
	}
	h.must(Command{Op: OpEndpointDetach, Name: "e1"})
	if r := h.must(attach("e5", "web", "a", mac(6))); r.Endpoint.IP.String() != "10.20.0.3" {
		t.Fatalf("attach after detach got %s, want the freed 10.20.0.3", r.Endpoint.IP)
	}
}

func TestIPAMNoDuplicates(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createNet("web", "10.20.0.0/22", 0))
	for i := 0; i < 200; i++ {
		h.must(attach(fmt.Sprintf("e%d", i), "web", "a", mac(i+1)))
		if i%7 == 3 { // free some addresses along the way
			h.must(Command{Op: OpEndpointDetach, Name: fmt.Sprintf("e%d", i-2)})
		}
	}
	st := h.f.State()
	nw := st.Networks["web"]
	seen := map[netip.Addr]string{}
	for name, ep := range st.Endpoints.All() {
		if other, ok := seen[ep.IP]; ok {
			t.Fatalf("%s and %s share %s", name, other, ep.IP)
		}
		seen[ep.IP] = name
		if !nw.Subnet.Contains(ep.IP) || ep.IP == nw.Resolver || ep.IP == nw.Subnet.Addr() {
			t.Fatalf("%s got reserved or foreign address %s", name, ep.IP)
		}
	}
	if len(seen) < 170 {
		t.Fatalf("only %d endpoints, want at least 170", len(seen))
	}
}

func TestRequestedIP(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createNet("web", "10.20.0.0/24", 0))
	withIP := func(name, m, ip string) Command {
		c := attach(name, "web", "a", m)
		c.Endpoint.IP = netip.MustParseAddr(ip)
		return c
	}
	if r := h.must(withIP("a1", mac(1), "10.20.0.50")); r.Endpoint.IP.String() != "10.20.0.50" {
		t.Fatalf("got %s, want the requested 10.20.0.50", r.Endpoint.IP)
	}
	for _, tc := range []struct{ ip, want string }{
		{"10.20.0.50", "already used by endpoint a1"},
		{"10.21.0.5", "not inside subnet 10.20.0.0/24"},
		{"10.20.0.1", "is the resolver"},
		{"10.20.0.0", "is the network address"},
		{"10.20.0.255", "is the broadcast address"},
	} {
		if r := h.apply(withIP("a2", mac(2), tc.ip)); !strings.Contains(r.Err, tc.want) {
			t.Errorf("IP %s: Err = %q, want it to contain %q", tc.ip, r.Err, tc.want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(addHost("b", "10.0.0.2"))
	h.must(createNet("web", "10.20.0.0/24", 4096))
	h.must(attach("api", "web", "a", "02:00:00:00:00:01"))
	h.must(Command{Op: OpVTEPAdd, VTEP: &VTEP{Network: "web", Addr: netip.MustParseAddr("10.0.0.9")}})

	ep := func(mod func(*Endpoint)) Command {
		c := attach("new", "web", "a", "02:00:00:00:00:09")
		mod(c.Endpoint)
		return c
	}
	nw := func(name, subnet string, vni uint32, mtu int) Command {
		c := createNet(name, subnet, vni)
		c.Network.MTU = mtu
		return c
	}
	vtep := func(op, network, addr string) Command {
		return Command{Op: op, VTEP: &VTEP{Network: network, Addr: netip.MustParseAddr(addr)}}
	}
	tests := []struct {
		name string
		cmd  Command
		want string
	}{
		{"unknown op", Command{Op: "host.explode"}, `unknown operation "host.explode"`},
		{"host missing", Command{Op: OpHostAdd}, "host.add needs a Host"},
		{"host no name", addHost("", "10.0.0.5"), "host name is empty"},
		{"host bad name", addHost("a b", "10.0.0.5"), "is invalid"},
		{"host no vtep", Command{Op: OpHostAdd, Host: &Host{Name: "c"}}, "VTEP address is missing"},
		{"host multicast vtep", addHost("c", "239.1.1.1"), "not a unicast address"},
		{"host vtep taken", addHost("c", "10.0.0.2"), "already used by host b"},
		{"host vtep external", addHost("c", "10.0.0.9"), "external VTEP of network web"},
		{"host bad raft addr", Command{Op: OpHostAdd, Host: &Host{Name: "c", VTEP: netip.MustParseAddr("10.0.0.5"), RaftAddr: "nope"}}, "not host:port"},
		{"host remove unknown", Command{Op: OpHostRemove, Name: "zz"}, `host "zz" is not a member`},
		{"net missing", Command{Op: OpNetworkCreate}, "network.create needs a Network"},
		{"net bad name", nw("Web", "10.40.0.0/24", 0, 0), `network name "Web" is invalid`},
		{"net exists", nw("web", "10.40.0.0/24", 0, 0), "network web already exists"},
		{"net unmasked", nw("n2", "10.40.0.1/24", 0, 0), "use 10.40.0.0/24"},
		{"net too small", nw("n2", "10.40.0.0/30", 0, 0), "between /8 and /29"},
		{"net too big", nw("n2", "10.0.0.0/7", 0, 0), "between /8 and /29"},
		{"net ipv6", nw("n2", "fd00::/64", 0, 0), "not IPv4"},
		{"net no subnet", Command{Op: OpNetworkCreate, Network: &Network{Name: "n2"}}, "subnet is missing"},
		{"net overlap", nw("n2", "10.20.0.128/25", 0, 0), "overlaps subnet 10.20.0.0/24 of network web"},
		{"net vni used", nw("n2", "10.40.0.0/24", 4096, 0), "VNI 4096 is already used by network web"},
		{"net vni range", nw("n2", "10.40.0.0/24", 1<<24, 0), "out of range"},
		{"net mtu low", nw("n2", "10.40.0.0/24", 0, 500), "MTU 500 is out of range"},
		{"net mtu high", nw("n2", "10.40.0.0/24", 0, 70000), "MTU 70000 is out of range"},
		{"net remove busy", Command{Op: OpNetworkRemove, Name: "web"}, "network web still has 1 endpoints (api): detach them first"},
		{"net remove unknown", Command{Op: OpNetworkRemove, Name: "zz"}, `network "zz" does not exist`},
		{"ep missing", Command{Op: OpEndpointAttach}, "endpoint.attach needs an Endpoint"},
		{"ep exists", ep(func(e *Endpoint) { e.Name = "api" }), "endpoint api already exists in network web on host a"},
		{"ep bad name", ep(func(e *Endpoint) { e.Name = "-x" }), "is invalid"},
		{"ep no network", ep(func(e *Endpoint) { e.Network = "zz" }), `network "zz" does not exist`},
		{"ep no host", ep(func(e *Endpoint) { e.Host = "zz" }), `host "zz" is not a member`},
		{"ep bad mac", ep(func(e *Endpoint) { e.MAC = "nope" }), `MAC "nope" is invalid`},
		{"ep multicast mac", ep(func(e *Endpoint) { e.MAC = "01:00:5e:00:00:01" }), "multicast"},
		{"ep zero mac", ep(func(e *Endpoint) { e.MAC = "00:00:00:00:00:00" }), "all zeros"},
		{"ep mac taken", ep(func(e *Endpoint) { e.MAC = "02:00:00:00:00:01" }), "already used by endpoint api"},
		{"ep ifname", ep(func(e *Endpoint) { e.IfName = "a/b" }), "interface name"},
		{"ep alias taken", ep(func(e *Endpoint) { e.Aliases = []string{"api"} }), "alias api is already used by endpoint api"},
		{"ep alias twice", ep(func(e *Endpoint) { e.Aliases = []string{"x", "x"} }), "given twice"},
		{"ep detach unknown", Command{Op: OpEndpointDetach, Name: "zz"}, `endpoint "zz" does not exist`},
		{"vtep missing", Command{Op: OpVTEPAdd}, "vtep.add needs a VTEP"},
		{"vtep no network", vtep(OpVTEPAdd, "zz", "10.0.0.8"), `network "zz" does not exist`},
		{"vtep is host", vtep(OpVTEPAdd, "web", "10.0.0.1"), "VTEP of member host a"},
		{"vtep duplicate", vtep(OpVTEPAdd, "web", "10.0.0.9"), "already in network web"},
		{"vtep bad addr", vtep(OpVTEPAdd, "web", "0.0.0.0"), "not a unicast address"},
		{"vtep remove unknown", vtep(OpVTEPRemove, "web", "10.0.0.8"), "not in network web"},
		{"mac empty", Command{Op: OpMACAnnounce}, "needs at least one MAC entry"},
		{"mac bad", Command{Op: OpMACAnnounce, MACs: []MACEntry{{Network: "web", Host: "a", MAC: "x"}}}, `MAC "x" is invalid`},
		{"mac no network", Command{Op: OpMACAnnounce, MACs: []MACEntry{{Network: "zz", Host: "a", MAC: "02:00:00:00:01:01"}}}, `network "zz" does not exist`},
		{"mac no host", Command{Op: OpMACAnnounce, MACs: []MACEntry{{Network: "web", Host: "zz", MAC: "02:00:00:00:01:01"}}}, `host "zz" is not a member`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.f.State()
			hash := before.Hash()
			r := h.apply(tc.cmd)
			if !strings.Contains(r.Err, tc.want) {
				t.Fatalf("Err = %q, want it to contain %q", r.Err, tc.want)
			}
			if strings.ContainsAny(r.Err, "\n\r") {
				t.Fatalf("Err %q is not one line", r.Err)
			}
			after := h.f.State()
			if after != before || after.Hash() != hash {
				t.Fatal("a rejected command changed the state")
			}
		})
	}
}

func TestReqIDIdempotency(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createNet("web", "10.20.0.0/24", 0))
	cmd := attach("api", "web", "a", "02:00:00:00:00:01")
	cmd.ReqID = "r1"
	first := h.must(cmd)
	st := h.f.State()
	second := h.must(cmd) // same ReqID: the recorded result, not "already exists"
	if second.Endpoint == nil || second.Endpoint.IP != first.Endpoint.IP {
		t.Fatalf("retry = %+v, want %+v", second.Endpoint, first.Endpoint)
	}
	if h.f.State() != st || st.Endpoints.Len() != 1 {
		t.Fatal("retry changed the state")
	}
	// Without the ReqID the same command is a new request and is rejected.
	cmd.ReqID = ""
	if r := h.apply(cmd); !strings.Contains(r.Err, "already exists") {
		t.Fatalf("new request Err = %q, want already exists", r.Err)
	}

	// The oldest IDs are forgotten after MaxRequestIDs newer ones.
	for i := 0; i < MaxRequestIDs; i++ {
		c := addHost("b", "10.0.0.2")
		c.ReqID = fmt.Sprintf("fill-%d", i)
		h.must(c)
	}
	cmd.ReqID = "r1"
	if r := h.apply(cmd); !strings.Contains(r.Err, "already exists") {
		t.Fatalf("after eviction Err = %q, want the command to be applied again (already exists)", r.Err)
	}
	if n := len(h.f.reqs.order); n != MaxRequestIDs {
		t.Fatalf("request log holds %d ids, want %d", n, MaxRequestIDs)
	}
}

func TestHostRemoveFreesAddresses(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(addHost("b", "10.0.0.2"))
	h.must(createNet("web", "10.20.0.0/24", 0))
	h.must(attach("a1", "web", "a", mac(1))) // .2
	h.must(attach("b1", "web", "b", mac(2))) // .3
	h.must(attach("a2", "web", "a", mac(3))) // .4
	h.must(Command{Op: OpMACAnnounce, MACs: []MACEntry{
		{Network: "web", Host: "a", MAC: "02:aa:00:00:00:01", Port: "a1"},
		{Network: "web", Host: "b", MAC: "02:bb:00:00:00:01", Port: "b1"},
	}})
	h.must(Command{Op: OpHostRemove, Name: "a"})
	st := h.f.State()
	if _, ok := st.Hosts["a"]; ok || st.Endpoints.Len() != 1 || len(st.MACs) != 1 {
		t.Fatalf("after host.remove: hosts %v, endpoints %v, MACs %v", st.Hosts, st.Endpoints, st.MACs)
	}
	if r := h.must(attach("b2", "web", "b", mac(4))); r.Endpoint.IP.String() != "10.20.0.5" {
		t.Fatalf("attach after host.remove got %s, want 10.20.0.5 (serial allocation)", r.Endpoint.IP)
	}
}

func TestHostReAddKeepsJoinedAt(t *testing.T) {
	h := newHarness(t)
	c := addHost("a", "10.0.0.1")
	c.Time = 100
	h.must(c)
	c = addHost("a", "10.0.0.7")
	c.Time = 200
	r := h.must(c)
	if r.Host.JoinedAt != 100 || r.Host.VTEP.String() != "10.0.0.7" {
		t.Fatalf("re-added host = %+v, want JoinedAt 100 and VTEP 10.0.0.7", r.Host)
	}
}

func TestVNIAllocation(t *testing.T) {
	h := newHarness(t)
	h.must(createNet("n1", "10.1.0.0/24", 0))
	h.must(createNet("n2", "10.2.0.0/24", FirstAutoVNI+1))
	r := h.must(createNet("n3", "10.3.0.0/24", 0))
	if r.Network.VNI != FirstAutoVNI+2 {
		t.Fatalf("third network got VNI %d, want %d", r.Network.VNI, FirstAutoVNI+2)
	}
}

func TestNetworkRemoveCleansUp(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createNet("web", "10.20.0.0/24", 0))
	h.must(createNet("db", "10.30.0.0/24", 0))
	h.must(attach("api", "web", "a", mac(1)))
	for _, n := range []string{"web", "db"} {
		h.must(Command{Op: OpVTEPAdd, VTEP: &VTEP{Network: n, Addr: netip.MustParseAddr("10.0.0.9")}})
		h.must(Command{Op: OpMACAnnounce, MACs: []MACEntry{{Network: n, Host: "a", MAC: "02:aa:00:00:00:01"}}})
	}
	h.must(Command{Op: OpEndpointDetach, Name: "api"})
	h.must(Command{Op: OpNetworkRemove, Name: "web"})
	st := h.f.State()
	if len(st.Networks) != 1 || len(st.VTEPs) != 1 || st.VTEPs[0].Network != "db" || len(st.MACs) != 1 {
		t.Fatalf("after network.remove: networks %v VTEPs %v MACs %v", st.Networks, st.VTEPs, st.MACs)
	}
}

func TestMACAnnounce(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(addHost("b", "10.0.0.2"))
	h.must(createNet("web", "10.20.0.0/24", 0))
	h.must(attach("api", "web", "a", "02:00:00:00:00:01"))

	var entries []MACEntry
	for i := 0; i < MaxMACsPerHost+6; i++ {
		entries = append(entries, MACEntry{Network: "web", Host: "a", MAC: fmt.Sprintf("02:aa:00:00:00:%02X", i), Port: "api"})
	}
	entries = append(entries, MACEntry{Network: "web", Host: "b", MAC: "02:00:00:00:00:01"}) // an endpoint's MAC
	r := h.must(Command{Op: OpMACAnnounce, MACs: entries})
	if r.Accepted != MaxMACsPerHost || r.Ignored != 7 {
		t.Fatalf("announce: accepted %d ignored %d, want %d and 7", r.Accepted, r.Ignored, MaxMACsPerHost)
	}
	if m := h.f.State().MACs[MACKey("web", "02:aa:00:00:00:0a")]; m.Host != "a" {
		t.Fatalf("entry not stored in lower case: %+v", m)
	}
	// A withdrawal by another host does not remove a's entry.
	r = h.must(Command{Op: OpMACWithdraw, MACs: []MACEntry{{Network: "web", Host: "b", MAC: "02:aa:00:00:00:00"}}})
	if r.Accepted != 0 || r.Ignored != 1 {
		t.Fatalf("foreign withdraw: %+v", r)
	}
	r = h.must(Command{Op: OpMACWithdraw, MACs: []MACEntry{{Network: "web", Host: "a", MAC: "02:aa:00:00:00:00"}}})
	if r.Accepted != 1 || len(h.f.State().MACs) != MaxMACsPerHost-1 {
		t.Fatalf("withdraw: %+v, %d entries left", r, len(h.f.State().MACs))
	}
	// Attaching an endpoint with a learned MAC replaces the learned entry.
	h.must(attach("new", "web", "b", "02:aa:00:00:00:01"))
	if _, ok := h.f.State().MACs[MACKey("web", "02:aa:00:00:00:01")]; ok {
		t.Fatal("learned entry kept after an endpoint took its MAC")
	}
	// Detaching an endpoint drops the MACs learned behind it.
	h.must(Command{Op: OpEndpointDetach, Name: "api"})
	if n := len(h.f.State().MACs); n != 0 {
		t.Fatalf("%d learned entries left after their port was detached", n)
	}
}

func TestChangesCoalesce(t *testing.T) {
	h := newHarness(t)
	ch := h.f.Changes()
	h.must(addHost("a", "10.0.0.1"))
	h.must(addHost("b", "10.0.0.2")) // must not block although nobody reads
	<-ch
	select {
	case <-ch:
		t.Fatal("two notifications buffered, want them coalesced into one")
	default:
	}
	h.apply(addHost("", "10.0.0.3")) // rejected
	select {
	case <-ch:
		t.Fatal("a rejected command notified Changes")
	default:
	}
}

func FuzzApply(f *testing.F) {
	for _, cmd := range script() {
		b, err := EncodeCommand(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Op":"network.create","Network":{"Name":"x","Subnet":"10.9.0.0/8"}}`))
	f.Add([]byte(`{"Op":"endpoint.attach","Endpoint":{"Name":"x","Network":"web","Host":"a","MAC":"02:00:00:00:00:09","IP":"10.20.0.255"}}`))
	f.Add([]byte(`{"Op":"mac.announce","MACs":[{"Network":"web","Host":"a","MAC":"02:00:00:00:00:09"}]}`))
	f.Add([]byte(`{"Op":"host.add","Host":{"Name":"a","VTEP":"::ffff:10.0.0.1"}}`))
	f.Add([]byte(`{"Op":"address.reserve","Reservation":{"Network":"web","Host":"a","Owner":"docker"}}`))
	f.Add([]byte(`{"Op":"address.reserve","Reservation":{"Network":"web","Host":"a","IP":"10.20.0.2"}}`))
	f.Add([]byte(`{"Op":"address.release","Reservation":{"Network":"web","IP":"10.20.0.3"}}`))
	f.Add([]byte(`{"Op":"endpoint.update","Endpoint":{"Name":"api","NetNS":"/x","IfName":"eth1","Aliases":["www","api"]}}`))
	f.Add([]byte("null"))
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t)
		h.must(addHost("a", "10.0.0.1"))
		h.must(createNet("web", "10.20.0.0/29", 0))
		h.must(attach("api", "web", "a", mac(1)))
		before := h.f.State()
		h.index++
		res, ok := h.f.Apply(&raft.Log{Index: h.index, Data: data}).(*Result)
		if !ok || res == nil {
			t.Fatal("Apply did not return a *Result")
		}
		after := h.f.State()
		if strings.Contains(res.Err, "internal error") {
			t.Fatalf("Apply panicked: %s", res.Err)
		}
		if res.Err != "" {
			if after != before {
				t.Fatalf("rejected command (%s) changed the state", res.Err)
			}
			if strings.ContainsAny(res.Err, "\n\r") {
				t.Fatalf("Err %q is not one line", res.Err)
			}
			return
		}
		// An accepted state must survive a snapshot round trip and
		// keep its invariants.
		if after.Index != h.index {
			t.Fatalf("accepted command left Index %d, want %d", after.Index, h.index)
		}
		restored := NewFSM()
		if err := restored.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
			t.Fatal(err)
		}
		if restored.State().Hash() != after.Hash() {
			t.Fatal("snapshot round trip changed the hash")
		}
		seen := map[string]bool{}
		for _, ep := range after.Endpoints.All() {
			key := ep.Network + "/" + ep.IP.String()
			if seen[key] {
				t.Fatalf("duplicate address %s", key)
			}
			seen[key] = true
		}
		for key := range after.Reserved {
			if seen[key] {
				t.Fatalf("address %s is both reserved and an endpoint's", key)
			}
		}
	})
}

// TestReservations: a reserved address is never handed to another
// endpoint; an attach on the reserving host that asks for it takes it over,
// one on another host is refused; release drops only a reservation, never
// an endpoint's address; removing the host drops its reservations; a
// network with a reservation cannot be removed.
func TestReservations(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(addHost("b", "10.0.0.2"))
	h.must(createNet("web", "10.20.0.0/29", 0)) // .2 to .6
	r := h.must(Command{Op: OpAddressReserve, Reservation: &Reservation{Network: "web", Host: "a", Owner: "docker"}}).Reservation
	if r.IP != netip.MustParseAddr("10.20.0.2") {
		t.Fatalf("reserved %v, want 10.20.0.2", r.IP)
	}
	ep := h.must(attach("api", "web", "b", mac(1))).Endpoint
	if ep.IP == r.IP {
		t.Fatalf("attach got the reserved address %v", ep.IP)
	}
	take := attach("db", "web", "b", mac(2))
	take.Endpoint.IP = r.IP
	if res := h.apply(take); !strings.Contains(res.Err, "reserved by docker on host a") {
		t.Fatalf("attach on another host of a reserved address: %q", res.Err)
	}
	take.Endpoint.Host = "a"
	if got := h.must(take).Endpoint.IP; got != r.IP {
		t.Fatalf("take-over attach got %v, want %v", got, r.IP)
	}
	if len(h.f.State().Reserved) != 0 {
		t.Fatalf("reservation left after take-over: %v", h.f.State().Reserved)
	}
	release := Command{Op: OpAddressRelease, Reservation: &Reservation{Network: "web", IP: r.IP}}
	if res := h.apply(release); !strings.Contains(res.Err, "not reserved") {
		t.Fatalf("release of an endpoint's address: %q", res.Err)
	}
	if h.f.State().Endpoints.At("db").IP != r.IP {
		t.Fatal("release freed an endpoint's address")
	}
	fixed := h.must(Command{Op: OpAddressReserve, Reservation: &Reservation{Network: "web", Host: "b", Owner: "docker", IP: netip.MustParseAddr("10.20.0.6")}}).Reservation
	if res := h.apply(Command{Op: OpAddressReserve, Reservation: &Reservation{Network: "web", Host: "a", IP: fixed.IP}}); !strings.Contains(res.Err, "reserved by docker on host b") {
		t.Fatalf("second reservation of one address: %q", res.Err)
	}
	if res := h.apply(Command{Op: OpNetworkRemove, Name: "web"}); res.Err == "" {
		t.Fatal("network with endpoints and a reservation removed")
	}
	h.must(Command{Op: OpHostRemove, Name: "b"})
	if len(h.f.State().Reserved) != 0 {
		t.Fatalf("host removal left its reservations: %v", h.f.State().Reserved)
	}
}

// TestEndpointUpdate: an update moves an endpoint's interface and replaces
// its aliases, checked against the other endpoints' names; nothing else of
// the endpoint changes.
func TestEndpointUpdate(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createNet("web", "10.20.0.0/24", 0))
	before := h.must(attach("docker-1", "web", "a", mac(1))).Endpoint
	h.must(attach("db", "web", "a", mac(2)))
	upd := Command{Op: OpEndpointUpdate, Endpoint: &Endpoint{Name: "docker-1", NetNS: "/run/docker/netns/x", IfName: "vxd1", Aliases: []string{"web1", "www"}}}
	after := h.must(upd).Endpoint
	if after.NetNS != "/run/docker/netns/x" || after.IfName != "vxd1" || !slices.Equal(after.Aliases, []string{"web1", "www"}) ||
		after.IP != before.IP || after.MAC != before.MAC || after.Host != before.Host || after.Network != before.Network {
		t.Fatalf("update gave %+v from %+v", after, before)
	}
	h.must(upd) // the same aliases again: no conflict with itself
	upd.Endpoint.Aliases = []string{"db"}
	if res := h.apply(upd); !strings.Contains(res.Err, "already used by endpoint db") {
		t.Fatalf("alias of another endpoint: %q", res.Err)
	}
	upd.Endpoint.Name = "nope"
	if res := h.apply(upd); !strings.Contains(res.Err, "does not exist") {
		t.Fatalf("update of a missing endpoint: %q", res.Err)
	}
}

// TestAllocatorHandsOutFreedAddressesLast: addresses are handed out in
// order after the last one given (serial allocation), wrapping at the end of
// the subnet, so a freed address comes back only after every other one;
// the cursor is part of the state and survives a snapshot.
func TestAllocatorHandsOutFreedAddressesLast(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createNet("small", "10.40.0.0/29", 0)) // .1 resolver, .2-.6 endpoints
	ip := func(r *Result) string { return r.Endpoint.IP.String() }
	if got := ip(h.must(attach("e1", "small", "a", mac(1)))); got != "10.40.0.2" {
		t.Fatalf("first attach got %s, want 10.40.0.2", got)
	}
	if got := ip(h.must(attach("e2", "small", "a", mac(2)))); got != "10.40.0.3" {
		t.Fatalf("second attach got %s, want 10.40.0.3", got)
	}
	h.must(Command{Op: OpEndpointDetach, Name: "e1"})
	if got := ip(h.must(attach("e3", "small", "a", mac(3)))); got != "10.40.0.4" {
		t.Fatalf("attach after freeing .2 got %s, want 10.40.0.4 (freed addresses last)", got)
	}

	// The cursor survives a snapshot and restore.
	restored := newHarness(t)
	if err := restored.f.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
		t.Fatal(err)
	}
	restored.index = h.index
	for _, hh := range []*harness{h, restored} {
		var got []string
		for i, name := range []string{"e4", "e5", "e6"} {
			got = append(got, ip(hh.must(attach(name, "small", "a", mac(4+i)))))
		}
		// .5 and .6 to the end of the subnet, then wrap to the freed .2.
		if want := []string{"10.40.0.5", "10.40.0.6", "10.40.0.2"}; !slices.Equal(got, want) {
			t.Errorf("attaches after e3 got %v, want %v", got, want)
		}
		if r := hh.apply(attach("e7", "small", "a", mac(9))); r.Err == "" {
			t.Error("attach to a full /29 succeeded")
		}
	}
}

// TestHostKeys: a host is its name and its key. A live member's name cannot
// be taken with another key; a removed host's key is refused for good,
// while the same name with a new key (a new enrolment) is admitted.
func TestHostKeys(t *testing.T) {
	h := newHarness(t)
	withKey := func(name, vtep, key string) Command {
		c := addHost(name, vtep)
		c.Host.KeyFP = key
		return c
	}
	h.must(withKey("a", "10.0.0.1", "key1"))
	h.must(withKey("a", "10.0.0.1", "")) // a re-registration without a key keeps it
	if got := h.f.State().Hosts["a"].KeyFP; got != "key1" {
		t.Fatalf("KeyFP after a re-registration without a key = %q, want key1", got)
	}
	if r := h.apply(withKey("a", "10.0.0.1", "key2")); !strings.Contains(r.Err, "already a member with another key") {
		t.Fatalf("host.add of a member's name with another key: %q", r.Err)
	}
	h.must(Command{Op: OpHostRemove, Name: "a"})
	if got := h.f.State().Removed["key1"]; got != "a" {
		t.Fatalf("Removed[key1] = %q, want a", got)
	}
	if r := h.apply(withKey("a", "10.0.0.1", "key1")); !strings.Contains(r.Err, "was removed from the cluster") {
		t.Fatalf("host.add with a removed key: %q", r.Err)
	}
	if r := h.apply(withKey("b", "10.0.0.2", "key1")); !strings.Contains(r.Err, "was removed from the cluster") {
		t.Fatalf("host.add of another name with a removed key: %q", r.Err)
	}
	h.must(withKey("a", "10.0.0.1", "key3"))

	restored := newHarness(t)
	if err := restored.f.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, h.f)))); err != nil {
		t.Fatal(err)
	}
	if restored.f.State().Hash() != h.f.State().Hash() || restored.f.State().Removed["key1"] != "a" {
		t.Fatal("the removed keys did not survive a snapshot")
	}
}

package stateview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"vxswitch/raftstore"
	vswitch "vxswitch/switch"
)

// fsmHarness applies commands to a real FSM.
type fsmHarness struct {
	tb    testing.TB
	f     *raftstore.FSM
	index uint64
}

func (h *fsmHarness) apply(cmd raftstore.Command) {
	h.tb.Helper()
	data, err := raftstore.EncodeCommand(cmd)
	if err != nil {
		h.tb.Fatal(err)
	}
	h.index++
	if res := h.f.Apply(&raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}).(*raftstore.Result); res.Err != "" {
		h.tb.Fatalf("%s: %s", cmd.Op, res.Err)
	}
}

// log encodes cmd as the next raft log entry, for commands the FSM may
// refuse.
func (h *fsmHarness) log(cmd raftstore.Command) *raft.Log {
	h.tb.Helper()
	data, err := raftstore.EncodeCommand(cmd)
	if err != nil {
		h.tb.Fatal(err)
	}
	h.index++
	return &raft.Log{Index: h.index, Type: raft.LogCommand, Data: data}
}

func attachCmd(name, network, host string, i int) raftstore.Command {
	return raftstore.Command{Op: raftstore.OpEndpointAttach, Endpoint: &raftstore.Endpoint{
		Name: name, Network: network, Host: host, MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)}}
}

func mtu1450(raftstore.Network) int { return 1450 }

// TestUpdate: after each kind of change, Update gives the view Build
// gives, and it reuses the networks the change did not touch.
func TestUpdate(t *testing.T) {
	h := &fsmHarness{tb: t, f: raftstore.NewFSM()}
	for i, name := range []string{"h1", "h2", "h3"} {
		h.apply(raftstore.Command{Op: raftstore.OpHostAdd, Host: &raftstore.Host{Name: name, VTEP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}})
	}
	for i, name := range []string{"web", "db", "idle"} {
		h.apply(raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: name, Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(20 + i), 0, 0}), 24)}})
	}
	for i := range 12 {
		h.apply(attachCmd(fmt.Sprintf("e%d", i), []string{"web", "db"}[i%2], fmt.Sprintf("h%d", i%3+1), i))
	}
	st := h.f.State()
	v := Build(st, "h1", mtu1450)
	var names Builder
	names.Names(st)
	vni := func(name string) uint32 { return st.Networks[name].VNI }
	steps := []struct {
		name    string
		cmd     raftstore.Command
		changed []string // networks that must be rebuilt
		// floodKept: the hosts of the changed network stay the same, so
		// its flood list must be the previous view's, not a new one.
		floodKept bool
	}{
		{"attach to web", attachCmd("x1", "web", "h2", 100), []string{"web"}, true},
		{"detach from db", raftstore.Command{Op: raftstore.OpEndpointDetach, Name: "e1"}, []string{"db"}, true},
		{"external VTEP in db", raftstore.Command{Op: raftstore.OpVTEPAdd, VTEP: &raftstore.VTEP{Network: "db", Addr: netip.MustParseAddr("10.0.0.9")}}, []string{"db"}, false},
		{"learned MAC", raftstore.Command{Op: raftstore.OpMACAnnounce, MACs: []raftstore.MACEntry{{Network: "web", MAC: "02:aa:00:00:00:01", Host: "h2", Port: "e4"}}}, []string{"web"}, false},
		{"new host", raftstore.Command{Op: raftstore.OpHostAdd, Host: &raftstore.Host{Name: "h4", VTEP: netip.MustParseAddr("10.0.0.4")}}, []string{"web", "db", "idle"}, false},
		{"first endpoint of h4 in db", attachCmd("x2", "db", "h4", 101), []string{"db"}, false},
		{"second endpoint of h4 in db", attachCmd("x3", "db", "h4", 102), []string{"db"}, true},
		{"h4 keeps one in db", raftstore.Command{Op: raftstore.OpEndpointDetach, Name: "x2"}, []string{"db"}, true},
		{"last endpoint of h4 leaves db", raftstore.Command{Op: raftstore.OpEndpointDetach, Name: "x3"}, []string{"db"}, false},
		{"new aliases", raftstore.Command{Op: raftstore.OpEndpointUpdate, Endpoint: &raftstore.Endpoint{Name: "e2", Aliases: []string{"www"}}}, []string{"web"}, true},
		{"new network", raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: "new", Subnet: netip.MustParsePrefix("10.30.0.0/24")}}, []string{"new"}, false},
	}
	for _, s := range steps {
		h.apply(s.cmd)
		next := h.f.State()
		got := Update(v, st, next, "h1", mtu1450)
		if want := Build(next, "h1", mtu1450); !sameView(got, want) {
			t.Fatalf("%s: Update differs from Build:\n%+v\n%+v", s.name, got, want)
		}
		if got, want := names.Names(next).Names(""), Names(next).Names(""); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Builder.Names differs from Names", s.name)
		}
		for name, n := range next.Networks {
			rebuilt := got.Networks[n.VNI] != v.Networks[vni(name)]
			want := false
			for _, c := range s.changed {
				want = want || c == name
			}
			if rebuilt != want {
				t.Errorf("%s: network %s rebuilt %v, want %v", s.name, name, rebuilt, want)
			}
			if old := v.Networks[vni(name)]; want && s.floodKept && old != nil {
				if f := got.Networks[n.VNI].Flood; len(f) == 0 || &f[0] != &old.Flood[0] {
					t.Errorf("%s: network %s has a new flood list, want the previous one kept", s.name, name)
				}
			}
		}
		st, v = next, got
	}
	// An MTU change of this host rebuilds every network.
	got := Update(v, st, st, "h1", func(raftstore.Network) int { return 1400 })
	for vni, n := range got.Networks {
		if n == v.Networks[vni] || n.MTU != 1400 {
			t.Errorf("network %d kept MTU %d after an MTU change", vni, n.MTU)
		}
	}
}

// benchState restores a state of 5 hosts and n endpoints over 10
// networks, built as a snapshot document.
func benchState(b *testing.B, n int) *raftstore.FSM {
	hosts, nets, eps := map[string]any{}, map[string]any{}, map[string]any{}
	for i := range 5 {
		name := fmt.Sprintf("h%d", i)
		hosts[name] = map[string]any{"Name": name, "VTEP": fmt.Sprintf("10.0.0.%d", i+1)}
	}
	for i := range 10 {
		name := fmt.Sprintf("n%d", i)
		nets[name] = map[string]any{"Name": name, "VNI": 100 + i, "Subnet": fmt.Sprintf("10.%d.0.0/16", 100+i), "Resolver": fmt.Sprintf("10.%d.0.1", 100+i)}
	}
	for i := range n {
		k := i/10 + 2
		name := fmt.Sprintf("e%d", i)
		eps[name] = map[string]any{"Name": name, "Network": fmt.Sprintf("n%d", i%10), "Host": fmt.Sprintf("h%d", i%5),
			"MAC": fmt.Sprintf("02:01:%02x:%02x:%02x:01", i>>16&0xff, i>>8&0xff, i&0xff), "IP": fmt.Sprintf("10.%d.%d.%d", 100+i%10, k>>8, k&0xff)}
	}
	doc, err := json.Marshal(map[string]any{"Version": 1, "State": map[string]any{"Hosts": hosts, "Networks": nets, "Endpoints": eps}})
	if err != nil {
		b.Fatal(err)
	}
	f := raftstore.NewFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(doc))); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkViewUpdate measures a host's view rebuild after one attach at
// 1k, 10k and 100k endpoints over 10 networks: Update (only the changed
// network) against Build (everything), and Update after a learned MAC
// (that network rebuilt).
func BenchmarkViewUpdate(b *testing.B) {
	run := func(name string, fn func()) {
		b.Run(name, func(b *testing.B) {
			cpu0 := processCPU()
			for b.Loop() {
				fn()
			}
			reportCPU(b, cpu0)
		})
	}
	for _, n := range []int{1_000, 10_000, 100_000} {
		f := benchState(b, n)
		h := &fsmHarness{tb: b, f: f, index: 1_000_000}
		before := f.State()
		v := Build(before, "h0", mtu1450)
		h.apply(attachCmd("new", "n3", "h1", 1<<20))
		after := f.State()
		run(fmt.Sprintf("update/endpoints=%d", n), func() { Update(v, before, after, "h0", mtu1450) })
		run(fmt.Sprintf("build/endpoints=%d", n), func() { Build(after, "h0", mtu1450) })
		// A MAC learned behind an endpoint of h1 in one of the 10
		// networks: only that network is rebuilt.
		h.apply(raftstore.Command{Op: raftstore.OpMACAnnounce, MACs: []raftstore.MACEntry{{Network: "n3", MAC: "02:cc:00:00:00:01", Host: "h1", Port: "new"}}})
		learned := f.State()
		run(fmt.Sprintf("learned-mac/endpoints=%d", n), func() { Update(v, before, learned, "h0", mtu1450) })
	}
}

// processCPU returns the CPU time this process has used (all threads,
// the garbage collector's included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per iteration since cpu0: on a
// shared machine the wall time per op (ns/op) includes waiting for a core.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
}

// sameView reports whether two views hold the same: their persistent
// tables may differ in shape where they hold the same entries.
func sameView(a, b *vswitch.View) bool {
	if a.Self != b.Self || !maps.Equal(a.Hosts, b.Hosts) || len(a.Networks) != len(b.Networks) {
		return false
	}
	for vni, x := range a.Networks {
		y := b.Networks[vni]
		if y == nil {
			return false
		}
		cx, cy := *x, *y
		if !maps.Equal(maps.Collect(x.Addrs.All()), maps.Collect(y.Addrs.All())) ||
			!maps.Equal(maps.Collect(x.Remote.All()), maps.Collect(y.Remote.All())) {
			return false
		}
		cx.Addrs, cx.Remote, cy.Addrs, cy.Remote = vswitch.AddrTable{}, vswitch.MACTable{}, vswitch.AddrTable{}, vswitch.MACTable{}
		if !reflect.DeepEqual(cx, cy) {
			return false
		}
	}
	return true
}

// TestUpdateRandom: over random attaches and detaches on a few hosts
// (so hosts often gain their first endpoint in a network or lose their
// last, which changes flood lists) and learned MACs that come and go,
// applied one or several at a time
// before each Update, the view Update patches is the view Build makes, on
// a host with endpoints and on one with none.
func TestUpdateRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	h := &fsmHarness{tb: t, f: raftstore.NewFSM()}
	for i := range 6 {
		h.apply(raftstore.Command{Op: raftstore.OpHostAdd, Host: &raftstore.Host{Name: fmt.Sprintf("h%d", i+1), VTEP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}})
	}
	for i, name := range []string{"web", "db"} {
		h.apply(raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: name, Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(20 + i), 0, 0}), 24)}})
	}
	h.apply(raftstore.Command{Op: raftstore.OpVTEPAdd, VTEP: &raftstore.VTEP{Network: "db", Addr: netip.MustParseAddr("10.0.0.9")}})
	n := 0
	for _, self := range []string{"h1", "h6"} {
		st := h.f.State()
		v := Build(st, self, mtu1450)
		var live []string
		for step := range 400 {
			for range 1 + rng.IntN(3) {
				if rng.IntN(5) == 0 { // a learned MAC comes or goes, in one network
					m := raftstore.MACEntry{Network: []string{"web", "db"}[rng.IntN(2)], MAC: fmt.Sprintf("02:bb:00:00:00:%02x", rng.IntN(4)),
						Host: fmt.Sprintf("h%d", 1+rng.IntN(5)), Port: "p"}
					op := raftstore.OpMACAnnounce
					if rng.IntN(2) == 0 {
						op = raftstore.OpMACWithdraw
					}
					h.f.Apply(h.log(raftstore.Command{Op: op, MACs: []raftstore.MACEntry{m}})) // a withdraw of none is refused: fine
					continue
				}
				if len(live) > 0 && rng.IntN(2) == 0 {
					i := rng.IntN(len(live))
					h.apply(raftstore.Command{Op: raftstore.OpEndpointDetach, Name: live[i]})
					live = slices.Delete(live, i, i+1)
					continue
				}
				n++
				name := fmt.Sprintf("e%d", n)
				host := fmt.Sprintf("h%d", 1+rng.IntN(5)) // h6 never has one
				h.apply(attachCmd(name, []string{"web", "db"}[rng.IntN(2)], host, 1000+n))
				live = append(live, name)
			}
			next := h.f.State()
			got := Update(v, st, next, self, mtu1450)
			if want := Build(next, self, mtu1450); !sameView(got, want) {
				t.Fatalf("host %s, step %d: Update differs from Build:\n%+v\n%+v", self, step, got, want)
			}
			st, v = next, got
		}
	}
}

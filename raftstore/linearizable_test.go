package raftstore

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// linInput is one client operation of TestLinearizableIPAM.
type linInput struct {
	Op   string // "attach", "detach" or "list"
	Name string
}

// linOutput is what the cluster answered. Unknown marks a write whose
// outcome the client never learned (it may or may not have committed).
type linOutput struct {
	OK      bool
	Unknown bool
	IP      netip.Addr
	List    map[string]netip.Addr
}

// linSubnet is small on purpose: the 13 addresses run out, and freed ones
// come back, while the clients work.
var linSubnet = netip.MustParsePrefix("10.50.0.0/28")

// linModel is the sequential specification of one network's IPAM and
// names: a map from endpoint name to address in which no address appears
// twice, every address is an endpoint address of linSubnet, an attach of a
// taken name or into a full subnet is refused, and a list returns the map.
// A write of unknown outcome may or may not have happened.
var linModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{""} },
	Step: func(state, input, output any) []any {
		st := decodeLin(state.(string))
		in, out := input.(linInput), output.(linOutput)
		switch in.Op {
		case "list":
			if !out.Unknown && !maps.Equal(st, out.List) {
				return nil
			}
			return []any{state}
		case "detach":
			_, had := st[in.Name]
			next := maps.Clone(st)
			delete(next, in.Name)
			switch {
			case out.Unknown:
				return []any{state, encodeLin(next)}
			case out.OK && had:
				return []any{encodeLin(next)}
			case !out.OK && !had:
				return []any{state}
			}
			return nil
		default: // attach
			_, taken := st[in.Name]
			used := map[netip.Addr]bool{}
			for _, ip := range st {
				used[ip] = true
			}
			free := linFree(used)
			switch {
			case out.Unknown:
				states := []any{state}
				if !taken {
					for _, ip := range free {
						next := maps.Clone(st)
						next[in.Name] = ip
						states = append(states, encodeLin(next))
					}
				}
				return states
			case out.OK && !taken && slices.Contains(free, out.IP):
				next := maps.Clone(st)
				next[in.Name] = out.IP
				return []any{encodeLin(next)}
			case !out.OK && (taken || len(free) == 0):
				return []any{state}
			}
			return nil
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		return fmt.Sprintf("%s(%s) -> %+v", in.Op, in.Name, out)
	},
}

// linFree returns the endpoint addresses of linSubnet not in used (the
// first address is the resolver's, the last the broadcast).
func linFree(used map[netip.Addr]bool) []netip.Addr {
	var free []netip.Addr
	last := netip.MustParseAddr("10.50.0.15")
	for a := netip.MustParseAddr("10.50.0.2"); a.Less(last); a = a.Next() {
		if !used[a] {
			free = append(free, a)
		}
	}
	return free
}

// encodeLin and decodeLin turn a model state into a comparable string.
func encodeLin(m map[string]netip.Addr) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k].String())
	}
	return strings.Join(parts, ",")
}

func decodeLin(s string) map[string]netip.Addr {
	m := map[string]netip.Addr{}
	if s == "" {
		return m
	}
	for _, p := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(p, "=")
		m[k] = netip.MustParseAddr(v)
	}
	return m
}

// TestLinearizableIPAM: clients on every node of a 4-node cluster (3
// voters) attach, detach and list endpoints of one small network at once,
// while the leader is killed and later a node is cut off and healed. Writes
// go to whichever node leads, retried with one request ID; lists are
// consistent reads on the client's own node (ReadIndex on the leader, then
// WaitApplied here, as the agent does). The recorded history must be
// linearizable (porcupine, the checker of etcd's robustness tests).
// VXSWITCH_LIN_STALE=1 makes lists read the node's state without the
// read index, to see what the checker says about stale reads.
func TestLinearizableIPAM(t *testing.T) {
	stale := os.Getenv("VXSWITCH_LIN_STALE") == "1"
	stores := inmemCluster(t, 4, 3)
	applyOK(t, stores[0], addHost("n1", "10.0.0.1"))
	applyOK(t, stores[0], Command{Op: OpNetworkCreate, Time: 2, Network: &Network{Name: "web", Subnet: linSubnet}})

	var dead sync.Map // *Store -> true once closed
	alive := func(s *Store) bool { _, ok := dead.Load(s); return !ok }
	leader := func() *Store {
		for _, s := range stores {
			if alive(s) && s.Role() == RoleLeader {
				return s
			}
		}
		return nil
	}

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		macs    atomic.Int64
		reqs    atomic.Int64
	)
	record := func(client int, in linInput, call int64, out linOutput) {
		ret := now()
		if out.Unknown {
			ret = math.MaxInt64 // may take effect at any time after the call
		}
		mu.Lock()
		history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		mu.Unlock()
	}
	// write applies cmd on the leader, retrying through elections with one
	// request ID for up to 3 s.
	write := func(cmd Command) linOutput {
		cmd.ReqID = fmt.Sprintf("r%d", reqs.Add(1))
		cmd.Time = 3
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			l := leader()
			if l == nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			res, err := l.Apply(ctx, cmd)
			cancel()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			out := linOutput{OK: res.Err == ""}
			if res.Endpoint != nil {
				out.IP = res.Endpoint.IP
			}
			return out
		}
		return linOutput{Unknown: true}
	}
	list := func(s *Store) (linOutput, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if !stale {
			l := leader()
			if l == nil {
				return linOutput{}, false
			}
			index, err := l.ReadIndex(ctx)
			if err != nil || s.WaitApplied(ctx, index) != nil {
				return linOutput{}, false
			}
		}
		out := linOutput{OK: true, List: map[string]netip.Addr{}}
		for _, e := range s.State().NetworkEndpoints("web") {
			out.List[e.Name] = e.IP
		}
		return out, true
	}

	const runFor = 8 * time.Second
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"}
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Since(start) < runFor && alive(s); k++ {
				name := names[(k*7+i*3)%len(names)]
				call := now()
				switch k % 3 {
				case 0:
					in := linInput{Op: "attach", Name: name}
					record(i, in, call, write(attach(name, "web", "n1", mac(int(macs.Add(1))))))
				case 1:
					in := linInput{Op: "detach", Name: name}
					record(i, in, call, write(Command{Op: OpEndpointDetach, Name: name}))
				default:
					if out, ok := list(s); ok {
						record(i, linInput{Op: "list"}, call, out)
					}
				}
			}
		}()
	}

	// Faults: kill the leader after 2 s; cut a surviving node off at 4 s
	// and heal it at 6 s.
	time.Sleep(2 * time.Second)
	if l := leader(); l != nil {
		dead.Store(l, true)
		l.Close()
		t.Logf("killed leader %s at %v", l.ID(), time.Since(start).Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second)
	var cut *Store
	for _, s := range stores {
		if alive(s) && s.Role() != RoleLeader {
			cut = s
			break
		}
	}
	if cut != nil {
		DisconnectInmem(cut, stores...)
		t.Logf("cut %s off at %v", cut.ID(), time.Since(start).Round(time.Millisecond))
	}
	time.Sleep(2 * time.Second)
	var live []*Store
	for _, s := range stores {
		if alive(s) {
			live = append(live, s)
		}
	}
	ConnectInmem(live...)
	wg.Wait()

	counts := map[string]int{}
	for _, op := range history {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		key := in.Op
		switch {
		case out.Unknown:
			key += " unknown"
		case in.Op != "list" && !out.OK:
			key += " refused"
		}
		counts[key]++
	}
	t.Logf("%d operations (stale reads: %v): %v", len(history), stale, counts)
	if counts["attach"] == 0 || counts["list"] == 0 || counts["detach"] == 0 {
		t.Fatalf("the clients did too little to test anything: %v", counts)
	}
	res, _ := porcupine.CheckOperationsVerbose(linModel.ToModel(), history, time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		t.Fatalf("the history of IPAM and names is not linearizable (%d operations)", len(history))
	default:
		t.Fatalf("the linearizability check did not finish within a minute (%d operations)", len(history))
	}
}

package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// The history checked by TestLinearizable covers linNets networks of
// linNames endpoint names each. Endpoint i of network n is named
// "l<n>-<i>", so names (which the cluster keeps unique across networks)
// never cross networks and the history splits into one partition per
// network, each checked on its own.
const (
	linNets  = 3
	linNames = 4
)

// linInput is one operation of a client: create network Net, attach or
// detach its endpoint Name, or list its endpoints.
type linInput struct {
	Op   string // "create", "attach", "detach", "list"
	Net  int
	Name int
}

// linOutput is what the cluster answered. Unknown marks a write whose
// outcome the client cannot know (a timeout, no quorum, a host killed
// mid-request): it may have taken effect or not.
type linOutput struct {
	Unknown bool
	Err     string // "", "exists", "nonet", "used", "notfound"; if Unknown, the error
	IP      string // attach: the address given
	IPs     [linNames]string
}

// linState is the model of one network: whether it exists and the address
// of each endpoint name ("" absent; "?" attached by a write of unknown
// outcome, address not seen yet).
type linState struct {
	Created bool
	IPs     [linNames]string
}

// linModel is the specification the history must be linearizable to: a
// network's endpoints as a map from name to address where an attach gives
// an address no other endpoint of the network holds.
var linModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		parts := make([][]porcupine.Operation, linNets)
		for _, op := range history {
			n := op.Input.(linInput).Net
			parts[n] = append(parts[n], op)
		}
		return parts
	},
	Init: func() []any { return []any{linState{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(linState), input.(linInput), output.(linOutput)
		next := s
		switch in.Op {
		case "create":
			next.Created = true
			switch {
			case out.Unknown:
				return []any{s, next}
			case out.Err == "exists":
				return when(s.Created, s)
			default:
				return when(!s.Created, next)
			}
		case "attach":
			switch {
			case out.Unknown:
				if s.Created && s.IPs[in.Name] == "" {
					next.IPs[in.Name] = "?"
					return []any{s, next}
				}
				return []any{s}
			case out.Err == "nonet":
				return when(!s.Created, s)
			case out.Err == "used":
				return when(s.IPs[in.Name] != "", s)
			default:
				next.IPs[in.Name] = out.IP
				return when(s.Created && s.IPs[in.Name] == "" && !holds(s.IPs[:], out.IP), next)
			}
		case "detach":
			next.IPs[in.Name] = ""
			switch {
			case out.Unknown:
				return []any{s, next}
			case out.Err == "notfound":
				return when(s.IPs[in.Name] == "", s)
			default:
				return when(s.IPs[in.Name] != "", next)
			}
		case "list":
			if out.Err == "nonet" {
				return when(!s.Created, s)
			}
			if !s.Created {
				return nil
			}
			for i, ip := range out.IPs {
				if (ip == "") != (s.IPs[i] == "") || (s.IPs[i] != "?" && s.IPs[i] != ip) || (ip != "" && holds(out.IPs[:i], ip)) {
					return nil
				}
			}
			next.IPs = out.IPs // learn the addresses of unknown attaches
			return []any{next}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		return fmt.Sprintf("%s(l%d-%d) -> %+v", in.Op, in.Net, in.Name, out)
	},
}

// when returns []any{s} if ok and no state otherwise.
func when(ok bool, s linState) []any {
	if ok {
		return []any{s}
	}
	return nil
}

// holds tells whether ip is one of ips (never for "" or "?").
func holds(ips []string, ip string) bool {
	if ip == "" || ip == "?" {
		return false
	}
	for _, x := range ips {
		if x == ip {
			return true
		}
	}
	return false
}

// TestLinearizable records the history of two clients on each of four
// hosts creating networks and attaching, detaching and listing endpoints
// while the leader is killed with SIGKILL (and restarted) and then a voter
// is cut off the underlay (and healed), and checks with porcupine that the
// history is linearizable: every answer, on every host, is one that the
// state after some order of the acknowledged writes gives, and no address
// is given to two endpoints of a network.
func TestLinearizable(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 4, Network: "-"})
	for n := range linNets {
		for i := range linNames {
			if _, err := netlab.AddNS(fmt.Sprintf("%sl%d-%d", c.Opt.Prefix, n, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		start   = time.Now()
	)
	const clientsPerHost = 2
	for h := range c.Agents {
		for k := range clientsPerHost {
			id := h*clientsPerHost + k
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(id), 12))
				for seq := 0; ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					in := linInput{Net: rng.IntN(linNets), Name: rng.IntN(linNames)}
					in.Op = []string{"create", "attach", "attach", "detach", "list", "list"}[rng.IntN(6)]
					call := time.Since(start).Nanoseconds()
					out, keep := linDo(c, c.Agents[h], in, fmt.Sprintf("v%d-%d", id, seq))
					ret := time.Since(start).Nanoseconds()
					if !keep {
						time.Sleep(100 * time.Millisecond) // the host is down
						continue
					}
					mu.Lock()
					history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
					mu.Unlock()
				}
			}()
		}
	}

	time.Sleep(4 * time.Second)
	leader := leaderIndex(t, c, 0)
	if err := c.Stop(leader, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v: killed the leader %s", time.Since(start).Round(time.Millisecond), c.Agents[leader].Host.Name)
	time.Sleep(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Start(ctx, leader); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	cut := (leaderIndex(t, c, leader) + 1) % 3 // a voter that does not lead
	if err := c.Net.Cut(c.Agents[cut].Host); err != nil {
		t.Fatal(err)
	}
	t.Logf("%v: cut %s off the underlay", time.Since(start).Round(time.Millisecond), c.Agents[cut].Host.Name)
	time.Sleep(6 * time.Second)
	if err := c.Net.Heal(c.Agents[cut].Host); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()

	// Operations of unknown outcome may take effect at any time after
	// their call: they return at the end of the history.
	end := time.Since(start).Nanoseconds()
	counts := map[string]int{}
	for i, op := range history {
		out := op.Output.(linOutput)
		if out.Unknown {
			history[i].Return = end
			counts["unknown"]++
			t.Logf("unknown outcome: client %d, %s at %v: %s", op.ClientId, op.Input.(linInput).Op,
				time.Duration(op.Call).Round(time.Millisecond), out.Err)
		} else if out.Err == "" {
			counts[op.Input.(linInput).Op]++
		}
	}
	t.Logf("history: %d operations of %d clients in %v; acknowledged %v", len(history), len(c.Agents)*clientsPerHost,
		time.Duration(end).Round(time.Millisecond), counts)
	if counts["attach"] < 50 || counts["list"] < 50 {
		t.Fatalf("too few operations succeeded to check anything: %v", counts)
	}
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(linModel.ToModel(), history, time.Minute)
	t.Logf("porcupine: %s in %v", res, time.Since(checkStart).Round(time.Millisecond))
	if res != porcupine.Ok {
		f, err := os.CreateTemp("", "vxswitch-linearizability-*.html")
		if err == nil {
			porcupine.Visualize(linModel.ToModel(), info, f)
			f.Close()
			t.Logf("visualization of the history: %s", f.Name())
		}
		t.Errorf("history is not linearizable (porcupine: %s)", res)
	}
}

// linDo runs one operation against agent a. keep is false when the request
// never reached the agent (its socket refused it: the host is down), so it
// cannot have had any effect and stays out of the history; reads that fail
// stay out too, they change nothing.
func linDo(c *lab.Cluster, a *lab.Agent, in linInput, ifName string) (out linOutput, keep bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := a.Client()
	network, name := fmt.Sprintf("l%d", in.Net), fmt.Sprintf("l%d-%d", in.Net, in.Name)
	var err error
	switch in.Op {
	case "create":
		req := api.NetworkRequest{Name: network, Subnet: fmt.Sprintf("10.%d.0.0/24", 60+in.Net)}
		err = cl.Post(ctx, "/v1/networks", req, nil)
	case "attach":
		var e api.Endpoint
		req := api.AttachRequest{Network: network, Name: name, NetNS: c.Opt.Prefix + name, IfName: ifName}
		if err = cl.Post(ctx, "/v1/endpoints", req, &e); err == nil {
			out.IP = e.IP.String()
		}
	case "detach":
		err = cl.Delete(ctx, "/v1/endpoints/"+name, nil)
	case "list":
		var es []api.Endpoint
		if err = cl.Get(ctx, "/v1/endpoints?network="+network, &es); err == nil {
			for i := range linNames {
				if ip := endpointIP(es, fmt.Sprintf("l%d-%d", in.Net, i)); ip.IsValid() {
					out.IPs[i] = ip.String()
				}
			}
		}
	}
	if err == nil {
		return out, true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return out, false
	}
	var se *api.StatusError
	switch {
	case !errors.As(err, &se):
	case se.Code == http.StatusForbidden && strings.Contains(se.Message, "is a non-voter"):
		// h4 is a non-voter: it may not create networks nor detach other
		// hosts' endpoints, and the refusal comes before any write.
		return out, false
	case (se.Code == http.StatusNotFound || strings.Contains(se.Message, "does not exist")) && in.Op == "detach":
		out.Err = "notfound"
		return out, true
	case se.Code == http.StatusNotFound:
		out.Err = "nonet"
		return out, true
	case se.Code == http.StatusBadRequest && strings.Contains(se.Message, "already exists") && in.Op == "create":
		out.Err = "exists"
		return out, true
	case se.Code == http.StatusBadRequest && strings.Contains(se.Message, "already") && in.Op == "attach":
		out.Err = "used"
		return out, true
	}
	if in.Op == "list" {
		return out, false
	}
	out.Unknown = true
	out.Err = err.Error()
	return out, true
}

// endpointIP returns the address of the endpoint named name in es, or the
// zero address if es does not list it.
func endpointIP(es []api.Endpoint, name string) netip.Addr {
	for _, e := range es {
		if e.Name == name {
			return e.IP
		}
	}
	return netip.Addr{}
}

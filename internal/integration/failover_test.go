package integration

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestLeaderKilledDuringAttaches attaches 200 endpoints concurrently through
// the two followers and kills the leader with SIGKILL part-way: every
// acknowledged attach must survive, and no address may be given twice.
func TestLeaderKilledDuringAttaches(t *testing.T) {
	if testing.Short() {
		t.Skip("long failover test; runs without -short")
	}
	c := newLab(t, lab.Options{Hosts: 3, Network: "big", Subnet: "10.40.0.0/22", NoEndpoints: true})
	ctx := context.Background()

	var st api.Status
	if err := c.Agents[0].Client().Get(ctx, "/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	leader := -1
	for i, a := range c.Agents {
		if a.Host.Name == st.Leader {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatalf("leader %q is none of the lab's hosts", st.Leader)
	}
	var followers []*lab.Agent
	for i, a := range c.Agents {
		if i != leader {
			followers = append(followers, a)
		}
	}

	const n = 200
	for i := range n {
		if _, err := netlab.AddNS(fmt.Sprintf("%sa%d", c.Opt.Prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
	var (
		acked  sync.Map // endpoint name -> IP
		nacked atomic.Int32
		wg     sync.WaitGroup
		killed = make(chan time.Time, 1)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := followers[i%2]
			name := fmt.Sprintf("a%d", i)
			req := api.AttachRequest{Network: "big", Name: name, NetNS: c.Opt.Prefix + name}
			for try := 0; try < 5; try++ {
				var e api.Endpoint
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := a.Client().Post(cctx, "/v1/endpoints", req, &e)
				cancel()
				if err == nil {
					acked.Store(name, e.IP)
					if nacked.Add(1) == 50 {
						c.Stop(leader, syscall.SIGKILL)
						killed <- time.Now()
					}
					return
				}
				var se *api.StatusError
				if errors.As(err, &se) && strings.Contains(se.Message, "already used") {
					// An earlier try committed but its answer was lost.
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("only %d attaches were acknowledged; the leader was never killed", nacked.Load())
	}

	// Every acknowledged endpoint is in the state with the address it was
	// told, and no address appears twice.
	var es []api.Endpoint
	eventually(t, 10*time.Second, "followers agree on the endpoints", func() error {
		a := endpoints(t, followers[0])
		b := endpoints(t, followers[1])
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return fmt.Errorf("%d vs %d endpoints", len(a), len(b))
		}
		es = a
		return nil
	})
	byName := map[string]netip.Addr{}
	owner := map[netip.Addr]string{}
	for _, e := range es {
		if other, dup := owner[e.IP]; dup {
			t.Errorf("address %s given to both %s and %s", e.IP, other, e.Name)
		}
		owner[e.IP] = e.Name
		byName[e.Name] = e.IP
	}
	lost := 0
	acked.Range(func(k, v any) bool {
		if byName[k.(string)] != v.(netip.Addr) {
			lost++
			t.Errorf("acknowledged %s at %s, state has %v", k, v, byName[k.(string)])
		}
		return true
	})
	t.Logf("%d acknowledged, %d in state, %d lost, %d duplicate addresses", nacked.Load(), len(es), lost, len(es)-len(owner))
	if len(es) != n {
		t.Errorf("%d endpoints in state, want %d (every attach retried until acknowledged)", len(es), n)
	}
}

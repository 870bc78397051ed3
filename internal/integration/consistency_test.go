package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
)

// TestReadYourWritesAcrossHosts: a write acknowledged on one host is seen
// at once by the next command on any other host (read-index, Raft thesis
// 6.4). Without a leader a consistent read fails within seconds and says
// that --stale answers from the last known state, which still works.
func TestReadYourWritesAcrossHosts(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 4, Network: "-", NoEndpoints: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	host := func(i int) *lab.Agent { return c.Agents[i%len(c.Agents)] }

	const rounds = 50
	failures := 0
	for i := range rounds {
		name := fmt.Sprintf("n%d", i)
		// Create on one host, attach at once on the next. Networks are
		// created on the voters h1-h3: a non-voter (h4) manages only its own.
		req := api.NetworkRequest{Name: name, Subnet: fmt.Sprintf("10.60.%d.0/24", i)}
		k := i
		if k%len(c.Agents) == 3 {
			k-- // h3 creates, h4 attaches, h1 lists
		}
		if err := host(k).Client().Post(ctx, "/v1/networks", req, nil); err != nil {
			t.Fatalf("round %d: network create on %s: %v", i, host(k).Host.Name, err)
		}
		ep, err := c.Attach(ctx, host(k+1), name, fmt.Sprintf("e%d", i))
		if err != nil {
			failures++
			t.Errorf("round %d: attach on %s right after network create on %s: %v", i, host(k+1).Host.Name, host(k).Host.Name, err)
			continue
		}
		// Attach on one host, list at once on a third.
		var eps []api.Endpoint
		if err := host(k+2).Client().Get(ctx, "/v1/endpoints?network="+name, &eps); err != nil {
			failures++
			t.Errorf("round %d: endpoints on %s right after attach on %s: %v", i, host(k+2).Host.Name, host(k+1).Host.Name, err)
			continue
		}
		if len(eps) != 1 || eps[0].Name != ep.Name || eps[0].IP != ep.IP {
			failures++
			t.Errorf("round %d: endpoints of %s on %s = %+v, want %s at %s", i, name, host(k+2).Host.Name, eps, ep.Name, ep.IP)
		}
	}
	t.Logf("%d rounds of create+attach and attach+list across hosts: %d failures", rounds, failures)

	// The status of a follower shows its applied index and the lag.
	var st api.Status
	if err := host(1).Client().Get(ctx, "/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.LeaderIndex == 0 || st.AppliedIndex == 0 {
		t.Errorf("status of %s: leader index %d, applied %d: want both set", st.Name, st.LeaderIndex, st.AppliedIndex)
	}

	// Without a quorum (3 voters: h1-h3; h2, h3 and h4 killed), a consistent
	// read on h1 fails within a bounded time and names --stale.
	for i := 1; i < len(c.Agents); i++ {
		if err := c.Stop(i, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	var nets []api.Network
	err := host(0).Client().Get(ctx, "/v1/networks", &nets)
	took := time.Since(start)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 503 || !strings.Contains(se.Message, "--stale") {
		t.Errorf("consistent read without a leader: %v, want a 503 that names --stale", err)
	}
	if took > 10*time.Second {
		t.Errorf("consistent read without a leader took %v, want it bounded (about 5 s)", took)
	}
	t.Logf("consistent read without a leader failed after %v: %v", took.Round(time.Millisecond), err)
	stale := host(0).Client()
	stale.Stale = true
	if err := stale.Get(ctx, "/v1/networks", &nets); err != nil || len(nets) != rounds {
		t.Errorf("stale read without a leader: %d networks, %v; want %d", len(nets), err, rounds)
	}
}

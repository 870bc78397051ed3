package integration

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
)

// TestDeadVoterReplaced: 4 hosts, 3 voters, --voter-dead-after 3s. A voter
// killed with SIGKILL is replaced by the non-voter within dead-after plus
// 10 s; then a second voter dies and writes still succeed, because the
// cluster has 3 voters again, 2 of them alive.
func TestDeadVoterReplaced(t *testing.T) {
	const deadAfter = 3 * time.Second
	c := newLab(t, lab.Options{Hosts: 4, NoEndpoints: true, Network: "-",
		AgentArgs: []string{"--voter-dead-after", deadAfter.String(), "--voter-stabilize", "2s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h1 := c.Agents[0]
	roles := func() map[string]api.Member {
		var ms []api.Member
		if err := h1.Client().Get(ctx, "/v1/members", &ms); err != nil {
			t.Logf("members: %v", err)
			return nil
		}
		out := map[string]api.Member{}
		for _, m := range ms {
			out[m.Name] = m
		}
		return out
	}
	if r := roles(); r["h4"].Role != "nonvoter" || r["h2"].Role != "voter" {
		t.Fatalf("roles before: %+v; want h2 a voter and h4 a non-voter", r)
	}
	time.Sleep(2 * time.Second) // h4's stabilisation time

	if err := c.Stop(1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var promoted time.Duration
	for time.Since(killed) < deadAfter+10*time.Second {
		r := roles()
		if r["h4"].Role == "voter" && r["h2"].Role != "voter" {
			promoted = time.Since(killed)
			t.Logf("h2 killed; h4 promoted after %v; h2 is %q, last contact %q", promoted.Round(100*time.Millisecond), r["h2"].Role, r["h2"].LastContact)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if promoted == 0 {
		t.Fatalf("h4 not promoted within %v of h2's death: %+v", deadAfter+10*time.Second, roles())
	}

	if err := c.Stop(2, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		req := api.NetworkRequest{Name: fmt.Sprintf("after%d", i), Subnet: fmt.Sprintf("10.61.%d.0/24", i)}
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		err := h1.Client().Post(wctx, "/v1/networks", req, nil)
		wcancel()
		if err != nil {
			t.Fatalf("write %d after the second voter died: %v", i, err)
		}
	}
}

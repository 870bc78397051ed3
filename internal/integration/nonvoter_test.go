package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/pki"
)

// TestNonVoterChangesOnlyItsOwn: a non-voter manages nothing but its own
// (Swarm's workers): through its CLI, and as a compromised host speaking
// to the leader's peer API with its own certificate, it can neither
// remove another host, detach, place or take over endpoints of other
// hosts, move another host's addresses, nor create networks, VTEPs or join
// tokens; every refusal is a 403 that names the non-voter and changes
// nothing. Its own endpoints and its leave still work.
func TestNonVoterChangesOnlyItsOwn(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3, AgentArgs: []string{"--voters", "2"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h1, h3 := c.Agents[0], c.Agents[2]
	eventually(t, 20*time.Second, "h3 a non-voter", func() error {
		var s api.Status
		if err := h3.Client().Get(ctx, "/v1/status", &s); err != nil || s.Role != "nonvoter" {
			return fmt.Errorf("h3: %+v %v", s, err)
		}
		return nil
	})
	state := func() string {
		t.Helper()
		var s api.Status
		if err := h1.Client().Get(ctx, "/v1/status", &s); err != nil {
			t.Fatal(err)
		}
		return s.StateHash
	}
	before := state()
	const refusal = `host "h3" is a non-voter`

	for _, args := range [][]string{
		{"members", "rm", "h2"},
		{"detach", "c1"},
		{"network", "create", "x", "--subnet", "10.90.0.0/24"},
		{"network", "rm", "web"},
		{"vtep", "add", "web", "10.77.0.99"},
		{"token", "--rotate"},
		{"token", "--create", "--single-use"},
	} {
		out, err := cli(t, h3, args...)
		if err == nil || !strings.Contains(out, refusal) || !strings.Contains(out, "run this on a voter") {
			t.Errorf("%v on non-voter h3: %v %s; want a refusal naming the non-voter", args, err, out)
		}
	}

	// A compromised h3, with its own certificate, straight to the leader.
	id, err := pki.ParseIdentity(readFile(t, h3.DataDir, "ca.crt"), readFile(t, h3.DataDir, "node.crt"), readFile(t, h3.DataDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Agents[leaderIndex(t, c, 0)]
	addr := leader.Host.Addr.String() + ":7947"
	h3addr := h3.Host.Addr.String()
	for _, req := range []struct{ path, body string }{
		{"/v1/internal/apply", `{"Op":"host.remove","Name":"h2"}`},
		{"/v1/internal/apply", `{"Op":"endpoint.detach","Name":"c1"}`},
		{"/v1/internal/apply", `{"Op":"endpoint.attach","Endpoint":{"Name":"evil","Network":"web","Host":"h1","MAC":"02:00:00:00:00:99","IfName":"eth0"}}`},
		{"/v1/internal/apply", `{"Op":"host.add","Host":{"Name":"h1","VTEP":"` + h3addr + `"}}`},
		{"/v1/internal/apply", `{"Op":"mac.announce","MACs":[{"Network":"web","MAC":"02:00:00:00:00:98","Host":"h1","Port":"c1"}]}`},
		{"/v1/internal/apply", `{"Op":"token.rotate","Cluster":{"TokenNonce":"n","TokenHash":"` + strings.Repeat("a", 64) + `"}}`},
		{"/v1/internal/remove", `{"name":"h2"}`},
		{"/v1/internal/join", `{"name":"h1","vtep":"` + h3addr + `","raft_addr":"` + h3addr + `:7946","api_addr":"` + h3addr + `:7947","key_fp":"` + id.KeyFingerprint() + `"}`},
	} {
		code, body := peerPost(t, h3.Host.NSPath, addr, id.ClientTLS(), req.path, req.body)
		if code != http.StatusForbidden || !strings.Contains(body, `host \"h3\" is a non-voter`) {
			t.Errorf("%s %s as h3: %d %s; want 403 naming the non-voter", req.path, req.body, code, body)
		}
	}
	if after := state(); after != before {
		t.Errorf("the refused commands changed the state: hash %s, was %s", after, before)
	}

	// Its own: attach and detach on itself, then leave.
	if _, err := c.Attach(ctx, h3, "web", "x3"); err != nil {
		t.Fatalf("attach on non-voter h3: %v", err)
	}
	if out, err := cli(t, h3, "detach", "x3"); err != nil {
		t.Fatalf("detach of its own endpoint on non-voter h3: %v %s", err, out)
	}
	if out, err := cli(t, h3, "leave"); err != nil {
		t.Fatalf("leave on non-voter h3: %v %s", err, out)
	}
	waitMembers(t, h1, []string{"h1", "h2"})
	if eps := endpoints(t, h1); !slices.ContainsFunc(eps, func(e api.Endpoint) bool { return e.Name == "c1" }) {
		t.Errorf("endpoints after h3 left: %+v; c1 must stay", eps)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

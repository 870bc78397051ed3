package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
)

// TestHistoryOfAMovedAddress tells the story of an address that moved
// between endpoints on different hosts (issue 16): "one" on h1 holds it,
// is detached, and "two" on h2 gets it. Another host (h3) explains it by
// IP, MAC and name through the CLI, before and after a snapshot and a
// restart; the tables --at three indexes equal those captured then; the
// event stream delivers every command once, in order, across a leader
// change.
func TestHistoryOfAMovedAddress(t *testing.T) {
	c := newLab(t, lab.Options{Subnet: "10.20.0.0/29", NoEndpoints: true})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h1, h2, h3 := c.Agents[0], c.Agents[1], c.Agents[2]

	// waitAttached waits on h2 for the event of an endpoint's attach or
	// detach, through the Go API a test uses instead of sleeping.
	waitEvent := func(op, name string) api.Event {
		t.Helper()
		e, err := h2.Client().WaitEvent(ctx, 0, func(e api.Event) bool {
			if e.Op != op {
				return false
			}
			for _, ch := range e.Changes {
				if ch.Kind == "endpoint" && ch.Name == name {
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatalf("wait for %s of %s: %v", op, name, err)
		}
		return e
	}
	table := func() []api.Endpoint {
		t.Helper()
		var es []api.Endpoint
		if err := h2.Client().Get(ctx, "/v1/endpoints", &es); err != nil {
			t.Fatal(err)
		}
		return es
	}

	one, err := c.Attach(ctx, h1, "web", "one")
	if err != nil {
		t.Fatal(err)
	}
	i1 := waitEvent("endpoint.attach", "one").Index
	table1 := table()
	for i := range 4 { // the other free addresses of the /29
		if _, err := c.Attach(ctx, h3, "web", fmt.Sprintf("f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h1.Client().Delete(ctx, "/v1/endpoints/one", nil); err != nil {
		t.Fatal(err)
	}
	i2 := waitEvent("endpoint.detach", "one").Index
	table2 := table()
	two, err := c.Attach(ctx, h2, "web", "two")
	if err != nil {
		t.Fatal(err)
	}
	if two.IP != one.IP {
		t.Fatalf("two got %s, want the only free address %s", two.IP, one.IP)
	}
	i3 := waitEvent("endpoint.attach", "two").Index
	table3 := table()

	explainStory := func(when string) {
		t.Helper()
		x, err := h3.Client().Explain(ctx, one.IP.String(), "")
		if err != nil {
			t.Fatal(err)
		}
		var story []string
		for _, e := range x.History {
			story = append(story, fmt.Sprintf("%d %s %s", e.Index, e.Op, e.Origin))
		}
		want := []string{
			fmt.Sprintf("%d endpoint.attach %s", i1, h1.Host.Name),
			fmt.Sprintf("%d endpoint.detach %s", i2, h1.Host.Name),
			fmt.Sprintf("%d endpoint.attach %s", i3, h2.Host.Name),
		}
		if !reflect.DeepEqual(story, want) || len(x.Now) != 1 || x.Now[0].Name != "two" || x.Now[0].Host != h2.Host.Name {
			t.Fatalf("%s: explain %s on %s:\n story %q\n  want %q\n   now %+v", when, one.IP, h3.Host.Name, story, want, x.Now)
		}
		out, err := cli(t, h3, "explain", one.IP.String())
		if err != nil || !strings.Contains(out, "endpoint two: network web, host "+h2.Host.Name) ||
			!strings.Contains(out, "endpoint one (net web, host "+h1.Host.Name) || !strings.Contains(out, "removed") {
			t.Fatalf("%s: vxswitch explain %s: %v\n%s", when, one.IP, err, out)
		}
		t.Logf("%s: vxswitch explain %s on %s:\n%s", when, one.IP, h3.Host.Name, out)
		for _, subject := range []string{"one", one.MAC} {
			out, err := cli(t, h3, "explain", "-o", "json", subject)
			var x api.Explanation
			if err != nil || json.Unmarshal([]byte(out), &x) != nil {
				t.Fatalf("%s: explain %s: %v\n%s", when, subject, err, out)
			}
			if len(x.Now) != 0 || len(x.History) != 2 || x.History[1].Op != "endpoint.detach" {
				t.Fatalf("%s: explain %s: now %+v, %d events; want nothing now, attached and detached", when, subject, x.Now, len(x.History))
			}
		}
	}
	explainStory("live")

	// The tables as of three past indexes, through the CLI on h3.
	for _, tc := range []struct {
		at   uint64
		want []api.Endpoint
	}{{i1, table1}, {i2, table2}, {i3, table3}} {
		out, err := cli(t, h3, "endpoints", "--at", fmt.Sprint(tc.at), "-o", "json")
		var got []api.Endpoint
		if err != nil || json.Unmarshal([]byte(out), &got) != nil {
			t.Fatalf("endpoints --at %d: %v\n%s", tc.at, err, out)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("endpoints --at %d:\n got %+v\nwant %+v", tc.at, got, tc.want)
		}
	}
	if out, err := cli(t, h3, "fdb", "--at", fmt.Sprint(i1)); err != nil || !strings.Contains(out, one.MAC) {
		t.Fatalf("fdb --at %d on %s: %v, want one's MAC %s\n%s", i1, h3.Host.Name, err, one.MAC, out)
	}
	if out, err := cli(t, h3, "endpoints", "--at", fmt.Sprint(1<<40)); err == nil || !strings.Contains(out, "after this host's last applied index") {
		t.Fatalf("endpoints --at a future index: %v\n%s", err, out)
	}

	// After a snapshot (which compacts the log) and a restart, h3 tells
	// the same story.
	if err := h3.Client().Post(ctx, "/v1/snapshot", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(2, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "h3 to catch up after its restart", func() error {
		var s api.Status
		if err := h3.Client().Get(ctx, "/v1/status", &s); err != nil {
			return err
		}
		if s.History == nil || s.History.Last < i3 {
			return fmt.Errorf("history %+v", s.History)
		}
		return nil
	})
	explainStory("after a snapshot and a restart")
	if out, err := cli(t, h3, "status"); err != nil || !strings.Contains(out, "(complete)") {
		t.Fatalf("status: %v\n%s", err, out)
	}

	// A leader change, then one more change; h2's stream from the
	// beginning has every command once, in order.
	if err := c.Stop(0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := h3.Client().Post(ctx, "/v1/networks", api.NetworkRequest{Name: "after", Subnet: "10.21.0.0/24"}, nil); err != nil {
		t.Fatalf("network create after the leader died: %v", err)
	}
	if _, err := h2.Client().WaitEvent(ctx, i3, func(e api.Event) bool { return e.Op == "network.create" }); err != nil {
		t.Fatal(err)
	}
	since := uint64(0)
	s, err := h2.Client().Events(ctx, api.EventsQuery{Since: &since, NoFollow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var last uint64
	seen := map[string]bool{}
	terms := map[uint64]bool{}
	created := false
	for {
		e, err := s.Next()
		if err != nil {
			break
		}
		if e.Index <= last {
			t.Fatalf("event %d after %d: out of order", e.Index, last)
		}
		last = e.Index
		if e.ReqID != "" && seen[e.ReqID] && !e.Duplicate {
			t.Fatalf("request %s applied twice", e.ReqID)
		}
		seen[e.ReqID] = true
		terms[e.Term] = true
		created = created || (e.Op == "network.create" && strings.Contains(e.Summary, "network after"))
	}
	if !created || len(terms) < 2 {
		t.Fatalf("events on h2: network created after the leader change %v, terms %v; want both", created, terms)
	}
	t.Logf("h2 streamed %d indexes over %d terms in order", last, len(terms))
}

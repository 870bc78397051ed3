package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestEndpointNetnsDeleted deletes an endpoint's network namespace, as a
// container runtime does when the container goes away, and checks that the
// agent of its host detaches the endpoint by itself: within 5 s every host
// stops listing it and answering its name, its address is free again, and
// the other endpoints keep talking across hosts.
func TestEndpointNetnsDeleted(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3})
	h1, h2, h3 := c.Agents[0], c.Agents[1], c.Agents[2]
	c1, gone, c3 := c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]
	ctx := context.Background()

	// x2 keeps h2's data path in use once c2, the endpoint that goes, has
	// left it.
	x2, err := c.Attach(ctx, h2, "web", "x2")
	if err != nil {
		t.Fatal(err)
	}
	rest := []lab.Endpoint{c1, x2, c3} // one endpoint on each host
	resolver := endpointOf(t, h1, gone.Name).Resolver
	ping(t, c1.NS, gone.IP.String(), 1)

	confDir := "/etc/netns/" + gone.NS
	if _, err := os.Stat(confDir + "/resolv.conf"); err != nil {
		t.Fatalf("the agent wrote no resolv.conf for c2: %v", err)
	}

	// seen tells how host i knows c2: listed by 'vxswitch endpoints' (by
	// name or address), found by 'vxswitch dns lookup', answered by the
	// in-band resolver that an endpoint on host i asks.
	seen := func(i int) (listed bool, lookup string, rcode int) {
		a := c.Agents[i]
		for _, e := range cliEndpoints(t, a) {
			listed = listed || e.Name == gone.Name || e.IP == gone.IP
		}
		out, err := cli(t, a, "dns", "lookup", gone.Name, "--network", "web")
		lookup = strings.TrimSpace(out)
		if err != nil {
			lookup = "error: " + lookup
		}
		r := query(t, rest[i].NS, resolver.String(), gone.Name+".web.", dns.TypeA)
		return listed, lookup, r.Rcode
	}
	for i, a := range c.Agents {
		listed, lookup, rcode := seen(i)
		if !listed || !strings.Contains(lookup, gone.IP.String()) || rcode != dns.RcodeSuccess {
			t.Fatalf("before the delete, %s knows c2 as listed=%v lookup=%q rcode=%s; want it listed and resolved to %s",
				a.Host.Name, listed, lookup, dns.RcodeToString[rcode], gone.IP)
		}
	}

	logStart := make([]int64, len(c.Agents))
	for i, a := range c.Agents {
		logStart[i] = logSize(t, a)
	}
	start := time.Now()
	if err := netlab.DelNS(gone.NS); err != nil {
		t.Fatalf("ip netns del %s: %v", gone.NS, err)
	}
	if _, err := os.Stat(netlab.NetNSDir + gone.NS); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s still exists after ip netns del: %v", gone.NS, err)
	}

	eventually(t, 5*time.Second, "c2 forgotten by every host", func() error {
		for i, a := range c.Agents {
			listed, lookup, rcode := seen(i)
			if listed || !strings.HasPrefix(lookup, "error: ") || !strings.Contains(lookup, "no name") || rcode != dns.RcodeNameError {
				return fmt.Errorf("%s still knows c2: listed=%v lookup=%q rcode=%s; want not listed, a 'no name' error and NXDOMAIN",
					a.Host.Name, listed, lookup, dns.RcodeToString[rcode])
			}
		}
		return nil
	})
	t.Logf("c2 gone from every host %v after ip netns del", time.Since(start).Round(time.Millisecond))

	// h2 itself noticed the namespace was gone and detached c2: nobody
	// else asked for the detach.
	selfDetach := false
	for _, line := range strings.Split(logSince(t, h2, logStart[1]), "\n") {
		selfDetach = selfDetach || strings.Contains(line, "namespace is gone; detaching it") && strings.Contains(line, "endpoint="+gone.Name+" ")
	}
	if !selfDetach {
		t.Errorf("h2 logged no self-detach of %s:\n%s", gone.Name, logSince(t, h2, logStart[1]))
	}
	eventually(t, 2*time.Second, "resolv.conf of c2 removed", func() error {
		if _, err := os.Stat(confDir + "/resolv.conf"); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s/resolv.conf still there: %v", confDir, err)
		}
		return nil
	})

	// The endpoints left on the three hosts still reach each other.
	for i, src := range rest {
		dst := rest[(i+1)%len(rest)]
		ping(t, src.NS, dst.IP.String(), 3)
	}

	// The name is free again, and so is the address: no endpoint holds it
	// (IPAM allocates serially, so the freed address is handed out again
	// only after the others: TestReusedAddressReachableAtOnce).
	again, err := c.Attach(ctx, h3, "web", gone.Name)
	if err != nil {
		t.Fatalf("attach %s again after its namespace was deleted: %v", gone.Name, err)
	}
	var eps []api.Endpoint
	if err := c.Agents[0].Client().Get(ctx, "/v1/endpoints", &eps); err != nil {
		t.Fatal(err)
	}
	for _, e := range eps {
		if e.IP == gone.IP {
			t.Errorf("the address %s of the deleted %s is still held, by %s", gone.IP, gone.Name, e.Name)
		}
	}
	eventually(t, 5*time.Second, "the new c2 resolves on every host", func() error {
		for _, a := range c.Agents {
			out, err := cli(t, a, "dns", "lookup", gone.Name, "--network", "web")
			if err != nil || !strings.Contains(out, again.IP.String()) {
				return fmt.Errorf("'vxswitch dns lookup %s' on %s = %v %q, want %s", gone.Name, a.Host.Name, err, strings.TrimSpace(out), again.IP)
			}
		}
		return nil
	})
	ping(t, c1.NS, again.IP.String(), 3)
	ping(t, x2.NS, again.IP.String(), 3)

	// No agent logged an error while this happened. Raft's own ERROR lines
	// (component=raft) are about replication under load, not about the
	// endpoint, so they are shown but do not fail the test.
	for i, a := range c.Agents {
		for _, line := range strings.Split(logSince(t, a, logStart[i]), "\n") {
			switch {
			case strings.Contains(line, "level=ERROR") && strings.Contains(line, "component=raft"):
				t.Logf("%s (raft): %s", a.Host.Name, line)
			case strings.Contains(line, "level=ERROR"):
				t.Errorf("%s logged an error: %s", a.Host.Name, line)
			case strings.Contains(line, "level=WARN"):
				t.Logf("%s: %s", a.Host.Name, line)
			}
		}
	}
}

// cliEndpoints lists the endpoints with 'vxswitch endpoints -o json'
// through agent a.
func cliEndpoints(t *testing.T, a *lab.Agent) []api.Endpoint {
	t.Helper()
	out, err := cli(t, a, "endpoints", "-o", "json")
	if err != nil {
		t.Fatalf("vxswitch endpoints on %s: %v: %s", a.Host.Name, err, out)
	}
	var es []api.Endpoint
	if err := json.Unmarshal([]byte(out), &es); err != nil {
		t.Fatalf("vxswitch endpoints on %s: %v: %s", a.Host.Name, err, out)
	}
	return es
}

// endpointOf returns the endpoint called name as agent a lists it.
func endpointOf(t *testing.T, a *lab.Agent, name string) api.Endpoint {
	t.Helper()
	for _, e := range endpoints(t, a) {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("%s does not list endpoint %s", a.Host.Name, name)
	return api.Endpoint{}
}

// logSize returns the current size of agent a's log file.
func logSize(t *testing.T, a *lab.Agent) int64 {
	t.Helper()
	fi, err := os.Stat(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// logSince returns what agent a logged after the first off bytes.
func logSince(t *testing.T, a *lab.Agent, off int64) string {
	t.Helper()
	b, err := os.ReadFile(a.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(off, int64(len(b))):])
}

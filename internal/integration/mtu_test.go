package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestJumboUnderlay: a 9000-byte underlay gives endpoints 8950 with no flag,
// and a full-size packet with DF crosses hosts.
func TestJumboUnderlay(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2, UnderlayMTU: 9000})
	c1, c2 := c.Endpoints[0], c.Endpoints[1]
	if out := run(t, c1.NS, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 8950") {
		t.Fatalf("eth0 on a 9000 underlay: %s, want mtu 8950", out)
	}
	run(t, c1.NS, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", "8922", c2.IP.String())
}

// TestPathMTU: a host whose underlay link carries less than the others is
// found by the probes and named in a warning by 'vxswitch mtu'.
func TestPathMTU(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3, NoEndpoints: true})
	h1, h3 := c.Agents[0], c.Agents[2]
	ctx := context.Background()
	if _, err := netlab.Exec(ctx, h3.Host.NS, "ip", "link", "set", "eth0", "mtu", "1400"); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, h1, "mtu", "-o", "json")
	if err != nil {
		t.Fatalf("mtu: %v: %s", err, out)
	}
	var r api.MTUReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("mtu -o json: %v: %s", err, out)
	}
	got := map[string]api.PeerMTU{}
	for _, p := range r.Peers {
		got[p.Host] = p
	}
	if p := got["h2"]; p.PathMTU != 1500 || p.Warning != "" {
		t.Errorf("h2: %+v, want path MTU 1500 and no warning", p)
	}
	// veth lets a frame 4 bytes (a VLAN tag) over its MTU through, so the
	// probes find 1400 to 1404.
	if p := got["h3"]; p.PathMTU < 1400 || p.PathMTU > 1404 || !strings.Contains(p.Warning, fmt.Sprintf("inner packets above %d", p.PathMTU-50)) {
		t.Errorf("h3: %+v, want path MTU 1400..1404 and a warning about the inner packets that are lost", p)
	}
	if r.UnderlayMTU != 1500 || r.EndpointMTU != 1450 || r.Overhead != 50 || !strings.Contains(r.Source, "eth0") {
		t.Errorf("report %+v, want underlay 1500 from eth0, overhead 50, endpoint 1450", r)
	}
	text, err := cli(t, h1, "mtu")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"underlay MTU 1500 (interface eth0)", "inner Ethernet header", "endpoint MTU = 1500 - 50 = 1450", "h3", "WARNING"} {
		if !strings.Contains(text, want) {
			t.Errorf("mtu output lacks %q:\n%s", want, text)
		}
	}
	t.Log(text)
}

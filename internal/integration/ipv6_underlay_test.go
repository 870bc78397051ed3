package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestIPv6Underlay runs three agents on an IPv6-only underlay (fd77::/64,
// no IPv4 address on any host's eth0) with an IPv4 overlay network inside
// (issue 14, "Under the overlay"): VXLAN over UDP/IPv6, Raft and the peer
// API over IPv6, the 70-byte overhead, and a kernel vxlan device over IPv6
// as an external VTEP.
func TestIPv6Underlay(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3, Bare: 1, IPv6Underlay: true})
	h1, h2, h3 := c.Agents[0], c.Agents[1], c.Agents[2]
	c1, c2, c3 := c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]
	ctx := context.Background()

	t.Run("the underlay is IPv6 only and every host joined over it", func(t *testing.T) {
		for _, a := range c.Agents {
			if out := run(t, a.Host.NS, "ip", "-4", "-o", "addr", "show", "dev", "eth0"); strings.TrimSpace(out) != "" {
				t.Errorf("%s's eth0 has an IPv4 address: %s", a.Host.Name, out)
			}
		}
		var ms []api.Member
		if err := h3.Client().Get(ctx, "/v1/members", &ms); err != nil {
			t.Fatal(err)
		}
		if len(ms) != 3 {
			t.Fatalf("members %+v, want 3", ms)
		}
		for i, m := range ms {
			want := c.Agents[i].Host.Addr
			if !m.VTEP.Is6() || m.VTEP != want || m.RaftAddr != "["+want.String()+"]:7946" || m.State != "alive" {
				t.Errorf("member %+v: want VTEP %s, raft [%s]:7946, alive", m, want, want)
			}
		}
	})

	t.Run("endpoints ping and talk TCP across hosts", func(t *testing.T) {
		ping(t, c1.NS, c2.IP.String(), 3)
		ping(t, c3.NS, c1.IP.String(), 3)
		before := stats(t, h1)
		transfer(t, c1.NS, c2.NS, c2.IP, 20<<20)
		if after := stats(t, h1); after.EncapFrames <= before.EncapFrames {
			t.Errorf("h1 encapsulated nothing: %d -> %d", before.EncapFrames, after.EncapFrames)
		}
	})

	t.Run("names resolve", func(t *testing.T) {
		out := run(t, c1.NS, "getent", "ahostsv4", "c3")
		if !strings.Contains(out, c3.IP.String()) {
			t.Errorf("getent ahostsv4 c3 in c1: %q, want %s", out, c3.IP)
		}
	})

	t.Run("endpoint MTU is underlay minus 70", func(t *testing.T) {
		if out := run(t, c1.NS, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1430") {
			t.Errorf("c1's eth0 on a 1500 IPv6 underlay: %s, want mtu 1430", out)
		}
		out, err := cli(t, h2, "mtu", "-o", "json")
		if err != nil {
			t.Fatalf("mtu: %v: %s", err, out)
		}
		var r api.MTUReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("mtu -o json: %v: %s", err, out)
		}
		if r.Family != "IPv6" || r.Overhead != 70 || r.EndpointMTU != 1430 || len(r.Peers) != 2 {
			t.Errorf("mtu report %+v: want family IPv6, overhead 70, endpoint MTU 1430, 2 peers", r)
		}
		for _, p := range r.Peers {
			if p.PathMTU != 1500 || p.Warning != "" {
				t.Errorf("path MTU to %s = %d (%s), want 1500 probed over UDP/IPv6", p.Host, p.PathMTU, p.Warning)
			}
		}
		text, _ := cli(t, h2, "mtu")
		for _, want := range []string{"underlay family IPv6", "outer IPv6 header", "1500 - 70 = 1430"} {
			if !strings.Contains(text, want) {
				t.Errorf("mtu output lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("DF ping at MTU+1 gets frag needed with the IPv6-underlay MTU", func(t *testing.T) {
		run(t, c1.NS, "ip", "link", "set", "eth0", "mtu", "9000")
		defer run(t, c1.NS, "ip", "link", "set", "eth0", "mtu", "1430")
		before := stats(t, h1)
		// 1403 bytes of ICMP data + 8 + 20 = 1431, one more than 1430.
		out, _ := netlab.Exec(ctx, c1.NS, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1403", c2.IP.String())
		if !strings.Contains(string(out), "mtu = 1430") && !strings.Contains(string(out), "mtu=1430") {
			t.Errorf("ping -M do -s 1403 from an MTU 9000 endpoint: %s; want frag needed, mtu 1430", out)
		}
		if s := stats(t, h1); s.ICMPFragNeeded <= before.ICMPFragNeeded {
			t.Errorf("h1 counted no ICMP frag needed: %d -> %d", before.ICMPFragNeeded, s.ICMPFragNeeded)
		}
		run(t, c1.NS, "ip", "route", "flush", "cache")
		// Exactly the MTU still passes.
		ping(t, c1.NS, c2.IP.String(), 1)
		run(t, c1.NS, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1402", c2.IP.String())
	})

	t.Run("capture and trace show outer IPv6 headers", func(t *testing.T) {
		// No IPv6 inside: the endpoints' router and neighbour
		// solicitations would be flooded into the capture.
		for _, e := range c.Endpoints {
			run(t, e.NS, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1")
		}
		file := filepath.Join(t.TempDir(), "v6.pcapng")
		trace := captureAndTrace(t, h1.Socket,
			[]string{"--network", "web", "--underlay", "-c", "2", "-w", file},
			[]string{"--network", "web", "-c", "1"},
			func() { ping(t, c1.NS, c2.IP.String(), 1) })
		// The one traced packet is a request out or a reply in.
		outward := fmt.Sprintf("outer [%s]:4789 > [%s]:4789", h1.Host.Addr, h2.Host.Addr)
		inward := fmt.Sprintf("outer [%s]:4789 > [%s]:4789", h2.Host.Addr, h1.Host.Addr)
		if !strings.Contains(trace, outward) && !strings.Contains(trace, inward) {
			t.Errorf("trace line has neither %q nor %q:\n%s", outward, inward, trace)
		}
		tshark, err := exec.LookPath("tshark")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("tshark is not installed, and CI=true: install it (.ci/run does)")
			}
			t.Skip("tshark is not installed: install it to check the capture")
		}
		cmd := exec.Command(tshark, "-r", file, "-o", "udp.check_checksum:TRUE", "-T", "fields",
			"-e", "ipv6.src", "-e", "ipv6.dst", "-e", "udp.checksum.status", "-e", "vxlan.vni", "-e", "icmp.type")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", file, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		// Echo requests go out to h2 and replies come in from it; both
		// are records of network web.
		request := []string{h1.Host.Addr.String(), h2.Host.Addr.String(), "1", "100", "8"}
		reply := []string{h2.Host.Addr.String(), h1.Host.Addr.String(), "1", "100", "0"}
		for _, l := range lines {
			if got := strings.Fields(l); !slices.Equal(got, request) && !slices.Equal(got, reply) {
				t.Errorf("tshark fields %q, want %q or %q (outer IPv6, UDP checksum good, VNI, echo request or reply)", got, request, reply)
			}
		}
		if len(lines) != 2 {
			t.Errorf("tshark read %d records, want 2:\n%s", len(lines), out)
		}
	})

	t.Run("an IPv4 VTEP is refused with the fix named", func(t *testing.T) {
		out, err := cli(t, h1, "vtep", "add", "web", "10.77.0.9")
		if err == nil || !strings.Contains(out, "one underlay family") || !strings.Contains(out, "use IPv6 addresses") {
			t.Errorf("vtep add of an IPv4 address on an IPv6 cluster: %v: %s", err, out)
		}
	})

	t.Run("an IPv4 host joining the IPv6 cluster is refused before it enrols", func(t *testing.T) {
		kh := c.Net.Hosts[3]
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := netlab.Exec(ctx, kh.NS, binary, "--socket", filepath.Join(t.TempDir(), "h9.sock"), "agent", "--name", "h9",
			"--advertise", "10.77.0.9", "--join", h1.Host.Addr.String(), "--token", "VXS1-x-y", "--data-dir", t.TempDir())
		if err == nil || !strings.Contains(string(out), "one underlay family") || !strings.Contains(string(out), "use IPv6 addresses for every --advertise") {
			t.Errorf("agent --advertise 10.77.0.9 --join %s: %v\n%s", h1.Host.Addr, err, out)
		}
	})

	t.Run("an IPv4 host joining through a name is refused by the cluster", func(t *testing.T) {
		// The member's name hides its family from the joining host, so
		// the leader's admission check is what refuses it.
		kh := c.Net.Hosts[3]
		conf := filepath.Join(netlab.EtcNetNSDir, kh.NS)
		if err := os.MkdirAll(conf, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, "hosts"), []byte(h1.Host.Addr.String()+" h1.lab\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(conf)
		run(t, kh.NS, "ip", "addr", "add", "10.77.0.9/32", "dev", "lo")
		defer run(t, kh.NS, "ip", "addr", "del", "10.77.0.9/32", "dev", "lo")
		tok, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		out, err := netlab.Exec(ctx, kh.NS, binary, "--socket", filepath.Join(t.TempDir(), "h9.sock"), "agent", "--name", "h9",
			"--advertise", "10.77.0.9", "--join", "h1.lab", "--token", tok, "--data-dir", t.TempDir())
		if err == nil || !strings.Contains(string(out), "refused") || !strings.Contains(string(out), "10.77.0.9 is IPv4, but the cluster's underlay is IPv6") {
			t.Errorf("agent --advertise 10.77.0.9 --join h1.lab: %v\n%s", err, out)
		}
		var ms []api.Member
		if err := h1.Client().Get(ctx, "/v1/members", &ms); err != nil || len(ms) != 3 {
			t.Errorf("members after the refused join: %v (%v), want the 3 IPv6 hosts", ms, err)
		}
	})

	t.Run("kernel vxlan device over IPv6", func(t *testing.T) {
		kh := c.Net.Hosts[3]
		var n api.Network
		if err := h1.Client().Get(ctx, "/v1/networks/web", &n); err != nil {
			t.Fatal(err)
		}
		var peers []netip.Addr
		for _, a := range c.Agents {
			peers = append(peers, a.Host.Addr)
		}
		kaddr := netip.MustParsePrefix("10.20.0.250/24")
		if err := kh.KernelVTEP(netlab.VTEPOptions{Name: "vx0", VNI: n.VNI, Peers: peers, Addr: kaddr, MAC: "02:00:00:00:02:50"}); err != nil {
			t.Fatal(err)
		}
		if out := run(t, kh.NS, "ip", "-d", "-o", "link", "show", "vx0"); !strings.Contains(out, "local "+kh.Addr.String()) || !strings.Contains(out, "mtu 1430") {
			t.Fatalf("kernel vx0: %s; want local %s and mtu 1430", out, kh.Addr)
		}
		if out, err := cli(t, h2, "vtep", "add", "web", kh.Addr.String()); err != nil {
			t.Fatalf("vtep add %s: %v: %s", kh.Addr, err, out)
		}
		eventually(t, 5*time.Second, "kernel VTEP known to every host", func() error {
			for _, a := range c.Agents {
				var vs []api.VTEP
				if err := a.Client().Get(ctx, "/v1/vteps", &vs); err != nil || len(vs) != 1 || vs[0].Addr != kh.Addr {
					return fmt.Errorf("%s lists %v (%v)", a.Host.Name, vs, err)
				}
			}
			return nil
		})
		ping(t, c1.NS, kaddr.Addr().String(), 3)
		ping(t, kh.NS, c2.IP.String(), 3)
		transfer(t, kh.NS, c3.NS, c3.IP, 10<<20)
		transfer(t, c1.NS, kh.NS, kaddr.Addr(), 10<<20)
	})
}

package integration

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestNamesARPAndMTU: names resolve across hosts and not across networks,
// ARP is answered at the first hop, and a too-large packet gets an ICMP
// answer instead of vanishing.
func TestNamesARPAndMTU(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3})
	h1 := c.Agents[0]
	c1, c2, c3 := c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]
	ctx := context.Background()
	o1, err := attachOther(t, c)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("getent resolves names of other hosts", func(t *testing.T) {
		conf, err := os.ReadFile("/etc/netns/" + c1.NS + "/resolv.conf")
		if err != nil || !strings.Contains(string(conf), "nameserver 10.20.0.1") || !strings.Contains(string(conf), "search web") {
			t.Fatalf("resolv.conf of %s: %v %s", c1.NS, err, conf)
		}
		for name, want := range map[string]netip.Addr{"c2": c2.IP, "c3.web": c3.IP} {
			out := run(t, c1.NS, "getent", "hosts", name)
			if !strings.HasPrefix(out, want.String()+" ") {
				t.Errorf("getent hosts %s in %s = %q, want %s", name, c1.NS, out, want)
			}
		}
	})

	t.Run("DNS client against the resolver", func(t *testing.T) {
		for _, tc := range []struct {
			ns, q  string
			qtype  uint16
			rcode  int
			answer string
		}{
			{c1.NS, "c3.web.", dns.TypeA, dns.RcodeSuccess, c3.IP.String()},
			{c3.NS, "C1.", dns.TypeA, dns.RcodeSuccess, c1.IP.String()},
			{c1.NS, reverse(c2.IP), dns.TypePTR, dns.RcodeSuccess, "c2.web."},
			{c1.NS, "o1.other.", dns.TypeA, dns.RcodeNameError, ""},
			{c1.NS, "o1.", dns.TypeA, dns.RcodeNameError, ""},
			{c1.NS, "nobody.web.", dns.TypeA, dns.RcodeNameError, ""},
			{o1.NS, "c1.", dns.TypeA, dns.RcodeNameError, ""},
		} {
			server := "10.20.0.1"
			if tc.ns == o1.NS {
				server = "10.30.0.1"
			}
			r := query(t, tc.ns, server, tc.q, tc.qtype)
			got := ""
			for _, rr := range r.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					got = rr.A.String()
				case *dns.PTR:
					got = rr.Ptr
				}
			}
			if r.Rcode != tc.rcode || got != tc.answer {
				t.Errorf("from %s: %s %s = %s %q, want %s %q", tc.ns, dns.TypeToString[tc.qtype], tc.q,
					dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tc.rcode], tc.answer)
			}
		}
		// A name outside every network is not ours: it is forwarded to the
		// agent host's resolvers, and with none reachable the client gets a
		// clear failure quickly instead of a timeout.
		start := time.Now()
		r := query(t, c1.NS, "10.20.0.1", "example.invalid.", dns.TypeA)
		if r.Rcode != dns.RcodeServerFailure && r.Rcode != dns.RcodeRefused {
			t.Errorf("example.invalid. = %s, want SERVFAIL or REFUSED", dns.RcodeToString[r.Rcode])
		}
		t.Logf("example.invalid. answered %s after %v", dns.RcodeToString[r.Rcode], time.Since(start).Round(time.Millisecond))
	})

	t.Run("ARP for a remote endpoint is answered at the first hop", func(t *testing.T) {
		run(t, c1.NS, "ip", "neigh", "flush", "dev", "eth0")
		before := stats(t, h1)
		ping(t, c1.NS, c3.IP.String(), 1)
		after := stats(t, h1)
		if after.ARPSuppressed <= before.ARPSuppressed || after.ARPFlooded != before.ARPFlooded {
			t.Errorf("ARP suppressed %d -> %d, flooded %d -> %d; want one more suppressed and none flooded",
				before.ARPSuppressed, after.ARPSuppressed, before.ARPFlooded, after.ARPFlooded)
		}
		if out := run(t, c1.NS, "ip", "neigh", "show", c3.IP.String()); !strings.Contains(out, c3.MAC) {
			t.Errorf("c1's neighbour entry for c3 = %q, want MAC %s", out, c3.MAC)
		}
	})

	t.Run("too big with DF gets frag needed, TCP does not hang", func(t *testing.T) {
		run(t, c1.NS, "ip", "link", "set", "eth0", "mtu", "9000")
		defer run(t, c1.NS, "ip", "link", "set", "eth0", "mtu", "1450")
		out, _ := netlab.Exec(ctx, c1.NS, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1472", c2.IP.String())
		if !strings.Contains(string(out), "mtu = 1450") && !strings.Contains(string(out), "mtu=1450") {
			t.Errorf("ping -M do -s 1472 from an MTU 9000 endpoint: %s; want frag needed, mtu 1450", out)
		}
		if s := stats(t, h1); s.ICMPFragNeeded == 0 {
			t.Errorf("h1 counted no ICMP frag needed: %+v", s)
		}
		run(t, c1.NS, "ip", "route", "flush", "cache")
		transfer(t, c1.NS, c2.NS, c2.IP, 10<<20)
	})

	t.Run("detach removes the name everywhere", func(t *testing.T) {
		if out, err := cli(t, h1, "detach", "c3"); err != nil {
			t.Fatalf("detach: %v: %s", err, out)
		}
		start := time.Now()
		eventually(t, time.Second, "no host answers c3", func() error {
			for _, a := range c.Agents[:2] {
				var l api.DNSLookup
				err := a.Client().Get(ctx, "/v1/dns/lookup?network=web&name=c3", &l)
				if err == nil {
					return fmt.Errorf("%s still answers c3 with %v", a.Host.Name, l.Addrs)
				}
			}
			if r := query(t, c2.NS, "10.20.0.1", "c3.web.", dns.TypeA); r.Rcode != dns.RcodeNameError {
				return fmt.Errorf("c2's resolver answers c3 with %s", dns.RcodeToString[r.Rcode])
			}
			return nil
		})
		t.Logf("c3 gone from every resolver %v after the detach returned", time.Since(start).Round(time.Millisecond))
		// h3, where c3 lived, removes its TAP and resolv.conf when it
		// applies the detach.
		eventually(t, 2*time.Second, "resolv.conf of the detached endpoint removed", func() error {
			if _, err := os.Stat("/etc/netns/" + c3.NS + "/resolv.conf"); !os.IsNotExist(err) {
				return fmt.Errorf("still there: %v", err)
			}
			return nil
		})
		out, err := cli(t, h1, "dns", "web")
		if err != nil || strings.Contains(out, "c3") || !strings.Contains(out, "c1.web") {
			t.Errorf("dns web = %v %s, want c1 and c2 only", err, out)
		}
	})
}

// attachOther creates network "other" with one endpoint o1 on h1.
func attachOther(t *testing.T, c *lab.Cluster) (lab.Endpoint, error) {
	t.Helper()
	ctx := context.Background()
	if err := c.Agents[0].Client().Post(ctx, "/v1/networks", api.NetworkRequest{Name: "other", Subnet: "10.30.0.0/24"}, nil); err != nil {
		return lab.Endpoint{}, err
	}
	return c.Attach(ctx, c.Agents[0], "other", "o1")
}

// query sends one DNS query from inside netns ns to server:53.
func query(t *testing.T, ns, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	var conn net.Conn
	if err := netlab.Do(netlab.NetNSDir+ns, func() (err error) {
		conn, err = net.Dial("udp", server+":53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.ExchangeWithConn(m, &dns.Conn{Conn: conn})
	if err != nil {
		t.Fatalf("DNS %s %s from %s: %v", dns.TypeToString[qtype], name, ns, err)
	}
	return r
}

func reverse(ip netip.Addr) string {
	r, _ := dns.ReverseAddr(ip.String())
	return r
}

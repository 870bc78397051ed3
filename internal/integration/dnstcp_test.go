package integration

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestDNSOverTCP: the switch answers DNS over TCP at the resolver address
// with the kernel's TCP stack as the client, and refuses TCP to another
// port of the resolver at once. (Large answers are not set up here: an
// alias names one endpoint only; resolver and switch unit tests cover
// them.)
func TestDNSOverTCP(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3})
	h1 := c.Agents[0]
	c1, c3 := c.Endpoints[0], c.Endpoints[2]
	const resolver = "10.20.0.1"

	t.Run("A record of an endpoint on another host", func(t *testing.T) {
		r := queryTCP(t, c1.NS, resolver, "c3.web.", dns.TypeA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("c3.web. over TCP = %s with %d answers, want NOERROR and one A", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != c3.IP.String() {
			t.Errorf("c3.web. over TCP = %v, want %s", r.Answer[0], c3.IP)
		}
		if s := stats(t, h1); s.DNSTCPQueries == 0 || s.DNSTCPConns == 0 {
			t.Errorf("h1 counted no DNS over TCP: %d connections, %d queries", s.DNSTCPConns, s.DNSTCPQueries)
		}
	})

	t.Run("another port is refused at once", func(t *testing.T) {
		start := time.Now()
		err := netlab.Do(netlab.NetNSDir+c1.NS, func() error {
			conn, err := net.DialTimeout("tcp", resolver+":54", 3*time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		})
		took := time.Since(start)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connect to %s:54 = %v, want connection refused", resolver, err)
		}
		if took > time.Second {
			t.Errorf("connection refused after %v, want well under 1 s", took)
		}
		if s := stats(t, h1); s.Drops["to_resolver"] != 0 {
			t.Errorf("h1 dropped frames to the resolver: %v", s.Drops)
		}
	})
}

// queryTCP sends one DNS query over TCP from inside netns ns to server:53.
func queryTCP(t *testing.T, ns, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	var conn net.Conn
	if err := netlab.Do(netlab.NetNSDir+ns, func() (err error) {
		conn, err = net.DialTimeout("tcp", server+":53", 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("connect to %s:53 over TCP from %s: %v", server, ns, err)
	}
	defer conn.Close()
	m := new(dns.Msg).SetQuestion(name, qtype)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.ExchangeWithConn(m, &dns.Conn{Conn: conn})
	if err != nil {
		t.Fatalf("DNS over TCP %s %s from %s: %v", dns.TypeToString[qtype], name, ns, err)
	}
	return r
}

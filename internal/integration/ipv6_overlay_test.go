package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"vxswitch/api"
	"vxswitch/header"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// dualEndpoint is an endpoint of the dual-stack network with both of its
// addresses.
type dualEndpoint struct {
	lab.Endpoint
	IP6 netip.Addr
}

// dualLab starts three hosts, on an IPv6-only underlay if v6Underlay
// (else IPv4), with the dual-stack network "dual" (10.40.0.0/24 and
// fd40::/64) and one endpoint per host, c1..c3.
func dualLab(t *testing.T, v6Underlay bool) (*lab.Cluster, []dualEndpoint) {
	t.Helper()
	c := newLab(t, lab.Options{Hosts: 3, Network: "-", IPv6Underlay: v6Underlay})
	ctx := context.Background()
	out, err := cli(t, c.Agents[0], "network", "create", "dual", "--subnet", "10.40.0.0/24", "--subnet", "fd40::/64")
	if err != nil || !strings.Contains(out, "subnet 10.40.0.0/24,fd40::/64, resolver 10.40.0.1,fd40::1") {
		t.Fatalf("network create with two subnets: %v: %s", err, out)
	}
	var eps []dualEndpoint
	for i, a := range c.Agents {
		e, err := c.Attach(ctx, a, "dual", fmt.Sprintf("c%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, dualEndpoint{Endpoint: e})
	}
	byName := map[string]api.Endpoint{}
	for _, e := range endpoints(t, c.Agents[0]) {
		byName[e.Name] = e
	}
	for i := range eps {
		eps[i].IP6 = byName[eps[i].Name].IP6
	}
	return c, eps
}

// TestIPv6Overlay: a dual-stack network across three hosts. Every endpoint
// gets an IPv6 address beside its IPv4 one from the cluster's IPAM,
// configured in its namespace; IPv6 crosses hosts, names resolve to AAAA
// records and back, and an oversize IPv6 packet gets a Packet Too Big
// with the network MTU.
func TestIPv6Overlay(t *testing.T) {
	c, eps := dualLab(t, false)
	h1 := c.Agents[0]
	c1, c2, c3 := eps[0], eps[1], eps[2]
	subnet6 := netip.MustParsePrefix("fd40::/64")

	t.Run("one address of each family, in the namespace", func(t *testing.T) {
		seen := map[netip.Addr]string{}
		for _, e := range eps {
			if !subnet6.Contains(e.IP6) || e.IP6 == netip.MustParseAddr("fd40::1") || !e.IP.Is4() {
				t.Errorf("%s: addresses %s and %s, want an IPv4 one and one in %s other than the resolver's", e.Name, e.IP, e.IP6, subnet6)
			}
			if other, ok := seen[e.IP6]; ok {
				t.Errorf("%s and %s share %s", e.Name, other, e.IP6)
			}
			seen[e.IP6] = e.Name
			out := run(t, e.NS, "ip", "-6", "addr", "show", "dev", "eth0")
			if !strings.Contains(out, e.IP6.String()+"/64") || !strings.Contains(out, "nodad") || strings.Contains(out, "dadfailed") {
				t.Errorf("%s: eth0 has %s, want %s/64 nodad", e.Name, out, e.IP6)
			}
		}
		out, err := cli(t, h1, "network", "inspect", "dual", "-o", "json")
		if err != nil {
			t.Fatalf("network inspect: %v: %s", err, out)
		}
		var n api.Network
		if err := json.Unmarshal([]byte(out), &n); err != nil {
			t.Fatalf("network inspect -o json: %v: %s", err, out)
		}
		if n.Subnet6 != subnet6 || n.Resolver6 != netip.MustParseAddr("fd40::1") || len(n.Members) != 3 || !n.Members[0].IP6.IsValid() {
			t.Errorf("network inspect: %+v, want subnet6 %s, resolver6 fd40::1 and 3 members with IPv6 addresses", n, subnet6)
		}
		for _, tc := range []struct {
			args []string
			want []string
		}{
			{[]string{"endpoints"}, []string{c2.IP6.String(), c2.IP.String()}},
			{[]string{"network", "inspect", "dual"}, []string{"10.40.0.0/24,fd40::/64", "10.40.0.1,fd40::1", c3.IP6.String() + "/64"}},
			{[]string{"network", "ls"}, []string{"10.40.0.0/24,fd40::/64"}},
		} {
			out, err := cli(t, h1, tc.args...)
			for _, w := range tc.want {
				if err != nil || !strings.Contains(out, w) {
					t.Errorf("%s: %v, want %s in\n%s", strings.Join(tc.args, " "), err, w, out)
				}
			}
		}
	})

	t.Run("explain by IPv6 address", func(t *testing.T) {
		out, err := cli(t, h1, "explain", c2.IP6.String())
		if err != nil || !strings.Contains(out, "endpoint c2") || !strings.Contains(out, c2.IP6.String()) {
			t.Errorf("explain %s: %v\n%s\nwant endpoint c2 with its IPv6 address", c2.IP6, err, out)
		}
	})

	t.Run("ping6 across hosts", func(t *testing.T) {
		ping(t, c1.NS, c2.IP6.String(), 3)
		ping(t, c1.NS, c3.IP6.String(), 3)
		ping(t, c3.NS, c2.IP6.String(), 3)
		ping(t, c2.NS, c1.IP.String(), 2) // IPv4 still works beside it
	})

	t.Run("names: AAAA across hosts and ip6.arpa", func(t *testing.T) {
		for _, tc := range []struct {
			ns, name string
			want     netip.Addr
		}{{c1.NS, "c2", c2.IP6}, {c1.NS, "c3.dual", c3.IP6}, {c3.NS, "c1", c1.IP6}} {
			out := run(t, tc.ns, "getent", "ahostsv6", tc.name)
			if !strings.HasPrefix(out, tc.want.String()+" ") {
				t.Errorf("getent ahostsv6 %s in %s = %q, want %s", tc.name, tc.ns, out, tc.want)
			}
			if out := run(t, tc.ns, "getent", "ahostsv4", tc.name); !strings.Contains(out, "10.40.0.") {
				t.Errorf("getent ahostsv4 %s in %s = %q, want its IPv4 address", tc.name, tc.ns, out)
			}
		}
		if out := run(t, c1.NS, "getent", "hosts", c2.IP6.String()); !strings.Contains(out, "c2.dual") {
			t.Errorf("getent hosts %s = %q, want c2.dual (PTR under ip6.arpa)", c2.IP6, out)
		}
	})

	t.Run("the resolver's IPv6 address answers DNS and ping", func(t *testing.T) {
		r := query(t, c1.NS, "[fd40::1]", "c3.dual.", dns.TypeAAAA)
		if len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != c3.IP6.String() {
			t.Errorf("AAAA c3.dual. from [fd40::1]: %v, want %s", r.Answer, c3.IP6)
		}
		if r := query(t, c1.NS, "[fd40::1]", reverse(c2.IP6), dns.TypePTR); len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "c2.dual." {
			t.Errorf("PTR %s from [fd40::1]: %v, want c2.dual.", c2.IP6, r.Answer)
		}
		ping(t, c2.NS, "fd40::1", 2)
		// Over TCP too (RFC 7766), from the namespace's own stack.
		var conn net.Conn
		if err := netlab.Do(netlab.NetNSDir+c3.NS, func() (err error) {
			conn, err = net.DialTimeout("tcp", "[fd40::1]:53", 5*time.Second)
			return err
		}); err != nil {
			t.Fatalf("TCP to [fd40::1]:53: %v", err)
		}
		defer conn.Close()
		m := new(dns.Msg).SetQuestion("c1.dual.", dns.TypeAAAA)
		r, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).ExchangeWithConn(m, &dns.Conn{Conn: conn})
		if err != nil || len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != c1.IP6.String() {
			t.Errorf("AAAA c1.dual. over TCP from [fd40::1]: %v %v, want %s", r, err, c1.IP6)
		}
		conf, err := os.ReadFile("/etc/netns/" + c1.NS + "/resolv.conf")
		if err != nil || !strings.Contains(string(conf), "nameserver 10.40.0.1\nnameserver fd40::1\n") {
			t.Errorf("resolv.conf of %s: %v\n%s\nwant both resolver addresses", c1.NS, err, conf)
		}
	})

	t.Run("neighbour discovery is answered at the first hop", func(t *testing.T) {
		run(t, c1.NS, "ip", "-6", "neigh", "flush", "dev", "eth0")
		before := stats(t, h1)
		ping(t, c1.NS, c3.IP6.String(), 1)
		after := stats(t, h1)
		if after.NDPAnswered <= before.NDPAnswered {
			t.Errorf("NDP answered %d -> %d, want more", before.NDPAnswered, after.NDPAnswered)
		}
		if out := run(t, c1.NS, "ip", "-6", "neigh", "show", c3.IP6.String()); !strings.Contains(out, c3.MAC) {
			t.Errorf("c1's neighbour entry for c3 = %q, want MAC %s", out, c3.MAC)
		}
	})

	t.Run("too big: Packet Too Big with the network MTU, TCP over IPv6 is clamped", func(t *testing.T) {
		run(t, c1.NS, "ip", "link", "set", "eth0", "mtu", "9000")
		defer run(t, c1.NS, "ip", "link", "set", "eth0", "mtu", "1450")
		before := stats(t, h1)
		// 1450 - 40 (IPv6) - 8 (ICMPv6) + 1: one byte over the MTU.
		out, _ := netlab.Exec(context.Background(), c1.NS, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1403", c2.IP6.String())
		if !strings.Contains(string(out), "mtu=1450") && !strings.Contains(string(out), "mtu = 1450") {
			t.Errorf("ping -6 -M do -s 1403 from an MTU 9000 endpoint: %s; want Packet too big, mtu 1450", out)
		}
		if s := stats(t, h1); s.ICMPv6TooBig <= before.ICMPv6TooBig {
			t.Errorf("h1 counted no Packet Too Big: %d -> %d", before.ICMPv6TooBig, s.ICMPv6TooBig)
		}
		if out, err := cli(t, h1, "mtu", "dual"); err != nil || !strings.Contains(out, "network dual: endpoint MTU 1450, TCP MSS 1410 over IPv4, 1390 over IPv6") {
			t.Errorf("mtu dual: %v\n%s\nwant both families' MSS", err, out)
		}
		// At the MTU exactly it passes.
		run(t, c1.NS, "ping", "-6", "-c", "1", "-W", "2", "-M", "do", "-s", "1402", c2.IP6.String())
		// A TCP connection from the MTU 9000 endpoint offers an MSS the
		// switch clamps to 1450 - 60: the transfer does not hang.
		run(t, c1.NS, "ip", "-6", "route", "flush", "cache")
		transfer(t, c1.NS, c2.NS, c2.IP6, 10<<20)
	})

	t.Run("duplicate address detection fails for another endpoint's address", func(t *testing.T) {
		before := stats(t, h1)
		run(t, c1.NS, "ip", "-6", "addr", "add", c2.IP6.String()+"/64", "dev", "eth0")
		defer run(t, c1.NS, "ip", "-6", "addr", "del", c2.IP6.String()+"/64", "dev", "eth0")
		eventually(t, 10*time.Second, "c1's copy of c2's address is dadfailed", func() error {
			out := run(t, c1.NS, "ip", "-6", "addr", "show", "dev", "eth0")
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, c2.IP6.String()+"/64") && strings.Contains(line, "dadfailed") {
					return nil
				}
			}
			return fmt.Errorf("addresses: %s", out)
		})
		if s := stats(t, h1); s.NDPDADAnswered <= before.NDPDADAnswered {
			t.Errorf("h1 answered no duplicate address probe: %d -> %d", before.NDPDADAnswered, s.NDPDADAnswered)
		}
		ping(t, c3.NS, c2.IP6.String(), 2)
	})

	t.Run("spoofed advertisements and router advertisements are dropped and counted", func(t *testing.T) {
		ping(t, c3.NS, c2.IP6.String(), 1) // c3 knows c2's MAC
		mac1 := header.MAC(hw(t, c1.MAC))
		spoof := ndpFrame(mac1, eui64Addr(mac1), header.IPv6AllNodes, func(m header.ICMPv6) int {
			return m.EncodeNeighborAdvert(header.NDPFlagOverride, c2.IP6, mac1)
		})
		ra := ndpFrame(mac1, eui64Addr(mac1), header.IPv6AllNodes, func(m header.ICMPv6) int {
			m[0], m[1], m[4], m[6], m[7] = header.ICMPv6RouterAdvertisement, 0, 64, 0x07, 0x08 // hop limit 64, lifetime 1800 s
			return 16
		})
		fd := rawSocket(t, c1.NS, 0)
		before := stats(t, h1)
		for _, f := range [][]byte{spoof, ra} {
			if _, err := syscall.Write(fd, f); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 5*time.Second, "h1 counts both", func() error {
			d := stats(t, h1).Drops
			if d["spoofed_ip"]-before.Drops["spoofed_ip"] != 1 || d["router_advert"]-before.Drops["router_advert"] != 1 {
				return fmt.Errorf("spoofed_ip %d -> %d, router_advert %d -> %d", before.Drops["spoofed_ip"], d["spoofed_ip"],
					before.Drops["router_advert"], d["router_advert"])
			}
			return nil
		})
		time.Sleep(200 * time.Millisecond) // what got through would have arrived by now
		if out := run(t, c3.NS, "ip", "-6", "neigh", "show", c2.IP6.String()); !strings.Contains(out, c2.MAC) {
			t.Errorf("c3's neighbour entry for c2 = %q, want c2's MAC %s", out, c2.MAC)
		}
		if out := run(t, c3.NS, "ip", "-6", "route", "show", "default"); strings.TrimSpace(out) != "" {
			t.Errorf("c3 took a default route from c1's router advertisement: %s", out)
		}
	})
}

// eui64Addr is the link-local address Linux gives an interface with MAC m.
func eui64Addr(m header.MAC) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 8: m[0] ^ 2, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]})
}

// ndpFrame builds an Ethernet frame from src carrying an IPv6 packet from
// sip to the multicast address dip with hop limit 255 and the ICMPv6
// message body writes (it returns the message's length); the checksum is
// computed here.
func ndpFrame(src header.MAC, sip, dip netip.Addr, body func(header.ICMPv6) int) []byte {
	f := make([]byte, header.EthernetLen+header.IPv6Len+64)
	e := header.Ethernet(f)
	e.SetDestination(header.IPv6MulticastMAC(dip))
	e.SetSource(src)
	e.SetOuterType(header.EtherTypeIPv6)
	ip := header.IPv6(f[header.EthernetLen:])
	m := header.ICMPv6(ip[header.IPv6Len:])
	n := body(m)
	ip.Encode(uint16(n), header.ProtoICMPv6, header.NDPHopLimit, sip, dip)
	m = m[:n]
	m.SetChecksum(0)
	m.SetChecksum(m.ComputeChecksum(ip.PseudoSum(header.ProtoICMPv6, n)))
	return f[:header.EthernetLen+header.IPv6Len+n]
}

// TestDualStackOverIPv6Underlay: the same network with an IPv6-only
// underlay between the hosts: IPv6 and IPv4 inside, IPv6 outside, and
// Packet Too Big one byte over the smaller endpoint MTU (1500 - 70).
func TestDualStackOverIPv6Underlay(t *testing.T) {
	c, eps := dualLab(t, true)
	c1, c2, c3 := eps[0], eps[1], eps[2]
	if out := run(t, c1.NS, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1430") {
		t.Fatalf("eth0 over an IPv6 underlay: %s, want mtu 1430", out)
	}
	ping(t, c1.NS, c2.IP6.String(), 3)
	ping(t, c3.NS, c1.IP6.String(), 3)
	ping(t, c2.NS, c3.IP.String(), 2)
	if out := run(t, c1.NS, "getent", "ahostsv6", "c3"); !strings.HasPrefix(out, c3.IP6.String()+" ") {
		t.Errorf("getent ahostsv6 c3 = %q, want %s", out, c3.IP6)
	}
	run(t, c1.NS, "ping", "-6", "-c", "1", "-W", "2", "-M", "do", "-s", "1382", c2.IP6.String())
	run(t, c1.NS, "ip", "link", "set", "eth0", "mtu", "9000")
	out, _ := netlab.Exec(context.Background(), c1.NS, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1383", c2.IP6.String())
	if !strings.Contains(string(out), "mtu=1430") && !strings.Contains(string(out), "mtu = 1430") {
		t.Errorf("ping -6 -M do -s 1383: %s; want Packet too big, mtu 1430", out)
	}
	if s := stats(t, c.Agents[0]); s.ICMPv6TooBig == 0 {
		t.Error("h1 counted no Packet Too Big")
	}
}

// TestIPv6OnlyNetwork: a network with only an IPv6 subnet across two
// hosts. Its endpoints get an IPv6 address and no IPv4 one, their
// resolv.conf names the resolver's IPv6 address only, names resolve to
// AAAA records and have no A record, IPv6 crosses hosts, and an oversize
// packet gets a Packet Too Big; the CLI shows no IPv4 column values.
func TestIPv6OnlyNetwork(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2, Network: "-"})
	h1 := c.Agents[0]
	ctx := context.Background()
	out, err := cli(t, h1, "network", "create", "six", "--subnet", "fd60::/64")
	if err != nil || !strings.Contains(out, "subnet fd60::/64, resolver fd60::1") || strings.Contains(out, "invalid") {
		t.Fatalf("network create six --subnet fd60::/64: %v: %s", err, out)
	}
	var eps []lab.Endpoint
	for i, a := range c.Agents {
		e, err := c.Attach(ctx, a, "six", fmt.Sprintf("s%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		if e.IP.IsValid() || !netip.MustParsePrefix("fd60::/64").Contains(e.IP6) {
			t.Fatalf("endpoint %s got %s and %s, want an address in fd60::/64 only", e.Name, e.IP, e.IP6)
		}
		eps = append(eps, e)
	}
	s1, s2 := eps[0], eps[1]

	if out := run(t, s1.NS, "ip", "-4", "addr", "show", "dev", "eth0"); strings.Contains(out, "inet ") {
		t.Errorf("eth0 of s1 has an IPv4 address: %s", out)
	}
	if out := run(t, s1.NS, "ip", "-6", "addr", "show", "dev", "eth0"); !strings.Contains(out, s1.IP6.String()+"/64") {
		t.Errorf("eth0 of s1 lacks %s/64: %s", s1.IP6, out)
	}
	conf, err := os.ReadFile("/etc/netns/" + s1.NS + "/resolv.conf")
	if err != nil || !strings.Contains(string(conf), "\nnameserver fd60::1\nsearch six\n") || strings.Count(string(conf), "nameserver") != 1 {
		t.Errorf("resolv.conf of %s: %v\n%s\nwant the resolver's IPv6 address only", s1.NS, err, conf)
	}

	eventually(t, 10*time.Second, "ping6 s1 -> s2", func() error {
		_, err := netlab.Exec(ctx, s1.NS, "ping", "-6", "-c", "1", "-W", "1", s2.IP6.String())
		return err
	})
	ping(t, s1.NS, s2.IP6.String(), 3)
	ping(t, s2.NS, s1.IP6.String(), 3)
	ping(t, s2.NS, "fd60::1", 2)
	if out := run(t, s1.NS, "getent", "ahostsv6", "s2"); !strings.HasPrefix(out, s2.IP6.String()+" ") {
		t.Errorf("getent ahostsv6 s2 = %q, want %s", out, s2.IP6)
	}
	run(t, s1.NS, "ping", "-c", "1", "-W", "2", "s2") // by name, through the IPv6 resolver

	// AAAA answers; A has no data (the name exists: NOERROR with the SOA,
	// RFC 2308 section 2.2); an unknown name is NXDOMAIN.
	if r := query(t, s1.NS, "[fd60::1]", "s2.six.", dns.TypeAAAA); len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != s2.IP6.String() {
		t.Errorf("AAAA s2.six.: %v, want %s", r.Answer, s2.IP6)
	}
	if r := query(t, s1.NS, "[fd60::1]", "s2.six.", dns.TypeA); len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess || len(r.Ns) != 1 {
		t.Errorf("A s2.six.: rcode %s, answer %v, authority %v; want no data with the SOA", dns.RcodeToString[r.Rcode], r.Answer, r.Ns)
	}
	if r := query(t, s1.NS, "[fd60::1]", "nobody.six.", dns.TypeAAAA); r.Rcode != dns.RcodeNameError {
		t.Errorf("AAAA nobody.six.: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if r := query(t, s1.NS, "[fd60::1]", reverse(s2.IP6), dns.TypePTR); len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "s2.six." {
		t.Errorf("PTR %s: %v, want s2.six.", s2.IP6, r.Answer)
	}

	// Oversize: Packet Too Big with the endpoint MTU (1450 over IPv4).
	run(t, s1.NS, "ip", "link", "set", "eth0", "mtu", "9000")
	out2, _ := netlab.Exec(ctx, s1.NS, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1403", s2.IP6.String())
	if !strings.Contains(string(out2), "mtu=1450") && !strings.Contains(string(out2), "mtu = 1450") {
		t.Errorf("ping -6 -M do -s 1403 from an MTU 9000 endpoint: %s; want Packet too big, mtu 1450", out2)
	}
	run(t, s1.NS, "ip", "link", "set", "eth0", "mtu", "1450")

	for _, args := range [][]string{{"network", "ls"}, {"network", "inspect", "six"}, {"endpoints"}} {
		out, err := cli(t, h1, args...)
		if err != nil || strings.Contains(out, "invalid") || !strings.Contains(out, "fd60::") {
			t.Errorf("vxswitch %s: %v\n%s\nwant the IPv6 values and no 'invalid'", strings.Join(args, " "), err, out)
		}
	}
	// IPv6 needs a link MTU of 1280 (RFC 8200 section 5).
	if out, err := cli(t, h1, "network", "create", "small", "--subnet", "fd61::/64", "--mtu", "1200"); err == nil || !strings.Contains(out, "at least 1280") {
		t.Errorf("network create with an IPv6 subnet and --mtu 1200: %v %s; want a refusal naming 1280", err, out)
	}
	if out, err := cli(t, h1, "mtu", "six"); err != nil || !strings.Contains(out, "network six: endpoint MTU 1450, TCP MSS 1390 over IPv6\n") {
		t.Errorf("mtu six: %v\n%s\nwant the IPv6 MSS only", err, out)
	}
}

package resolver

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const vniDual = 300

var (
	src6 = netip.MustParseAddrPort("[fd20::2]:40000")

	// dualNets holds a dual-stack network and one whose only subnet is IPv6.
	dualNets = []Network{
		{Name: "dual", VNI: vniDual, Subnet: netip.MustParsePrefix("10.4.0.0/24"), Resolver: netip.MustParseAddr("10.4.0.1"),
			Subnet6: netip.MustParsePrefix("fd20::/64"), Resolver6: netip.MustParseAddr("fd20::1")},
		{Name: "six", VNI: vniDual + 1, Subnet: netip.MustParsePrefix("fd30::/64"), Resolver: netip.MustParseAddr("fd30::1")},
	}
	dualRecs = []Record{
		{Name: "app", Network: "dual", IP: netip.MustParseAddr("10.4.0.2"), IP6: netip.MustParseAddr("fd20::2"), Aliases: []string{"svc"}},
		{Name: "old", Network: "dual", IP: netip.MustParseAddr("10.4.0.3")},
		{Name: "v6", Network: "six", IP: netip.MustParseAddr("fd30::a")},
		{Name: "ext", Network: "dual", IP: netip.MustParseAddr("10.4.0.4"), IP6: netip.MustParseAddr("2001:db8::4")}, // v6 outside the subnet: no PTR
	}
)

// newDualServer returns a Server with the IPv4 test table and the dual-stack
// networks, without upstreams.
func newDualServer(t testing.TB) *Server {
	s := New(Config{Upstreams: []netip.AddrPort{}, Logger: slog.New(slog.DiscardHandler)})
	s.SetTable(NewTable(append(slices.Clone(testNets), dualNets...), append(slices.Clone(testRecs), dualRecs...)))
	return s
}

// rev returns the reverse name of a.
func rev(t testing.TB, a string) string {
	t.Helper()
	r, err := dns.ReverseAddr(a)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestServeDNSDualStack(t *testing.T) {
	tests := []struct {
		name      string
		vni       uint32
		qname     string
		qtype     uint16
		rcode     int
		answer    []string
		authority []string
	}{
		{name: "A of a dual-stack name", vni: vniDual, qname: "app.", qtype: dns.TypeA, answer: []string{"10.4.0.2"}},
		{name: "AAAA of a dual-stack name", vni: vniDual, qname: "app.dual.", qtype: dns.TypeAAAA, answer: []string{"fd20::2"}},
		{name: "AAAA of an alias", vni: vniDual, qname: "SVC.dual.", qtype: dns.TypeAAAA, answer: []string{"fd20::2"}},
		{name: "ANY gives both", vni: vniDual, qname: "app.", qtype: dns.TypeANY, answer: []string{"10.4.0.2", "fd20::2"}},
		{name: "AAAA of an IPv4-only endpoint is no data", vni: vniDual, qname: "old.dual.", qtype: dns.TypeAAAA, authority: []string{"SOA"}},
		{name: "A of an IPv6-only endpoint is no data", vni: vniDual + 1, qname: "v6.six.", qtype: dns.TypeA, authority: []string{"SOA"}},
		{name: "AAAA of an IPv6-only endpoint", vni: vniDual + 1, qname: "v6.", qtype: dns.TypeAAAA, answer: []string{"fd30::a"}},
		{name: "PTR of an IPv6 endpoint", vni: vniDual, qname: rev(t, "fd20::2"), qtype: dns.TypePTR, answer: []string{"app.dual."}},
		{name: "PTR in upper case", vni: vniDual, qname: "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.D.F.IP6.ARPA.", qtype: dns.TypePTR, answer: []string{"app.dual."}},
		{name: "PTR of its IPv4 address too", vni: vniDual, qname: rev(t, "10.4.0.2"), qtype: dns.TypePTR, answer: []string{"app.dual."}},
		{name: "PTR of the IPv6 resolver", vni: vniDual, qname: rev(t, "fd20::1"), qtype: dns.TypePTR, answer: []string{"resolver.dual."}},
		{name: "PTR of the IPv4 resolver", vni: vniDual, qname: rev(t, "10.4.0.1"), qtype: dns.TypePTR, answer: []string{"resolver.dual."}},
		{name: "PTR of an IPv6-only network's resolver", vni: vniDual + 1, qname: rev(t, "fd30::1"), qtype: dns.TypePTR, answer: []string{"resolver.six."}},
		{name: "PTR of a free IPv6 address in the subnet", vni: vniDual, qname: rev(t, "fd20::99"), qtype: dns.TypePTR, rcode: dns.RcodeNameError},
		{name: "PTR of a free address in an IPv6-only subnet", vni: vniDual + 1, qname: rev(t, "fd30::ffff:1"), qtype: dns.TypePTR, rcode: dns.RcodeNameError},
		{name: "PTR of an address outside the subnets is forwarded", vni: vniDual, qname: rev(t, "2001:db8::4"), qtype: dns.TypePTR, rcode: dns.RcodeRefused},
		{name: "PTR of another network's IPv6 address is not ours", vni: vniDual, qname: rev(t, "fd30::a"), qtype: dns.TypePTR, rcode: dns.RcodeRefused},
		{name: "a reverse zone, not an address, is forwarded", vni: vniDual, qname: "0.0.0.0.0.0.0.0.0.0.0.0.0.2.d.f.ip6.arpa.", qtype: dns.TypePTR, rcode: dns.RcodeRefused},
		{name: "AAAA of another network's name", vni: vniDual, qname: "v6.six.", qtype: dns.TypeAAAA, rcode: dns.RcodeNameError},
		{name: "AAAA of another network's name alone", vni: vniDual, qname: "v6.", qtype: dns.TypeAAAA, rcode: dns.RcodeNameError},
		{name: "dual-stack name from an IPv4 network", vni: vniWeb, qname: "app.", qtype: dns.TypeAAAA, rcode: dns.RcodeNameError},
		{name: "dual-stack name under its network from elsewhere", vni: vniWeb, qname: "app.dual.", qtype: dns.TypeAAAA, rcode: dns.RcodeNameError},
	}
	s := newDualServer(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			s.ServeDNS(tc.vni, src6, query(t, tc.qname, tc.qtype), r.reply)
			m := r.wait(t, time.Second)
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got := summary(m.Answer); !slices.Equal(got, tc.answer) {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
			if got := summary(m.Ns); !slices.Equal(got, tc.authority) {
				t.Errorf("authority %q, want %q", got, tc.authority)
			}
		})
	}
}

func TestLookupAndNamesDualStack(t *testing.T) {
	s := newDualServer(t)
	v4, v6 := netip.MustParseAddr("10.4.0.2"), netip.MustParseAddr("fd20::2")
	got, err := s.Lookup("dual", "svc")
	if err != nil || !slices.Equal(got, []netip.Addr{v4, v6}) {
		t.Errorf("Lookup(dual, svc) = %v, %v; want [%v %v]", got, err, v4, v6)
	}
	var app []Name
	for _, n := range s.Names("dual") {
		if n.Name == "app.dual" {
			app = append(app, n)
		}
	}
	want := []Name{{Name: "app.dual", Network: "dual", IP: v4, Kind: "name"}, {Name: "app.dual", Network: "dual", IP: v6, Kind: "name"}}
	if !slices.Equal(app, want) {
		t.Errorf("Names(dual) for app = %+v, want %+v", app, want)
	}
}

func TestReverseAddr(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for not an address
	}{
		{rev(t, "10.1.0.2"), "10.1.0.2"},
		{rev(t, "fd20::2"), "fd20::2"},
		{rev(t, "2001:db8:ffff:1234:5678:9abc:def0:1"), "2001:db8:ffff:1234:5678:9abc:def0:1"},
		{"1.0.10.in-addr.arpa.", ""},
		{"0.2.d.f.ip6.arpa.", ""},
		{"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.d.f.ip6.arpa.", ""},
		{"20.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.d.f.ip6.arpa.", ""},
		{"2..0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.d.f.ip6.arpa.", ""},
		{"example.com.", ""},
	}
	for _, tc := range tests {
		a, ok := reverseAddr(tc.name)
		if tc.want == "" {
			if ok {
				t.Errorf("reverseAddr(%q) = %v, want not an address", tc.name, a)
			}
			continue
		}
		if !ok || a != netip.MustParseAddr(tc.want) {
			t.Errorf("reverseAddr(%q) = %v %v, want %s", tc.name, a, ok, tc.want)
		}
	}
}

// FuzzReverseAddr checks that a reverse name reverseAddr accepts is the
// reverse name of the address it returns (in lower case).
func FuzzReverseAddr(f *testing.F) {
	f.Add(rev(f, "fd20::2"))
	f.Add(rev(f, "10.4.0.2"))
	f.Add("0.2.d.f.ip6.arpa.")
	f.Fuzz(func(t *testing.T, name string) {
		a, ok := reverseAddr(name)
		if !ok {
			return
		}
		if r, err := dns.ReverseAddr(a.String()); err != nil || r != name {
			// in-addr.arpa labels may carry leading zeros ParseAddr refuses,
			// so any accepted name must spell the address exactly.
			t.Fatalf("reverseAddr(%q) = %v, whose reverse name is %q", name, a, r)
		}
	})
}

// TestZonePatchDualStack: a patched dual-stack zone is the zone NewZone
// builds from the changed records, IPv6 addresses and ip6.arpa names too.
func TestZonePatchDualStack(t *testing.T) {
	n := dualNets[0]
	rec := func(i int, aliases ...string) Record {
		return Record{Name: fmt.Sprintf("e%d", i), Network: "dual", IP: netip.AddrFrom4([4]byte{10, 4, 0, byte(10 + i)}),
			IP6: netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x20, 15: byte(10 + i)}), Aliases: aliases}
	}
	var before []Record
	for i := range 10 {
		before = append(before, rec(i, fmt.Sprintf("a%d", i)))
	}
	gone := []Record{before[2], before[5]}
	added := []Record{rec(20, "x"), rec(5, "renamed"), {Name: "four", Network: "dual", IP: netip.MustParseAddr("10.4.0.99")}}
	var after []Record
	for i, r := range before {
		if i != 2 && i != 5 {
			after = append(after, r)
		}
	}
	after = append(after, added...)
	got := NewZone(n, before).Patch(gone, added)
	if want := NewZone(n, after); !reflect.DeepEqual(got.z.names(), want.z.names()) ||
		!maps.Equal(maps.Collect(got.z.ptrs.All()), maps.Collect(want.z.ptrs.All())) {
		t.Fatalf("patched zone differs:\n%+v\n%+v", got.z.names(), want.z.names())
	}
	if _, ok := got.z.reverse(rev(t, "fd20::c")); ok {
		t.Error("the PTR of a gone endpoint's IPv6 address stayed")
	}
}

package resolver

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// localAnswer is what the table says about one question.
type localAnswer struct {
	rcode     int      // dns.RcodeSuccess or dns.RcodeNameError
	answer    []dns.RR // the answer section
	authority []dns.RR // the authority section: the zone's SOA for negative answers
}

// local answers q for a query from network z. ok is false when the name is
// none of the table's business and must be forwarded. The rules, in order:
//
//   - a name of z ("X." or "X.N.") gets its A (or AAAA) records, or no data
//     for other types (RFC 2308 section 2.2);
//   - the reverse name of an address of z gets a PTR record;
//   - the network's own name "N." exists and has only an SOA record;
//   - any other single-label name, any other name under the name of any
//     network, and the full reverse name (in-addr.arpa or ip6.arpa) of any
//     other address in one of z's subnets do not exist (NXDOMAIN, RFC 1034
//     section 4.3.2);
//   - everything else is forwarded.
func (t *Table) local(z *zone, q dns.Question) (m localAnswer, ok bool) {
	name := strings.ToLower(q.Name)
	in := q.Qclass == dns.ClassINET || q.Qclass == dns.ClassANY
	anyType := q.Qtype == dns.TypeANY
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: ttl}

	if addrs, found := z.lookup(name); found {
		for _, na := range addrs {
			a := na.ip
			switch {
			case a.Is4() && in && (anyType || q.Qtype == dns.TypeA):
				hdr.Rrtype = dns.TypeA
				m.answer = append(m.answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
			case a.Is6() && in && (anyType || q.Qtype == dns.TypeAAAA):
				hdr.Rrtype = dns.TypeAAAA
				m.answer = append(m.answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
		if len(m.answer) == 0 {
			m.authority = z.soaFor(name)
		}
		return m, true
	}
	if target, found := z.reverse(name); found {
		if in && (anyType || q.Qtype == dns.TypePTR) {
			hdr.Rrtype = dns.TypePTR
			m.answer = append(m.answer, &dns.PTR{Hdr: hdr, Ptr: target})
		}
		return m, true
	}
	if name == z.origin {
		if in && (anyType || q.Qtype == dns.TypeSOA) {
			m.answer = z.soaFor(name)
		} else {
			m.authority = z.soaFor(name)
		}
		return m, true
	}

	labels := dns.SplitDomainName(name)
	switch {
	case len(labels) == 1,
		len(labels) > 1 && t.isNetwork(labels[len(labels)-1]):
		m.rcode = dns.RcodeNameError
		m.authority = z.soaFor(name)
		return m, true
	}
	if a, ok := reverseAddr(name); ok && z.inSubnet(a) {
		m.rcode = dns.RcodeNameError
		return m, true
	}
	return m, false
}

// soaFor returns z's SOA record for a negative answer about name, or nil
// when name is not inside z's zone (a single-label name). Its MINIMUM field
// and TTL limit how long the negative answer is cached (RFC 2308 section 5).
func (z *zone) soaFor(name string) []dns.RR {
	if name != z.origin && !strings.HasSuffix(name, "."+z.origin) {
		return nil
	}
	return []dns.RR{&dns.SOA{
		Hdr:     dns.RR_Header{Name: z.origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      "resolver." + z.origin,
		Mbox:    "hostmaster." + z.origin,
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  ttl,
	}}
}

// reverse returns the target of the PTR record of the reverse name name
// (lower case, fully qualified) in z.
func (z *zone) reverse(name string) (string, bool) {
	a, ok := reverseAddr(name)
	if !ok {
		return "", false
	}
	return z.ptr(a)
}

// reverseAddr turns a full reverse name into its address: an IPv4 name
// such as "4.0.0.10.in-addr.arpa." (RFC 1035 section 3.5) or an IPv6 name
// of 32 nibble labels under "ip6.arpa." (RFC 3596 section 2.5). Shorter
// names (a reverse zone, not an address) give ok false.
func reverseAddr(name string) (netip.Addr, bool) {
	if rest, found := strings.CutSuffix(name, ".in-addr.arpa."); found {
		return reverseIPv4(rest)
	}
	if rest, found := strings.CutSuffix(name, ".ip6.arpa."); found {
		return reverseIPv6(rest)
	}
	return netip.Addr{}, false
}

// reverseIPv4 turns the four labels "4.0.0.10" of an in-addr.arpa name into
// the address 10.0.0.4.
func reverseIPv4(rest string) (netip.Addr, bool) {
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	parts[0], parts[1], parts[2], parts[3] = parts[3], parts[2], parts[1], parts[0]
	a, err := netip.ParseAddr(strings.Join(parts, "."))
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// reverseIPv6 turns the 32 nibble labels of an ip6.arpa name, lowest
// nibble first ("1.0.0.0...0.2.d.f"), into the IPv6 address they spell.
func reverseIPv6(rest string) (netip.Addr, bool) {
	if len(rest) != 63 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i := range 32 {
		c := rest[2*i]
		if i < 31 && rest[2*i+1] != '.' {
			return netip.Addr{}, false
		}
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return netip.Addr{}, false
		}
		n := 31 - i // nibble index from the most significant
		if n%2 == 0 {
			b[n/2] |= v << 4
		} else {
			b[n/2] |= v
		}
	}
	return netip.AddrFrom16(b), true
}

package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary bytes to ServeDNS: it must not panic, must
// reply at most once, and whatever it replies must be a DNS message with the
// query's ID. Without upstreams every answer is synchronous.
func FuzzServeDNS(f *testing.F) {
	f.Add(uint32(vniWeb), query(f, "api.", dns.TypeA))
	f.Add(uint32(vniWeb), query(f, "2.0.1.10.in-addr.arpa.", dns.TypePTR))
	f.Add(uint32(vniDB), query(f, "example.com.", dns.TypeAAAA))
	f.Add(uint32(vniWeb), []byte{0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 'x'})
	f.Add(uint32(vniWeb), []byte{0x12})
	f.Add(uint32(vniDual), query(f, "app.dual.", dns.TypeAAAA))
	f.Add(uint32(vniDual), query(f, rev(f, "fd20::2"), dns.TypePTR))
	f.Add(uint32(vniDual), query(f, rev(f, "fd20::99"), dns.TypePTR))
	s := newDualServer(f)
	f.Fuzz(func(t *testing.T, vni uint32, b []byte) {
		calls := 0
		s.ServeDNS(vni, src, b, func(answer []byte) {
			calls++
			m := new(dns.Msg)
			if err := m.Unpack(answer); err != nil {
				t.Fatalf("answer does not unpack: %v", err)
			}
			if len(b) < 2 || m.Id != uint16(b[0])<<8|uint16(b[1]) {
				t.Fatalf("answer id %#x does not match the query", m.Id)
			}
		})
		if calls > 1 {
			t.Fatalf("reply called %d times", calls)
		}
	})
}

package resolver

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	vniWeb = 100
	vniDB  = 200
)

var (
	src = netip.MustParseAddrPort("10.1.0.2:40000")

	testNets = []Network{
		{Name: "web", VNI: vniWeb, Subnet: netip.MustParsePrefix("10.1.0.0/24"), Resolver: netip.MustParseAddr("10.1.0.1")},
		{Name: "DB", VNI: vniDB, Subnet: netip.MustParsePrefix("10.2.0.0/24"), Resolver: netip.MustParseAddr("10.2.0.1")},
	}
	testRecs = []Record{
		{Name: "api", Network: "web", IP: netip.MustParseAddr("10.1.0.2"), Aliases: []string{"WWW"}},
		{Name: "Cache", Network: "web", IP: netip.MustParseAddr("10.1.0.3")},
		{Name: "pg", Network: "db", IP: netip.MustParseAddr("10.2.0.2"), Aliases: []string{"primary"}},
		{Name: "lost", Network: "nope", IP: netip.MustParseAddr("10.3.0.2")},
	}
)

// newServer returns a Server with the test table and the given upstreams
// (an empty, non-nil slice: no forwarding).
func newServer(t *testing.T, timeout time.Duration, ups ...netip.AddrPort) *Server {
	t.Helper()
	if ups == nil {
		ups = []netip.AddrPort{}
	}
	s := New(Config{Upstreams: ups, Timeout: timeout, Logger: slog.New(slog.DiscardHandler)})
	s.SetTable(NewTable(testNets, testRecs))
	return s
}

// recorder collects the answers handed to one reply function.
type recorder struct {
	calls atomic.Int32
	ch    chan []byte
}

func newRecorder() *recorder { return &recorder{ch: make(chan []byte, 2)} }

func (r *recorder) reply(b []byte) {
	r.calls.Add(1)
	r.ch <- slices.Clone(b)
}

// wait returns the answer, failing the test when there is none in time.
func (r *recorder) wait(t *testing.T, timeout time.Duration) *dns.Msg {
	t.Helper()
	select {
	case b := <-r.ch:
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("answer does not unpack: %v (% x)", err, b)
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no answer within %v", timeout)
		return nil
	}
}

// query packs a query with ID 0x1234 and RD set.
func query(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.Id = 0x1234
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// summary turns an answer section into short strings: addresses, PTR
// targets, "SOA".
func summary(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.PTR:
			out = append(out, rr.Ptr)
		case *dns.SOA:
			out = append(out, "SOA")
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestServeDNSLocal(t *testing.T) {
	edns1 := new(dns.Msg).SetQuestion("api.web.", dns.TypeA)
	edns1.Id = 0x1234
	edns1.SetEdns0(1232, false)
	edns1.IsEdns0().SetVersion(1)
	edns1Bytes, err := edns1.Pack()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		vni       uint32
		query     []byte
		noReply   bool
		rcode     int
		aa        bool
		answer    []string
		authority []string
	}{
		{
			name: "A api, byte literal",
			vni:  vniWeb,
			query: []byte{
				0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ID, RD, QDCOUNT 1
				0x03, 'a', 'p', 'i', 0x00, // api.
				0x00, 0x01, 0x00, 0x01, // A IN
			},
			rcode: dns.RcodeSuccess, aa: true, answer: []string{"10.1.0.2"},
		},
		{name: "A api.web", vni: vniWeb, query: query(t, "api.web.", dns.TypeA), rcode: dns.RcodeSuccess, aa: true, answer: []string{"10.1.0.2"}},
		{name: "alias", vni: vniWeb, query: query(t, "www.", dns.TypeA), rcode: dns.RcodeSuccess, aa: true, answer: []string{"10.1.0.2"}},
		{name: "alias under network", vni: vniWeb, query: query(t, "www.web.", dns.TypeA), rcode: dns.RcodeSuccess, aa: true, answer: []string{"10.1.0.2"}},
		{name: "mixed case", vni: vniWeb, query: query(t, "CaChE.WeB.", dns.TypeA), rcode: dns.RcodeSuccess, aa: true, answer: []string{"10.1.0.3"}},
		{name: "mixed case network in table", vni: vniDB, query: query(t, "PG.db.", dns.TypeA), rcode: dns.RcodeSuccess, aa: true, answer: []string{"10.2.0.2"}},
		{name: "ANY gives A", vni: vniWeb, query: query(t, "api.", dns.TypeANY), rcode: dns.RcodeSuccess, aa: true, answer: []string{"10.1.0.2"}},
		{name: "AAAA is no data", vni: vniWeb, query: query(t, "api.web.", dns.TypeAAAA), rcode: dns.RcodeSuccess, aa: true, authority: []string{"SOA"}},
		{name: "MX single label is no data", vni: vniWeb, query: query(t, "api.", dns.TypeMX), rcode: dns.RcodeSuccess, aa: true},
		{name: "other network's name under its network", vni: vniWeb, query: query(t, "pg.db.", dns.TypeA), rcode: dns.RcodeNameError, aa: true},
		{name: "other network's name alone", vni: vniWeb, query: query(t, "pg.", dns.TypeA), rcode: dns.RcodeNameError, aa: true},
		{name: "other network's alias", vni: vniWeb, query: query(t, "primary.", dns.TypeA), rcode: dns.RcodeNameError, aa: true},
		{name: "web name from db", vni: vniDB, query: query(t, "api.", dns.TypeA), rcode: dns.RcodeNameError, aa: true},
		{name: "web name under web from db", vni: vniDB, query: query(t, "api.web.", dns.TypeA), rcode: dns.RcodeNameError, aa: true},
		{name: "unknown single label", vni: vniWeb, query: query(t, "nosuch.", dns.TypeA), rcode: dns.RcodeNameError, aa: true},
		{name: "unknown under network", vni: vniWeb, query: query(t, "nosuch.web.", dns.TypeA), rcode: dns.RcodeNameError, aa: true, authority: []string{"SOA"}},
		{name: "deeper under network", vni: vniWeb, query: query(t, "x.api.web.", dns.TypeA), rcode: dns.RcodeNameError, aa: true, authority: []string{"SOA"}},
		{name: "network apex SOA", vni: vniWeb, query: query(t, "web.", dns.TypeSOA), rcode: dns.RcodeSuccess, aa: true, answer: []string{"SOA"}},
		{name: "network apex A is no data", vni: vniWeb, query: query(t, "web.", dns.TypeA), rcode: dns.RcodeSuccess, aa: true, authority: []string{"SOA"}},
		{name: "PTR endpoint", vni: vniWeb, query: query(t, "2.0.1.10.in-addr.arpa.", dns.TypePTR), rcode: dns.RcodeSuccess, aa: true, answer: []string{"api.web."}},
		{name: "PTR resolver", vni: vniWeb, query: query(t, "1.0.1.10.in-addr.arpa.", dns.TypePTR), rcode: dns.RcodeSuccess, aa: true, answer: []string{"resolver.web."}},
		{name: "PTR free address in subnet", vni: vniWeb, query: query(t, "99.0.1.10.in-addr.arpa.", dns.TypePTR), rcode: dns.RcodeNameError, aa: true},
		{name: "PTR other network's address is not ours", vni: vniWeb, query: query(t, "2.0.2.10.in-addr.arpa.", dns.TypePTR), rcode: dns.RcodeRefused},
		{name: "outside name without upstreams", vni: vniWeb, query: query(t, "example.com.", dns.TypeA), rcode: dns.RcodeRefused},
		{name: "unknown VNI", vni: 999, query: query(t, "api.", dns.TypeA), rcode: dns.RcodeRefused},
		{
			name:  "garbage after a readable header",
			vni:   vniWeb,
			query: []byte{0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 'x'},
			rcode: dns.RcodeFormatError,
		},
		{
			name:  "no question",
			vni:   vniWeb,
			query: []byte{0xab, 0xcd, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
			rcode: dns.RcodeFormatError,
		},
		{
			name: "opcode STATUS",
			vni:  vniWeb,
			query: []byte{
				0x12, 0x34, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // opcode 2
				0x03, 'a', 'p', 'i', 0x00, 0x00, 0x01, 0x00, 0x01,
			},
			rcode: dns.RcodeNotImplemented,
		},
		{name: "EDNS version 1", vni: vniWeb, query: edns1Bytes, rcode: dns.RcodeBadVers},
		{name: "shorter than a header", vni: vniWeb, query: []byte{0x12, 0x34, 0x01}, noReply: true},
		{
			name: "a response, not a query",
			vni:  vniWeb,
			query: []byte{
				0x12, 0x34, 0x81, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
				0x03, 'a', 'p', 'i', 0x00, 0x00, 0x01, 0x00, 0x01,
			},
			noReply: true,
		},
	}
	s := newServer(t, time.Second)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder()
			s.ServeDNS(tc.vni, src, tc.query, r.reply)
			// Local answers are synchronous: the count is final here.
			if tc.noReply {
				if n := r.calls.Load(); n != 0 {
					t.Fatalf("reply called %d times, want 0", n)
				}
				return
			}
			if n := r.calls.Load(); n != 1 {
				t.Fatalf("reply called %d times, want 1", n)
			}
			m := r.wait(t, time.Second)
			wantID := uint16(tc.query[0])<<8 | uint16(tc.query[1])
			if m.Id != wantID || !m.Response {
				t.Errorf("id %#x response %v, want id %#x response true", m.Id, m.Response, wantID)
			}
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if m.Authoritative != tc.aa {
				t.Errorf("AA %v, want %v", m.Authoritative, tc.aa)
			}
			if m.RecursionAvailable {
				t.Errorf("RA set without upstreams")
			}
			if got := summary(m.Answer); !slices.Equal(got, tc.answer) {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
			if got := summary(m.Ns); !slices.Equal(got, tc.authority) {
				t.Errorf("authority %q, want %q", got, tc.authority)
			}
			for _, rr := range m.Answer {
				if rr.Header().Rrtype != dns.TypeSOA && rr.Header().Name != m.Question[0].Name {
					t.Errorf("answer owner %q, want the question's %q", rr.Header().Name, m.Question[0].Name)
				}
				if rr.Header().Ttl != ttl {
					t.Errorf("TTL %d, want %d", rr.Header().Ttl, ttl)
				}
			}
		})
	}
}

func TestStats(t *testing.T) {
	s := newServer(t, time.Second)
	queries := []struct {
		vni   uint32
		query []byte
	}{
		{vniWeb, query(t, "api.", dns.TypeA)},             // Answered
		{vniWeb, query(t, "api.", dns.TypeAAAA)},          // Answered (no data)
		{vniWeb, query(t, "pg.db.", dns.TypeA)},           // NXDomain
		{vniWeb, query(t, "example.com.", dns.TypeA)},     // Refused
		{7, query(t, "api.", dns.TypeA)},                  // Refused
		{vniWeb, []byte{1, 2, 3}},                         // Malformed, dropped
		{vniWeb, []byte{1, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0}}, // Malformed, dropped (11 bytes)
	}
	for _, q := range queries {
		s.ServeDNS(q.vni, src, q.query, func([]byte) {})
	}
	want := Stats{Queries: 7, Answered: 2, NXDomain: 1, Refused: 2, Malformed: 2}
	if got := s.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestTruncatedWithoutEDNS(t *testing.T) {
	var recs []Record
	for i := range 60 {
		recs = append(recs, Record{Name: "n" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Network: "web",
			IP: netip.AddrFrom4([4]byte{10, 1, 0, byte(10 + i)}), Aliases: []string{"many"}})
	}
	s := New(Config{Upstreams: []netip.AddrPort{}, Logger: slog.New(slog.DiscardHandler)})
	s.SetTable(NewTable(testNets, recs))
	r := newRecorder()
	s.ServeDNS(vniWeb, src, query(t, "many.web.", dns.TypeA), r.reply)
	b := <-r.ch
	if len(b) > dns.MinMsgSize {
		t.Errorf("answer is %d bytes, more than %d without EDNS", len(b), dns.MinMsgSize)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	if !m.Truncated || len(m.Answer) == 0 || len(m.Answer) == 60 {
		t.Errorf("TC %v with %d of 60 answers, want TC and some answers", m.Truncated, len(m.Answer))
	}
}

// startUpstream runs a DNS server on loopback with handler h.
func startUpstream(t *testing.T, h dns.HandlerFunc) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, &dns.Server{PacketConn: pc, Handler: h})
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// serve starts srv, waits until it serves, and shuts it down at the end of
// the test.
func serve(t *testing.T, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("upstream: %v", err)
	}
	t.Cleanup(func() { srv.Shutdown() })
}

// silentUpstream returns a loopback UDP address that never answers.
func silentUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// answerA answers every question with 192.0.2.7, or with rcode when it is
// not success.
func answerA(rcode int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		m.Rcode = rcode
		if rcode == dns.RcodeSuccess {
			m.Answer = []dns.RR{&dns.A{
				Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(192, 0, 2, 7),
			}}
		}
		w.WriteMsg(m)
	}
}

func TestForward(t *testing.T) {
	const short = 100 * time.Millisecond
	tests := []struct {
		name      string
		upstreams func(t *testing.T) []netip.AddrPort
		rcode     int
		answer    []string
		servfail  uint64
	}{
		{
			name: "answered",
			upstreams: func(t *testing.T) []netip.AddrPort {
				return []netip.AddrPort{startUpstream(t, answerA(dns.RcodeSuccess))}
			},
			rcode: dns.RcodeSuccess, answer: []string{"192.0.2.7"},
		},
		{
			name: "first silent, second answers",
			upstreams: func(t *testing.T) []netip.AddrPort {
				return []netip.AddrPort{silentUpstream(t), startUpstream(t, answerA(dns.RcodeSuccess))}
			},
			rcode: dns.RcodeSuccess, answer: []string{"192.0.2.7"},
		},
		{
			name: "first SERVFAIL, second answers",
			upstreams: func(t *testing.T) []netip.AddrPort {
				return []netip.AddrPort{startUpstream(t, answerA(dns.RcodeServerFailure)), startUpstream(t, answerA(dns.RcodeSuccess))}
			},
			rcode: dns.RcodeSuccess, answer: []string{"192.0.2.7"},
		},
		{
			name: "NXDOMAIN is relayed",
			upstreams: func(t *testing.T) []netip.AddrPort {
				return []netip.AddrPort{startUpstream(t, answerA(dns.RcodeNameError))}
			},
			rcode: dns.RcodeNameError,
		},
		{
			name: "only REFUSED answers relay the last",
			upstreams: func(t *testing.T) []netip.AddrPort {
				return []netip.AddrPort{startUpstream(t, answerA(dns.RcodeRefused))}
			},
			rcode: dns.RcodeRefused,
		},
		{
			name:      "silent upstream",
			upstreams: func(t *testing.T) []netip.AddrPort { return []netip.AddrPort{silentUpstream(t), silentUpstream(t)} },
			rcode:     dns.RcodeServerFailure, servfail: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, short, tc.upstreams(t)...)
			r := newRecorder()
			s.ServeDNS(vniWeb, src, query(t, "example.com.", dns.TypeA), r.reply)
			m := r.wait(t, 5*time.Second)
			if m.Id != 0x1234 {
				t.Errorf("id %#x, want the query's 0x1234", m.Id)
			}
			if m.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
			}
			if !m.RecursionAvailable {
				t.Errorf("RA clear with upstreams")
			}
			if got := summary(m.Answer); !slices.Equal(got, tc.answer) {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
			st := s.Stats()
			if st.Forwarded != 1 || st.ServFail != tc.servfail {
				t.Errorf("forwarded %d servfail %d, want 1 and %d", st.Forwarded, st.ServFail, tc.servfail)
			}
			if n := r.calls.Load(); n != 1 {
				t.Errorf("reply called %d times, want 1", n)
			}
		})
	}
}

func TestForwardInFlightBound(t *testing.T) {
	release := make(chan struct{})
	var seen atomic.Int32
	up := startUpstream(t, func(w dns.ResponseWriter, req *dns.Msg) {
		seen.Add(1)
		<-release
		answerA(dns.RcodeSuccess)(w, req)
	})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // runs before the upstream's Shutdown, which waits for handlers

	s := newServer(t, 10*time.Second, up)
	recs := make([]*recorder, maxInFlight)
	for i := range recs {
		recs[i] = newRecorder()
		s.ServeDNS(vniWeb, src, query(t, "example.com.", dns.TypeA), recs[i].reply)
	}
	over := newRecorder()
	s.ServeDNS(vniWeb, src, query(t, "example.org.", dns.TypeA), over.reply)
	if n := over.calls.Load(); n != 1 {
		t.Fatalf("query beyond the bound: reply called %d times, want 1 at once", n)
	}
	if m := over.wait(t, time.Second); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("query beyond the bound: rcode %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	for i, r := range recs {
		if n := r.calls.Load(); n != 0 {
			t.Fatalf("query %d answered before the upstream did (%d calls)", i, n)
		}
	}
	// Another network has slots of its own (issue 18): its query is
	// forwarded, not refused for web's.
	other := newRecorder()
	s.ServeDNS(vniDB, netip.MustParseAddrPort("10.2.0.2:40000"), query(t, "example.net.", dns.TypeA), other.reply)
	if n := other.calls.Load(); n != 0 {
		t.Fatalf("the other network's query was answered at once (%d calls), want it forwarded", n)
	}
	recs = append(recs, other)
	free()
	for _, r := range recs {
		if m := r.wait(t, 10*time.Second); m.Rcode != dns.RcodeSuccess {
			t.Errorf("rcode %s, want NOERROR", dns.RcodeToString[m.Rcode])
		}
	}
	if st := s.Stats(); st.Forwarded != maxInFlight+1 || st.ServFail != 1 {
		t.Errorf("forwarded %d servfail %d, want %d and 1", st.Forwarded, st.ServFail, maxInFlight+1)
	}
}

func TestSetTableConcurrent(t *testing.T) {
	s := newServer(t, time.Second)
	other := NewTable(testNets, []Record{{Name: "api", Network: "web", IP: netip.MustParseAddr("10.1.0.9")}})
	first := NewTable(testNets, testRecs)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				s.SetTable(other)
			} else {
				s.SetTable(first)
			}
		}
	}()
	q := query(t, "api.web.", dns.TypeA)
	for range 500 {
		r := newRecorder()
		s.ServeDNS(vniWeb, src, q, r.reply)
		m := r.wait(t, time.Second)
		got := summary(m.Answer)
		if !slices.Equal(got, []string{"10.1.0.2"}) && !slices.Equal(got, []string{"10.1.0.9"}) {
			t.Fatalf("answer %q is from neither table", got)
		}
	}
	close(stop)
	<-done
}

func TestLookup(t *testing.T) {
	s := newServer(t, time.Second)
	tests := []struct {
		network, name string
		want          []netip.Addr
		err           string
	}{
		{"web", "api", []netip.Addr{netip.MustParseAddr("10.1.0.2")}, ""},
		{"WEB", "API.web.", []netip.Addr{netip.MustParseAddr("10.1.0.2")}, ""},
		{"web", "www", []netip.Addr{netip.MustParseAddr("10.1.0.2")}, ""},
		{"db", "primary.db", []netip.Addr{netip.MustParseAddr("10.2.0.2")}, ""},
		{"web", "pg", nil, `no name "pg" in network web`},
		{"web", "pg.db", nil, `no name "pg.db" in network web`},
		{"web", "example.com", nil, `no name "example.com" in network web`},
		{"nope", "api", nil, `no network "nope": see 'vxswitch network ls'`},
	}
	for _, tc := range tests {
		got, err := s.Lookup(tc.network, tc.name)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Lookup(%q, %q) error %v, want %q", tc.network, tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Lookup(%q, %q) = %v, %v; want %v", tc.network, tc.name, got, err, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	s := newServer(t, time.Second)
	api, cache, pg := netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.3"), netip.MustParseAddr("10.2.0.2")
	dbNames := []Name{
		{Name: "pg.db", Network: "db", IP: pg, Kind: "name"},
		{Name: "primary.db", Network: "db", IP: pg, Kind: "alias"},
	}
	webNames := []Name{
		{Name: "api.web", Network: "web", IP: api, Kind: "name"},
		{Name: "cache.web", Network: "web", IP: cache, Kind: "name"},
		{Name: "www.web", Network: "web", IP: api, Kind: "alias"},
	}
	tests := []struct {
		network string
		want    []Name
	}{
		{"", append(slices.Clone(dbNames), webNames...)},
		{"web", webNames},
		{"Db", dbNames},
		{"nope", nil},
	}
	for _, tc := range tests {
		if got := s.Names(tc.network); !slices.Equal(got, tc.want) {
			t.Errorf("Names(%q) = %+v, want %+v", tc.network, got, tc.want)
		}
	}
	// The result is a copy: changing it does not change the table.
	s.Names("web")[0].Name = "changed"
	if got := s.Names("web"); got[0].Name != "api.web" {
		t.Errorf("Names returned the table's own slice")
	}
}

func TestEmptyServerRefuses(t *testing.T) {
	s := New(Config{Upstreams: []netip.AddrPort{}, Logger: slog.New(slog.DiscardHandler)})
	r := newRecorder()
	s.ServeDNS(vniWeb, src, query(t, "api.", dns.TypeA), r.reply)
	if m := r.wait(t, time.Second); m.Rcode != dns.RcodeRefused {
		t.Errorf("rcode %s before SetTable, want REFUSED", dns.RcodeToString[m.Rcode])
	}
	if got := s.Names(""); got != nil {
		t.Errorf("Names before SetTable = %v, want none", got)
	}
}

func TestReadResolvConf(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    []netip.AddrPort
		wantErr bool
	}{
		{
			name:    "loopback stub and IPv6 kept",
			content: "# comment\nnameserver 127.0.0.53\nnameserver 2001:db8::1\nsearch example\noptions ndots:2\n",
			want:    []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53"), netip.MustParseAddrPort("[2001:db8::1]:53")},
		},
		{name: "no nameservers", content: "search example\n"},
		{name: "not an address", content: "nameserver dns.example\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readResolvConf(path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("upstreams %v, want %v", got, tc.want)
			}
		})
	}
	_, err := readResolvConf(filepath.Join(dir, "missing"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestNewTableIgnores(t *testing.T) {
	tab := NewTable(
		[]Network{{Name: "", VNI: 1}, {Name: "web", VNI: vniWeb, Subnet: netip.MustParsePrefix("10.1.0.0/24")}},
		[]Record{
			{Name: "lost", Network: "nope", IP: netip.MustParseAddr("10.1.0.5")},
			{Name: "", Network: "web", IP: netip.MustParseAddr("10.1.0.6")},
			{Name: "noip", Network: "web"},
			{Name: "ok", Network: "web", IP: netip.MustParseAddr("10.1.0.7")},
		})
	if tab.zoneByVNI(1) != nil {
		t.Errorf("network without a name was kept")
	}
	z := tab.zoneByVNI(vniWeb)
	if z == nil {
		t.Fatal("network web missing")
	}
	if names := z.names(); len(names) != 1 || names[0].Name != "ok.web" {
		t.Errorf("names %+v, want only ok.web", names)
	}
}

// Package resolver answers the DNS queries that endpoints send to their
// network's resolver address. It runs inside the agent, in-band with the
// switch: names of the querying network come from a Table built from the
// replicated state, every other name is forwarded to the host's upstream
// resolvers.
//
// A network called N answers, for every endpoint X with address A attached
// to it, the names "X." and "X.N." (and the same for each alias) with an A
// record, and the reverse name of A with a PTR record pointing to "X.N."
// (RFC 1035 section 3.5). An endpoint of a dual-stack network also has an
// IPv6 address, answered with an AAAA record beside the A record and a PTR
// record under ip6.arpa (RFC 3596). Networks are isolated: a name of
// another network gives NXDOMAIN. A network name therefore shadows a
// top-level domain of the same name. Queries come over UDP (ServeDNS), where answers larger
// than the client can take are truncated with the TC bit set, or over TCP
// (ServeDNSTCP), where they are not (RFC 7766): the switch runs the TCP
// connection and hands over each query without its 2-byte length.
package resolver

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

const (
	// ttl is the TTL in seconds of every record the resolver makes up:
	// short, so that a detach is forgotten by caches within seconds.
	ttl = 5
	// maxInFlight bounds the forwarded queries of one network waiting for
	// an upstream, so that one network's endpoints cannot take the
	// forwarding slots of the others.
	maxInFlight = 64
	// maxInFlightTotal bounds the forwarded queries of all networks.
	maxInFlightTotal = 1024
	// defaultTimeout is the per-upstream timeout when Config.Timeout is 0.
	defaultTimeout = 2 * time.Second
	// ednsSize is the UDP payload size the resolver advertises and answers
	// up to when the query carries EDNS (RFC 6891 section 6.2.5).
	ednsSize = 1232
	// resolvConf is read by New when Config.Upstreams is nil.
	resolvConf = "/etc/resolv.conf"
)

// Config configures a Server. The zero value forwards to the nameservers
// of /etc/resolv.conf with a 2 s timeout and logs to slog.Default().
type Config struct {
	// Upstreams are the resolvers names outside the table are forwarded
	// to, tried in order. nil means: read the nameservers of
	// /etc/resolv.conf once, at New. An empty non-nil slice means no
	// forwarding: such names are answered REFUSED. Loopback nameservers
	// such as systemd-resolved's 127.0.0.53 are kept: the agent runs in the
	// host's network namespace, where they work.
	Upstreams []netip.AddrPort
	// Timeout bounds one query to one upstream; 0 (or less) means 2 s.
	Timeout time.Duration
	// Logger receives the few non-per-query messages; nil means slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of a Server's counters. Every query counted in
// Queries ends in at most one of the other counters, except Forwarded
// queries, which are also counted in ServFail when no upstream answers.
type Stats struct {
	Queries   uint64 // calls of ServeDNS
	Answered  uint64 // answered from the table with NOERROR (including no-data answers)
	NXDomain  uint64 // answered from the table with NXDOMAIN
	Forwarded uint64 // handed to the upstreams
	ServFail  uint64 // answered SERVFAIL by this server: all upstreams failed, or too many in flight
	Refused   uint64 // answered REFUSED: no upstreams, or a VNI the table does not know
	Malformed uint64 // not a valid query: answered FORMERR, or dropped when even the header is unreadable or it is a response
	NotImp    uint64 // answered NOTIMP: an opcode other than QUERY
}

// Server answers DNS queries for the networks of its Table. Create it with
// New; the zero value is not usable. All methods are safe for concurrent
// use; SetTable may run while queries are being answered.
type Server struct {
	table     atomic.Pointer[Table]
	upstreams []netip.AddrPort
	timeout   time.Duration
	log       *slog.Logger

	// slotMu guards the counts of forwarded queries in flight: per VNI
	// (inFlight, at most maxInFlight each) and in all (inFlightAll, at
	// most maxInFlightTotal).
	slotMu      sync.Mutex
	inFlight    map[uint32]int
	inFlightAll int

	queries, answered, nxdomain, forwarded atomic.Uint64
	servfail, refused, malformed, notimp   atomic.Uint64
}

// New returns a Server with an empty table: until SetTable is called every
// query is answered REFUSED. When cfg.Upstreams is nil it reads
// /etc/resolv.conf; a missing or unreadable file means no forwarding and a
// warning in the log.
func New(cfg Config) *Server {
	s := &Server{
		upstreams: slices.Clone(cfg.Upstreams),
		timeout:   cfg.Timeout,
		inFlight:  map[uint32]int{},
		log:       cfg.Logger,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.timeout <= 0 {
		s.timeout = defaultTimeout
	}
	if cfg.Upstreams == nil {
		ups, err := readResolvConf(resolvConf)
		if err != nil {
			s.log.Warn("resolver: no upstream resolvers, names outside the networks will be refused", "err", err)
		}
		s.upstreams = ups
	}
	s.log.Info("resolver: upstreams", "upstreams", s.upstreams, "timeout", s.timeout)
	s.table.Store(NewTable(nil, nil))
	return s
}

// readResolvConf returns the nameservers of a resolv.conf(5) file with the
// file's port (53 unless it says otherwise).
func readResolvConf(path string) ([]netip.AddrPort, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("resolver: read %s: %w", path, err)
	}
	port, err := strconv.ParseUint(cc.Port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("resolver: read %s: bad port %q: %w", path, cc.Port, err)
	}
	var ups []netip.AddrPort
	for _, ns := range cc.Servers {
		a, err := netip.ParseAddr(ns)
		if err != nil {
			return ups, fmt.Errorf("resolver: read %s: nameserver %q is not an IP address: %w", path, ns, err)
		}
		ups = append(ups, netip.AddrPortFrom(a, uint16(port)))
	}
	return ups, nil
}

// SetTable replaces the table with an atomic pointer swap. A query already
// being answered finishes with the table it started with. nil means an
// empty table.
func (s *Server) SetTable(t *Table) {
	if t == nil {
		t = NewTable(nil, nil)
	}
	s.table.Store(t)
}

// Upstreams returns the resolvers that forwarded queries go to.
func (s *Server) Upstreams() []netip.AddrPort {
	return slices.Clone(s.upstreams)
}

// ServeDNS answers one DNS query (a UDP payload, RFC 1035 section 4.2.1)
// that an endpoint of the network with this VNI sent from src to its
// resolver address. It calls reply exactly once with the packed answer,
// except for input that is not a query at all (shorter than a DNS header,
// or a response), which is dropped. Names of the network are answered at
// once; other names are forwarded from a new goroutine, and reply is called
// from there. ServeDNS never blocks on the network. It satisfies the
// switch's DNSHandler interface.
func (s *Server) ServeDNS(vni uint32, src netip.AddrPort, query []byte, reply func([]byte)) {
	s.serve(vni, query, udpReply{reply})
}

// ServeDNSTCP is ServeDNS for a query that came over TCP (RFC 7766; query
// and answer are without their 2-byte length prefix): the answer is never
// truncated below the 65535 bytes a DNS message over TCP can have, and
// names forwarded to an upstream that answers with TC set are asked again
// over TCP. It calls reply exactly once, with nil for input that is not a
// query at all, so that the caller knows no answer is coming. It satisfies
// the switch's optional interface for DNS over TCP.
func (s *Server) ServeDNSTCP(vni uint32, src netip.AddrPort, query []byte, reply func([]byte)) {
	s.serve(vni, query, tcpReply{reply})
}

// replier sends the answer to one query, over UDP or TCP.
type replier interface {
	// reply sends the packed answer b; nil means no answer.
	reply(b []byte)
	// maxSize is the largest answer for a query that allows size bytes by
	// EDNS (0 without EDNS).
	maxSize(size int) int
	// tcp reports whether the query came over TCP.
	tcp() bool
}

// udpReply answers a query that came over UDP: at most 512 bytes, or the
// EDNS size up to ednsSize (RFC 1035 section 4.2.1, RFC 6891); nothing for
// input that is not a query.
type udpReply struct{ f func([]byte) }

func (r udpReply) reply(b []byte) {
	if b != nil {
		r.f(b)
	}
}

func (r udpReply) maxSize(size int) int {
	if size == 0 {
		return dns.MinMsgSize
	}
	return min(size, ednsSize)
}

func (r udpReply) tcp() bool { return false }

// tcpReply answers a query that came over TCP: up to dns.MaxMsgSize bytes.
type tcpReply struct{ f func([]byte) }

func (r tcpReply) reply(b []byte)       { r.f(b) }
func (r tcpReply) maxSize(size int) int { return dns.MaxMsgSize }
func (r tcpReply) tcp() bool            { return true }

// serve answers query from an endpoint of the network vni through reply:
// the work of ServeDNS and ServeDNSTCP.
func (s *Server) serve(vni uint32, query []byte, reply replier) {
	s.queries.Add(1)
	req := new(dns.Msg)
	if err := req.Unpack(query); err != nil {
		s.malformed.Add(1)
		// Unpack fills in the header before it fails on the sections.
		if len(query) < 12 || req.Response {
			reply.reply(nil)
			return
		}
		s.send(reply, new(dns.Msg).SetRcodeFormatError(req))
		return
	}
	if req.Response {
		s.malformed.Add(1)
		reply.reply(nil)
		return
	}
	if req.Opcode != dns.OpcodeQuery {
		s.notimp.Add(1)
		s.send(reply, s.answer(req, dns.RcodeNotImplemented))
		return
	}
	if len(req.Question) != 1 {
		s.malformed.Add(1)
		s.send(reply, s.answer(req, dns.RcodeFormatError))
		return
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		// RFC 6891 section 6.1.3: only EDNS version 0 exists.
		s.malformed.Add(1)
		s.send(reply, s.answer(req, dns.RcodeBadVers))
		return
	}

	t := s.table.Load()
	z := t.zoneByVNI(vni)
	if z == nil {
		s.refused.Add(1)
		s.send(reply, s.answer(req, dns.RcodeRefused))
		return
	}
	if m, ok := t.local(z, req.Question[0]); ok {
		resp := s.answer(req, m.rcode)
		resp.Authoritative = true
		resp.Answer = m.answer
		resp.Ns = m.authority
		if m.rcode == dns.RcodeNameError {
			s.nxdomain.Add(1)
		} else {
			s.answered.Add(1)
		}
		s.send(reply, resp)
		return
	}
	if len(s.upstreams) == 0 {
		s.refused.Add(1)
		s.send(reply, s.answer(req, dns.RcodeRefused))
		return
	}
	if !s.takeSlot(vni) {
		s.servfail.Add(1)
		s.send(reply, s.answer(req, dns.RcodeServerFailure))
		return
	}
	s.forwarded.Add(1)
	go func() {
		defer s.freeSlot(vni)
		s.send(reply, s.exchange(req, reply.tcp()))
	}()
}

// takeSlot takes a forwarding slot for network vni: one of the network's
// maxInFlight and one of the server's maxInFlightTotal. It reports false,
// taking nothing, when either is used up.
func (s *Server) takeSlot(vni uint32) bool {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	if s.inFlight[vni] >= maxInFlight || s.inFlightAll >= maxInFlightTotal {
		return false
	}
	s.inFlight[vni]++
	s.inFlightAll++
	return true
}

// freeSlot gives back a slot taken by takeSlot.
func (s *Server) freeSlot(vni uint32) {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	s.inFlightAll--
	if s.inFlight[vni]--; s.inFlight[vni] <= 0 {
		delete(s.inFlight, vni)
	}
}

// answer starts a reply to req with rcode: same ID and question, RA set
// when there are upstreams, and an OPT record when req had one.
func (s *Server) answer(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Rcode = rcode
	m.RecursionAvailable = len(s.upstreams) > 0
	if req.IsEdns0() != nil {
		m.SetEdns0(ednsSize, false)
	}
	return m
}

// exchange asks each upstream in turn and returns the first useful answer
// with req's ID and the RA bit set. An upstream that answers SERVFAIL, REFUSED or NOTIMP is
// skipped like one that times out; if all do, the last such answer is
// returned, and if none answered at all, a SERVFAIL made here. When tcp is
// set (the query came over TCP), an upstream whose UDP answer is truncated
// is asked again over TCP, and its truncated answer is kept if that fails.
func (s *Server) exchange(req *dns.Msg, tcp bool) *dns.Msg {
	q := req.Copy()
	q.Id = dns.Id() // our own ID towards the upstream, not the endpoint's
	c := &dns.Client{Net: "udp", Timeout: s.timeout}
	var last *dns.Msg
	for _, up := range s.upstreams {
		resp, _, err := c.Exchange(q, up.String())
		if err != nil {
			continue
		}
		if tcp && resp.Truncated {
			tc := &dns.Client{Net: "tcp", Timeout: s.timeout}
			if full, _, err := tc.Exchange(q, up.String()); err == nil {
				resp = full
			}
		}
		resp.Id = req.Id
		resp.RecursionAvailable = true // we offer recursion, through the upstream
		switch resp.Rcode {
		case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented:
			last = resp
			continue
		}
		return resp
	}
	if last != nil {
		return last
	}
	s.servfail.Add(1)
	return s.answer(req, dns.RcodeServerFailure)
}

// send packs m and calls reply with it. Answers larger than the client can
// take are truncated with the TC bit set (over UDP, RFC 1035 section
// 4.2.1: 512 bytes without EDNS; over TCP, 65535 bytes).
func (s *Server) send(reply replier, m *dns.Msg) {
	size := 0
	if opt := m.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
	}
	m.Truncate(reply.maxSize(size))
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		// Cannot happen for messages built from a parsed query; answer
		// with the bare header so the client still hears back.
		bare := &dns.Msg{MsgHdr: m.MsgHdr}
		bare.Rcode = dns.RcodeServerFailure
		if b, err = bare.Pack(); err != nil {
			reply.reply(nil)
			return
		}
	}
	reply.reply(b)
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Queries:   s.queries.Load(),
		Answered:  s.answered.Load(),
		NXDomain:  s.nxdomain.Load(),
		Forwarded: s.forwarded.Load(),
		ServFail:  s.servfail.Load(),
		Refused:   s.refused.Load(),
		Malformed: s.malformed.Load(),
		NotImp:    s.notimp.Load(),
	}
}

// Lookup returns the addresses a query for name from the network called
// network would get, as the answers to an A and an AAAA query, sorted
// (IPv4 first). name may be "X", "X." or "X.NETWORK"; case does not matter. Only
// names of the table are looked up, nothing is forwarded.
func (s *Server) Lookup(network, name string) ([]netip.Addr, error) {
	z := s.table.Load().zoneByName(network)
	if z == nil {
		return nil, fmt.Errorf("no network %q: see 'vxswitch network ls'", network)
	}
	found, _ := z.lookup(strings.ToLower(dns.Fqdn(name)))
	if len(found) == 0 {
		return nil, fmt.Errorf("no name %q in network %s", name, z.net.Name)
	}
	addrs := make([]netip.Addr, len(found))
	for i, a := range found {
		addrs[i] = a.ip
	}
	return addrs, nil
}

// Names lists the names the network called network answers, sorted by name;
// network "" lists every network's names, sorted by network, then name. An
// unknown network has no names.
func (s *Server) Names(network string) []Name { return s.table.Load().Names(network) }

// Names lists the names the network called network answers in t, as
// Server.Names does. It builds the list (O(n log n) in the names), so
// it is for people and tests, not for answering queries.
func (t *Table) Names(network string) []Name {
	if t == nil {
		return nil
	}
	if network != "" {
		z := t.zoneByName(network)
		if z == nil {
			return nil
		}
		return z.names()
	}
	nets := make([]string, 0, len(t.byName))
	for n := range t.byName {
		nets = append(nets, n)
	}
	slices.Sort(nets)
	var all []Name
	for _, n := range nets {
		all = append(all, t.byName[n].names()...)
	}
	return all
}

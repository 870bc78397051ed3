package resolver

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// manyServer returns a Server whose network "web" has 60 endpoints that
// all carry the alias "many", so that "many.web." has 60 A records: more
// than 512 bytes.
func manyServer(t *testing.T) *Server {
	t.Helper()
	var recs []Record
	for i := range 60 {
		recs = append(recs, Record{Name: fmt.Sprintf("n%02d", i), Network: "web",
			IP: netip.AddrFrom4([4]byte{10, 1, 0, byte(10 + i)}), Aliases: []string{"many"}})
	}
	s := New(Config{Upstreams: []netip.AddrPort{}, Logger: slog.New(slog.DiscardHandler)})
	s.SetTable(NewTable(testNets, recs))
	return s
}

func TestServeDNSTCPNotTruncated(t *testing.T) {
	s := manyServer(t)
	for _, edns := range []bool{false, true} {
		t.Run(fmt.Sprintf("edns=%v", edns), func(t *testing.T) {
			q := new(dns.Msg).SetQuestion("many.web.", dns.TypeA)
			if edns {
				q.SetEdns0(1232, false)
			}
			b, err := q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			r := newRecorder()
			s.ServeDNSTCP(vniWeb, src, b, r.reply)
			m := r.wait(t, time.Second)
			if m.Truncated || len(m.Answer) != 60 || m.Rcode != dns.RcodeSuccess {
				t.Errorf("TC %v, rcode %d, %d answers; want no TC, NOERROR, 60 answers", m.Truncated, m.Rcode, len(m.Answer))
			}
			if n := r.calls.Load(); n != 1 {
				t.Errorf("reply called %d times, want 1", n)
			}
		})
	}
}

// TestServeDNSTCPNoAnswer: input that is not a query gets reply(nil) over
// TCP, exactly once, where ServeDNS would not call reply at all.
func TestServeDNSTCPNoAnswer(t *testing.T) {
	resp := new(dns.Msg).SetQuestion("api.web.", dns.TypeA)
	resp.Response = true
	respBytes, err := resp.Pack()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		input []byte
	}{
		{"empty", nil},
		{"short header", []byte{0x12, 0x34, 0x01}},
		{"a response", respBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, time.Second)
			r := newRecorder()
			s.ServeDNSTCP(vniWeb, src, tt.input, r.reply)
			select {
			case b := <-r.ch:
				if b != nil {
					t.Errorf("reply(% x), want reply(nil)", b)
				}
			default:
				t.Fatal("reply not called")
			}
			if n := r.calls.Load(); n != 1 {
				t.Errorf("reply called %d times, want 1", n)
			}
			if st := s.Stats(); st.Malformed != 1 {
				t.Errorf("Malformed = %d, want 1", st.Malformed)
			}
			u := newRecorder()
			s.ServeDNS(vniWeb, src, tt.input, u.reply)
			if n := u.calls.Load(); n != 0 {
				t.Errorf("ServeDNS called reply %d times, want 0", n)
			}
		})
	}
}

// startDualUpstream runs a DNS server on the same loopback port over UDP,
// where it answers with TC set and no records, and over TCP, where it
// answers with one A record.
func startDualUpstream(t *testing.T) netip.AddrPort {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 10 { // the UDP port may be taken for TCP: try another
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no loopback port free for both UDP and TCP")
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
			m := new(dns.Msg).SetReply(req)
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
		answerA(dns.RcodeSuccess)(w, req)
	})
	serve(t, &dns.Server{PacketConn: pc, Handler: h})
	serve(t, &dns.Server{Listener: ln, Handler: h})
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// TestForwardTruncatedOverTCP: a query that came over TCP and is forwarded
// to an upstream whose UDP answer is truncated is asked again over TCP;
// one that came over UDP keeps the truncated answer.
func TestForwardTruncatedOverTCP(t *testing.T) {
	up := startDualUpstream(t)
	s := newServer(t, 2*time.Second, up)

	r := newRecorder()
	s.ServeDNSTCP(vniWeb, src, query(t, "example.com.", dns.TypeA), r.reply)
	m := r.wait(t, 5*time.Second)
	if m.Truncated || len(m.Answer) != 1 || m.Id != 0x1234 {
		t.Errorf("over TCP: TC %v, %d answers, ID %#x; want the upstream's TCP answer with ID 0x1234", m.Truncated, len(m.Answer), m.Id)
	}

	u := newRecorder()
	s.ServeDNS(vniWeb, src, query(t, "example.com.", dns.TypeA), u.reply)
	m = u.wait(t, 5*time.Second)
	if !m.Truncated || len(m.Answer) != 0 {
		t.Errorf("over UDP: TC %v, %d answers; want the truncated UDP answer", m.Truncated, len(m.Answer))
	}
}

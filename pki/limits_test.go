package pki

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestListenerHandshakeLimit: silent clients (a slowloris) from one
// address hold at most MaxHandshakesPerSource handshakes; the next
// connection is closed at once and counted, a member from another address
// still gets through, and once the silent clients go their address may
// connect again.
func TestListenerHandshakeLimit(t *testing.T) {
	ca := newTestCA(t)
	l := serveEcho(t, newTestIdentity(t, ca, "h1").ServerTLS(tls.RequireAndVerifyClientCert))
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range MaxHandshakesPerSource {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	waitFor(t, "every silent connection in its handshake", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.total == MaxHandshakesPerSource
	})
	over, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection over the per-source limit: read %v, want EOF (closed at once)", err)
	}
	if l.Limited() != 1 || l.Refused() != 1 {
		t.Fatalf("limited %d refused %d, want 1 and 1", l.Limited(), l.Refused())
	}
	// Another source address (127.0.0.2 is loopback too) is not held up.
	d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}, Config: newTestIdentity(t, ca, "h2").ClientTLS()}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("a member from another address: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); err != nil || string(b) != "h2" {
		t.Fatalf("a member from another address read %q, %v", b, err)
	}
	c.Close()
	for _, c := range silent {
		c.Close()
	}
	silent = nil
	waitFor(t, "the silent clients' address to connect again", func() bool {
		got, err := exchange(l, newTestIdentity(t, ca, "h3").ClientTLS())
		return err == nil && got == "h3"
	})
}

// TestExpectPeer: a client that dials a member expecting its name and key
// fails the handshake with a node of the same CA that has another name, or
// the right name with another key (a minted certificate); it succeeds
// with the member itself, and with the name alone when no key is recorded.
func TestExpectPeer(t *testing.T) {
	ca := newTestCA(t)
	h2 := newTestIdentity(t, ca, "h2")
	client := newTestIdentity(t, ca, "h1").ClientTLS()
	for _, tc := range []struct {
		what   string
		server *Identity
		name   string
		keyFP  string
		err    string
	}{
		{"the member", h2, "h2", h2.KeyFingerprint(), ""},
		{"no key recorded", h2, "h2", "", ""},
		{"another host", newTestIdentity(t, ca, "h3"), "h2", h2.KeyFingerprint(), `dialled host "h2", but the peer presented the certificate of host "h3"`},
		{"a minted certificate", newTestIdentity(t, ca, "h2"), "h2", h2.KeyFingerprint(), "with a key other than the one the cluster records"},
		{"another CA", newTestIdentity(t, newTestCA(t), "h2"), "h2", "", "certificate"},
	} {
		l := serveEcho(t, tc.server.ServerTLS(tls.RequireAndVerifyClientCert))
		got, err := exchange(l, ExpectPeer(client, tc.name, tc.keyFP))
		switch {
		case tc.err == "" && (err != nil || got != "h1"):
			t.Errorf("%s: %q %v, want the exchange to succeed", tc.what, got, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %q %v, want an error containing %q", tc.what, got, err, tc.err)
		}
		l.Close()
	}
	if client.VerifyConnection == nil || client.Certificates == nil {
		t.Error("ExpectPeer changed the configuration it copies")
	}
}

// TestSourceLimit: at most MaxConnsPerSource connections from one address.
func TestSourceLimit(t *testing.T) {
	var s SourceLimit
	conn := func(ip string) net.Conn {
		return fakeConn{&net.TCPAddr{IP: net.ParseIP(ip), Port: 1}}
	}
	for range MaxConnsPerSource {
		if !s.Add(conn("10.0.0.1")) {
			t.Fatal("refused a connection under the limit")
		}
	}
	if s.Add(conn("10.0.0.1")) {
		t.Fatal("admitted a connection over the limit")
	}
	if !s.Add(conn("10.0.0.2")) {
		t.Fatal("another address was refused")
	}
	s.Done(conn("10.0.0.1"))
	if !s.Add(conn("::ffff:10.0.0.1")) {
		t.Fatal("a connection given back was not available again (IPv4-mapped address)")
	}
}

type fakeConn struct{ remote net.Addr }

func (c fakeConn) RemoteAddr() net.Addr           { return c.remote }
func (fakeConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (fakeConn) Write(b []byte) (int, error)      { return len(b), nil }
func (fakeConn) Close() error                     { return nil }
func (fakeConn) LocalAddr() net.Addr              { return nil }
func (fakeConn) SetDeadline(time.Time) error      { return nil }
func (fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (fakeConn) SetWriteDeadline(time.Time) error { return nil }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

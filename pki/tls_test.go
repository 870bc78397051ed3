package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func newTestIdentity(t *testing.T, ca *CA, name string) *Identity {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseIdentity(ca.CertPEM(), certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// serveEcho runs a Listener on loopback that answers each accepted
// connection with the peer's certificate name, then closes it.
func serveEcho(t *testing.T, conf *tls.Config) *Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, conf, nil, "test")
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cs := c.(*tls.Conn).ConnectionState()
			name, ok := PeerName(&cs)
			if !ok {
				name = "anonymous"
			}
			c.Write([]byte(name))
			c.Close()
		}
	}()
	return l
}

// exchange dials l with conf and returns what the server wrote.
func exchange(l *Listener, conf *tls.Config) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: conf}).DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// waitRefused polls until l has refused n connections.
func waitRefused(t *testing.T, l *Listener, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.Refused() != n {
		if time.Now().After(deadline) {
			t.Fatalf("refused %d connections, want %d", l.Refused(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMutualTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	h1, h2 := newTestIdentity(t, ca, "h1"), newTestIdentity(t, ca, "h2")
	stranger := newTestIdentity(t, other, "h2")
	l := serveEcho(t, h1.ServerTLS(tls.RequireAndVerifyClientCert))

	got, err := exchange(l, h2.ClientTLS())
	if err != nil || got != "h2" {
		t.Fatalf("member h2: got %q, %v; want h2", got, err)
	}

	// No client certificate: with TLS 1.3 the client learns it on its
	// first read; the server never hands the connection out.
	noCert := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	if got, err := exchange(l, noCert); err == nil || got != "" {
		t.Fatalf("no client certificate: got %q, %v; want an error", got, err)
	}
	waitRefused(t, l, 1)

	// A certificate of another CA, as client.
	if got, err := exchange(l, stranger.ClientTLS()); err == nil || got != "" {
		t.Fatalf("client of another CA: got %q, %v; want an error", got, err)
	}
	waitRefused(t, l, 2)

	// A server of another CA: the member refuses it.
	ls := serveEcho(t, stranger.ServerTLS(tls.RequireAndVerifyClientCert))
	if _, err := exchange(ls, h2.ClientTLS()); err == nil {
		t.Fatal("member accepted a server of another CA")
	}

	// Plain TCP is no TLS handshake.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("POST /v1/internal/apply HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if len(b) > 0 && b[0] != 0x15 { // 0x15: a TLS alert record, RFC 8446 section 5.1
		t.Fatalf("plain TCP got %q, want nothing or a TLS alert", b)
	}
	waitRefused(t, l, 3)
}

func TestOptionalClientCert(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	h1, h2 := newTestIdentity(t, ca, "h1"), newTestIdentity(t, ca, "h2")
	l := serveEcho(t, h1.ServerTLS(tls.VerifyClientCertIfGiven))
	if got, err := exchange(l, h2.ClientTLS()); err != nil || got != "h2" {
		t.Fatalf("member: got %q, %v; want h2", got, err)
	}
	if got, err := exchange(l, JoinTLS(ca.Digest(), nil)); err != nil || got != "anonymous" {
		t.Fatalf("joining host: got %q, %v; want anonymous", got, err)
	}
	// A certificate that is given must be of this CA.
	if _, err := exchange(l, newTestIdentity(t, other, "h3").ClientTLS()); err == nil {
		t.Fatal("a client of another CA was accepted")
	}
	waitRefused(t, l, 1)
}

func TestJoinTLS(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	l := serveEcho(t, newTestIdentity(t, ca, "h1").ServerTLS(tls.VerifyClientCertIfGiven))

	var got *x509.Certificate
	if _, err := exchange(l, JoinTLS(ca.Digest(), func(c *x509.Certificate) { got = c })); err != nil {
		t.Fatalf("join with the right digest: %v", err)
	}
	if got == nil || Digest(got) != ca.Digest() {
		t.Fatal("JoinTLS did not report the verified CA")
	}
	_, err := exchange(l, JoinTLS(other.Digest(), func(*x509.Certificate) { t.Error("gotCA called on a mismatch") }))
	if !errors.Is(err, ErrCADigestMismatch) {
		t.Fatalf("join with another CA's digest = %v, want ErrCADigestMismatch", err)
	}
	// A server presenting the right CA but a node certificate signed by
	// another key does not pass either.
	forged := newTestIdentity(t, other, "h1")
	forged.cert.Certificate[1] = ca.Cert.Raw
	lf := serveEcho(t, forged.ServerTLS(tls.VerifyClientCertIfGiven))
	if _, err := exchange(lf, JoinTLS(ca.Digest(), nil)); !errors.Is(err, ErrCADigestMismatch) {
		t.Fatalf("join to a server whose leaf is not from the CA = %v, want ErrCADigestMismatch", err)
	}
}

func TestListenerClose(t *testing.T) {
	ca := newTestCA(t)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, newTestIdentity(t, ca, "h1").ServerTLS(tls.RequireAndVerifyClientCert), nil, "test")
	// A client that connects and says nothing holds a handshake open;
	// Close must not wait for its timeout.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	l.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a silent client", d)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
	}
}

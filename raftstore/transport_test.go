package raftstore

import (
	"crypto/tls"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"vxswitch/pki"
)

// tlsFor returns the raft TLS configuration of host name under ca.
func tlsFor(t *testing.T, ca *pki.CA, name string) *TLS {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.ParseIdentity(ca.CertPEM(), certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &TLS{Server: id.ServerTLS(tls.RequireAndVerifyClientCert), Client: id.ClientTLS()}
}

func openTLS(t *testing.T, id string, conf *TLS, bootstrap bool) *Store {
	t.Helper()
	s, err := Open(Config{ID: id, Dir: t.TempDir(), Bind: "127.0.0.1:0", Bootstrap: bootstrap, TLS: conf})
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func refused(s *Store) uint64 {
	n, _ := strconv.ParseUint(s.Stats()["tls_refused"], 10, 64)
	return n
}

// TestTLSTransport runs raft over mutual TLS on loopback: members of one CA
// replicate; a connection without a certificate, and a node of another CA,
// are refused at the handshake and counted.
func TestTLSTransport(t *testing.T) {
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	n1 := openTLS(t, "n1", tlsFor(t, ca, "n1"), true)
	n2 := openTLS(t, "n2", tlsFor(t, ca, "n2"), false)
	waitFor(t, 10*time.Second, "n1 to lead", func() bool { return n1.Role() == "leader" })
	if _, err := n1.Join("n2", n2.Addr()); err != nil {
		t.Fatalf("join n2: %v", err)
	}
	applyOK(t, n1, Command{Op: OpHostAdd, Host: &Host{Name: "n1", VTEP: netip.MustParseAddr("10.0.0.1")}})
	waitFor(t, 10*time.Second, "n2 to replicate over TLS", func() bool { _, ok := n2.State().Hosts["n1"]; return ok })

	// No client certificate: the TLS 1.3 client sees the refusal on its
	// first read; raft never sees the connection.
	before := refused(n1)
	c, err := tls.Dial("tcp", n1.Addr(), &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})
	if err == nil {
		c.Write([]byte{0}) // rpcAppendEntries, if it ever got that far
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(c); err == nil || len(b) > 0 {
			t.Errorf("a client without a certificate read %q, %v; want a handshake error", b, err)
		}
		c.Close()
	}
	waitFor(t, 5*time.Second, "n1 to count the refusal", func() bool { return refused(n1) == before+1 })

	// A node of another CA is added to the configuration but never gets
	// the log: n1 refuses its server certificate, it refuses n1's client
	// certificate.
	stranger := openTLS(t, "n3", tlsFor(t, other, "n3"), false)
	if _, err := n1.Join("n3", stranger.Addr()); err != nil {
		t.Fatalf("join n3: %v", err)
	}
	applyOK(t, n1, Command{Op: OpHostAdd, Host: &Host{Name: "n2", VTEP: netip.MustParseAddr("10.0.0.2")}})
	waitFor(t, 10*time.Second, "the stranger to refuse n1", func() bool { return refused(stranger) > 0 })
	if st := stranger.State(); len(st.Hosts) != 0 {
		t.Fatalf("a node of another CA got the state: %v", st.Hosts)
	}
}

func notMember(s *Store) uint64 {
	n, _ := strconv.ParseUint(s.Stats()["refused_not_member"], 10, 64)
	return n
}

// TestTLSTransportRefusesRemovedHost checks that a host removed from the
// cluster can no longer speak raft with its still valid certificate, while
// a member's connection is kept.
func TestTLSTransportRefusesRemovedHost(t *testing.T) {
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	conf2, conf3 := tlsFor(t, ca, "n2"), tlsFor(t, ca, "n3")
	n1 := openTLS(t, "n1", tlsFor(t, ca, "n1"), true)
	n2 := openTLS(t, "n2", conf2, false)
	n3 := openTLS(t, "n3", conf3, false)
	waitFor(t, 10*time.Second, "n1 to lead", func() bool { return n1.Role() == "leader" })
	for _, s := range []*Store{n2, n3} {
		if _, err := n1.Join(s.ID(), s.Addr()); err != nil {
			t.Fatalf("join %s: %v", s.ID(), err)
		}
	}
	applyOK(t, n1, Command{Op: OpHostAdd, Host: &Host{Name: "n1", VTEP: netip.MustParseAddr("10.0.0.1")}})
	waitFor(t, 10*time.Second, "n3 to replicate", func() bool { _, ok := n3.State().Hosts["n1"]; return ok })
	if got := notMember(n1); got != 0 {
		t.Fatalf("before any removal n1 refused %d member connections", got)
	}
	if err := n1.Remove("n3"); err != nil {
		t.Fatalf("remove n3: %v", err)
	}

	// dial connects to n1 as the host of conf and reports whether n1
	// closed the connection (EOF) rather than waiting for a raft RPC.
	dial := func(conf *TLS) (closed bool) {
		c, err := tls.Dial("tcp", n1.Addr(), conf.Client)
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
		return err == io.EOF
	}
	before := notMember(n1)
	if !dial(conf3) {
		t.Error("n1 kept a raft connection from removed host n3 open")
	}
	if notMember(n1) <= before {
		t.Errorf("refused_not_member stayed at %d after refusing n3", before)
	}
	if dial(conf2) {
		t.Error("n1 closed a raft connection from member n2")
	}
	applyOK(t, n1, Command{Op: OpHostAdd, Host: &Host{Name: "n2", VTEP: netip.MustParseAddr("10.0.0.2")}})
	waitFor(t, 10*time.Second, "n2 to replicate after the removal", func() bool { _, ok := n2.State().Hosts["n2"]; return ok })
}

// TestTLSTransportDialsExpectedMember: raft dials a peer expecting the
// certificate of the member the configuration puts at that address, with
// the key the state records; a node of the same CA with another name, or
// the member's name with another key, fails the handshake.
func TestTLSTransportDialsExpectedMember(t *testing.T) {
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	n1 := tlsFor(t, ca, "n1")
	n2 := tlsFor(t, ca, "n2")
	n2FP := pki.KeyFingerprint(n2.Server.Certificates[0].Leaf)
	for _, tc := range []struct {
		what   string
		server *TLS
		err    string
	}{
		{"the member", n2, ""},
		{"another host at its address", tlsFor(t, ca, "n3"), `dialled host "n2", but the peer presented the certificate of host "n3"`},
		{"its name with another key", tlsFor(t, ca, "n2"), "with a key other than the one the cluster records"},
	} {
		server := openTLS(t, "srv", tc.server, true)
		stream := &tlsStream{client: n1.Client, expect: func(addr raft.ServerAddress) (string, string) {
			if string(addr) != server.Addr() {
				t.Errorf("expect asked for %s, want %s", addr, server.Addr())
			}
			return "n2", n2FP
		}}
		c, err := stream.Dial(raft.ServerAddress(server.Addr()), 5*time.Second)
		if c != nil {
			c.Close()
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v, want the dial to succeed", tc.what, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want an error containing %q", tc.what, err, tc.err)
		}
		server.Close()
	}
}

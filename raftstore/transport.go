package raftstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"vxswitch/pki"
)

// TLS makes a Store's raft traffic mutual TLS. Server must require and
// verify client certificates (tls.RequireAndVerifyClientCert, as
// pki.Identity.ServerTLS makes it); Client must present this node's
// certificate and verify the server's (pki.Identity.ClientTLS).
type TLS struct {
	Server *tls.Config
	Client *tls.Config
}

// tlsStream is a raft.StreamLayer over TCP and crypto/tls. Accepted
// connections have finished their handshake; a peer without a certificate
// of the cluster CA never reaches raft (pki.Listener counts it, and bounds
// the handshakes in progress), and neither does a peer whose certificate
// names a host that member says is not in the raft configuration or
// certifies another key than the one recorded for that host: a removed
// host keeps its certificate, but not its voice, and a certificate minted
// for a member's name is no member. At most pki.MaxConnsPerSource
// connections from one address are open at once.
//
// Accepted connections get no read or idle timeout: raft keeps idle
// connections in its pool between elections and would lose the votes of
// an election on connections closed under it; only members get past the
// handshake, which has its timeout (pki.HandshakeTimeout).
//
// Dial expects the certificate of the member that expect names for the
// address (its host name and recorded key), when it names one.
type tlsStream struct {
	*pki.Listener
	client *tls.Config
	member func(name, keyFP string) bool
	expect func(addr raft.ServerAddress) (name, keyFP string)
	log    *slog.Logger
	conns  pki.SourceLimit

	notMember atomic.Uint64 // connections closed because member said no
	overLimit atomic.Uint64 // connections closed over MaxConnsPerSource
}

// Accept implements raft.StreamLayer: it returns the next connection
// whose peer is a member, closing and counting the others.
func (s *tlsStream) Accept() (net.Conn, error) {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cs := c.(*tls.Conn).ConnectionState()
		name, _ := pki.PeerName(&cs)
		if !s.member(name, pki.PeerKeyFingerprint(&cs)) {
			if s.notMember.Add(1) == 1 { // counted before the peer can see the close
				s.log.Warn("refused a raft connection from a host that is not in the raft configuration or not with its recorded key; further ones are only counted",
					"peer", name, "from", c.RemoteAddr().String())
			}
			c.Close()
			continue
		}
		if !s.conns.Add(c) {
			if s.overLimit.Add(1) == 1 {
				s.log.Warn("refused a raft connection over the limit of connections per source; further ones are only counted",
					"peer", name, "from", c.RemoteAddr().String(), "max", pki.MaxConnsPerSource)
			}
			c.Close()
			continue
		}
		return &countedConn{Conn: c, limit: &s.conns}, nil
	}
}

// countedConn gives its count back to a SourceLimit when it is closed.
type countedConn struct {
	net.Conn
	limit *pki.SourceLimit
	once  sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.limit.Done(c.Conn) })
	return c.Conn.Close()
}

// Dial implements raft.StreamLayer: it connects to a peer and completes
// the TLS handshake within timeout, expecting the certificate of the
// member at addr.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conf := s.client
	if name, keyFP := s.expect(addr); name != "" {
		conf = pki.ExpectPeer(conf, name, keyFP)
	}
	raw, err := (&net.Dialer{Timeout: timeout}).Dial("tcp", string(addr))
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, conf)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("raftstore: TLS handshake with %s: %w", addr, err)
	}
	return c, nil
}

// newTLSTransport listens on bind and returns a raft transport speaking
// mutual TLS with the peers member accepts, dialling the members expect
// names, and its stream layer (for the refusal counts).
func newTLSTransport(bind string, conf *TLS, member func(name, keyFP string) bool, expect func(raft.ServerAddress) (string, string), logger *slog.Logger, logOut io.Writer) (*raft.NetworkTransport, *tlsStream, error) {
	if conf.Server == nil || conf.Client == nil {
		return nil, nil, fmt.Errorf("raftstore: listen on %s: TLS needs both a server and a client configuration", bind)
	}
	raw, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, nil, err
	}
	if addr, ok := raw.Addr().(*net.TCPAddr); !ok || addr.IP.IsUnspecified() {
		raw.Close()
		return nil, nil, fmt.Errorf("local bind address %s is not advertisable", raw.Addr())
	}
	stream := &tlsStream{Listener: pki.NewListener(raw, conf.Server, logger, "raft"), client: conf.Client, member: member, expect: expect, log: logger}
	return raft.NewNetworkTransport(stream, 3, 10*time.Second, logOut), stream, nil
}

package raftstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
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
// of the cluster CA never reaches raft (pki.Listener counts it), and
// neither does a peer whose certificate names a host that member says is
// not in the raft configuration: a removed host keeps its certificate, but
// not its voice.
type tlsStream struct {
	*pki.Listener
	client *tls.Config
	member func(name string) bool
	log    *slog.Logger

	notMember atomic.Uint64 // connections closed because member said no
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
		if s.member(name) {
			return c, nil
		}
		if s.notMember.Add(1) == 1 { // counted before the peer can see the close
			s.log.Warn("refused a raft connection from a host that is not in the raft configuration; further ones are only counted",
				"peer", name, "from", c.RemoteAddr().String())
		}
		c.Close()
	}
}

// Dial implements raft.StreamLayer: it connects to a peer and completes
// the TLS handshake within timeout.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	raw, err := (&net.Dialer{Timeout: timeout}).Dial("tcp", string(addr))
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, s.client)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("raftstore: TLS handshake with %s: %w", addr, err)
	}
	return c, nil
}

// newTLSTransport listens on bind and returns a raft transport speaking
// mutual TLS with the peers member accepts, and its stream layer (for the
// refusal counts).
func newTLSTransport(bind string, conf *TLS, member func(string) bool, logger *slog.Logger, logOut io.Writer) (*raft.NetworkTransport, *tlsStream, error) {
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
	stream := &tlsStream{Listener: pki.NewListener(raw, conf.Server, logger, "raft"), client: conf.Client, member: member, log: logger}
	return raft.NewNetworkTransport(stream, 3, 10*time.Second, logOut), stream, nil
}

package raftstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
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
// of the cluster CA never reaches raft (pki.Listener counts it).
type tlsStream struct {
	*pki.Listener
	client *tls.Config
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
// mutual TLS, with the listener (for its refusal count).
func newTLSTransport(bind string, conf *TLS, logger *slog.Logger, logOut io.Writer) (*raft.NetworkTransport, *pki.Listener, error) {
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
	ln := pki.NewListener(raw, conf.Server, logger, "raft")
	return raft.NewNetworkTransport(&tlsStream{Listener: ln, client: conf.Client}, 3, 10*time.Second, logOut), ln, nil
}

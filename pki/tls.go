package pki

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Identity is a node's certificate, its key and the cluster CA: all a host
// needs to speak mutual TLS with the others. The zero value is not usable;
// make one with ParseIdentity. An Identity is immutable and safe for
// concurrent use.
type Identity struct {
	Name string            // the host name the certificate names
	CA   *x509.Certificate // the cluster CA
	cert tls.Certificate   // leaf, then CA, so a joining host sees the whole chain
}

// ParseIdentity reads an identity from PEM data: the CA certificate, the
// node certificate and the node's private key. It checks that the node
// certificate is signed by the CA and belongs to the key.
func ParseIdentity(caPEM, certPEM, keyPEM []byte) (*Identity, error) {
	ca, err := ParseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	leaf, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: node certificate: %w", err)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: node key: %w", err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, errors.New("pki: the node key does not belong to the node certificate")
	}
	name, err := VerifyNode([]*x509.Certificate{leaf}, ca, x509.ExtKeyUsageServerAuth, time.Now())
	if err != nil {
		return nil, err
	}
	return &Identity{
		Name: name,
		CA:   ca,
		cert: tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Raw}, PrivateKey: key, Leaf: leaf},
	}, nil
}

// ServerTLS returns the configuration of a server. With
// tls.RequireAndVerifyClientCert every client must present a node
// certificate of this cluster; with tls.VerifyClientCertIfGiven a client
// may present none (a joining host), and the handler must check
// PeerName for each request that needs one.
func (id *Identity) ServerTLS(auth tls.ClientAuthType) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(id.CA)
	return &tls.Config{
		Certificates: []tls.Certificate{id.cert},
		ClientAuth:   auth,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil // RequireAndVerifyClientCert refused it already
			}
			_, err := VerifyNode(cs.PeerCertificates, id.CA, x509.ExtKeyUsageClientAuth, time.Now())
			return err
		},
	}
}

// ClientTLS returns the configuration of a client that presents this node's
// certificate and accepts a server only if its certificate is a node
// certificate of this cluster's CA.
//
// Peers are dialled by address, and certificates name hosts, not addresses
// (a host keeps its certificate when its address changes), so the usual
// host name check is replaced by VerifyNode in VerifyConnection.
func (id *Identity) ClientTLS() *tls.Config {
	return &tls.Config{
		Certificates:       []tls.Certificate{id.cert},
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // checked in VerifyConnection instead, see above
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := VerifyNode(cs.PeerCertificates, id.CA, x509.ExtKeyUsageServerAuth, time.Now())
			return err
		},
	}
}

// ExpectPeer returns a copy of a client configuration made by ClientTLS
// that also demands the certificate of one member: one for host name and,
// unless keyFP is "" (a host recorded before keys were), with the key of
// that KeyFingerprint. A peer is dialled by address, and addresses change
// hands; the handshake fails unless the host at the address is the member
// meant.
func ExpectPeer(conf *tls.Config, name, keyFP string) *tls.Config {
	c := conf.Clone()
	verify := conf.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if verify != nil {
			if err := verify(cs); err != nil {
				return err
			}
		}
		if len(cs.PeerCertificates) == 0 {
			return errors.New("pki: the peer presented no certificate")
		}
		leaf := cs.PeerCertificates[0]
		if got := leaf.Subject.CommonName; got != name {
			return fmt.Errorf("pki: dialled host %q, but the peer presented the certificate of host %q", name, got)
		}
		if keyFP != "" && KeyFingerprint(leaf) != keyFP {
			return fmt.Errorf("pki: the peer presented a certificate for host %q with a key other than the one the cluster records for it", name)
		}
		return nil
	}
	return c
}

// JoinTLS returns the configuration of a joining host that holds only a
// token: it presents no certificate, and accepts the server only if its
// chain holds a CA certificate whose SHA-256 is digest and the server's
// certificate is a node certificate of that CA; otherwise the handshake
// fails with an error matching ErrCADigestMismatch, before anything is sent.
// gotCA, if not nil, is called with the CA certificate once it is verified.
func JoinTLS(digest [32]byte, gotCA func(*x509.Certificate)) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the token's CA digest is the trust anchor, checked below
		VerifyConnection: func(cs tls.ConnectionState) error {
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates {
				if Digest(c) == digest {
					ca = c
				}
			}
			if ca == nil {
				return ErrCADigestMismatch
			}
			if _, err := VerifyNode(cs.PeerCertificates, ca, x509.ExtKeyUsageServerAuth, time.Now()); err != nil {
				return fmt.Errorf("%w: %v", ErrCADigestMismatch, err)
			}
			if gotCA != nil {
				gotCA(ca)
			}
			return nil
		},
	}
}

// PeerName returns the host name in the verified client certificate of a
// TLS connection, and false when the client presented none.
func PeerName(cs *tls.ConnectionState) (string, bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return "", false
	}
	return cs.PeerCertificates[0].Subject.CommonName, true
}

// KeyFingerprint returns the hex SHA-256 of the public key (the
// SubjectPublicKeyInfo) of cert: what the replicated state records as a
// host's identity, so that a second certificate for the same name, even one
// the cluster CA signed, is told apart by its key.
func KeyFingerprint(cert *x509.Certificate) string {
	return keyFingerprint(cert.RawSubjectPublicKeyInfo)
}

func keyFingerprint(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// PeerKeyFingerprint returns the KeyFingerprint of the verified peer
// certificate of a TLS connection, or "" when it has none.
func PeerKeyFingerprint(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return ""
	}
	return KeyFingerprint(cs.PeerCertificates[0])
}

// KeyFingerprint returns the KeyFingerprint of the identity's own
// certificate, or "" if it cannot be parsed.
func (i *Identity) KeyFingerprint() string {
	if len(i.cert.Certificate) == 0 {
		return ""
	}
	c, err := x509.ParseCertificate(i.cert.Certificate[0])
	if err != nil {
		return ""
	}
	return KeyFingerprint(c)
}

// SameCA tells whether two PEM CA certificates are the same certificate.
func SameCA(a, b []byte) bool {
	ca, err1 := ParseCertPEM(a)
	cb, err2 := ParseCertPEM(b)
	return err1 == nil && err2 == nil && bytes.Equal(ca.Raw, cb.Raw)
}

// HandshakeTimeout bounds the TLS handshake of one connection.
const HandshakeTimeout = 10 * time.Second

// Limits on handshakes in progress, so that clients that open connections
// and stay silent (a slowloris) cannot hold the listener's memory and
// goroutines nor crowd out other hosts: at most MaxHandshakes at once, and
// at most MaxHandshakesPerSource from one IP address. A connection beyond
// them is closed at once and counted as refused.
const (
	MaxHandshakes          = 256
	MaxHandshakesPerSource = 16
)

// MaxConnsPerSource bounds the open connections from one IP address that
// a SourceLimit admits.
const MaxConnsPerSource = 64

// SourceLimit counts open connections by source IP address and admits at
// most MaxConnsPerSource from each. The zero value is ready; safe for
// concurrent use.
type SourceLimit struct {
	mu   sync.Mutex
	open map[netip.Addr]int
}

// Add counts c and reports true, or reports false when its source has
// MaxConnsPerSource connections open already; then the caller closes c
// without calling Done.
func (s *SourceLimit) Add(c net.Conn) bool {
	src := SourceAddr(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[src] >= MaxConnsPerSource {
		return false
	}
	if s.open == nil {
		s.open = map[netip.Addr]int{}
	}
	s.open[src]++
	return true
}

// Done gives back the count of a connection that Add admitted, once it is
// closed.
func (s *SourceLimit) Done(c net.Conn) {
	src := SourceAddr(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[src]--; s.open[src] <= 0 {
		delete(s.open, src)
	}
}

// SourceAddr returns the IP address a TCP connection comes from, and the
// zero Addr for other connections.
func SourceAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// Listener is a TLS listener that hands out only connections whose
// handshake succeeded. Handshakes run in their own goroutines, so a slow
// or silent client never holds up the others. A failed handshake (no
// certificate, a certificate of another CA, plain TCP) is counted; the
// first one is logged, the others only counted. Safe for concurrent use.
type Listener struct {
	raw   net.Listener
	conf  *tls.Config
	log   *slog.Logger
	what  string
	conns chan net.Conn
	done  chan struct{}
	// ctx ends at Close, cutting short handshakes in progress.
	ctx    context.Context
	cancel context.CancelFunc

	refused   atomic.Uint64
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu         sync.Mutex
	inProgress map[netip.Addr]int // handshakes in progress by source address
	total      int                // sum of inProgress
	limited    atomic.Uint64      // connections closed over the handshake limits
}

// NewListener serves TLS with conf on raw. what names the listener in the
// log ("raft", "peer API"); log may be nil.
func NewListener(raw net.Listener, conf *tls.Config, log *slog.Logger, what string) *Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Listener{raw: raw, conf: conf, log: log, what: what, conns: make(chan net.Conn), done: make(chan struct{}),
		inProgress: map[netip.Addr]int{}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.raw.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond) // out of file descriptors, say
			continue
		}
		src := SourceAddr(c)
		if !l.startHandshake(src) {
			l.refused.Add(1) // counted before the peer can see the close
			if l.limited.Add(1) == 1 {
				l.log.Warn("refused a connection over the limit of handshakes in progress; further ones are only counted",
					"listener", l.what, "from", src.String(), "max_per_source", MaxHandshakesPerSource, "max", MaxHandshakes)
			}
			c.Close()
			continue
		}
		l.wg.Add(1)
		go l.handshake(c, src)
	}
}

// startHandshake counts a handshake from src, or returns false when that
// would pass a limit.
func (l *Listener) startHandshake(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= MaxHandshakes || l.inProgress[src] >= MaxHandshakesPerSource {
		return false
	}
	l.total++
	l.inProgress[src]++
	return true
}

func (l *Listener) endHandshake(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.inProgress[src]--; l.inProgress[src] <= 0 {
		delete(l.inProgress, src)
	}
}

func (l *Listener) handshake(raw net.Conn, src netip.Addr) {
	defer l.wg.Done()
	c := tls.Server(raw, l.conf)
	ctx, cancel := context.WithTimeout(l.ctx, HandshakeTimeout)
	err := c.HandshakeContext(ctx)
	cancel()
	l.endHandshake(src)
	if err != nil {
		c.Close()
		if l.ctx.Err() != nil {
			return // closing, not refused
		}
		if l.refused.Add(1) == 1 {
			l.log.Warn("refused a connection without a valid cluster certificate; further ones are only counted",
				"listener", l.what, "from", raw.RemoteAddr().String(), "err", err)
		}
		return
	}
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection whose handshake succeeded.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("pki: accept on %s: %w", l.raw.Addr(), net.ErrClosed)
	}
}

// Close stops accepting and closes connections still in their handshake.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		l.cancel()
		err = l.raw.Close()
		l.wg.Wait()
	})
	return err
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.raw.Addr() }

// Refused returns how many connections failed their TLS handshake or
// were closed over the handshake limits.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Limited returns how many connections were closed over the handshake
// limits (MaxHandshakes, MaxHandshakesPerSource).
func (l *Listener) Limited() uint64 { return l.limited.Load() }

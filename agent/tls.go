package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"vxswitch/api"
	"vxswitch/pki"
)

// Files of a host's identity in its data directory, all mode 0600.
//
// The data directory is a secret: it holds the node key and, on voters,
// the cluster CA's key (ca.go); in clusters made before the CA key moved
// off the replicated state, raft.db carries it too.
const (
	caCertFile    = "ca.crt"     // cluster CA certificate
	caKeyFile     = "ca.key"     // CA key, on voters only (ca.go)
	nodeCertFile  = "node.crt"   // this host's certificate, signed by the CA
	nodeKeyFile   = "node.key"   // this host's private key
	joinTokenFile = "join-token" // the current join token, kept up to date by every host
)

// peerAuth counts API requests refused for want of a cluster certificate
// (noCert) and for a certificate whose key is not the member's or was
// revoked (wrongKey), and connections refused over the limit per source
// (overLimit). Safe for concurrent use.
type peerAuth struct {
	noCert    atomic.Uint64
	wrongKey  atomic.Uint64
	overLimit atomic.Uint64 // connections closed over pki.MaxConnsPerSource
}

// setupIdentity gives the agent its certificate: from the data directory
// when it has one, from a new CA when bootstrapping, and otherwise by
// enrolling with the cluster through cfg.Join with the join token.
func (a *Agent) setupIdentity(ctx context.Context) error {
	_, err := os.Stat(a.dataFile(nodeCertFile))
	switch {
	case err == nil:
		// Restarted: the certificate is on disk, no token is needed.
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("agent: read identity: %w", err)
	case a.cfg.Bootstrap:
		if err := a.createCA(); err != nil {
			return err
		}
	case len(a.cfg.Join) > 0:
		if err := a.enroll(ctx); err != nil {
			return err
		}
	default:
		return errors.New("agent: this data dir holds no cluster certificate: start with --bootstrap (new cluster) or --join ADDR --token T (existing one)")
	}
	id, err := a.loadIdentity()
	if err != nil {
		return err
	}
	if id.Name != a.cfg.Name {
		return fmt.Errorf("agent: the certificate in %s is for host %q, not %q: start with --name %s, or use another --data-dir", a.cfg.DataDir, id.Name, a.cfg.Name, id.Name)
	}
	a.id = pki.NewLive(id)
	a.peers = newPeerClients(a.id.ClientTLS())
	return nil
}

func (a *Agent) dataFile(name string) string { return filepath.Join(a.cfg.DataDir, name) }

func (a *Agent) loadIdentity() (*pki.Identity, error) {
	var pems [3][]byte
	for i, f := range []string{caCertFile, nodeCertFile, nodeKeyFile} {
		b, err := os.ReadFile(a.dataFile(f))
		if err != nil {
			return nil, fmt.Errorf("agent: read identity: %w", err)
		}
		pems[i] = b
	}
	id, err := pki.ParseIdentity(pems[0], pems[1], pems[2])
	if err != nil {
		return nil, fmt.Errorf("agent: identity in %s: %w", a.cfg.DataDir, err)
	}
	return id, nil
}

// createCA makes the cluster CA and this host's certificate. The CA key
// stays in ca.key: this host is the cluster's first voter.
func (a *Agent) createCA() error {
	now := time.Now()
	ca, err := pki.NewCA(now)
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	cert, key, err := ca.IssueFor(a.cfg.Name, now, a.certTTL())
	if err != nil {
		return err
	}
	// The node certificate goes last: its presence means "identity done".
	return writeFiles(a.cfg.DataDir, []fileData{
		{caKeyFile, caKey}, {caCertFile, ca.CertPEM()}, {nodeKeyFile, key}, {nodeCertFile, cert},
	})
}

type fileData struct {
	name string
	data []byte
}

// writeFiles writes each file with mode 0600 through a temporary file and
// a rename, in order, so a crash leaves no half-written file.
func writeFiles(dir string, files []fileData) error {
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return fmt.Errorf("agent: write %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("agent: write %s: %w", path, err)
		}
	}
	return nil
}

// Peer API access.
//
// The peer API listens with tls.VerifyClientCertIfGiven: a client that
// presents a certificate must present one of this cluster, or the
// handshake fails; a client may present none, so that a joining host can
// reach the enrolment route (its credential is the token's secret). Every
// other route demands a verified certificate (requireCert), and the routes
// that change the state demand one of a current member (fromMember).

// requireCert refuses, with 403, requests without a cluster certificate to
// every route but api.RouteEnroll.
func (a *Agent) requireCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := pki.PeerName(r.TLS); !ok && r.URL.Path != api.RouteEnroll.Path() {
			if a.auth.noCert.Add(1) == 1 {
				a.log.Warn("refused an API request without a cluster certificate; further ones are only counted",
					"from", r.RemoteAddr, "path", r.URL.Path)
			}
			reply(w, nil, forbidden("this API is for hosts of the cluster: present a node certificate of its CA"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fromMember lets a request through only when its certificate names a
// host of the cluster: one in the replicated state or in the Raft
// configuration. A removed host keeps its certificate but loses access.
//
// A member is its name and its key: a certificate whose key is not the one
// recorded for that name (even one the cluster CA signed), or whose key
// belongs to a removed host, is refused.
func (a *Agent) fromMember(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, _ := pki.PeerName(r.TLS)
		if !a.isMember(name) {
			reply(w, nil, forbidden("host %q is not a member of the cluster: join it first", name))
			return
		}
		if err := a.checkMemberKey(r); err != nil {
			reply(w, nil, err)
			return
		}
		h(w, r)
	}
}

// checkRemoved refuses a request whose certificate key belongs to a host
// that was removed from the cluster.
func (a *Agent) checkRemoved(r *http.Request) error {
	fp := pki.PeerKeyFingerprint(r.TLS)
	if name, ok := a.store.State().Removed[fp]; ok && fp != "" {
		a.auth.wrongKey.Add(1)
		return forbidden("the certificate of host %q was revoked when the host was removed from the cluster: enrol it again with a join token (remove node.crt and node.key from its data dir, then start it with --join and --token)", name)
	}
	return nil
}

// checkMemberKey refuses a request from a member whose certificate key is
// not the one the replicated state records for its name, or was revoked.
func (a *Agent) checkMemberKey(r *http.Request) error {
	if err := a.checkRemoved(r); err != nil {
		return err
	}
	name, _ := pki.PeerName(r.TLS)
	fp := pki.PeerKeyFingerprint(r.TLS)
	if h, ok := a.store.State().Hosts[name]; ok && h.KeyFP != "" && h.KeyFP != fp {
		a.auth.wrongKey.Add(1)
		return forbidden("host %q presented a certificate with a key other than the one recorded for it: only the host's own certificate is accepted", name)
	}
	return nil
}

func (a *Agent) isMember(name string) bool {
	if _, ok := a.store.State().Hosts[name]; ok {
		return true
	}
	servers, err := a.store.Servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.ID == name {
			return true
		}
	}
	return false
}

// tlsRefused sums the connections and requests refused for want of a
// cluster certificate, on the API and the Raft port.
func (a *Agent) tlsRefused() uint64 {
	n := a.auth.noCert.Load() + a.auth.wrongKey.Load() + a.auth.overLimit.Load()
	if a.apiListener != nil {
		n += a.apiListener.Refused()
	}
	var raftRefused uint64
	fmt.Sscan(a.store.Stats()["tls_refused"], &raftRefused)
	return n + raftRefused
}

// peerTLS is the peer API's server configuration.
func (a *Agent) peerTLS() *tls.Config {
	return a.id.ServerTLS(tls.VerifyClientCertIfGiven)
}

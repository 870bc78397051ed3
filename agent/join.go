package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"vxswitch/api"
	"vxswitch/pki"
	"vxswitch/raftstore"
)

// Joining a cluster takes two steps. First the host enrols: it checks that
// the member it reaches presents a chain ending at the CA its token names
// (before it sends anything), then sends a certificate signing request
// with the token's secret; the leader checks the secret and signs. Then,
// with its certificate, the host asks to be admitted to Raft
// (/v1/internal/join) over mutual TLS.

// errNoToken is the refusal of a join without a token.
var errNoToken = errors.New("agent: --token is required to join: get it with 'vxswitch token' on a member")

// enroll gets this host a node certificate through the members in
// cfg.Join and writes it, the CA certificate and the key to the data dir.
// It retries unreachable members until ctx ends, and gives up at once on a
// refusal or a CA that is not the token's.
func (a *Agent) enroll(ctx context.Context) error {
	if a.cfg.Token == "" {
		return errNoToken
	}
	tok, err := pki.ParseToken(a.cfg.Token)
	if err != nil {
		return fmt.Errorf("agent: --token: %w", err)
	}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(a.cfg.Name, key)
	if err != nil {
		return fmt.Errorf("agent: --name: %w", err)
	}
	req := api.EnrollRequest{Name: a.cfg.Name, CSR: string(csr), Secret: tok.Secret}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var last error
	for {
		for _, j := range a.cfg.Join {
			addr := withPort(j, a.cfg.APIPort)
			var ca *x509.Certificate
			cl := api.NewTLSClient(addr, 3*time.Second, pki.JoinTLS(tok.CADigest, func(c *x509.Certificate) { ca = c }))
			var resp api.EnrollResponse
			err := cl.Post(ctx, enrollPath, req, &resp)
			if err == nil {
				return a.saveEnrolment(addr, ca, key, resp)
			}
			last = err
			if errors.Is(err, pki.ErrCADigestMismatch) {
				return fmt.Errorf("agent: the server at %s is not the cluster this token is for: CA digest mismatch", addr)
			}
			var se *api.StatusError
			if errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusForbidden) {
				return fmt.Errorf("agent: join through %s refused: %s", addr, se.Message)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: cannot join the cluster through %v: %v: check the address and that an agent runs there", a.cfg.Join, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// saveEnrolment checks the certificate the cluster signed against the CA
// the handshake verified, and writes the identity files.
func (a *Agent) saveEnrolment(addr string, ca *x509.Certificate, key *ecdsa.PrivateKey, resp api.EnrollResponse) error {
	if ca == nil {
		return fmt.Errorf("agent: join through %s: the TLS handshake verified no CA", addr)
	}
	keyPEM, err := pki.KeyPEM(key)
	if err != nil {
		return err
	}
	caPEM := pki.CertPEM(ca)
	if _, err := pki.ParseIdentity(caPEM, []byte(resp.Certificate), keyPEM); err != nil {
		return fmt.Errorf("agent: join through %s: the certificate the cluster sent is not usable: %w", addr, err)
	}
	return writeFiles(a.cfg.DataDir, []fileData{
		{caCertFile, caPEM}, {nodeKeyFile, keyPEM}, {nodeCertFile, []byte(resp.Certificate)},
	})
}

// maxEnrollBody bounds the body of an enrolment request, which anyone may
// send: a CSR and a secret take about 1 KiB.
const maxEnrollBody = 64 << 10

// handleEnroll signs the certificate of a joining host that knows the
// token's secret. Followers forward it to the leader, which has the latest
// token. It is the one peer route open without a certificate.
func (a *Agent) handleEnroll(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxEnrollBody)
	var req api.EnrollRequest
	if err := decode(r, &req); err != nil {
		reply(w, nil, err)
		return
	}
	var resp api.EnrollResponse
	err := a.onLeader(r.Context(), enrollPath, req, &resp, func(context.Context) error {
		var err error
		resp, err = a.signEnrolment(req)
		return err
	})
	if err != nil {
		a.log.Warn("refused a join", "host", req.Name, "from", r.RemoteAddr, "err", err)
	}
	reply(w, resp, err)
}

func (a *Agent) signEnrolment(req api.EnrollRequest) (api.EnrollResponse, error) {
	if a.store.Role() != "leader" {
		return api.EnrollResponse{}, raftstore.ErrNotLeader
	}
	c := a.store.State().Cluster
	if c == nil {
		return api.EnrollResponse{}, fmt.Errorf("%w (the cluster has no CA yet: its first host is still starting)", raftstore.ErrNoQuorum)
	}
	if !pki.SecretMatches(req.Secret, c.TokenHash) {
		return api.EnrollResponse{}, forbidden("the join token is not this cluster's current token (wrong, or rotated away): get the current one with 'vxswitch token' on a member")
	}
	if err := pki.CheckName(req.Name); err != nil {
		return api.EnrollResponse{}, badRequest("%v", err)
	}
	ca, err := pki.ParseCA([]byte(c.CACert), []byte(c.CAKey))
	if err != nil {
		return api.EnrollResponse{}, fmt.Errorf("agent: the replicated cluster CA: %w", err)
	}
	cert, err := ca.Sign([]byte(req.CSR), req.Name, time.Now())
	if err != nil {
		return api.EnrollResponse{}, badRequest("%v", err)
	}
	a.log.Info("signed the certificate of a joining host", "host", req.Name)
	return api.EnrollResponse{Certificate: string(cert), CA: string(ca.CertPEM())}, nil
}

// initCluster puts the CA made by createCA into the replicated state with
// a first token (cluster.init), once, then deletes the CA key file: from
// then on the key lives in raft.db on every host. It runs on the host that
// bootstrapped the cluster, as long as ca.key is in its data dir.
func (a *Agent) initCluster(ctx context.Context) error {
	keyPEM, err := os.ReadFile(a.dataFile(caKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: read the CA key: %w", err)
	}
	if c := a.store.State().Cluster; c == nil || !pki.SameCA([]byte(c.CACert), pki.CertPEM(a.id.CA)) {
		caPEM := pki.CertPEM(a.id.CA)
		ca, err := pki.ParseCA(caPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("agent: %s: %w", a.dataFile(caKeyFile), err)
		}
		nonce, hash, err := newTokenSecret(ca)
		if err != nil {
			return err
		}
		cmd := raftstore.Command{Op: raftstore.OpClusterInit, Cluster: &raftstore.Cluster{
			CACert: string(caPEM), CAKey: string(keyPEM), TokenNonce: nonce, TokenHash: hash,
		}}
		if _, err := a.apply(ctx, cmd); err != nil {
			return fmt.Errorf("agent: record the cluster CA: %w", err)
		}
		tok, _ := a.currentToken()
		a.log.Info("cluster created: join other hosts with --join "+a.cfg.Advertise.String()+" --token TOKEN",
			"token", tok.Token, "file", a.dataFile(joinTokenFile))
	}
	return os.Remove(a.dataFile(caKeyFile))
}

// newTokenSecret returns a fresh nonce and the hash of the secret it
// derives.
func newTokenSecret(ca *pki.CA) (nonce, hash string, err error) {
	var b [16]byte
	rand.Read(b[:])
	nonce = hex.EncodeToString(b[:])
	secret, err := pki.DeriveSecret(ca.Key, nonce)
	if err != nil {
		return "", "", err
	}
	return nonce, pki.HashSecret(secret), nil
}

// currentToken derives the cluster's join token from the replicated state.
func (a *Agent) currentToken() (api.Token, error) {
	c := a.store.State().Cluster
	if c == nil {
		return api.Token{}, errors.New("agent: the cluster has no CA yet: wait until its first host is ready")
	}
	ca, err := pki.ParseCA([]byte(c.CACert), []byte(c.CAKey))
	if err != nil {
		return api.Token{}, fmt.Errorf("agent: the replicated cluster CA: %w", err)
	}
	secret, err := pki.DeriveSecret(ca.Key, c.TokenNonce)
	if err != nil {
		return api.Token{}, err
	}
	t := pki.Token{CADigest: ca.Digest(), Secret: secret}
	return api.Token{Token: t.String(), RotatedAt: c.TokenRotatedAt}, nil
}

func (a *Agent) handleToken(w http.ResponseWriter, r *http.Request) {
	t, err := a.currentToken()
	reply(w, t, err)
}

// handleTokenRotate replaces the join token cluster-wide; the old one is
// refused from the commit on.
func (a *Agent) handleTokenRotate(w http.ResponseWriter, r *http.Request) {
	c := a.store.State().Cluster
	if c == nil {
		reply(w, nil, errors.New("agent: the cluster has no CA yet: wait until its first host is ready"))
		return
	}
	ca, err := pki.ParseCA([]byte(c.CACert), []byte(c.CAKey))
	if err != nil {
		reply(w, nil, fmt.Errorf("agent: the replicated cluster CA: %w", err))
		return
	}
	nonce, hash, err := newTokenSecret(ca)
	if err != nil {
		reply(w, nil, err)
		return
	}
	cmd := raftstore.Command{Op: raftstore.OpTokenRotate, Cluster: &raftstore.Cluster{TokenNonce: nonce, TokenHash: hash}}
	if _, err := a.apply(r.Context(), cmd); err != nil {
		reply(w, nil, err)
		return
	}
	if err := a.waitState(r.Context(), func(st *raftstore.State) bool {
		return st.Cluster != nil && st.Cluster.TokenNonce == nonce
	}); err != nil {
		reply(w, nil, err)
		return
	}
	a.log.Info("join token rotated: the old token is refused from now on")
	t, err := a.currentToken()
	reply(w, t, err)
}

// keepTokenFile writes the current join token to DATADIR/join-token (mode
// 0600) at start and whenever it changes, until the agent stops.
func (a *Agent) keepTokenFile(changes <-chan struct{}) {
	written := ""
	for {
		if t, err := a.currentToken(); err == nil && t.Token != written {
			if err := writeFiles(a.cfg.DataDir, []fileData{{joinTokenFile, []byte(t.Token + "\n")}}); err != nil {
				a.log.Warn("write the join token file", "err", err)
			} else {
				written = t.Token
			}
		}
		select {
		case <-a.ctx.Done():
			return
		case <-changes:
		}
	}
}

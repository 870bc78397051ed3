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
			resp, err := cl.Enroll(ctx, req)
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
	err := a.onLeader(r.Context(), api.RouteEnroll, req, &resp, func(ctx context.Context) error {
		var err error
		resp, err = a.signEnrolment(ctx, req)
		return err
	})
	if err != nil {
		a.refusals.warn(a.log, "join/"+r.RemoteAddr, "refused a join", "host", req.Name, "from", r.RemoteAddr, "err", err)
	}
	reply(w, resp, err)
}

// signEnrolment checks the joining host's token and request, has the
// enrolment admitted through Raft (token.use: the token is valid at this
// commit, a single-use token is used up, the name is not a member's with
// another key), and only then signs the host's certificate. The token is
// checked here first too, so a wrong secret costs no Raft write.
func (a *Agent) signEnrolment(ctx context.Context, req api.EnrollRequest) (api.EnrollResponse, error) {
	if a.store.Role() != raftstore.RoleLeader {
		return api.EnrollResponse{}, raftstore.ErrNotLeader
	}
	st := a.store.State()
	c := st.Cluster
	if c == nil {
		return api.EnrollResponse{}, fmt.Errorf("%w (the cluster has no CA yet: its first host is still starting)", raftstore.ErrNoQuorum)
	}
	now := time.Now()
	hash := pki.HashSecret(req.Secret)
	if err := raftstore.CheckJoinToken(st, hash, now.UnixNano()); err != nil {
		return api.EnrollResponse{}, forbidden("%v", err)
	}
	csr, err := pki.ParseCSR([]byte(req.CSR), req.Name)
	if err != nil {
		return api.EnrollResponse{}, badRequest("%v", err)
	}
	fp, err := pki.CSRKeyFingerprint(csr)
	if err != nil {
		return api.EnrollResponse{}, badRequest("%v", err)
	}
	ca, err := a.signer()
	if err != nil {
		return api.EnrollResponse{}, err
	}
	// Applied here, not forwarded: if leadership moved, ErrNotLeader sends
	// the whole enrolment to the new leader.
	cmd := raftstore.Command{Op: raftstore.OpTokenUse, Time: now.UnixNano(), TokenHash: hash,
		Host: &raftstore.Host{Name: req.Name, KeyFP: fp}}
	res, err := a.store.Apply(ctx, cmd)
	if err != nil {
		return api.EnrollResponse{}, fmt.Errorf("agent: record the enrolment of %s: %w", req.Name, err)
	}
	if res.Err != "" {
		return api.EnrollResponse{}, forbidden("%s", res.Err)
	}
	cert, err := ca.SignFor([]byte(req.CSR), req.Name, now, a.certTTL())
	if err != nil {
		return api.EnrollResponse{}, badRequest("%v", err)
	}
	a.log.Info("signed the certificate of a joining host", "host", req.Name, "key", fp)
	return api.EnrollResponse{Certificate: string(cert), CA: string(trustPEM(c))}, nil
}

// initCluster puts the CA certificate made by createCA into the replicated
// state with a first token (cluster.init), once. The CA key stays in
// ca.key on this host, the first voter; other voters fetch it (ca.go). It
// runs on the host that bootstrapped the cluster.
func (a *Agent) initCluster(ctx context.Context) error {
	keyPEM, err := os.ReadFile(a.dataFile(caKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: read the CA key: %w", err)
	}
	if c := a.store.State().Cluster; c != nil {
		return nil
	}
	// Voters hold ca.key too: only the bootstrapping host, alone in its
	// configuration (also when it restarts before cluster.init commits),
	// records the CA. Another voter's state has not caught up yet.
	if servers, err := a.store.Servers(); !a.cfg.Bootstrap && (err != nil || len(servers) != 1 || servers[0].ID != a.cfg.Name) {
		return nil
	}
	caPEM := pki.CertPEM(a.id.Load().CA)
	ca, err := pki.ParseCA(caPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("agent: %s: %w", a.dataFile(caKeyFile), err)
	}
	nonce, hash, err := newTokenSecret(ca)
	if err != nil {
		return err
	}
	cmd := raftstore.Command{Op: raftstore.OpClusterInit, Cluster: &raftstore.Cluster{
		CACert: string(caPEM), TokenNonce: nonce, TokenHash: hash,
	}}
	if _, err := a.apply(ctx, cmd); err != nil {
		return fmt.Errorf("agent: record the cluster CA: %w", err)
	}
	tok, _ := a.currentToken()
	a.log.Info("cluster created: join other hosts with --join "+a.cfg.Advertise.String()+" --token TOKEN",
		"token", tok.Token, "file", a.dataFile(joinTokenFile))
	return nil
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
	ca, err := a.signer()
	if err != nil {
		return api.Token{}, err
	}
	secret, err := pki.DeriveSecret(ca.Key, c.TokenNonce)
	if err != nil {
		return api.Token{}, err
	}
	t := pki.Token{CADigest: ca.Digest(), Secret: secret}
	return api.Token{Token: t.String(), RotatedAt: c.TokenRotatedAt, Expires: c.TokenExpires}, nil
}

func (a *Agent) handleToken(w http.ResponseWriter, r *http.Request) {
	t, err := a.currentToken()
	reply(w, t, err)
}

// maxTokenTTL bounds --ttl: a token that lives longer than a year should
// not expire at all.
const maxTokenTTL = 366 * 24 * time.Hour

// tokenRequest reads an optional api.TokenRequest body and returns it with
// the expiry it asks for (unix nanoseconds from now, 0 for never) and the
// cluster's CA record.
func (a *Agent) tokenRequest(w http.ResponseWriter, r *http.Request, now time.Time) (api.TokenRequest, int64, *raftstore.Cluster, error) {
	var req api.TokenRequest
	if r.ContentLength != 0 {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		if err := decode(r, &req); err != nil {
			return req, 0, nil, err
		}
	}
	ttl := time.Duration(req.TTL) * time.Second
	if req.TTL < 0 || ttl > maxTokenTTL {
		return req, 0, nil, badRequest("--ttl must be between 1s and 8784h (a year), or 0 for a token that does not expire")
	}
	var expires int64
	if ttl > 0 {
		expires = now.Add(ttl).UnixNano()
	}
	c := a.store.State().Cluster
	if c == nil {
		return req, 0, nil, errors.New("agent: the cluster has no CA yet: wait until its first host is ready")
	}
	return req, expires, c, nil
}

// handleTokenCreate makes an extra join token for automation, with its own
// expiry and optionally single-use, so each new host can get a short-lived
// token of its own. Its secret is random and shown only in this answer;
// the replicated state keeps its hash.
func (a *Agent) handleTokenCreate(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	req, expires, c, err := a.tokenRequest(w, r, now)
	if err != nil {
		reply(w, nil, err)
		return
	}
	caCert, err := pki.ParseCertPEM([]byte(c.CACert))
	if err != nil {
		reply(w, nil, fmt.Errorf("agent: the replicated cluster CA: %w", err))
		return
	}
	tok := pki.Token{CADigest: pki.Digest(caCert), Secret: pki.NewSecret()}
	jt := &raftstore.JoinToken{Hash: pki.HashSecret(tok.Secret), Expires: expires, SingleUse: req.SingleUse}
	if _, err := a.apply(r.Context(), raftstore.Command{Op: raftstore.OpTokenCreate, Time: now.UnixNano(), Token: jt}); err != nil {
		reply(w, nil, fmt.Errorf("agent: create a join token: %w", err))
		return
	}
	a.log.Info("extra join token created", "single_use", req.SingleUse, "expires", expires)
	reply(w, api.Token{Token: tok.String(), RotatedAt: now.UnixNano(), Expires: expires, SingleUse: req.SingleUse}, nil)
}

// handleTokenRotate replaces the join token cluster-wide, optionally with
// an expiry; the old one, and every extra token, is refused from the
// commit on.
func (a *Agent) handleTokenRotate(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	_, expires, _, err := a.tokenRequest(w, r, now)
	if err != nil {
		reply(w, nil, err)
		return
	}
	ca, err := a.signer()
	if err != nil {
		reply(w, nil, err)
		return
	}
	nonce, hash, err := newTokenSecret(ca)
	if err != nil {
		reply(w, nil, err)
		return
	}
	cmd := raftstore.Command{Op: raftstore.OpTokenRotate, Time: now.UnixNano(),
		Cluster: &raftstore.Cluster{TokenNonce: nonce, TokenHash: hash, TokenExpires: expires}}
	if _, err := a.apply(r.Context(), cmd); err != nil {
		reply(w, nil, fmt.Errorf("agent: rotate the join token: %w", err))
		return
	}
	if err := a.waitState(r.Context(), func(st *raftstore.State) bool {
		return st.Cluster != nil && st.Cluster.TokenNonce == nonce
	}); err != nil {
		reply(w, nil, err)
		return
	}
	a.log.Info("join token rotated: the old token and every extra token are refused from now on")
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

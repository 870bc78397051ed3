package agent

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"vxswitch/api"
	"vxswitch/pki"
	"vxswitch/raftstore"
)

// The cluster CA's key and the hosts' certificates.
//
// The CA key lives in ca.key in the data directory of every voter, and of
// no other host: the leader, a voter, signs the certificates of joining
// hosts and renewals, and any voter can take over. A host that becomes a
// voter asks the leader for the key over the peer API (voters only); a
// host that stops being one deletes it. Clusters made before the key moved
// off the replicated state keep using the key there until `vxswitch ca
// rotate`, which makes a new CA whose key never enters the state.
//
// Node certificates live Config.CertTTL (90 days by default). An agent
// renews its own once two thirds of its life have passed, and at once when
// the cluster's CA is not the one that signed it (after a rotation): the
// leader signs a new certificate for the same key, so the key recorded for
// the host stays valid. A rotation keeps the replaced CA trusted until
// every host reports (Host.CertCA) a certificate of the new one, or until
// Config.CAOverlap has passed, then the leader retires it. Removing a
// voter with 'vxswitch members rm' rotates the CA, since that host held
// its key.

// caNextKeyFile holds the key of a CA the leader is rotating to, until the
// rotation commits.
const caNextKeyFile = "ca-next.key"

// signer returns the cluster CA with its key: from the replicated state in
// a cluster made before keys moved off it, else from this host's ca.key
// (or ca-next.key just after a rotation). It fails on a host that does not
// hold the key.
func (a *Agent) signer() (*pki.CA, error) {
	c := a.store.State().Cluster
	if c == nil {
		return nil, errors.New("agent: the cluster has no CA yet: wait until its first host is ready")
	}
	if c.CAKey != "" {
		ca, err := pki.ParseCA([]byte(c.CACert), []byte(c.CAKey))
		if err != nil {
			return nil, fmt.Errorf("agent: the replicated cluster CA: %w", err)
		}
		return ca, nil
	}
	if ca, ok := a.localCA(c); ok {
		return ca, nil
	}
	if a.isVoter(a.cfg.Name) && a.store.Role() != raftstore.RoleLeader {
		a.keepCAKey() // a voter that joined a moment ago: fetch it now
		if ca, ok := a.localCA(c); ok {
			return ca, nil
		}
	}
	if !a.isVoter(a.cfg.Name) {
		return nil, nonVoterRefusal(a.cfg.Name, "using the cluster CA's key (only voters hold it)")
	}
	return nil, fmt.Errorf("agent: host %s is a voter but has not received the cluster CA's key from the leader yet: retry in a few seconds", a.cfg.Name)
}

// localCA returns the CA of c with the key in this host's data dir, if
// it holds that key.
func (a *Agent) localCA(c *raftstore.Cluster) (*pki.CA, bool) {
	for _, f := range []string{caKeyFile, caNextKeyFile} {
		key, err := os.ReadFile(a.dataFile(f))
		if err != nil {
			continue
		}
		if ca, err := pki.ParseCA([]byte(c.CACert), key); err == nil {
			return ca, true
		}
	}
	return nil, false
}

// certTTL is the lifetime of the node certificates this host signs.
func (a *Agent) certTTL() time.Duration {
	if a.cfg.CertTTL > 0 {
		return a.cfg.CertTTL
	}
	return pki.NodeValidity
}

// caOverlap is how long a replaced CA stays trusted at most.
func (a *Agent) caOverlap() time.Duration {
	if a.cfg.CAOverlap > 0 {
		return a.cfg.CAOverlap
	}
	return 24 * time.Hour
}

// trustPEM returns the CAs a cluster trusts, the current one first.
func trustPEM(c *raftstore.Cluster) []byte {
	out := []byte(c.CACert)
	for _, p := range c.PrevCAs {
		out = append(out, p...)
	}
	return out
}

func digestHex(c *x509.Certificate) string {
	d := pki.Digest(c)
	return hex.EncodeToString(d[:])
}

// issuerDigest returns the digest of the trusted CA that signed cert, or
// "" if none did.
func (a *Agent) issuerDigest(cert *x509.Certificate) string {
	for _, ca := range a.id.Load().Trust {
		if cert.CheckSignatureFrom(ca) == nil {
			return digestHex(ca)
		}
	}
	return ""
}

// updateTrust makes the host trust the CAs the replicated state lists
// (after a rotation, the new one and the old one; after the retirement,
// the new one only) and keeps ca.crt in step, for the next start.
func (a *Agent) updateTrust() {
	c := a.store.State().Cluster
	if c == nil || a.id == nil {
		return
	}
	cas, err := pki.ParseCertsPEM(trustPEM(c))
	if err != nil {
		a.log.Error("the replicated cluster CAs do not parse", "err", err)
		return
	}
	id := a.id.Load()
	if slices.EqualFunc(id.Trust, cas, func(x, y *x509.Certificate) bool { return x.Equal(y) }) {
		return
	}
	if !slices.ContainsFunc(cas, func(x *x509.Certificate) bool { return x.Equal(id.CA) }) {
		a.log.Warn("this host's certificate is from a CA the cluster no longer trusts: other hosts refuse it; enrol again with a join token (remove node.crt and node.key, start with --join and --token)")
	}
	a.id.Store(id.WithTrust(cas))
	if err := writeFiles(a.cfg.DataDir, []fileData{{caCertFile, trustPEM(c)}}); err != nil {
		a.log.Warn("write the trusted CAs", "err", err)
	}
}

// caLoop keeps the CA key where it belongs, the host's certificate fresh,
// and retires a replaced CA once no host uses it.
func (a *Agent) caLoop() {
	// Every check is cheap until something is due.
	a.every(time.Second, func() {
		a.keepCAKey()
		if err := a.renewIfDue(); err != nil {
			a.log.Warn("renew this host's certificate", "err", err)
		}
		a.retireCA()
	})
}

// keepCAKey fetches the CA key from the leader on a voter that lacks it,
// and deletes it on a host that is not a voter.
func (a *Agent) keepCAKey() {
	c := a.store.State().Cluster
	if c == nil || c.CAKey != "" {
		return
	}
	if !a.isVoter(a.cfg.Name) {
		if a.store.Role() != raftstore.RoleLeader {
			for _, f := range []string{caKeyFile, caNextKeyFile} {
				if err := os.Remove(a.dataFile(f)); err == nil {
					a.log.Info("deleted the CA key: this host is not a voter", "file", f)
				}
			}
		}
		return
	}
	if _, ok := a.localCA(c); ok {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	var resp api.CAKeyResponse
	err := a.onLeader(ctx, api.RouteInternalCAKey, struct{}{}, &resp, func(context.Context) error {
		return errors.New("this host leads but lacks the CA key")
	})
	if err != nil {
		a.log.Warn("cannot get the CA key from the leader yet", "err", err)
		return
	}
	if _, err := pki.ParseCA([]byte(c.CACert), []byte(resp.Key)); err != nil {
		a.log.Warn("the leader sent a CA key that does not match the cluster CA", "err", err)
		return
	}
	if err := writeFiles(a.cfg.DataDir, []fileData{{caKeyFile, []byte(resp.Key)}}); err != nil {
		a.log.Warn("store the CA key", "err", err)
		return
	}
	a.log.Info("received the CA key: this host is a voter")
}

// handleCAKey gives the CA key to a voter that asks for it.
func (a *Agent) handleCAKey(w http.ResponseWriter, r *http.Request) {
	name, _ := pki.PeerName(r.TLS)
	if !a.isVoter(name) {
		reply(w, nil, forbidden("host %q is not a voter: only voters hold the CA key", name))
		return
	}
	ca, err := a.signer()
	if err != nil {
		reply(w, nil, err)
		return
	}
	key, err := ca.KeyPEM()
	if err != nil {
		reply(w, nil, err)
		return
	}
	a.log.Info("handed the CA key to a voter", "host", name)
	reply(w, api.CAKeyResponse{CACert: string(ca.CertPEM()), Key: string(key)}, nil)
}

// renewIfDue renews this host's certificate when two thirds of its life
// have passed or the cluster's CA is not the one that signed it.
func (a *Agent) renewIfDue() error {
	c := a.store.State().Cluster
	if c == nil {
		return nil
	}
	id := a.id.Load()
	rotated := !pki.SameCA([]byte(c.CACert), pki.CertPEM(id.CA))
	if !rotated && !pki.RenewDue(id.Leaf(), time.Now()) {
		return a.reportCertCA(id)
	}
	keyPEM, err := os.ReadFile(a.dataFile(nodeKeyFile))
	if err != nil {
		return fmt.Errorf("agent: read node key: %w", err)
	}
	key, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("agent: node key: %w", err)
	}
	csr, err := pki.NewCSR(a.cfg.Name, key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	req := api.RenewRequest{CSR: string(csr)}
	var resp api.RenewResponse
	if err := a.onLeader(ctx, api.RouteInternalRenew, req, &resp, func(context.Context) error {
		var err error
		resp, err = a.signRenewal(a.cfg.Name, req)
		return err
	}); err != nil {
		return err
	}
	next, err := pki.ParseIdentity([]byte(resp.Trust), []byte(resp.Certificate), keyPEM)
	if err != nil {
		return fmt.Errorf("agent: renewed certificate: %w", err)
	}
	if err := writeFiles(a.cfg.DataDir, []fileData{{caCertFile, []byte(resp.Trust)}, {nodeCertFile, []byte(resp.Certificate)}}); err != nil {
		return err
	}
	a.id.Store(next)
	a.log.Info("renewed this host's certificate", "expires", next.Leaf().NotAfter.Format(time.RFC3339), "ca", digestHex(next.CA)[:16], "ca_rotated", rotated)
	return a.reportCertCA(next)
}

// reportCertCA records in this host's entry which CA signed its
// certificate, if the entry says otherwise.
func (a *Agent) reportCertCA(id *pki.Identity) error {
	h, ok := a.store.State().Hosts[a.cfg.Name]
	if !ok || h.CertCA == digestHex(id.CA) {
		return nil
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	self := a.self()
	_, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpHostAdd, Host: &self})
	return err
}

// handleRenew signs a new certificate for the key of the member asking.
func (a *Agent) handleRenew(w http.ResponseWriter, r *http.Request) {
	var req api.RenewRequest
	if err := decode(r, &req); err != nil {
		reply(w, nil, err)
		return
	}
	name, _ := pki.PeerName(r.TLS)
	resp, err := a.signRenewal(name, req)
	if err != nil {
		a.refusals.warn(a.log, "renew/"+name, "refused a certificate renewal", "host", name, "err", err)
	}
	reply(w, resp, err)
}

// signRenewal signs the CSR of member name, on the leader: only for the
// member's own name and recorded key.
func (a *Agent) signRenewal(name string, req api.RenewRequest) (api.RenewResponse, error) {
	if a.store.Role() != raftstore.RoleLeader {
		return api.RenewResponse{}, raftstore.ErrNotLeader
	}
	csr, err := pki.ParseCSR([]byte(req.CSR), name)
	if err != nil {
		return api.RenewResponse{}, badRequest("%v", err)
	}
	fp, err := pki.CSRKeyFingerprint(csr)
	if err != nil {
		return api.RenewResponse{}, badRequest("%v", err)
	}
	st := a.store.State()
	if h, ok := st.Hosts[name]; !ok || (h.KeyFP != "" && h.KeyFP != fp) {
		return api.RenewResponse{}, forbidden("host %q may renew only its own certificate, for the key the cluster records for it", name)
	}
	ca, err := a.signer()
	if err != nil {
		return api.RenewResponse{}, err
	}
	cert, err := ca.SignFor([]byte(req.CSR), name, time.Now(), a.certTTL())
	if err != nil {
		return api.RenewResponse{}, badRequest("%v", err)
	}
	return api.RenewResponse{Certificate: string(cert), Trust: string(trustPEM(st.Cluster))}, nil
}

// rotateCA makes a new CA, on the leader: its key goes to ca-next.key, the
// rotation commits (the new CA and its join token; the old CA stays
// trusted), then the key becomes ca.key. The other voters fetch it.
func (a *Agent) rotateCA(ctx context.Context) error {
	if a.store.Role() != raftstore.RoleLeader {
		return raftstore.ErrNotLeader
	}
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		return err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := writeFiles(a.cfg.DataDir, []fileData{{caNextKeyFile, key}}); err != nil {
		return err
	}
	nonce, hash, err := newTokenSecret(ca)
	if err != nil {
		return err
	}
	cmd := raftstore.Command{Op: raftstore.OpCARotate, Cluster: &raftstore.Cluster{
		CACert: string(ca.CertPEM()), TokenNonce: nonce, TokenHash: hash}}
	if _, err := a.apply(ctx, cmd); err != nil {
		os.Remove(a.dataFile(caNextKeyFile))
		return fmt.Errorf("agent: rotate the CA: %w", err)
	}
	if err := os.Rename(a.dataFile(caNextKeyFile), a.dataFile(caKeyFile)); err != nil {
		return fmt.Errorf("agent: keep the new CA key: %w", err)
	}
	a.log.Info("CA rotated: hosts renew their certificates; the old CA is trusted until they have", "ca", digestHex(ca.Cert)[:16])
	return nil
}

// retireCA drops the replaced CAs, on the leader, once every host reports
// a certificate of the current CA or the overlap has passed.
func (a *Agent) retireCA() {
	st := a.store.State()
	c := st.Cluster
	if c == nil || len(c.PrevCAs) == 0 || a.store.Role() != raftstore.RoleLeader {
		return
	}
	cur, err := pki.ParseCertPEM([]byte(c.CACert))
	if err != nil {
		return
	}
	want := digestHex(cur)
	var behind []string
	for name, h := range st.Hosts {
		if h.CertCA != want {
			behind = append(behind, name)
		}
	}
	if len(behind) > 0 && time.Since(time.Unix(0, c.CARotatedAt)) < a.caOverlap() {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	if _, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpCARetire}); err != nil {
		a.log.Warn("retire the replaced CA", "err", err)
		return
	}
	if len(behind) > 0 {
		a.log.Warn("retired the replaced CA after the overlap; these hosts did not renew and must enrol again", "hosts", strings.Join(behind, ","))
	} else {
		a.log.Info("retired the replaced CA: every host has a certificate of the new one")
	}
}

// handleCARotate rotates the CA (POST /v1/ca/rotate), through the leader.
func (a *Agent) handleCARotate(w http.ResponseWriter, r *http.Request) {
	err := a.onLeader(r.Context(), api.RouteInternalCARotate, struct{}{}, nil, a.rotateCA)
	if err == nil {
		err = a.waitState(r.Context(), func(st *raftstore.State) bool { return st.Cluster != nil && len(st.Cluster.PrevCAs) > 0 })
	}
	if err != nil {
		reply(w, nil, err)
		return
	}
	reply(w, a.caInfo(), nil)
}

// handleInternalCARotate is the leader's side of a rotation a voter asks
// for.
func (a *Agent) handleInternalCARotate(w http.ResponseWriter, r *http.Request) {
	name, _ := pki.PeerName(r.TLS)
	if !a.isVoter(name) {
		reply(w, nil, nonVoterRefusal(name, "rotating the CA"))
		return
	}
	reply(w, struct{}{}, a.rotateCA(r.Context()))
}

func (a *Agent) handleCA(w http.ResponseWriter, r *http.Request) { reply(w, a.caInfo(), nil) }

// caInfo describes the cluster CA and this host's certificate.
func (a *Agent) caInfo() api.CAInfo {
	st := a.store.State()
	id := a.id.Load()
	out := api.CAInfo{CertCA: digestHex(id.CA), CertExpires: id.Leaf().NotAfter.UnixNano()}
	if c := st.Cluster; c != nil {
		if cur, err := pki.ParseCertPEM([]byte(c.CACert)); err == nil {
			out.Digest = digestHex(cur)
		}
		for _, p := range c.PrevCAs {
			if prev, err := pki.ParseCertPEM([]byte(p)); err == nil {
				out.Previous = append(out.Previous, digestHex(prev))
			}
		}
		out.RotatedAt, out.KeyInState = c.CARotatedAt, c.CAKey != ""
	}
	_, err := a.signer()
	out.HoldsKey = err == nil
	for name, h := range st.Hosts {
		if h.CertCA == out.Digest {
			out.Renewed = append(out.Renewed, name)
		}
	}
	slices.Sort(out.Renewed)
	return out
}

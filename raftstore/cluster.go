package raftstore

import (
	"errors"
	"fmt"
	"strings"
)

// Cluster is the cluster's identity in the replicated state: its CA and
// what checks join tokens.
//
// The CA's private key lives here, so it is in every host's raft.db and
// snapshots (as with Docker Swarm managers): whichever host becomes leader
// can sign the certificates of joining hosts. A host's data directory is
// therefore a secret: whoever reads it can make certificates of the
// cluster.
//
// A Cluster held by a State is immutable.
type Cluster struct {
	CACert string // PEM certificate of the cluster CA
	CAKey  string // PEM private key of the cluster CA (secret, see above)
	// TokenNonce picks the current token secret: members derive the
	// secret from the CA key and this nonce (pki.DeriveSecret), so they can
	// print the token; token.rotate replaces it.
	TokenNonce string
	// TokenHash is the hex SHA-256 of the current token secret; a joining
	// host's secret is compared against it in constant time.
	TokenHash string
	// TokenRotatedAt is the unix nanoseconds of the last cluster.init or
	// token.rotate, taken from Command.Time.
	TokenRotatedAt int64
	// TokenExpires is the unix nanoseconds from which the token is
	// refused; 0 (and every cluster made before tokens could expire) means
	// it never expires.
	TokenExpires int64 `json:",omitempty"`
}

// clusterInit records the cluster's CA and first token. It is applied once,
// by the host that bootstraps the cluster; applying it again with the same
// CA changes nothing and succeeds; with another CA it is rejected.
func clusterInit(st *State, cmd Command) (*Result, error) {
	c := cmd.Cluster
	if c == nil || !strings.Contains(c.CACert, "BEGIN CERTIFICATE") || !strings.Contains(c.CAKey, "PRIVATE KEY") {
		return nil, errors.New("cluster.init needs a Cluster with the CA certificate and key in PEM")
	}
	if err := checkToken(c); err != nil {
		return nil, fmt.Errorf("cluster.init: %w", err)
	}
	if st.Cluster != nil {
		if st.Cluster.CACert == c.CACert {
			return &Result{}, nil
		}
		return nil, errors.New("cluster.init: this cluster already has a CA: a cluster is initialised once, by the host that bootstraps it")
	}
	first := *c
	first.TokenRotatedAt = cmd.Time
	st.Cluster = &first
	return &Result{}, nil
}

// tokenRotate replaces the join token's nonce, hash and expiry; tokens made
// from the old secret, and every extra token (token.create), are refused
// from then on.
func tokenRotate(st *State, cmd Command) (*Result, error) {
	if st.Cluster == nil {
		return nil, errors.New("token.rotate: the cluster has no CA yet: wait until the bootstrapping host is ready")
	}
	if cmd.Cluster == nil {
		return nil, errors.New("token.rotate needs a Cluster with TokenNonce and TokenHash")
	}
	if err := checkToken(cmd.Cluster); err != nil {
		return nil, fmt.Errorf("token.rotate: %w", err)
	}
	if x := cmd.Cluster.TokenExpires; x != 0 && x <= cmd.Time {
		return nil, errors.New("token.rotate: the token would expire before it is made: give a positive --ttl")
	}
	next := *st.Cluster
	next.TokenNonce, next.TokenHash, next.TokenRotatedAt = cmd.Cluster.TokenNonce, cmd.Cluster.TokenHash, cmd.Time
	next.TokenExpires = cmd.Cluster.TokenExpires
	st.Cluster = &next
	st.Tokens = nil
	return &Result{}, nil
}

func checkToken(c *Cluster) error {
	if c.TokenNonce == "" {
		return errors.New("TokenNonce is empty: give a random nonce")
	}
	return checkHash("TokenHash", c.TokenHash)
}

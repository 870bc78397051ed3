package raftstore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"vxswitch/pki"
)

// JoinToken is an extra join token made by token.create, besides the
// cluster's own token (Cluster.TokenHash): for automation, each new host
// can get a token of its own that expires, or admits one host only. Its
// secret is random and shown once to whoever created it; the state keeps
// only its hash. A JoinToken held by a State is immutable.
type JoinToken struct {
	Hash      string // hex SHA-256 of the secret; the key in State.Tokens
	CreatedAt int64  // unix nanoseconds, from Command.Time
	Expires   int64  // unix nanoseconds; 0 means it never expires
	SingleUse bool   // the first enrolment with it uses it up
	UsedBy    string // the host that used a single-use token; "" while unused
}

// MaxTokens bounds State.Tokens. token.create drops expired tokens first,
// then used single-use ones, before it refuses.
const MaxTokens = 1000

// CheckJoinToken tells whether the join token secret whose hash is
// secretHash may enrol a host at time now (unix nanoseconds): it must be
// the cluster's token, not expired, or an extra token that is neither
// expired nor used up. It only reads st. The error names the problem and
// the fix.
func CheckJoinToken(st *State, secretHash string, now int64) error {
	c := st.Cluster
	if c == nil {
		return errors.New("the cluster has no CA yet: its first host is still starting")
	}
	expired := func(at int64) error {
		return fmt.Errorf("the join token expired at %s: make a new one with 'vxswitch token --rotate' or 'vxswitch token --create' on a voter",
			time.Unix(0, at).UTC().Format(time.RFC3339))
	}
	if secretHash == c.TokenHash {
		if c.TokenExpires != 0 && now >= c.TokenExpires {
			return expired(c.TokenExpires)
		}
		return nil
	}
	if t, ok := st.Tokens[secretHash]; ok {
		switch {
		case t.UsedBy != "":
			return fmt.Errorf("the single-use join token was already used (by host %s): make a new one with 'vxswitch token --create --single-use' on a voter", t.UsedBy)
		case t.Expires != 0 && now >= t.Expires:
			return expired(t.Expires)
		}
		return nil
	}
	return errors.New("the join token is not this cluster's current token (wrong, or rotated away): get the current one with 'vxswitch token' on a member")
}

// tokenCreate adds an extra join token. Expired tokens are dropped on the
// way, and used single-use ones too when the cluster holds MaxTokens.
func tokenCreate(st *State, cmd Command) (*Result, error) {
	if st.Cluster == nil {
		return nil, errors.New("token.create: the cluster has no CA yet: wait until the bootstrapping host is ready")
	}
	t := cmd.Token
	if t == nil {
		return nil, errors.New("token.create needs a Token with the hash of its secret")
	}
	if err := checkHash("token.create: Hash", t.Hash); err != nil {
		return nil, err
	}
	if t.Expires != 0 && t.Expires <= cmd.Time {
		return nil, errors.New("token.create: the token would expire before it is made: give a positive --ttl")
	}
	if _, ok := st.Tokens[t.Hash]; ok || t.Hash == st.Cluster.TokenHash {
		return nil, errors.New("token.create: a token with this secret exists already: make a new random secret")
	}
	tokens := make(map[string]JoinToken, len(st.Tokens)+1)
	for h, o := range st.Tokens {
		if o.Expires == 0 || o.Expires > cmd.Time {
			tokens[h] = o
		}
	}
	if len(tokens) >= MaxTokens {
		for h, o := range tokens {
			if o.UsedBy != "" {
				delete(tokens, h)
			}
		}
	}
	if len(tokens) >= MaxTokens {
		return nil, fmt.Errorf("token.create: the cluster holds %d unexpired extra tokens already: give tokens a --ttl, or revoke them all with 'vxswitch token --rotate'", MaxTokens)
	}
	tokens[t.Hash] = JoinToken{Hash: t.Hash, CreatedAt: cmd.Time, Expires: t.Expires, SingleUse: t.SingleUse}
	st.Tokens = tokens
	return &Result{}, nil
}

// tokenUse admits the enrolment of a host (Command.Host: its name and the
// fingerprint of the key it asks a certificate for) with the token secret
// whose hash is Command.TokenHash, at Command.Time. The leader applies it
// before it signs the host's certificate, so that a single-use token
// admits one host even when two race. It refuses an invalid token, the
// key of a removed host, and the name of a member with another key.
func tokenUse(st *State, cmd Command) (*Result, error) {
	h := cmd.Host
	if h == nil {
		return nil, errors.New("token.use needs a Host with the enrolling host's name and key fingerprint")
	}
	if pki.CheckName(h.Name) != nil {
		return nil, fmt.Errorf("host name %q is invalid: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", h.Name)
	}
	if err := checkHash("token.use: KeyFP", h.KeyFP); err != nil {
		return nil, err
	}
	if err := CheckJoinToken(st, cmd.TokenHash, cmd.Time); err != nil {
		return nil, err
	}
	if name, ok := st.Removed[h.KeyFP]; ok {
		return nil, fmt.Errorf("the key of host %q belongs to host %s, which was removed from the cluster: enrol with a new key (an empty --data-dir)", h.Name, name)
	}
	if old, ok := st.Hosts[h.Name]; ok && old.KeyFP != h.KeyFP {
		return nil, fmt.Errorf("host %q is a member of the cluster with another key: a new host cannot enrol under its name: pick another --name, or remove the old host first with 'vxswitch members rm %s'", h.Name, h.Name)
	}
	if t, ok := st.Tokens[cmd.TokenHash]; ok && t.SingleUse {
		t.UsedBy = h.Name
		tokens := make(map[string]JoinToken, len(st.Tokens))
		for k, v := range st.Tokens {
			tokens[k] = v
		}
		tokens[t.Hash] = t
		st.Tokens = tokens
	}
	return &Result{}, nil
}

// checkHash returns an error unless h is a hex SHA-256 (64 hex digits).
func checkHash(what, h string) error {
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return fmt.Errorf("%s is not a hex SHA-256 (64 hex digits)", what)
	}
	return nil
}

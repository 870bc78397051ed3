package raftstore

import (
	"strings"
	"testing"
)

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	certA = "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"
	certB = "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n"
	keyA  = "-----BEGIN PRIVATE KEY-----\nA\n-----END PRIVATE KEY-----\n"
)

func initCmd(cert, hash string) Command {
	return Command{Op: OpClusterInit, Time: 7, Cluster: &Cluster{CACert: cert, CAKey: keyA, TokenNonce: "n1", TokenHash: hash}}
}

func rotateCmd(nonce, hash string) Command {
	return Command{Op: OpTokenRotate, Time: 9, Cluster: &Cluster{TokenNonce: nonce, TokenHash: hash}}
}

// TestClusterCommands: cluster.init once, token.rotate replaces only the
// token, and invalid commands leave the state unchanged.
func TestClusterCommands(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name    string
		cmd     Command
		wantErr string
	}{
		{"rotate before init", rotateCmd("n2", hashB), "has no CA yet"},
		{"init without cluster", Command{Op: OpClusterInit}, "needs a Cluster"},
		{"init with a malformed key", Command{Op: OpClusterInit, Cluster: &Cluster{CACert: certA, CAKey: "x", TokenNonce: "n", TokenHash: hashA}}, "needs a Cluster"},
		{"init without certificate", Command{Op: OpClusterInit, Cluster: &Cluster{TokenNonce: "n", TokenHash: hashA}}, "needs a Cluster"},
		{"init with short hash", initCmd(certA, hashA[:62]), "TokenHash is not a hex SHA-256"},
		{"init with no nonce", Command{Op: OpClusterInit, Cluster: &Cluster{CACert: certA, CAKey: keyA, TokenHash: hashA}}, "TokenNonce is empty"},
	} {
		before := h.f.State()
		res := h.apply(tc.cmd)
		if !strings.Contains(res.Err, tc.wantErr) || tc.wantErr == "" {
			t.Errorf("%s: Err %q, want one containing %q", tc.name, res.Err, tc.wantErr)
		}
		if h.f.State() != before {
			t.Errorf("%s: a rejected command changed the state", tc.name)
		}
	}

	h.must(initCmd(certA, hashA))
	c := h.f.State().Cluster
	if c == nil || c.CACert != certA || c.CAKey != keyA || c.TokenHash != hashA || c.TokenRotatedAt != 7 {
		t.Fatalf("after init: %+v", c)
	}
	hash := h.f.State().Hash()
	h.must(initCmd(certA, hashA)) // same CA again: nothing changes
	if h.f.State().Hash() != hash {
		t.Fatal("a repeated cluster.init changed the state")
	}
	if res := h.apply(initCmd(certB, hashA)); !strings.Contains(res.Err, "already has a CA") {
		t.Fatalf("init with another CA: Err %q, want 'already has a CA'", res.Err)
	}

	h.must(rotateCmd("n2", hashB))
	c = h.f.State().Cluster
	if c.CACert != certA || c.CAKey != keyA || c.TokenNonce != "n2" || c.TokenHash != hashB || c.TokenRotatedAt != 9 {
		t.Fatalf("after rotate: %+v", c)
	}
	if h.f.State().Hash() == hash {
		t.Fatal("token.rotate left the state hash unchanged")
	}
	if res := h.apply(rotateCmd("", hashA)); !strings.Contains(res.Err, "TokenNonce is empty") {
		t.Fatalf("rotate without nonce: Err %q", res.Err)
	}
}

// TestCARotation: ca.rotate makes the new CA the cluster's, drops the key
// the state held (clusters made before keys moved off it), keeps the old
// CA trusted and replaces the token and extra tokens; ca.retire drops the
// old CA; invalid commands leave the state unchanged.
func TestCARotation(t *testing.T) {
	h := newHarness(t)
	rotate := func(cert, key string) Command {
		return Command{Op: OpCARotate, Time: 11, Cluster: &Cluster{CACert: cert, CAKey: key, TokenNonce: "n3", TokenHash: hashB}}
	}
	if res := h.apply(rotate(certB, "")); !strings.Contains(res.Err, "has no CA yet") {
		t.Fatalf("rotate before init: %q", res.Err)
	}
	h.must(initCmd(certA, hashA)) // a cluster whose state holds its CA key
	h.must(Command{Op: OpTokenCreate, Time: 8, Token: &JoinToken{Hash: hashB}})
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{"same CA", rotate(certA, ""), "is the cluster's CA already"},
		{"with a key", rotate(certB, keyA), "no key"},
		{"no nonce", Command{Op: OpCARotate, Cluster: &Cluster{CACert: certB, TokenHash: hashB}}, "TokenNonce is empty"},
		{"retire with nothing to retire", Command{Op: OpCARetire}, "nothing to retire"},
	} {
		before := h.f.State()
		if res := h.apply(tc.cmd); !strings.Contains(res.Err, tc.want) {
			t.Errorf("%s: Err %q, want %q", tc.name, res.Err, tc.want)
		}
		if h.f.State() != before {
			t.Errorf("%s: a rejected command changed the state", tc.name)
		}
	}
	h.must(rotate(certB, ""))
	st := h.f.State()
	c := st.Cluster
	if c.CACert != certB || c.CAKey != "" || len(c.PrevCAs) != 1 || c.PrevCAs[0] != certA ||
		c.TokenNonce != "n3" || c.TokenHash != hashB || c.CARotatedAt != 11 || len(st.Tokens) != 0 {
		t.Fatalf("after ca.rotate: %+v, tokens %v", c, st.Tokens)
	}
	h.must(Command{Op: OpCARetire})
	if c := h.f.State().Cluster; len(c.PrevCAs) != 0 || c.CACert != certB {
		t.Fatalf("after ca.retire: %+v", c)
	}
}

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
		{"init without key", Command{Op: OpClusterInit, Cluster: &Cluster{CACert: certA, TokenNonce: "n", TokenHash: hashA}}, "needs a Cluster"},
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

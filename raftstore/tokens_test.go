package raftstore

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

const (
	hashC = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	hashD = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	fp1   = "1111111111111111111111111111111111111111111111111111111111111111"
	fp2   = "2222222222222222222222222222222222222222222222222222222222222222"
	fp3   = "3333333333333333333333333333333333333333333333333333333333333333"
)

func useCmd(name, fp, tokenHash string, at int64) Command {
	return Command{Op: OpTokenUse, Time: at, TokenHash: tokenHash, Host: &Host{Name: name, KeyFP: fp}}
}

func keyedHost(name, vtep, fp string) Command {
	return Command{Op: OpHostAdd, Time: 1, Host: &Host{Name: name, VTEP: netip.MustParseAddr(vtep), KeyFP: fp}}
}

// TestJoinTokens: an enrolment is admitted with a valid token only (the
// cluster's, not expired; an extra one, not expired, not used up), never
// under the name of a member with another key nor with a removed host's
// key; a rotation revokes the old token and every extra one; a rejected
// command leaves the state as it was.
func TestJoinTokens(t *testing.T) {
	h := newHarness(t)
	rejected := func(what string, cmd Command, want string) {
		t.Helper()
		before := h.f.State()
		if res := h.apply(cmd); !strings.Contains(res.Err, want) {
			t.Errorf("%s: Err %q, want one containing %q", what, res.Err, want)
		}
		if h.f.State() != before {
			t.Errorf("%s: a rejected command changed the state", what)
		}
	}
	rejected("before the CA", useCmd("n2", fp2, hashA, 8), "no CA yet")
	h.must(initCmd(certA, hashA))
	h.must(keyedHost("n1", "10.0.0.1", fp1))

	// A cluster made before tokens could expire: its token stays valid.
	h.must(useCmd("n2", fp2, hashA, 1<<62))
	rejected("stolen token (wrong secret)", useCmd("n2", fp2, hashB, 10), "not this cluster's current token")
	rejected("a member's name, another key", useCmd("n1", fp2, hashA, 10), `host "n1" is a member of the cluster with another key`)
	h.must(useCmd("n1", fp1, hashA, 10)) // the member itself, same key: a retry
	rejected("bad key fingerprint", useCmd("n2", "xyz", hashA, 10), "KeyFP is not a hex SHA-256")
	rejected("bad name", useCmd("-x", fp2, hashA, 10), "invalid")
	rejected("no host", Command{Op: OpTokenUse, Time: 10, TokenHash: hashA}, "needs a Host")

	// A removed host's key stays out; a new key under its name enrols.
	h.must(keyedHost("n2", "10.0.0.2", fp2))
	h.must(Command{Op: OpHostRemove, Name: "n2"})
	rejected("removed host's key", useCmd("n2", fp2, hashA, 10), "which was removed from the cluster")
	h.must(useCmd("n2", fp3, hashA, 10))

	// Expiry of the cluster's token, set by a rotation.
	rot := rotateCmd("n2", hashB)
	rot.Cluster.TokenExpires = 100
	h.must(rot)
	rejected("rotated-away token", useCmd("n3", fp3, hashA, 50), "not this cluster's current token")
	rejected("expired token", useCmd("n3", fp3, hashB, 100), "the join token expired at")
	h.must(useCmd("n3", fp3, hashB, 99))
	past := rotateCmd("n3", hashA)
	past.Cluster.TokenExpires = 5 // before the command's time, 9
	rejected("rotation into the past", past, "expire before it is made")

	// Extra tokens: single use, expiry, revoked by a rotation.
	h.must(Command{Op: OpTokenCreate, Time: 20, Token: &JoinToken{Hash: hashC, SingleUse: true, Expires: 1000}})
	h.must(Command{Op: OpTokenCreate, Time: 20, Token: &JoinToken{Hash: hashD, Expires: 30}})
	rejected("same secret twice", Command{Op: OpTokenCreate, Time: 21, Token: &JoinToken{Hash: hashC}}, "exists already")
	rejected("the cluster's secret", Command{Op: OpTokenCreate, Time: 21, Token: &JoinToken{Hash: hashB}}, "exists already")
	rejected("expired at birth", Command{Op: OpTokenCreate, Time: 21, Token: &JoinToken{Hash: hashA, Expires: 21}}, "expire before it is made")
	h.must(useCmd("n4", fp1, hashC, 25))
	if tok := h.f.State().Tokens[hashC]; tok.UsedBy != "n4" || tok.CreatedAt != 20 {
		t.Errorf("single-use token after its use: %+v", tok)
	}
	rejected("reused single-use token", useCmd("n5", fp3, hashC, 26), "already used (by host n4)")
	rejected("expired extra token", useCmd("n5", fp3, hashD, 30), "the join token expired at")
	h.must(useCmd("n5", fp3, hashD, 29))
	h.must(rotateCmd("n4", hashA))
	if n := len(h.f.State().Tokens); n != 0 {
		t.Errorf("a rotation left %d extra tokens", n)
	}
	rejected("extra token after a rotation", useCmd("n6", fp3, hashD, 29), "not this cluster's current token")
}

// TestJoinTokensBounded: token.create drops expired tokens, then used
// single-use ones, and refuses beyond MaxTokens.
func TestJoinTokensBounded(t *testing.T) {
	h := newHarness(t)
	h.must(initCmd(certA, hashA))
	hash := func(i int) string { return fmt.Sprintf("%064x", i+1) }
	for i := range MaxTokens {
		tok := &JoinToken{Hash: hash(i), SingleUse: i == 0, Expires: 0}
		if i == 1 {
			tok.Expires = 50
		}
		h.must(Command{Op: OpTokenCreate, Time: 10, Token: tok})
	}
	h.must(useCmd("n2", fp2, hash(0), 11))
	h.must(Command{Op: OpTokenCreate, Time: 60, Token: &JoinToken{Hash: hash(MaxTokens)}}) // drops the expired one
	if _, ok := h.f.State().Tokens[hash(1)]; ok {
		t.Error("an expired token was kept")
	}
	h.must(Command{Op: OpTokenCreate, Time: 60, Token: &JoinToken{Hash: hash(MaxTokens + 1)}}) // drops the used one
	if _, ok := h.f.State().Tokens[hash(0)]; ok {
		t.Error("a used single-use token was kept at the cap")
	}
	if res := h.apply(Command{Op: OpTokenCreate, Time: 60, Token: &JoinToken{Hash: hash(MaxTokens + 2)}}); !strings.Contains(res.Err, "unexpired extra tokens already") {
		t.Errorf("token beyond the cap: Err %q", res.Err)
	}
}

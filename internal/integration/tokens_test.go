package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"vxswitch/internal/lab"
)

// TestJoinTokenLimits: with real agents and real Raft on disk, a token made
// with 'vxswitch token --create --ttl' is refused once expired, a
// single-use token admits one host and is refused the second time, a
// rotation revokes the old token and every extra one (a stolen token is
// worth nothing after it), and no host enrols under the name of a member.
// Each refusal names the problem and changes nothing.
func TestJoinTokenLimits(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2, Bare: 1, Network: "-"})
	h1, h2 := c.Agents[0], c.Agents[1]
	bare := c.Net.Hosts[2]
	ctx := context.Background()
	want := []string{"h1", "h2"}
	waitMembers(t, h1, want)
	refused := func(name, tok, msg string) { t.Helper(); joinRefused(t, h1, bare, name, tok, msg, want) }
	// token runs 'vxswitch token ARGS' on h2 (a follower: it forwards to
	// the leader) and returns the token, the first line of its output.
	token := func(args ...string) (tok, rest string) {
		t.Helper()
		out, err := cli(t, h2, append([]string{"token"}, args...)...)
		if err != nil {
			t.Fatalf("vxswitch token %v: %v: %s", args, err, out)
		}
		tok, rest, _ = strings.Cut(strings.TrimSpace(out), "\n")
		if !strings.HasPrefix(tok, "VXS1-") {
			t.Fatalf("vxswitch token %v printed %q", args, out)
		}
		return tok, rest
	}
	clusterToken, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("flags", func(t *testing.T) {
		for _, tc := range []struct{ args, msg string }{
			{"--single-use", "--single-use goes with --create"},
			{"--ttl 10m", "--ttl goes with --rotate or --create"},
			{"--create --rotate", "--rotate and --create exclude each other"},
			{"--create --ttl 10ms", "give at least 1s"},
		} {
			out, err := cli(t, h2, append([]string{"token"}, strings.Fields(tc.args)...)...)
			if err == nil || !strings.Contains(out, tc.msg) {
				t.Errorf("token %s: %v %q, want an error containing %q", tc.args, err, out, tc.msg)
			}
		}
	})

	t.Run("expired", func(t *testing.T) {
		short, rest := token("--create", "--ttl", "1s")
		if !strings.Contains(rest, "expires at") {
			t.Errorf("token --create --ttl 1s printed no expiry: %q", rest)
		}
		time.Sleep(1100 * time.Millisecond)
		refused("j1", short, "the join token expired at")
	})

	t.Run("member's name", func(t *testing.T) {
		refused("h2", clusterToken, `host "h2" is a member of the cluster with another key: a new host cannot enrol under its name`)
	})

	t.Run("single use", func(t *testing.T) {
		once, _ := token("--create", "--single-use", "--ttl", "10m")
		startJoiner(t, c, h1, bare, "h3", once)
		want = []string{"h1", "h2", "h3"}
		refused("j2", once, "the single-use join token was already used (by host h3)")
	})

	t.Run("rotation", func(t *testing.T) {
		extra, _ := token("--create")
		rotated, rest := token("--rotate", "--ttl", "1h")
		if rotated == clusterToken || !strings.Contains(rest, "expires at") {
			t.Fatalf("token --rotate --ttl 1h: %q %q", rotated, rest)
		}
		refused("j3", extra, "the join token is not this cluster's current token")
		refused("j4", clusterToken, "the join token is not this cluster's current token")
		if got, _ := token(); got != rotated {
			t.Errorf("vxswitch token after the rotation: %q, want %q", got, rotated)
		}
	})
}

package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestJoinNeedsToken: joins without a token, with a wrong secret, with the
// token of another cluster and with a rotated-away token are refused with
// their message and change nothing; the current token admits a host; a
// client without a cluster certificate can neither call the peer API nor
// speak Raft.
func TestJoinNeedsToken(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2, Bare: 2, Network: "-"})
	h1, h2 := c.Agents[0], c.Agents[1]
	ctx := context.Background()
	token, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := fmt.Sprintf("%s:%d", h1.Host.Addr, api.DefaultAPIPort)
	names := func() []string { return memberNames(t, h1) }
	want := []string{"h1", "h2"}
	waitMembers(t, h1, want)

	// The join token file is the token, mode 0600.
	fi, err := os.Stat(filepath.Join(h1.DataDir, "join-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("join-token file: %v, mode %v; want 0600", err, fi)
	}
	if b, _ := os.ReadFile(filepath.Join(h1.DataDir, "join-token")); strings.TrimSpace(string(b)) != token {
		t.Fatalf("join-token file holds %q, want %q", b, token)
	}

	bare := c.Net.Hosts[2]
	refused := func(name, tok, msg string) { t.Helper(); joinRefused(t, h1, bare, name, tok, msg, want) }

	digest, secret := strings.Split(token, "-")[1], strings.Split(token, "-")[2]
	t.Run("no token", func(t *testing.T) {
		refused("j1", "", "--token is required to join: get it with 'vxswitch token' on a member")
	})
	t.Run("wrong secret", func(t *testing.T) {
		refused("j2", "VXS1-"+digest+"-"+randomHex(16), "join through "+apiAddr+" refused: the join token is not this cluster's current token")
	})
	t.Run("another cluster's token", func(t *testing.T) {
		refused("j3", "VXS1-"+randomHex(32)+"-"+secret, "the server at "+apiAddr+" is not the cluster this token is for: CA digest mismatch")
	})
	t.Run("malformed token", func(t *testing.T) {
		refused("j4", "VXS1-"+digest, "not a vxswitch join token")
	})

	t.Run("rotate", func(t *testing.T) {
		// Rotated through a follower: it forwards to the leader.
		out, err := cli(t, h2, "token", "--rotate")
		if err != nil {
			t.Fatalf("token --rotate: %v: %s", err, out)
		}
		rotated := strings.TrimSpace(out)
		if rotated == token || !strings.HasPrefix(rotated, "VXS1-"+digest+"-") {
			t.Fatalf("rotated token %q: want the same CA digest and a new secret (old %q)", rotated, token)
		}
		eventually(t, 5*time.Second, "h1 prints the new token and keeps it in its file", func() error {
			out, err := cli(t, h1, "token")
			b, _ := os.ReadFile(filepath.Join(h1.DataDir, "join-token"))
			if err != nil || strings.TrimSpace(out) != rotated || strings.TrimSpace(string(b)) != rotated {
				return fmt.Errorf("vxswitch token: %q %v; file %q", out, err, b)
			}
			return nil
		})
		refused("j5", token, "the join token is not this cluster's current token")

		// The new token admits a host.
		dataDir := startJoiner(t, c, h1, bare, "h4", rotated)
		for _, f := range []string{"ca.crt", "node.crt", "node.key"} {
			if fi, err := os.Stat(filepath.Join(dataDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("h4's %s: %v %v, want mode 0600", f, err, fi)
			}
		}
		// Every member keeps the current token in its data dir.
		eventually(t, 5*time.Second, "h4 writes the join token file", func() error {
			b, err := os.ReadFile(filepath.Join(dataDir, "join-token"))
			if err != nil || strings.TrimSpace(string(b)) != rotated {
				return fmt.Errorf("%q %v", b, err)
			}
			return nil
		})
	})

	t.Run("no certificate, no access", func(t *testing.T) {
		var before api.Status
		if err := h1.Client().Get(ctx, "/v1/status", &before); err != nil {
			t.Fatal(err)
		}
		dial := func(addr string) net.Conn {
			t.Helper()
			var conn net.Conn
			if err := netlab.Do(bare.NSPath, func() (err error) {
				conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			return conn
		}
		apply := "POST /v1/internal/apply HTTP/1.1\r\nHost: h1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

		// Plain HTTP to the API port: no TLS, no answer but an alert.
		conn := dial(apiAddr)
		io.WriteString(conn, apply)
		b, _ := io.ReadAll(conn)
		conn.Close()
		if strings.Contains(string(b), "HTTP/") {
			t.Fatalf("plain HTTP to the peer API got an HTTP answer: %q", b)
		}

		// TLS without a certificate: only the join route is open.
		tc := tls.Client(dial(apiAddr), &tls.Config{InsecureSkipVerify: true})
		io.WriteString(tc, apply)
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatalf("TLS without a certificate: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		tc.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "present a node certificate") {
			t.Fatalf("apply without a certificate: %s %s, want 403", resp.Status, body)
		}

		// Raft without a certificate: the handshake fails.
		raftAddr := fmt.Sprintf("%s:%d", h1.Host.Addr, api.DefaultRaftPort)
		rc := tls.Client(dial(raftAddr), &tls.Config{InsecureSkipVerify: true})
		rc.Write([]byte{0}) // rpcAppendEntries
		b, err = io.ReadAll(rc)
		rc.Close()
		if err == nil || len(b) > 0 {
			t.Fatalf("raft without a certificate read %q, %v: want a failed handshake", b, err)
		}
		conn = dial(raftAddr)
		// rpcAppendEntries and the start of its msgpack body, in clear.
		conn.Write([]byte("\x00\x86\xa4Term\x05\xa6Leader\xc4\x0a10.77.0.9\xacPrevLogEntry\x01"))
		b, _ = io.ReadAll(conn)
		conn.Close()
		if len(b) > 0 && b[0] != 0x15 { // 0x15: a TLS alert
			t.Fatalf("plain TCP to raft got %q", b)
		}

		eventually(t, 5*time.Second, "h1 counts the refusals", func() error {
			var s api.Status
			if err := h1.Client().Get(ctx, "/v1/status", &s); err != nil {
				return err
			}
			if s.TLSRefused < before.TLSRefused+4 {
				return fmt.Errorf("tls_refused %d, want at least %d", s.TLSRefused, before.TLSRefused+4)
			}
			return nil
		})
		if got := names(); !slices.Contains(got, "h1") || !slices.Contains(got, "h2") {
			t.Fatalf("members after the attempts: %v", got)
		}
	})
}

// memberNames lists the members a's agent knows, sorted.
func memberNames(t *testing.T, a *lab.Agent) []string {
	t.Helper()
	var ms []api.Member
	if err := a.Client().Get(context.Background(), "/v1/members", &ms); err != nil {
		t.Fatalf("members: %v", err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// waitMembers waits until a's agent lists exactly the members want.
func waitMembers(t *testing.T, a *lab.Agent, want []string) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("members %v", want), func() error {
		if got := memberNames(t, a); !slices.Equal(got, want) {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
}

// joinRefused starts an agent named name on the bare host, joining
// through member with token tok ("" for none), and checks that it fails
// within 10 s with a message containing msg, leaves no certificate, and
// leaves the members as want.
func joinRefused(t *testing.T, member *lab.Agent, bare *netlab.Host, name, tok, msg string, want []string) {
	t.Helper()
	dataDir := t.TempDir()
	args := []string{"netns", "exec", bare.NS, binary, "--socket", filepath.Join(t.TempDir(), "j.sock"),
		"agent", "--name", name, "--advertise", bare.Addr.String(), "--data-dir", dataDir, "--join", member.Host.Addr.String()}
	if tok != "" {
		args = append(args, "--token", tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(s string) bool { return strings.HasPrefix(s, "VXSWITCH_TOKEN=") })
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), msg) {
		t.Fatalf("join of %s = %v: %s; want a refusal containing %q", name, err, out, msg)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("join of %s took %v to be refused", name, d)
	}
	t.Logf("refused: %s", finalLine(string(out)))
	if _, err := os.Stat(filepath.Join(dataDir, "node.crt")); err == nil {
		t.Fatalf("the refused join of %s left a certificate", name)
	}
	if got := memberNames(t, member); !slices.Equal(got, want) {
		t.Fatalf("members after the refused join of %s: %v, want %v", name, got, want)
	}
}

// startJoiner starts an agent named name on the bare host, joining through
// member with token tok, waits until member lists it alive, and returns
// its data dir. The agent is killed when the test ends.
func startJoiner(t *testing.T, c *lab.Cluster, member *lab.Agent, bare *netlab.Host, name, tok string) string {
	t.Helper()
	dataDir := filepath.Join(c.Opt.StateDir, "data", name) // lab.Down kills agents found here
	cmd := exec.Command("ip", "netns", "exec", bare.NS, binary, "--socket", filepath.Join(c.Opt.StateDir, name+".sock"),
		"agent", "--name", name, "--advertise", bare.Addr.String(), "--data-dir", dataDir, "--join", member.Host.Addr.String())
	cmd.Env = append(os.Environ(), "VXSWITCH_TOKEN="+tok)
	logf, err := os.Create(filepath.Join(c.Opt.StateDir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	eventually(t, 30*time.Second, name+" admitted and alive", func() error {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s's agent exited:\n%s", name, b)
		default:
		}
		var ms []api.Member
		if err := member.Client().Get(context.Background(), "/v1/members", &ms); err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == name && m.State == "alive" {
				return nil
			}
		}
		return fmt.Errorf("members %v", ms)
	})
	return dataDir
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// finalLine returns the last line of a command's output: its error.
func finalLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

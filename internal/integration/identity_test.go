package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/nsrun"
	"vxswitch/pki"
)

// TestMemberIsNameAndKey: the replicated state records each host's key.
// A certificate for a member's name that the cluster CA signed but with
// another key (minted by anyone holding the replicated state) is refused by
// the peer API; a removed host restarted from its data dir with its old
// certificate is refused, and stays out.
func TestMemberIsNameAndKey(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3, NoEndpoints: true, Network: "-"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h1, h2, h3 := c.Agents[0], c.Agents[1], c.Agents[2]

	// The replicated state, as a snapshot in a member's data dir, holds no
	// CA key any more; a voter's data dir does (ca.key), and the attack
	// below is what a stolen voter data dir allows.
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		err := h2.Client().Post(ctx, "/v1/snapshot", nil, nil)
		if err == nil {
			break
		}
		if time.Since(start) > 20*time.Second { // raft refuses while a configuration change applies
			t.Fatal(err)
		}
	}
	noKeyInSnapshot(t, h2.DataDir)
	ca := caFromVoter(t, h2.DataDir)
	certPEM, keyPEM, err := ca.Issue("h2", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	minted, err := pki.ParseIdentity(ca.CertPEM(), certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// As h2, with the minted certificate, ask h1 to remove h3.
	code, body := peerPost(t, h2.Host.NSPath, h1.Host.Addr.String()+":7947", minted.ClientTLS(),
		"/v1/internal/apply", `{"Op":"host.remove","Name":"h3"}`)
	if code != http.StatusForbidden || !strings.Contains(body, "key other than the one recorded") {
		t.Errorf("peer API with a minted certificate for h2: %d %s; want 403 naming the key", code, body)
	}
	var members []api.Member
	if err := h1.Client().Get(ctx, "/v1/members", &members); err != nil || len(members) != 3 {
		t.Fatalf("members after the minted request: %v %v; want all 3", members, err)
	}

	// Remove h3, a voter that held the CA key, then restart it from its
	// data dir: the CA was rotated at its removal, and it is refused.
	var caBefore, caAfter api.CAInfo
	if err := h1.Client().Get(ctx, "/v1/ca", &caBefore); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(2, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := h1.Client().Delete(ctx, "/v1/members/h3", nil); err != nil {
		t.Fatal(err)
	}
	err = c.Start(ctx, 2)
	if err == nil {
		t.Fatal("a removed host restarted from its data dir is a member again")
	}
	if err := h1.Client().Get(ctx, "/v1/ca", &caAfter); err != nil || caAfter.Digest == caBefore.Digest {
		t.Errorf("CA after removing voter h3: %+v %v; want a new one (was %s)", caAfter, err, caBefore.Digest)
	}
	if log, _ := os.ReadFile(h3.LogFile); !strings.Contains(string(log), "revoked when the host was removed") &&
		!strings.Contains(string(log), "signed by unknown authority") {
		t.Errorf("restart of removed h3 failed with %v; its log does not say its certificate was revoked:\n%s", err, h3.LogTail())
	}
	if err := h1.Client().Get(ctx, "/v1/members", &members); err != nil || len(members) != 2 {
		t.Errorf("members after the removed host tried again: %v %v; want 2", members, err)
	}
}

// noKeyInSnapshot fails the test if the newest Raft snapshot in a host's
// data dir holds a private key.
func noKeyInSnapshot(t *testing.T, dataDir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "raft", "snapshots", "*", "state.bin"))
	if len(files) == 0 {
		t.Fatalf("no snapshot in %s", dataDir)
	}
	b, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		t.Fatal("the replicated state holds a private key")
	}
}

// caFromVoter reads the cluster CA, key included, from a voter's data dir,
// waiting up to 20 s for the voter to receive the key.
func caFromVoter(t *testing.T, dataDir string) *pki.CA {
	t.Helper()
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		key, kerr := os.ReadFile(filepath.Join(dataDir, "ca.key"))
		cert, cerr := os.ReadFile(filepath.Join(dataDir, "ca.crt"))
		if kerr == nil && cerr == nil {
			ca, err := pki.ParseCA(cert, key)
			if err != nil {
				t.Fatalf("CA of the voter: %v", err)
			}
			return ca
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no CA key in voter data dir %s: %v %v", dataDir, kerr, cerr)
		}
	}
}

// peerPost sends one HTTPS POST to a peer API from inside the namespace at
// nsPath, all on the calling goroutine's thread, and returns the status
// code and body.
func peerPost(t *testing.T, nsPath, addr string, conf *tls.Config, path, body string) (int, string) {
	t.Helper()
	code, out, err := peerTry(nsPath, addr, conf, path, body)
	if err != nil {
		t.Fatalf("POST %s to %s: %v", path, addr, err)
	}
	return code, out
}

// peerTry is peerPost that returns the error (a refused handshake, say)
// instead of failing the test.
func peerTry(nsPath, addr string, conf *tls.Config, path, body string) (int, string, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return 0, "", err
	}
	defer ns.Close()
	var code int
	var out []byte
	err = nsrun.In(ns, func() error {
		raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		conn := tls.Client(raw, conf)
		req, _ := http.NewRequest("POST", "https://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if err := req.Write(conn); err != nil {
			return fmt.Errorf("write request: %w", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			return fmt.Errorf("read response: %w", err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		code, out = resp.StatusCode, buf.Bytes()
		return nil
	})
	return code, string(out), err
}

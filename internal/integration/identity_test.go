package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
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

	// What a member (or a removed host) holds: the replicated state, CA key
	// included, from a snapshot in its data dir.
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		err := h2.Client().Post(ctx, "/v1/snapshot", nil, nil)
		if err == nil {
			break
		}
		if time.Since(start) > 20*time.Second { // raft refuses while a configuration change applies
			t.Fatal(err)
		}
	}
	ca := caFromSnapshot(t, h2.DataDir)
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

	// Remove h3, then restart it from its data dir: refused.
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
	if log, _ := os.ReadFile(h3.LogFile); !strings.Contains(string(log), "revoked when the host was removed") {
		t.Errorf("restart of removed h3 failed with %v; its log does not say its certificate was revoked:\n%s", err, h3.LogTail())
	}
	if err := h1.Client().Get(ctx, "/v1/members", &members); err != nil || len(members) != 2 {
		t.Errorf("members after the removed host tried again: %v %v; want 2", members, err)
	}
}

// caFromSnapshot reads the cluster CA from the newest Raft snapshot in a
// host's data dir, as anyone with that data dir could.
func caFromSnapshot(t *testing.T, dataDir string) *pki.CA {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "raft", "snapshots", "*", "state.bin"))
	if len(files) == 0 {
		t.Fatalf("no snapshot in %s", dataDir)
	}
	b, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		State struct {
			Cluster struct{ CACert, CAKey string }
		}
	}
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseCA([]byte(snap.State.Cluster.CACert), []byte(snap.State.Cluster.CAKey))
	if err != nil {
		t.Fatalf("CA from the snapshot: %v", err)
	}
	return ca
}

// peerPost sends one HTTPS POST to a peer API from inside the namespace at
// nsPath, all on the calling goroutine's thread, and returns the status
// code and body.
func peerPost(t *testing.T, nsPath, addr string, conf *tls.Config, path, body string) (int, string) {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
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
	if err != nil {
		t.Fatalf("POST %s to %s: %v", path, addr, err)
	}
	return code, string(out)
}

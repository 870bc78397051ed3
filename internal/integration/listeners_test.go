package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
	"vxswitch/pki"
)

// TestPeerListenerLimits: with real agents, a slowloris that holds TLS
// handshakes open on the peer API and Raft ports of the leader neither
// blocks a join from another host nor gets more than
// pki.MaxHandshakesPerSource handshakes (its next connection is closed at
// once and counted); a member's request with a body over 1 MiB gets 413.
func TestPeerListenerLimits(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2, Bare: 2, Network: "-"})
	h1, h2 := c.Agents[0], c.Agents[1]
	ctx := context.Background()
	waitMembers(t, h1, []string{"h1", "h2"})
	slow, joiner := c.Net.Hosts[2], c.Net.Hosts[3]
	var before api.Status
	if err := h1.Client().Get(ctx, "/v1/status", &before); err != nil {
		t.Fatal(err)
	}

	dial := func(addr string) (net.Conn, error) {
		var conn net.Conn
		err := netlab.Do(slow.NSPath, func() (err error) {
			conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
			return err
		})
		return conn, err
	}
	for _, port := range []int{api.DefaultAPIPort, api.DefaultRaftPort} {
		addr := fmt.Sprintf("%s:%d", h1.Host.Addr, port)
		for range pki.MaxHandshakesPerSource {
			conn, err := dial(addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
		}
		// The handshakes in progress are counted once accepted: the next
		// connection is closed at once, well before the handshake timeout.
		eventually(t, 5*time.Second, "a connection over the limit closed at once on "+addr, func() error {
			conn, err := dial(addr)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
				return fmt.Errorf("read %v, want EOF", err)
			}
			return nil
		})
	}

	// A join from another host goes through while the slowloris holds on.
	tok, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	startJoiner(t, c, h1, joiner, "h3", tok)
	t.Logf("h3 joined in %v while a slowloris held %d handshakes on each port", time.Since(start).Round(time.Millisecond), pki.MaxHandshakesPerSource)
	var after api.Status
	if err := h1.Client().Get(ctx, "/v1/status", &after); err != nil {
		t.Fatal(err)
	}
	if after.TLSRefused < before.TLSRefused+2 {
		t.Errorf("tls_refused %d -> %d, want the connections over the limit counted", before.TLSRefused, after.TLSRefused)
	}

	// A member's request over 1 MiB: 413, state unchanged.
	id, err := pki.ParseIdentity(readFile(t, h2.DataDir, "ca.crt"), readFile(t, h2.DataDir, "node.crt"), readFile(t, h2.DataDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"Op":"network.create","Network":{"Name":"big","Subnet":"10.91.0.0/24"},"ReqID":"` + strings.Repeat("x", 1<<20) + `"}`
	code, answer := peerPost(t, h2.Host.NSPath, h1.Host.Addr.String()+":7947", id.ClientTLS(), "/v1/internal/apply", body)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(answer, "request body over 1048576 bytes") {
		t.Errorf("a body over 1 MiB: %d %s, want 413", code, answer)
	}
	var nets []api.Network
	if err := h1.Client().Get(ctx, "/v1/networks", &nets); err != nil || len(nets) != 0 {
		t.Errorf("networks after the oversize request: %+v %v, want none", nets, err)
	}
}

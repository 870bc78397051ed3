package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/pki"
)

// caInfo asks agent a for the CA and its certificate.
func caInfo(t *testing.T, a *lab.Agent) api.CAInfo {
	t.Helper()
	var info api.CAInfo
	if err := a.Client().Get(context.Background(), "/v1/ca", &info); err != nil {
		t.Fatalf("ca of %s: %v", a.Host.Name, err)
	}
	return info
}

// TestCAKeyRenewalAndRotation: the CA key is held by the voters and by no
// non-voter, never in the replicated state; certificates are renewed
// before they expire; 'vxswitch ca rotate' gives every host a certificate
// of a new CA, retires the old one once all have, and a certificate of the
// old CA is refused from then on, while the overlay keeps forwarding.
func TestCAKeyRenewalAndRotation(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 4, AgentArgs: []string{"--cert-ttl", "24s", "--ca-overlap", "2m"}})
	h1, h2, h4 := c.Agents[0], c.Agents[1], c.Agents[3]

	// Voters hold the key, the non-voter does not.
	eventually(t, 20*time.Second, "voters hold the CA key", func() error {
		for i, a := range c.Agents {
			if got, want := caInfo(t, a).HoldsKey, i < 3; got != want {
				return fmt.Errorf("%s holds the key: %v, want %v", a.Host.Name, got, want)
			}
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(h4.DataDir, "ca.key")); err == nil {
		t.Error("non-voter h4 has ca.key in its data dir")
	}
	if out, err := cli(t, h4, "token"); err == nil || !strings.Contains(out, "non-voter") {
		t.Errorf("token on the non-voter: %v %s; want a refusal", err, out)
	}

	// Renewal after two thirds of 24 s.
	first := caInfo(t, h4).CertExpires
	eventually(t, 30*time.Second, "h4 renews its certificate", func() error {
		if got := caInfo(t, h4).CertExpires; got <= first {
			return fmt.Errorf("expiry still %v", time.Unix(0, got))
		}
		return nil
	})
	t.Logf("h4 renewed its 24 s certificate %v before it expired", time.Until(time.Unix(0, first)).Round(100*time.Millisecond))

	// The identity h2 has now, from the CA about to be replaced.
	old, err := pki.ParseIdentity(readFile(t, h2.DataDir, "ca.crt"), readFile(t, h2.DataDir, "node.crt"), readFile(t, h2.DataDir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	before := caInfo(t, h1).Digest
	out, err := cli(t, h2, "ca", "rotate")
	if err != nil {
		t.Fatalf("ca rotate: %v %s", err, out)
	}
	t.Logf("ca rotate:\n%s", out)
	start := time.Now()
	var after string
	eventually(t, 30*time.Second, "every host renews from the new CA and the old one is retired", func() error {
		for _, a := range c.Agents {
			info := caInfo(t, a)
			after = info.Digest
			if info.Digest == before || info.CertCA != info.Digest || len(info.Previous) != 0 {
				return fmt.Errorf("%s: %+v", a.Host.Name, info)
			}
		}
		return nil
	})
	t.Logf("all 4 hosts on the new CA %.16s and the old one retired %v after the rotation", after, time.Since(start).Round(100*time.Millisecond))

	// A certificate of the retired CA is refused at the handshake.
	if code, body, err := peerTry(h2.Host.NSPath, h1.Host.Addr.String()+":7947", old.ClientTLS(), "/v1/internal/readindex", "{}"); err == nil {
		t.Errorf("a certificate of the retired CA was accepted: %d %s", code, body)
	}
	// The control plane works on every host, and the overlay forwards.
	for _, a := range c.Agents {
		if out, err := cli(t, a, "members"); err != nil {
			t.Errorf("members on %s after the rotation: %v %s", a.Host.Name, err, out)
		}
	}
	ep1, ep3 := c.Endpoints[0], c.Endpoints[2]
	ping(t, ep1.NS, ep3.IP.String(), 3)
	if _, err := c.Token(context.Background()); err != nil {
		t.Errorf("join token after the rotation: %v", err)
	}
}

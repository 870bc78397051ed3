package pki

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestCARoundTrip(t *testing.T) {
	ca := newTestCA(t)
	if !ca.Cert.IsCA || ca.Cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA certificate: IsCA %v, key %v", ca.Cert.IsCA, ca.Cert.PublicKeyAlgorithm)
	}
	if d := ca.Cert.NotAfter.Sub(ca.Cert.NotBefore); d < 10*365*24*time.Hour {
		t.Fatalf("CA valid for %v, want at least 10 years", d)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if back.Digest() != ca.Digest() || !back.Key.Equal(ca.Key) {
		t.Fatal("parsed CA differs")
	}
	other := newTestCA(t)
	otherKey, _ := other.KeyPEM()
	if _, err := ParseCA(ca.CertPEM(), otherKey); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("ParseCA with another CA's key = %v, want 'does not belong'", err)
	}
}

func TestSignAndVerify(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	now := time.Now()
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := NewCSR("h2", key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.Sign(csr, "h2", now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{cert}
	for _, tc := range []struct {
		name    string
		ca      *x509.Certificate
		usage   x509.ExtKeyUsage
		at      time.Time
		wantErr string
	}{
		{"server use", ca.Cert, x509.ExtKeyUsageServerAuth, now, ""},
		{"client use", ca.Cert, x509.ExtKeyUsageClientAuth, now, ""},
		{"another CA", other.Cert, x509.ExtKeyUsageServerAuth, now, "not from this cluster's CA"},
		{"code signing", ca.Cert, x509.ExtKeyUsageCodeSigning, now, "not from this cluster's CA"},
		{"expired", ca.Cert, x509.ExtKeyUsageServerAuth, now.Add(NodeValidity + time.Hour), "not from this cluster's CA"},
	} {
		name, err := VerifyNode(chain, tc.ca, tc.usage, tc.at)
		switch {
		case tc.wantErr == "" && (err != nil || name != "h2"):
			t.Errorf("%s: VerifyNode = %q, %v; want h2", tc.name, name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: VerifyNode = %q, %v; want an error containing %q", tc.name, name, err, tc.wantErr)
		}
	}
	if _, err := VerifyNode(nil, ca.Cert, x509.ExtKeyUsageServerAuth, now); err == nil {
		t.Error("VerifyNode with no certificate succeeded")
	}
	// The CA itself is no node certificate.
	if _, err := VerifyNode([]*x509.Certificate{ca.Cert}, ca.Cert, x509.ExtKeyUsageServerAuth, now); err == nil {
		t.Error("VerifyNode accepted the CA certificate as a node")
	}
}

func TestSignRefuses(t *testing.T) {
	ca := newTestCA(t)
	key, _ := NewKey()
	csr, _ := NewCSR("h2", key)
	block, _ := pem.Decode(csr)
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-5] ^= 0xff // inside the signature
	badSig := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered})
	for _, tc := range []struct {
		name    string
		csr     []byte
		host    string
		wantErr string
	}{
		{"other name", csr, "h3", `is for "h2", not for host "h3"`},
		{"bad name", csr, "-h2", "invalid"},
		{"not PEM", []byte("hello"), "h2", "no PEM CERTIFICATE REQUEST"},
		{"certificate, not request", ca.CertPEM(), "h2", "no PEM CERTIFICATE REQUEST"},
		{"bad signature", badSig, "h2", "signature"},
	} {
		if _, err := ca.Sign(tc.csr, tc.host, time.Now()); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Sign = %v, want an error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	certPEM, keyPEM, err := ca.Issue("h1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseIdentity(ca.CertPEM(), certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "h1" {
		t.Fatalf("identity name %q, want h1", id.Name)
	}
	_, otherKey, _ := ca.Issue("h1", time.Now())
	if _, err := ParseIdentity(ca.CertPEM(), certPEM, otherKey); err == nil {
		t.Error("ParseIdentity accepted a key of another certificate")
	}
	if _, err := ParseIdentity(other.CertPEM(), certPEM, keyPEM); err == nil {
		t.Error("ParseIdentity accepted a certificate of another CA")
	}
}

// TestRenewDue: a certificate is due for renewal after two thirds of the
// validity it was signed for, not counting the backdated clock skew.
func TestRenewDue(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	certPEM, _, err := ca.IssueFor("h1", now, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	// Certificates carry whole seconds: the cases stay clear of 20 s.
	for _, tc := range []struct {
		at  time.Duration
		due bool
	}{{0, false}, {15 * time.Second, false}, {25 * time.Second, true}, {time.Minute, true}} {
		if got := RenewDue(leaf, now.Add(tc.at)); got != tc.due {
			t.Errorf("RenewDue at +%v = %v, want %v", tc.at, got, tc.due)
		}
	}
	if got := leaf.NotAfter.Sub(now); got > 31*time.Second || got < 29*time.Second {
		t.Errorf("validity %v, want 30s", got)
	}
}

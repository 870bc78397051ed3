package pki

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

// FuzzSign feeds arbitrary certificate signing requests (DER, wrapped in
// PEM, and raw PEM text) and host names to CA.Sign, the one signing path
// a host without a certificate reaches. Sign must never panic, and
// whatever it signs must be a node certificate of the CA for exactly that
// name, certifying the request's key, with every other field set by Sign.
func FuzzSign(f *testing.F) {
	ca, err := NewCA(time.Now())
	if err != nil {
		f.Fatal(err)
	}
	key, err := NewKey()
	if err != nil {
		f.Fatal(err)
	}
	csr, err := NewCSR("h2", key)
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(csr)
	f.Add(block.Bytes, "h2", false)
	f.Add(block.Bytes, "h3", false)
	f.Add(csr, "h2", true)
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), "h2", true)
	f.Add(ca.Cert.Raw, "h2", false)
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte, name string, rawPEM bool) {
		in := data
		if !rawPEM {
			in = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: data})
		}
		out, err := ca.Sign(in, name, now)
		if err != nil {
			if strings.Contains(err.Error(), "\x00") {
				t.Fatalf("error with a NUL byte: %q", err)
			}
			return
		}
		cert, err := ParseCertPEM(out)
		if err != nil {
			t.Fatalf("Sign returned an unparsable certificate: %v", err)
		}
		got, err := VerifyNode([]*x509.Certificate{cert}, ca.Cert, x509.ExtKeyUsageClientAuth, now)
		if err != nil || got != name {
			t.Fatalf("signed certificate verifies as %q, %v; want %q", got, err, name)
		}
		req, err := ParseCSR(in, name)
		if err != nil {
			t.Fatalf("Sign accepted a request ParseCSR refuses: %v", err)
		}
		want, err := CSRKeyFingerprint(req)
		if err != nil {
			t.Fatalf("CSRKeyFingerprint of a request Sign accepted: %v", err)
		}
		if k := KeyFingerprint(cert); k != want {
			t.Fatalf("signed key %s, want the request's %s", k, want)
		}
		if cert.IsCA || len(cert.DNSNames) != 1 || len(cert.IPAddresses) != 0 || len(cert.URIs) != 0 || len(cert.EmailAddresses) != 0 {
			t.Fatalf("signed certificate carries fields from the request: CA %v, names %v %v %v %v",
				cert.IsCA, cert.DNSNames, cert.IPAddresses, cert.URIs, cert.EmailAddresses)
		}
		if cert.NotAfter.Sub(now) > NodeValidity {
			t.Fatalf("signed certificate lives until %v, longer than NodeValidity", cert.NotAfter)
		}
	})
}

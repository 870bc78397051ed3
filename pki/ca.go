package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"time"
)

// Validity of the certificates this package makes. A CA outlives any
// cluster (it is replaced by rotation, not by expiry); a node certificate
// is short-lived and renewed by its agent after two thirds of its life.
const (
	CAValidity   = 20 * 365 * 24 * time.Hour
	NodeValidity = 90 * 24 * time.Hour
	// clockSkew backdates NotBefore so hosts with slightly different
	// clocks accept a certificate made a moment ago.
	clockSkew = time.Hour
)

// hostNameRE is the form of a host name, the one rule for it: raftstore
// checks host names with CheckName too.
var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// CheckName returns an error unless name can be a host name in a node
// certificate.
func CheckName(name string) error {
	if !hostNameRE.MatchString(name) {
		return fmt.Errorf("pki: host name %q is invalid: use 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit", name)
	}
	return nil
}

// CA is the cluster's certificate authority. The zero value is not usable;
// make one with NewCA or ParseCA. A CA is immutable and safe for concurrent
// use.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes a new self-signed ECDSA P-256 CA valid from now for
// CAValidity.
func NewCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "vxswitch cluster CA " + serial.Text(16)[:8]},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse new CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// ParseCA reads a CA from the PEM blocks CertPEM and KeyPEM wrote.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("pki: CA: the certificate is not a CA certificate")
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("pki: CA: the key does not belong to the certificate")
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte { return CertPEM(ca.Cert) }

// CertPEM returns a certificate as a PEM CERTIFICATE block.
func CertPEM(c *x509.Certificate) []byte { return certPEM(c.Raw) }

// KeyPEM returns the CA's private key as PEM (PKCS #8).
func (ca *CA) KeyPEM() ([]byte, error) { return KeyPEM(ca.Key) }

// Digest returns the SHA-256 of the CA certificate, as join tokens carry it.
func (ca *CA) Digest() [32]byte { return Digest(ca.Cert) }

// NewKey makes a node's ECDSA P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	return key, nil
}

// NewCSR returns a PEM certificate signing request for host name, signed
// by key.
func NewCSR(name string, key *ecdsa.PrivateKey) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR checks a PEM certificate signing request for host name: its
// signature, that it asks for exactly that name, and that its key is an
// ECDSA key. The request comes from a host that is not a member yet.
func ParseCSR(csrPEM []byte, name string) (*x509.CertificateRequest, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("pki: sign: no PEM CERTIFICATE REQUEST block in the request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: sign: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: sign: the request's signature is invalid: %w", err)
	}
	if csr.Subject.CommonName != name {
		return nil, fmt.Errorf("pki: sign: the request is for %q, not for host %q", csr.Subject.CommonName, name)
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("pki: sign: the request's key is %T, want an ECDSA key", csr.PublicKey)
	}
	return csr, nil
}

// CSRKeyFingerprint returns the KeyFingerprint that the certificate Sign
// makes for csr will have: that of the key encoded as Sign encodes it, not
// of the request's own bytes.
func CSRKeyFingerprint(csr *x509.CertificateRequest) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(csr.PublicKey)
	if err != nil {
		return "", fmt.Errorf("pki: key fingerprint of the request: %w", err)
	}
	return keyFingerprint(der), nil
}

// Sign checks a PEM certificate signing request for host name (see
// ParseCSR) and returns a PEM node certificate for it, valid from now for
// NodeValidity, for both TLS server and client use. Only the request's
// public key is taken from it; every other field is set here.
func (ca *CA) Sign(csrPEM []byte, name string, now time.Time) ([]byte, error) {
	return ca.SignFor(csrPEM, name, now, NodeValidity)
}

// SignFor is Sign with a validity other than NodeValidity.
func (ca *CA) SignFor(csrPEM []byte, name string, now time.Time, validity time.Duration) ([]byte, error) {
	csr, err := ParseCSR(csrPEM, name)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign certificate for %s: %w", name, err)
	}
	return certPEM(der), nil
}

// Issue makes a key and a signed node certificate for host name at once,
// for the host that creates the CA. It returns both as PEM.
func (ca *CA) Issue(name string, now time.Time) (certPEM, keyPEM []byte, err error) {
	return ca.IssueFor(name, now, NodeValidity)
}

// IssueFor is Issue with a validity other than NodeValidity.
func (ca *CA) IssueFor(name string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := NewCSR(name, key)
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = ca.SignFor(csr, name, now, validity); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = KeyPEM(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// VerifyNode checks that chain[0] is a node certificate signed by ca for
// usage (x509.ExtKeyUsageServerAuth or ClientAuth) and valid at now, and
// returns the host name it certifies. Host names, not addresses, identify
// nodes: a host keeps its certificate when its address changes.
func VerifyNode(chain []*x509.Certificate, ca *x509.Certificate, usage x509.ExtKeyUsage, now time.Time) (string, error) {
	return VerifyNodeAny(chain, []*x509.Certificate{ca}, usage, now)
}

// VerifyNodeAny is VerifyNode for a certificate signed by any of cas: the
// cluster's CA and, during a CA rotation, the CAs it replaces.
func VerifyNodeAny(chain []*x509.Certificate, cas []*x509.Certificate, usage x509.ExtKeyUsage, now time.Time) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("pki: no certificate presented")
	}
	leaf := chain[0]
	roots := x509.NewCertPool()
	for _, ca := range cas {
		roots.AddCert(ca)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("pki: certificate of %q is not from this cluster's CA: %w", leaf.Subject.CommonName, err)
	}
	name := leaf.Subject.CommonName
	if err := CheckName(name); err != nil {
		return "", err
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != name {
		return "", fmt.Errorf("pki: certificate of %q does not name that host as its only DNS name", name)
	}
	return name, nil
}

// ParseCertPEM reads the first CERTIFICATE block of PEM data.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// ParseKeyPEM reads an ECDSA private key from a PEM PRIVATE KEY block
// (PKCS #8), as KeyPEM writes it.
func ParseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ECDSA", k)
	}
	return key, nil
}

// KeyPEM returns key as a PEM PRIVATE KEY block (PKCS #8).
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newSerial returns a random 127-bit certificate serial number (RFC 5280
// section 4.1.2.2: positive, at most 20 octets).
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// RenewDue tells whether a node certificate has lived two thirds of its
// validity at now, when its host should renew it. NotBefore is backdated
// by the clock skew allowance, which does not count as life.
func RenewDue(leaf *x509.Certificate, now time.Time) bool {
	issued := leaf.NotBefore.Add(clockSkew)
	life := leaf.NotAfter.Sub(issued)
	return !now.Before(issued.Add(life * 2 / 3))
}

// Package pki is the cluster's public key infrastructure: a cluster CA, the
// node certificates it signs, the join token that lets a new host earn one,
// and the TLS configurations and listener that make Raft and agent-to-agent
// traffic mutual TLS.
//
// The model is Docker Swarm's. The first host creates a CA (ECDSA P-256)
// and its own node certificate. A join token names the CA by the SHA-256
// digest of its certificate and carries a secret. A joining host first
// checks that the server it talks to presents a chain ending at that CA,
// and only then sends a certificate signing request with the secret.
//
// Everything in this package is pure: no files, no global state.
package pki

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// TokenPrefix starts every join token; the 1 is the token format's version.
const TokenPrefix = "VXS1"

// SecretLen is the length of a token secret in hex digits (128 bits).
const SecretLen = 32

// Token is a join token: "VXS1-<CA digest, 64 hex digits>-<secret, 32 hex
// digits>". The zero value is not a valid token.
type Token struct {
	// CADigest is the SHA-256 of the cluster CA certificate's DER bytes.
	CADigest [sha256.Size]byte
	// Secret is 32 lower-case hex digits.
	Secret string
}

// errTokenForm is the fix for every malformed token.
const errTokenForm = "want VXS1-<64 hex digits: CA digest>-<32 hex digits: secret>, as 'vxswitch token' prints it on a member"

// ParseToken parses a join token. Upper-case hex digits are accepted and
// made lower case; surrounding white space is ignored. The error never
// repeats the input, which holds a secret.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) != 3 {
		return Token{}, fmt.Errorf("pki: not a vxswitch join token: it has %d parts separated by '-', want 3: %s", len(parts), errTokenForm)
	}
	if parts[0] != TokenPrefix {
		return Token{}, fmt.Errorf("pki: not a vxswitch join token: it does not start with %s-: %s", TokenPrefix, errTokenForm)
	}
	var t Token
	digest, err := hex.DecodeString(parts[1])
	if err != nil || len(digest) != sha256.Size {
		return Token{}, fmt.Errorf("pki: join token's CA digest is not 64 hex digits: %s", errTokenForm)
	}
	copy(t.CADigest[:], digest)
	secret := strings.ToLower(parts[2])
	if _, err := hex.DecodeString(secret); err != nil || len(secret) != SecretLen {
		return Token{}, fmt.Errorf("pki: join token's secret is not %d hex digits: %s", SecretLen, errTokenForm)
	}
	t.Secret = secret
	return t, nil
}

// String formats the token as ParseToken reads it.
func (t Token) String() string {
	return TokenPrefix + "-" + hex.EncodeToString(t.CADigest[:]) + "-" + t.Secret
}

// Digest returns the SHA-256 of a certificate's DER bytes, the CA digest a
// token carries.
func Digest(cert *x509.Certificate) [sha256.Size]byte { return sha256.Sum256(cert.Raw) }

// DeriveSecret returns the token secret for nonce: the first 128 bits of
// HMAC-SHA256 keyed with the CA's private key. Any host holding the CA key
// (every member, through the replicated state) can so print the current
// token while the replicated state itself keeps only the nonce and the
// secret's hash. A new nonce rotates the token.
func DeriveSecret(caKey *ecdsa.PrivateKey, nonce string) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return "", fmt.Errorf("pki: derive token secret: %w", err)
	}
	mac := hmac.New(sha256.New, der)
	mac.Write([]byte("vxswitch join token secret\x00" + nonce))
	return hex.EncodeToString(mac.Sum(nil)[:SecretLen/2]), nil
}

// NewSecret returns a random token secret (SecretLen hex digits), for an
// extra join token that no nonce derives.
func NewSecret() string {
	var b [SecretLen / 2]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// HashSecret returns the hex SHA-256 of a token secret: what the replicated
// state keeps to check secrets against.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches tells, in constant time, whether secret hashes to hash.
func SecretMatches(secret, hash string) bool {
	got := HashSecret(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// ErrCADigestMismatch is returned by the TLS handshake of JoinTLS when the
// server's chain does not end at the CA the token names.
var ErrCADigestMismatch = errors.New("CA digest mismatch")

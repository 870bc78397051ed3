package pki

import (
	"strings"
	"testing"
)

const (
	digestHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	secretHex = "0123456789abcdef0123456789abcdef"
)

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string // String() of the parsed token; "" = error
		wantErr string
	}{
		{"VXS1-" + digestHex + "-" + secretHex, "VXS1-" + digestHex + "-" + secretHex, ""},
		{"  VXS1-" + digestHex + "-" + secretHex + "\n", "VXS1-" + digestHex + "-" + secretHex, ""},
		{"VXS1-" + strings.ToUpper(digestHex) + "-" + strings.ToUpper(secretHex), "VXS1-" + digestHex + "-" + secretHex, ""},
		{"", "", "has 1 parts"},
		{"VXS1-" + digestHex, "", "has 2 parts"},
		{"VXS1-" + digestHex + "-" + secretHex + "-x", "", "has 4 parts"},
		{"VXS2-" + digestHex + "-" + secretHex, "", "does not start with VXS1-"},
		{"vxs1-" + digestHex + "-" + secretHex, "", "does not start with VXS1-"},
		{"VXS1-" + digestHex[:62] + "-" + secretHex, "", "CA digest is not 64 hex digits"},
		{"VXS1-" + digestHex + "00-" + secretHex, "", "CA digest is not 64 hex digits"},
		{"VXS1-" + digestHex[:63] + "g-" + secretHex, "", "CA digest is not 64 hex digits"},
		{"VXS1-" + digestHex + "-" + secretHex[:31], "", "secret is not 32 hex digits"},
		{"VXS1-" + digestHex + "-" + secretHex + "00", "", "secret is not 32 hex digits"},
		{"VXS1-" + digestHex + "-" + secretHex[:31] + "z", "", "secret is not 32 hex digits"},
	} {
		tok, err := ParseToken(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseToken(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
			}
			if err != nil && len(tc.in) > 40 && strings.Contains(err.Error(), tc.in[40:]) {
				t.Errorf("ParseToken(%q) error %q repeats the token", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseToken(%q): %v", tc.in, err)
			continue
		}
		if got := tok.String(); got != tc.want {
			t.Errorf("ParseToken(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTokenDigestBytes(t *testing.T) {
	tok, err := ParseToken("VXS1-" + digestHex + "-" + secretHex)
	if err != nil {
		t.Fatal(err)
	}
	want := [32]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	if tok.CADigest != want {
		t.Fatalf("CADigest = %x, want %x", tok.CADigest, want)
	}
}

// FuzzParseToken checks that ParseToken never panics, that what it
// accepts formats back to a token it parses to the same value, and that
// its errors never repeat the secret.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		"VXS1-" + digestHex + "-" + secretHex,
		"VXS1-" + strings.ToUpper(digestHex) + "-" + secretHex,
		"VXS1--",
		"VXS1-" + digestHex + "-",
		"-" + digestHex + "-" + secretHex,
		"VXS1-" + digestHex + "-" + secretHex + "-",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if len(s) >= 16 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q repeats the input", err)
			}
			return
		}
		again, err := ParseToken(tok.String())
		if err != nil {
			t.Fatalf("ParseToken(%q) accepted, but its String %q is refused: %v", s, tok.String(), err)
		}
		if again != tok {
			t.Fatalf("round trip %q: %+v != %+v", s, again, tok)
		}
		if len(tok.String()) != 4+1+64+1+32 {
			t.Fatalf("String() = %q: wrong length", tok.String())
		}
	})
}

func TestSecretMatches(t *testing.T) {
	h := HashSecret(secretHex)
	if len(h) != 64 {
		t.Fatalf("HashSecret length %d, want 64", len(h))
	}
	for _, tc := range []struct {
		secret, hash string
		want         bool
	}{
		{secretHex, h, true},
		{strings.ToUpper(secretHex), h, false},
		{secretHex[:31] + "0", h, false},
		{"", h, false},
		{secretHex, "", false},
		{secretHex, h[:63], false},
	} {
		if got := SecretMatches(tc.secret, tc.hash); got != tc.want {
			t.Errorf("SecretMatches(%q, %q) = %v, want %v", tc.secret, tc.hash, got, tc.want)
		}
	}
}

func TestDeriveSecret(t *testing.T) {
	ca1, ca2 := newTestCA(t), newTestCA(t)
	s1a, err := DeriveSecret(ca1.Key, "n1")
	if err != nil {
		t.Fatal(err)
	}
	s1b, _ := DeriveSecret(ca1.Key, "n1")
	s1c, _ := DeriveSecret(ca1.Key, "n2")
	s2a, _ := DeriveSecret(ca2.Key, "n1")
	if s1a != s1b {
		t.Errorf("same key and nonce gave %q and %q", s1a, s1b)
	}
	if s1a == s1c || s1a == s2a {
		t.Errorf("another nonce or key gave the same secret %q", s1a)
	}
	tok := Token{CADigest: ca1.Digest(), Secret: s1a}
	if _, err := ParseToken(tok.String()); err != nil {
		t.Errorf("a derived secret makes a token ParseToken refuses: %v", err)
	}
}

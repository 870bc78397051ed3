package esp

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"net/netip"
	"testing"
)

func newHost(t *testing.T, addr string) (*ecdh.PrivateKey, Host) {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, Host{Addr: netip.MustParseAddr(addr), Key: k.PublicKey()}
}

func TestDeriveConfig(t *testing.T) {
	ka, a := newHost(t, "10.77.0.1")
	kb, b := newHost(t, "10.77.0.2")
	kc, c := newHost(t, "10.77.0.3")
	derive := func(own *ecdh.PrivateKey, from, to Host, spi uint32) Config {
		t.Helper()
		cfg, err := DeriveConfig(own, from, to, spi)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	same := func(x, y Config) bool { return bytes.Equal(x.Key, y.Key) && x.Salt == y.Salt }

	ab := derive(ka, a, b, 0x1000)
	if !same(ab, derive(kb, a, b, 0x1000)) {
		t.Fatal("the two ends derive different keys")
	}
	if ab.Src != a.Addr || ab.Dst != b.Addr || ab.SPI != 0x1000 || len(ab.Key) != 32 {
		t.Errorf("config %+v", ab)
	}
	for name, other := range map[string]Config{
		"reverse direction": derive(ka, b, a, 0x1000),
		"other SPI":         derive(ka, a, b, 0x1001),
		"other pair":        derive(ka, a, c, 0x1000),
	} {
		if same(ab, other) {
			t.Errorf("%s gives the same key", name)
		}
	}
	// A new key pair for b (a rotation) changes the key.
	kb2, b2 := newHost(t, "10.77.0.2")
	if same(ab, derive(kb2, a, b2, 0x1000)) {
		t.Error("a new key pair gives the same key")
	}
	// A third host cannot derive the pair's SA.
	if _, err := DeriveConfig(kc, a, b, 0x1000); err == nil {
		t.Error("a third host derived the SA of a and b")
	}
	// The derived config makes a working SA pair.
	send, _ := NewSA(ab)
	var tab Table
	recv, _ := NewSA(derive(kb, a, b, 0x1000))
	tab.Add(recv)
	if plain, _, err := tab.Open(sealCopy(t, send, []byte("derived"))); err != nil || string(plain) != "derived" {
		t.Errorf("open with derived keys: %q %v", plain, err)
	}
}

// TestExternalSAs: the host (with its static key) and the peer (with its
// own) derive the same two SAs, with the documented SPIs; a sealed packet
// opens on the other side; StartAfter and SetLimit bound the sequence
// numbers.
func TestExternalSAs(t *testing.T) {
	kh, h := newHost(t, "10.77.0.1")
	kp, p := newHost(t, "10.77.0.9")
	hOut, hIn, err := ExternalSAs(kh, h, p, 3)
	if err != nil {
		t.Fatal(err)
	}
	pOut, pIn, err := ExternalSAs(kp, h, p, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hOut.Key, pOut.Key) || hOut.Salt != pOut.Salt || !bytes.Equal(hIn.Key, pIn.Key) || hIn.SPI != pIn.SPI {
		t.Fatal("host and peer derive different SAs")
	}
	if hOut.SPI != 3<<12|1 || hIn.SPI&0xfff != 0 || hIn.SPI < 1<<12 || bytes.Equal(hOut.Key, hIn.Key) {
		t.Fatalf("SPIs %#x %#x", hOut.SPI, hIn.SPI)
	}
	send, err := NewSA(hOut)
	if err != nil {
		t.Fatal(err)
	}
	var recv Table
	sa, _ := NewSA(pOut)
	recv.Add(sa)
	send.StartAfter(100)
	send.SetLimit(101)
	buf := make([]byte, SealedLen(4)+Headroom)
	copy(buf[Headroom:], "ping")
	pkt, err := send.Seal(buf, 4)
	if err != nil {
		t.Fatal(err)
	}
	if plain, _, err := recv.Open(pkt); err != nil || string(plain) != "ping" || send.Sent() != 101 {
		t.Fatalf("open: %q %v, sent %d", plain, err, send.Sent())
	}
	if _, err := send.Seal(buf, 4); err != ErrSeqExhausted {
		t.Fatalf("seal beyond the limit: %v", err)
	}
	if _, _, err := ExternalSAs(kh, h, Host{Addr: p.Addr}, 3); err == nil {
		t.Fatal("a peer without a key was accepted")
	}
}

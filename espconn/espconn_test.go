package espconn

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"net/netip"
	"testing"

	"vxswitch/esp"
	"vxswitch/vxlan"
	"vxswitch/vxlan/vxlantest"
)

var (
	hostA = netip.MustParseAddr("10.9.0.1")
	hostB = netip.MustParseAddr("10.9.0.2")
)

// pair returns the SA from a to b as the sender and the receiver each
// derive it.
func pair(t testing.TB, spi uint32) (send, recv *esp.SA) {
	t.Helper()
	ka, _ := ecdh.X25519().GenerateKey(rand.Reader)
	kb, _ := ecdh.X25519().GenerateKey(rand.Reader)
	from := esp.Host{Addr: hostA, Key: ka.PublicKey()}
	to := esp.Host{Addr: hostB, Key: kb.PublicKey()}
	ca, err := esp.DeriveConfig(ka, from, to, spi)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := esp.DeriveConfig(kb, from, to, spi)
	if err != nil {
		t.Fatal(err)
	}
	send, _ = esp.NewSA(ca)
	recv, _ = esp.NewSA(cb)
	return send, recv
}

// vx returns a VXLAN packet of network id carrying payload.
func vx(id uint32, payload string) []byte {
	b := make([]byte, vxlan.HeaderLen+len(payload))
	vxlan.Encode(b, id)
	copy(b[vxlan.HeaderLen:], payload)
	return b
}

type side struct {
	clear, enc *vxlantest.Conn
	c          *Conn
}

func newSide(encrypted ...uint32) side {
	s := side{clear: vxlantest.New(), enc: vxlantest.New()}
	s.c = New(s.clear, s.enc, 0)
	p := &Policy{Encrypted: map[uint32]bool{}}
	for _, id := range encrypted {
		p.Encrypted[id] = true
	}
	s.c.SetPolicy(p)
	return s
}

// TestRoundTrip sends a clear and an encrypted network's packets from A to
// B: the clear one leaves on the clear socket as it is, the encrypted one
// as ESP to port 4500 without the payload in sight, and B's readers give
// back exactly what A's switch sent.
func TestRoundTrip(t *testing.T) {
	send, recv := pair(t, 0x1001)
	a, b := newSide(7), newSide(7)
	a.c.SetPolicy(&Policy{Encrypted: map[uint32]bool{7: true}, Out: map[netip.Addr]*esp.SA{hostB: send}})
	if err := b.c.In.Add(recv); err != nil {
		t.Fatal(err)
	}
	dst := netip.AddrPortFrom(hostB, vxlan.Port)
	secret := vx(7, "secret-marker-payload")
	plain := vx(8, "clear payload")
	if err := a.c.WriteTo(secret, dst); err != nil {
		t.Fatal(err)
	}
	if err := a.c.WriteTo(plain, dst); err != nil {
		t.Fatal(err)
	}
	sent := a.enc.Take()
	if len(sent) != 1 || sent[0].Addr != netip.AddrPortFrom(hostB, esp.Port) {
		t.Fatalf("ESP socket sent %v, want one datagram to %v", sent, netip.AddrPortFrom(hostB, esp.Port))
	}
	if bytes.Contains(sent[0].Pkt, []byte("secret-marker")) {
		t.Fatal("the payload of the encrypted network is visible on the wire")
	}
	if len(sent[0].Pkt) != esp.SealedLen(8+len(secret)) {
		t.Fatalf("sealed %d bytes, want %d", len(sent[0].Pkt), esp.SealedLen(8+len(secret)))
	}
	clear := a.clear.Take()
	if len(clear) != 1 || !bytes.Equal(clear[0].Pkt, plain) {
		t.Fatalf("clear socket sent %v, want the clear packet", clear)
	}

	from := netip.AddrPortFrom(hostA, esp.Port)
	b.enc.Deliver(from, sent[0].Pkt)
	r := b.c.ESPReader()
	buf := make([]byte, 65535)
	n, src, err := r.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], secret) || src != from {
		t.Fatalf("ESP reader: %q from %v, %v; want %q", buf[:n], src, err, secret)
	}
	// The same datagram again is a replay: dropped and counted, and the
	// reader waits for the next good one.
	b.enc.Deliver(from, sent[0].Pkt)
	b.enc.Deliver(from, []byte{0xff}) // NAT keepalive
	if err := a.c.WriteTo(secret, dst); err != nil {
		t.Fatal(err)
	}
	b.enc.Deliver(from, a.enc.Take()[0].Pkt)
	if n, _, err = r.ReadFrom(buf); err != nil || !bytes.Equal(buf[:n], secret) {
		t.Fatalf("after the replay: %q, %v", buf[:n], err)
	}
	if got := b.c.In.Counters.Replay.Load(); got != 1 {
		t.Errorf("replay counter %d, want 1", got)
	}
	if got := b.c.In.Counters.NotESP.Load(); got != 1 {
		t.Errorf("not_esp counter %d, want 1", got)
	}
}

// TestClearOfEncryptedDropped: clear VXLAN of an encrypted network on port
// 4789 is dropped and counted, in ReadFrom and out of a GRO batch, and
// the clear networks' packets around it pass.
func TestClearOfEncryptedDropped(t *testing.T) {
	b := newSide(7)
	from := netip.AddrPortFrom(hostA, vxlan.Port)
	b.clear.Deliver(from, vx(7, "inj1"), vx(8, "ok-1"), vx(7, "inj2"), vx(8, "ok2"))
	r := b.c.ClearReader()
	if err := r.EnableGRO(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, seg, _, err := r.ReadGRO(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := append(vx(8, "ok-1"), vx(8, "ok2")...)
	if !bytes.Equal(buf[:n], want) || seg != len(vx(8, "ok-1")) {
		t.Fatalf("ReadGRO gave %q seg %d, want %q", buf[:n], seg, want)
	}
	if got := b.c.Counters.ClearDrop.Load(); got != 2 {
		t.Errorf("clear_dropped %d, want 2", got)
	}
}

// TestGSO seals a batch of equal VXLAN packets into one WriteGSO of equal
// ESP datagrams (the last shorter), and B's GRO reader gives them back in
// one run.
func TestGSO(t *testing.T) {
	send, recv := pair(t, 0x2002)
	a, b := newSide(7), newSide(7)
	a.c.SetPolicy(&Policy{Encrypted: map[uint32]bool{7: true}, Out: map[netip.Addr]*esp.SA{hostB: send}})
	b.c.In.Add(recv)
	var batch []byte
	for i := range 5 {
		batch = append(batch, vx(7, string(bytes.Repeat([]byte{'a' + byte(i)}, 1000)))...)
	}
	batch = append(batch, vx(7, "short")...)
	seg := vxlan.HeaderLen + 1000
	if err := a.c.WriteGSO(batch, seg, netip.AddrPortFrom(hostB, vxlan.Port)); err != nil {
		t.Fatal(err)
	}
	sends := a.enc.Sends()
	if len(sends) != 1 || sends[0].Seg != esp.SealedLen(8+seg) {
		t.Fatalf("got %d sends (seg %d), want one WriteGSO of %d-byte segments", len(sends), sends[0].Seg, esp.SealedLen(8+seg))
	}
	var dgrams [][]byte
	for _, d := range a.enc.Sent() {
		dgrams = append(dgrams, d.Pkt)
	}
	b.enc.Deliver(netip.AddrPortFrom(hostA, esp.Port), dgrams...)
	r := b.c.ESPReader()
	if err := r.EnableGRO(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, gotSeg, _, err := r.ReadGRO(buf)
	if err != nil || gotSeg != seg || !bytes.Equal(buf[:n], batch) {
		t.Fatalf("ReadGRO: %d bytes seg %d err %v; want the batch of %d bytes, seg %d", n, gotSeg, err, len(batch), seg)
	}
}

// TestNoSAAndWrongSource: without an outbound SA nothing leaves; a packet
// whose SA belongs to another host is dropped.
func TestNoSAAndWrongSource(t *testing.T) {
	send, recv := pair(t, 0x3003)
	a, b := newSide(7), newSide(7)
	if err := a.c.WriteTo(vx(7, "x"), netip.AddrPortFrom(hostB, vxlan.Port)); err != nil {
		t.Fatal(err)
	}
	if len(a.enc.Sent())+len(a.clear.Sent()) != 0 || a.c.Counters.NoSA.Load() != 1 {
		t.Fatal("a packet of an encrypted network left without an SA")
	}
	a.c.SetPolicy(&Policy{Encrypted: map[uint32]bool{7: true}, Out: map[netip.Addr]*esp.SA{hostB: send}})
	b.c.In.Add(recv)
	a.c.WriteTo(vx(7, "x"), netip.AddrPortFrom(hostB, vxlan.Port))
	a.c.WriteTo(vx(7, "y"), netip.AddrPortFrom(hostB, vxlan.Port))
	sent := a.enc.Take()
	b.enc.Deliver(netip.AddrPortFrom(netip.MustParseAddr("10.9.0.66"), esp.Port), sent[0].Pkt)
	b.enc.Deliver(netip.AddrPortFrom(hostA, esp.Port), sent[1].Pkt)
	buf := make([]byte, 100)
	n, _, err := b.c.ESPReader().ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], vx(7, "y")) {
		t.Fatalf("got %q %v", buf[:n], err)
	}
	if b.c.Counters.WrongSource.Load() != 1 {
		t.Fatal("wrong_source not counted")
	}
}

func TestWriteAllocs(t *testing.T) {
	send, _ := pair(t, 0x4004)
	a := newSide(7)
	a.enc.CountOnly()
	a.c.SetPolicy(&Policy{Encrypted: map[uint32]bool{7: true}, Out: map[netip.Addr]*esp.SA{hostB: send}})
	pkt := vx(7, string(make([]byte, 1400)))
	dst := netip.AddrPortFrom(hostB, vxlan.Port)
	a.c.WriteTo(pkt, dst) // fill the pool
	if n := testing.AllocsPerRun(100, func() { a.c.WriteTo(pkt, dst) }); n > 0 {
		t.Errorf("WriteTo allocates %.1f times per packet", n)
	}
}

// FuzzESPReader feeds arbitrary datagrams, and mutated valid ones, to the
// receive wrapper: nothing panics, nothing that does not open comes out,
// and what comes out is a VXLAN packet that was sealed.
func FuzzESPReader(f *testing.F) {
	send, recv := pair(f, 0x5005)
	a := newSide(7)
	a.c.SetPolicy(&Policy{Encrypted: map[uint32]bool{7: true}, Out: map[netip.Addr]*esp.SA{hostB: send}})
	for _, p := range []string{"", "x", "hello world"} {
		a.c.WriteTo(vx(7, p), netip.AddrPortFrom(hostB, vxlan.Port))
	}
	for _, d := range a.enc.Take() {
		f.Add(d.Pkt, uint16(0))
		f.Add(d.Pkt, uint16(len(d.Pkt)-1))
	}
	f.Add([]byte{0xff}, uint16(0))
	f.Add([]byte{0, 0, 0, 0, 1}, uint16(0))
	f.Fuzz(func(t *testing.T, pkt []byte, flip uint16) {
		b := newSide(7)
		b.c.In.Add(recv)
		if len(pkt) > 0 && flip > 0 {
			pkt[int(flip)%len(pkt)] ^= 0x80
		}
		r := b.c.ESPReader()
		b.enc.Deliver(netip.AddrPortFrom(hostA, esp.Port), pkt)
		b.enc.Close()
		buf := make([]byte, 65535)
		n, _, err := r.ReadFrom(buf)
		if err == nil {
			if _, ok := vni(buf[:n]); !ok {
				t.Fatalf("reader returned %d bytes that are no VXLAN packet", n)
			}
		}
	})
}

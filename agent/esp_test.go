package agent

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vxswitch/esp"
	"vxswitch/espconn"
	"vxswitch/raftstore"
	"vxswitch/vxlan"
	"vxswitch/vxlan/vxlantest"
)

// keyHost is one host of TestKeyManager: its sockets, wrapper and key
// manager, which publishes into a shared, hand-made state.
type keyHost struct {
	name        string
	addr        netip.Addr
	clear, encS *vxlantest.Conn
	conn        *espconn.Conn
	m           *keyManager
}

type keyCluster struct {
	t     *testing.T
	st    *raftstore.State
	hosts []*keyHost
	epoch map[string]uint32
}

func (c *keyCluster) add(name, addr string) *keyHost {
	h := &keyHost{name: name, addr: netip.MustParseAddr(addr), clear: vxlantest.New(), encS: vxlantest.New()}
	h.conn = espconn.New(h.clear, h.encS, 0)
	h.m = newKeyManager(h.conn, name, time.Hour, slog.Default(), func(_ context.Context, k raftstore.HostKey) error {
		hs := c.st.Hosts[name]
		if hs.ESP != nil {
			k.Epoch, k.Index = hs.ESP.Epoch+1, hs.ESP.Index
		} else {
			k.Epoch, k.Index = 1, uint32(len(c.hosts))
		}
		hs.ESP = &k
		c.st.Hosts[name] = hs
		return nil
	})
	c.st.Hosts[name] = raftstore.Host{Name: name, VTEP: h.addr}
	c.hosts = append(c.hosts, h)
	return h
}

// step runs every key manager at now until nothing more is published.
func (c *keyCluster) step(now time.Time) {
	for range 3 {
		for _, h := range c.hosts {
			if _, ok := c.st.Hosts[h.name]; !ok {
				continue
			}
			if h.m.sync(c.st, now) {
				k, err := h.m.newKey(now)
				if err != nil {
					c.t.Fatal(err)
				}
				h.m.published(now, h.m.publish(context.Background(), k))
			}
		}
	}
}

// send sends one packet of network 7 from a to b and returns what b's ESP
// reader makes of it: the payload, or "" when it was dropped.
func send(t *testing.T, a, b *keyHost, payload string) string {
	t.Helper()
	pkt := make([]byte, vxlan.HeaderLen+len(payload))
	vxlan.Encode(pkt, 7)
	copy(pkt[vxlan.HeaderLen:], payload)
	if err := a.conn.WriteTo(pkt, netip.AddrPortFrom(b.addr, vxlan.Port)); err != nil {
		t.Fatal(err)
	}
	sent := a.encS.Take()
	if len(sent) == 0 {
		return ""
	}
	if bytes.Contains(sent[0].Pkt, []byte(payload)) {
		t.Fatal("payload visible on the wire")
	}
	inner, sa, err := b.conn.In.Open(sent[0].Pkt)
	if err != nil {
		return ""
	}
	if sa.Src() != a.addr {
		t.Fatalf("opened with the SA from %v, want one from %v", sa.Src(), a.addr)
	}
	_, _, vx, ok := esp.ParseUDP(inner)
	if !ok {
		t.Fatal("inner datagram does not parse")
	}
	return string(vx[vxlan.HeaderLen:])
}

// TestKeyManager: two hosts derive matching SAs from published public
// keys; a rotation keeps both generations until the overlap ends and
// switches sending at the activation time; a removed host's SAs go.
func TestKeyManager(t *testing.T) {
	st := &raftstore.State{Hosts: map[string]raftstore.Host{}, Networks: map[string]raftstore.Network{
		"sec": {Name: "sec", VNI: 7, Encrypted: true},
	}}
	c := &keyCluster{t: t, st: st}
	a := c.add("a", "10.1.0.1")
	b := c.add("b", "10.1.0.2")
	a.m.rotation = 100 * time.Hour // only b rotates
	t0 := time.Unix(1000, 0)
	c.step(t0)
	if got := send(t, a, b, "hello"); got != "hello" {
		t.Fatalf("a->b after the first keys: got %q", got)
	}
	if got := send(t, b, a, "back"); got != "back" {
		t.Fatalf("b->a: got %q", got)
	}
	inA := a.conn.In.SAs()
	if len(inA) != 1 || inA[0].SPI() != espSPI(2, 2) {
		t.Fatalf("a's inbound SAs %v, want one with SPI %#x", inA, espSPI(2, 2))
	}

	// Rotation of b, published at t1: active at t1+5s.
	t1 := t0.Add(time.Hour)
	c.step(t1)
	if n := len(a.conn.In.SAs()); n != 2 {
		t.Fatalf("during the rotation a holds %d inbound SAs, want 2", n)
	}
	if got := send(t, a, b, "old"); got != "old" {
		t.Fatalf("before activation: %q", got)
	}
	oldSPI := a.conn.Policy().Out[b.addr].SPI()
	c.step(t1.Add(keyActivation))
	if a.conn.Policy().Out[b.addr].SPI() == oldSPI {
		t.Fatal("a still sends with the old SA after the activation time")
	}
	if got := send(t, a, b, "new"); got != "new" {
		t.Fatalf("after activation: %q", got)
	}
	c.step(t1.Add(keyActivation + keyOverlap))
	if n := len(a.conn.In.SAs()); n != 1 {
		t.Fatalf("after the overlap a holds %d inbound SAs, want 1", n)
	}

	// b is removed: a drops b's SAs and sends nothing to it; what b still
	// sends with its old SA is unknown at a.
	delete(st.Hosts, "b")
	c.step(t1.Add(time.Minute))
	if len(a.conn.In.SAs()) != 0 || a.conn.Policy().Out[b.addr] != nil {
		t.Fatal("a kept SAs of the removed host")
	}
	if got := send(t, b, a, "after removal"); got != "" {
		t.Fatalf("a accepted %q from the removed host", got)
	}
	if a.conn.In.Counters.UnknownSPI.Load() != 1 {
		t.Fatal("the removed host's packet was not counted as unknown_spi")
	}
}

// TestStaticKeyAndSeqFloor: the static key is made once with mode 0600
// and read back unchanged; the sequence floor grows by a block at every
// load and every grow, and a bad file is refused with the fix named.
func TestStaticKeyAndSeqFloor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "esp-static.key")
	k1, err := loadStaticKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("static key file: %v %v", fi, err)
	}
	k2, err := loadStaticKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("static key changed on reload: %v", err)
	}
	seqPath := filepath.Join(dir, "esp-static.seq")
	f, err := loadSeqFloor(seqPath)
	if err != nil || f.base != 0 || f.top != seqBlock {
		t.Fatalf("first floor: %+v %v", f, err)
	}
	if err := f.grow(); err != nil || f.top != 2*seqBlock {
		t.Fatalf("grow: %+v %v", f, err)
	}
	f, err = loadSeqFloor(seqPath)
	if err != nil || f.base != 2*seqBlock || f.top != 3*seqBlock {
		t.Fatalf("floor after a restart: %+v %v", f, err)
	}
	os.WriteFile(seqPath, []byte("x\n"), 0o600)
	if _, err := loadSeqFloor(seqPath); err == nil || !strings.Contains(err.Error(), "vtep xfrm") {
		t.Fatalf("bad floor file: %v", err)
	}
	os.WriteFile(path, []byte("x\n"), 0o600)
	if _, err := loadStaticKey(path); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("bad key file: %v", err)
	}
}

package vxlantest

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

var peer = netip.MustParseAddrPort("192.0.2.2:4789")

func TestSends(t *testing.T) {
	c := New()
	pkt := []byte{1, 2, 3, 4, 5}
	if err := c.WriteTo(pkt, peer); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteGSO(pkt, 2, peer); err != nil {
		t.Fatal(err)
	}
	pkt[0] = 9 // the Conn must have copied
	if s := c.Sends(); len(s) != 2 || s[0].Seg != 5 || s[1].Seg != 2 || s[0].Pkt[0] != 1 {
		t.Fatalf("Sends = %+v", s)
	}
	sent, ok := c.WaitSent(4, time.Second)
	want := [][]byte{{1, 2, 3, 4, 5}, {1, 2}, {3, 4}, {5}}
	if !ok || len(sent) != len(want) {
		t.Fatalf("Sent = %+v", sent)
	}
	for i, d := range sent {
		if !bytes.Equal(d.Pkt, want[i]) || d.Addr != peer {
			t.Errorf("datagram %d = % x to %v, want % x to %v", i, d.Pkt, d.Addr, want[i], peer)
		}
	}
	if err := c.WriteGSO(nil, 2, peer); err == nil {
		t.Error("WriteGSO took an empty packet")
	}
	c.CountOnly()
	c.WriteTo([]byte{1}, peer)
	if c.Calls() != 3 || len(c.Sends()) != 2 {
		t.Errorf("after CountOnly: %d calls, %d recorded", c.Calls(), len(c.Sends()))
	}
	c.Close()
	if err := c.WriteTo([]byte{1}, peer); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v", err)
	}
}

func TestReceive(t *testing.T) {
	c := New()
	c.Deliver(peer, []byte{1, 1}, []byte{2, 2}, []byte{3})
	b := make([]byte, 16)
	for i, want := range [][]byte{{1, 1}, {2, 2}, {3}} {
		n, src, err := c.ReadFrom(b)
		if err != nil || src != peer || !bytes.Equal(b[:n], want) {
			t.Fatalf("ReadFrom %d = % x from %v, %v", i, b[:n], src, err)
		}
	}
	if err := c.EnableGRO(); err != nil {
		t.Fatal(err)
	}
	c.Deliver(peer, []byte{1, 1}, []byte{2, 2}, []byte{3})
	n, seg, src, err := c.ReadGRO(b)
	if err != nil || seg != 2 || src != peer || !bytes.Equal(b[:n], []byte{1, 1, 2, 2, 3}) {
		t.Fatalf("ReadGRO = % x seg %d from %v, %v", b[:n], seg, src, err)
	}
	c.Close()
	if _, _, _, err := c.ReadGRO(b); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadGRO after Close: %v", err)
	}
	if err := (&Conn{NoGRO: true}).EnableGRO(); !errors.Is(err, ErrNoGRO) {
		t.Errorf("EnableGRO with NoGRO: %v", err)
	}
}

// WaitIdle returns once the reader has read everything delivered and is
// waiting again, and not before.
func TestWaitIdle(t *testing.T) {
	c := New()
	release := make(chan struct{})
	var handled int
	go func() {
		buf := make([]byte, 64)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
			<-release
			handled++
		}
	}()
	t.Cleanup(func() { c.Close() })
	if !c.WaitIdle(5 * time.Second) {
		t.Fatal("a reader waiting with nothing delivered is not idle")
	}
	c.Deliver(peer, []byte{1}, []byte{2}) // one receive, read as two datagrams
	if c.WaitIdle(50 * time.Millisecond) {
		t.Fatal("WaitIdle returned while the reader was busy")
	}
	close(release)
	if !c.WaitIdle(5 * time.Second) {
		t.Fatal("WaitIdle did not return after the reader read both datagrams")
	}
	if handled != 2 {
		t.Errorf("reader handled %d datagrams before WaitIdle returned, want 2", handled)
	}
}

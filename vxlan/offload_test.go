package vxlan

import (
	"bytes"
	"net/netip"
	"testing"
)

// gsoPair returns a sender and a receiver with GRO on, on IPv4 loopback.
func gsoPair(t *testing.T) (tx, rx *Conn) {
	t.Helper()
	return gsoPairOn(t, netip.MustParseAddrPort("127.0.0.1:0"))
}

// gsoPairOn returns a sender and a receiver with GRO on, bound to lo (an
// IPv4 or IPv6 loopback address with port 0).
func gsoPairOn(t *testing.T, lo netip.AddrPort) (tx, rx *Conn) {
	t.Helper()
	var err error
	if tx, err = Listen(lo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	if rx, err = Listen(lo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	if err := rx.EnableGRO(); err != nil {
		t.Skipf("kernel without UDP GRO: %v", err)
	}
	return tx, rx
}

// datagrams returns n datagrams of size seg (the last one last bytes long)
// back to back, each filled with its own index.
func datagrams(n, seg, last int) []byte {
	var b []byte
	for i := range n {
		size := seg
		if i == n-1 {
			size = last
		}
		b = append(b, bytes.Repeat([]byte{byte(i + 1)}, size)...)
	}
	return b
}

// readAll reads until want bytes arrived and checks that every read splits
// into datagrams of the announced size that each hold one repeated byte.
// It returns the most datagrams one read held.
func readAll(t *testing.T, rx *Conn, want []byte, from netip.AddrPort) (most int) {
	t.Helper()
	buf := make([]byte, 65535)
	var got []byte
	for len(got) < len(want) {
		n, seg, src, err := rx.ReadGRO(buf)
		if err != nil {
			t.Fatal(err)
		}
		if src != from {
			t.Fatalf("source %s, want %s", src, from)
		}
		for off := 0; off < n; off += seg {
			d := buf[off:min(off+seg, n)]
			if !bytes.Equal(d, bytes.Repeat(d[:1], len(d))) {
				t.Fatalf("datagram at %d of a %d-byte read (segment %d) mixes two datagrams", off, n, seg)
			}
		}
		got = append(got, buf[:n]...)
		most = max(most, (n+seg-1)/seg)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(want))
	}
	return most
}

func TestWriteGSOReadGRO(t *testing.T) {
	tests := []struct {
		name         string
		n, seg, last int
	}{
		{"one datagram", 1, 1472, 1472},
		{"equal datagrams", 5, 1472, 1472},
		{"short last", 6, 1000, 10},
		{"more than one message", 100, 1472, 700}, // 65507/1472 = 44 per message
	}
	// Both underlay families: UDP_SEGMENT and UDP_GRO work on AF_INET6
	// sockets as on AF_INET ones (the outer IPv6 header is 40 bytes, the
	// 65507-byte bound per send fits both).
	for _, lo := range []string{"127.0.0.1:0", "[::1]:0"} {
		for _, tt := range tests {
			t.Run(lo+"/"+tt.name, func(t *testing.T) {
				tx, rx := gsoPairOn(t, netip.MustParseAddrPort(lo))
				if !tx.GSO() {
					t.Fatalf("%s: UDP_SEGMENT not available on this socket", lo)
				}
				pkt := datagrams(tt.n, tt.seg, tt.last)
				if err := tx.WriteGSO(pkt, tt.seg, rx.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				if most := readAll(t, rx, pkt, tx.LocalAddr()); tt.n > 1 && most < 2 {
					t.Errorf("every read held one datagram: GSO or GRO did not batch")
				}
				if !tx.GSO() {
					t.Errorf("%s: GSO turned off after a send: the kernel refused UDP_SEGMENT", lo)
				}
			})
		}
	}
}

func TestWriteGSOErrors(t *testing.T) {
	tx, _ := gsoPair(t)
	dst := netip.MustParseAddrPort("127.0.0.1:9")
	if err := tx.WriteGSO(nil, 100, dst); err == nil {
		t.Error("empty packet: no error")
	}
	if err := tx.WriteGSO([]byte{1}, 0, dst); err == nil {
		t.Error("segment size 0: no error")
	}
	if err := tx.WriteGSO([]byte{1}, 1, netip.MustParseAddrPort("[2001:db8::1]:4789")); err == nil {
		t.Error("IPv6 destination on an IPv4 socket: no error")
	}
}

func TestReadGROAfterClose(t *testing.T) {
	_, rx := gsoPair(t)
	done := make(chan error, 1)
	go func() {
		_, _, _, err := rx.ReadGRO(make([]byte, 100))
		done <- err
	}()
	rx.Close()
	if err := <-done; err == nil {
		t.Fatal("ReadGRO after Close: no error")
	}
}

func TestZeroAllocsGSO(t *testing.T) {
	tx, rx := gsoPair(t)
	pkt := datagrams(10, 1472, 1472)
	buf := make([]byte, 65535)
	allocs := testing.AllocsPerRun(200, func() {
		if err := tx.WriteGSO(pkt, 1472, rx.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(pkt); {
			n, _, _, err := rx.ReadGRO(buf)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("WriteGSO + ReadGRO allocate %v times, want 0", allocs)
	}
}

func BenchmarkWriteGSO(b *testing.B) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	tx, err := Listen(lo)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	rx, err := Listen(lo)
	if err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	go func() { // drain so the receiver's buffer never fills
		buf := make([]byte, 65535)
		for {
			if _, _, err := rx.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	pkt := datagrams(44, 1472, 1472)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if err := tx.WriteGSO(pkt, 1472, rx.LocalAddr()); err != nil {
			b.Fatal(err)
		}
	}
}

package vxlan

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

func listen(t *testing.T) *Conn {
	t.Helper()
	c, err := Listen(loopback)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnRoundTrip(t *testing.T) {
	a, b := listen(t), listen(t)
	if a.LocalAddr().Port() == 0 || a.LocalAddr().Addr() != loopback.Addr() {
		t.Fatalf("LocalAddr = %v, want 127.0.0.1 with a chosen port", a.LocalAddr())
	}
	msg := []byte{0x08, 0, 0, 0, 0, 0, 7, 0, 0xaa}
	if err := a.WriteTo(msg, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, src, err := b.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], msg) || src != a.LocalAddr() {
		t.Fatalf("got % x from %v, want % x from %v", buf[:n], src, msg, a.LocalAddr())
	}
}

func TestConnReadAfterClose(t *testing.T) {
	c := listen(t)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 100))
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadFrom after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom did not return after Close")
	}
}

func TestListenInvalid(t *testing.T) {
	if _, err := Listen(netip.AddrPort{}); err == nil {
		t.Fatal("Listen(zero address) succeeded")
	}
}

// TestConnRefusedIsNotFatal makes the socket report ICMP errors (IP_RECVERR,
// which unconnected sockets otherwise ignore), sends to a closed port so an
// ICMP port-unreachable comes back, and checks that ReadFrom still returns
// the next real packet instead of ECONNREFUSED.
func TestConnRefusedIsNotFatal(t *testing.T) {
	c := listen(t)
	raw, err := c.uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
	}); err != nil || serr != nil {
		t.Fatalf("set IP_RECVERR: %v %v", err, serr)
	}

	closed := listen(t)
	dead := closed.LocalAddr()
	closed.Close()
	if err := c.WriteTo([]byte("nobody"), dead); err != nil {
		t.Fatal(err)
	}
	// Wait until the ICMP error is pending: the error queue makes the socket
	// readable for poll with POLLERR.
	waitErrQueue(t, c)

	peer := listen(t)
	if err := peer.WriteTo([]byte("hello"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, src, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom = %v, want the packet after a refused send", err)
	}
	if string(buf[:n]) != "hello" || src != peer.LocalAddr() {
		t.Fatalf("got %q from %v", buf[:n], src)
	}
}

// waitErrQueue blocks in poll(2) until an error is queued on the socket
// (POLLERR is always reported, whatever events are asked for).
func waitErrQueue(t *testing.T, c *Conn) {
	t.Helper()
	raw, err := c.uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var perr error
	fds := []unix.PollFd{{Events: 0}}
	raw.Control(func(fd uintptr) {
		fds[0].Fd = int32(fd)
		n, perr = unix.Poll(fds, 5000)
	})
	if perr != nil || n != 1 || fds[0].Revents&unix.POLLERR == 0 {
		t.Fatalf("no ICMP error arrived for a send to a closed port (poll: %d %v %#x)", n, perr, fds[0].Revents)
	}
}

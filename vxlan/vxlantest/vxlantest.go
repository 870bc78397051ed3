// Package vxlantest provides an in-memory underlay socket for tests of the
// switch and of replay: Conn has the methods of *vxlan.Conn that the switch
// uses, batching included (WriteGSO on the send side, EnableGRO and ReadGRO
// on the receive side), so a test runs the same switch code as production.
// A test delivers datagrams as if peers had sent them and reads back what
// the switch sent, per call or per datagram.
package vxlantest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Send is one call of WriteTo (Seg is then len(Pkt)) or WriteGSO: Pkt holds
// datagrams of Seg bytes back to back, the last possibly shorter, all to
// Dst.
type Send struct {
	Pkt []byte
	Seg int
	Dst netip.AddrPort
}

// Datagram is one UDP datagram sent or to be received.
type Datagram struct {
	Pkt  []byte
	Addr netip.AddrPort // the destination of a sent datagram, the source of a received one
}

// ErrNoGRO is returned by EnableGRO on a Conn made with NoGRO set.
var ErrNoGRO = errors.New("vxlantest: GRO is off for this conn")

// receiveQueue is how many Deliver calls may wait for a read before
// Deliver blocks.
const receiveQueue = 1024

// Conn is an in-memory underlay socket.
//
// Create it with New; the zero value is not usable. All methods may be
// called from any goroutine at the same time. Packets are copied on the way
// in and out, so callers may reuse their buffers.
type Conn struct {
	// NoGRO makes EnableGRO fail, like a socket whose kernel has no UDP GRO:
	// the switch then reads with ReadFrom. Set it before the Conn is used.
	NoGRO bool

	in     chan []Datagram // one receive each: datagrams of one sender
	closed chan struct{}
	once   sync.Once

	rmu     sync.Mutex
	pending []Datagram // the rest of a receive being read with ReadFrom
	gro     bool       // EnableGRO succeeded

	// For WaitIdle, under imu: receives delivered and taken by a reader,
	// and whether a reader waits for the next one.
	imu                 sync.Mutex
	delivered, received int
	waiting             bool
	idle                chan struct{} // buffered 1: a reader started waiting

	mu        sync.Mutex
	sends     []Send
	calls     int
	countOnly bool
	notify    chan struct{} // buffered 1: something was sent
}

// New returns an open Conn.
func New() *Conn {
	return &Conn{
		in:     make(chan []Datagram, receiveQueue),
		closed: make(chan struct{}),
		notify: make(chan struct{}, 1),
		idle:   make(chan struct{}, 1),
	}
}

// WriteTo records a copy of pkt as one datagram to dst. After Close it
// returns an error wrapping net.ErrClosed.
func (c *Conn) WriteTo(pkt []byte, dst netip.AddrPort) error {
	return c.WriteGSO(pkt, len(pkt), dst)
}

// WriteGSO records a copy of pkt as datagrams of seg bytes to dst, as one
// call. After Close it returns an error wrapping net.ErrClosed; an empty
// pkt or a seg below 1 is refused, as *vxlan.Conn refuses it.
func (c *Conn) WriteGSO(pkt []byte, seg int, dst netip.AddrPort) error {
	if seg <= 0 || len(pkt) == 0 {
		return fmt.Errorf("vxlantest: send to %s: empty packet or segment size %d", dst, seg)
	}
	select {
	case <-c.closed:
		return fmt.Errorf("vxlantest: send to %s: %w", dst, net.ErrClosed)
	default:
	}
	c.mu.Lock()
	c.calls++
	if !c.countOnly {
		c.sends = append(c.sends, Send{bytes.Clone(pkt), seg, dst})
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// CountOnly makes the Conn count later sends (Calls) without recording
// them, so that a test can measure allocations or speed of the sender.
func (c *Conn) CountOnly() {
	c.mu.Lock()
	c.countOnly = true
	c.mu.Unlock()
}

// Calls returns how many WriteTo and WriteGSO calls there were.
func (c *Conn) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// Sends returns the recorded calls, in order.
func (c *Conn) Sends() []Send {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Send(nil), c.sends...)
}

// Sent returns the recorded datagrams, in order: each call cut into its
// datagrams.
func (c *Conn) Sent() []Datagram {
	var out []Datagram
	for _, s := range c.Sends() {
		for off := 0; off < len(s.Pkt); off += s.Seg {
			out = append(out, Datagram{s.Pkt[off:min(off+s.Seg, len(s.Pkt))], s.Dst})
		}
	}
	return out
}

// Take returns the recorded datagrams, as Sent does, and forgets them:
// the next Take returns only what was sent after this one.
func (c *Conn) Take() []Datagram {
	out := c.Sent()
	c.mu.Lock()
	c.sends = c.sends[len(c.sends):]
	c.mu.Unlock()
	return out
}

// WaitSent waits up to timeout until at least n datagrams were sent and
// returns them all; ok is false when they did not come in time.
func (c *Conn) WaitSent(n int, timeout time.Duration) (sent []Datagram, ok bool) {
	deadline := time.After(timeout)
	for {
		if sent = c.Sent(); len(sent) >= n {
			return sent, true
		}
		select {
		case <-c.notify:
		case <-deadline:
			return sent, false
		}
	}
}

// Deliver makes one receive from src readable: with GRO on, one ReadGRO
// returns all of dgrams, which must then all have one size but the last
// (shorter or equal), as the kernel coalesces them; ReadFrom returns them
// one by one. It blocks while receiveQueue receives are waiting, and drops
// them if the Conn is closed.
func (c *Conn) Deliver(src netip.AddrPort, dgrams ...[]byte) {
	r := make([]Datagram, len(dgrams))
	for i, d := range dgrams {
		r[i] = Datagram{bytes.Clone(d), src}
	}
	c.imu.Lock()
	c.delivered++
	c.imu.Unlock()
	select {
	case c.in <- r:
	case <-c.closed:
		c.imu.Lock()
		c.delivered--
		c.imu.Unlock()
	}
}

// WaitIdle waits up to timeout until a reader has read everything
// delivered so far and waits for the next receive: the switch serving the
// Conn has finished with it, and what it wrote to its ports has been
// written. It reports false when that did not happen in time. It assumes
// one reader (one ServeUnderlay) and one caller at a time.
func (c *Conn) WaitIdle(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.imu.Lock()
		done := c.waiting && c.received == c.delivered
		c.imu.Unlock()
		if done {
			return true
		}
		select {
		case <-c.idle:
		case <-timer.C:
			return false
		}
	}
}

// EnableGRO turns on GRO for ReadGRO, or returns ErrNoGRO when NoGRO is set.
func (c *Conn) EnableGRO() error {
	if c.NoGRO {
		return ErrNoGRO
	}
	c.rmu.Lock()
	c.gro = true
	c.rmu.Unlock()
	return nil
}

// ReadFrom copies the next delivered datagram into b (truncated when b is
// short) and returns its length and source. After Close it returns an
// error wrapping net.ErrClosed.
func (c *Conn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.pending) == 0 {
		r, err := c.receive()
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		c.pending = r
	}
	d := c.pending[0]
	c.pending = c.pending[1:]
	return copy(b, d.Pkt), d.Addr, nil
}

// ReadGRO reads the next receive: with GRO on, every datagram of one
// Deliver back to back in b, with seg the size of the first; with GRO off,
// one datagram, as *vxlan.Conn does. After Close it returns an error
// wrapping net.ErrClosed.
func (c *Conn) ReadGRO(b []byte) (n, seg int, src netip.AddrPort, err error) {
	c.rmu.Lock()
	gro := c.gro
	c.rmu.Unlock()
	if !gro {
		n, src, err = c.ReadFrom(b)
		return n, n, src, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	r := c.pending
	c.pending = nil
	for len(r) == 0 {
		if r, err = c.receive(); err != nil {
			return 0, 0, netip.AddrPort{}, err
		}
	}
	for _, d := range r {
		n += copy(b[n:], d.Pkt)
	}
	return n, len(r[0].Pkt), r[0].Addr, nil
}

// receive waits for the next Deliver; what was delivered before Close is
// still read after it. c.rmu is held.
func (c *Conn) receive() ([]Datagram, error) {
	select {
	case r := <-c.in:
		c.took()
		return r, nil
	default:
	}
	c.imu.Lock()
	c.waiting = true
	c.imu.Unlock()
	select {
	case c.idle <- struct{}{}:
	default:
	}
	select {
	case r := <-c.in:
		c.took()
		return r, nil
	case <-c.closed:
		return nil, fmt.Errorf("vxlantest: read: %w", net.ErrClosed)
	}
}

// took counts a receive taken by the reader, which no longer waits.
func (c *Conn) took() {
	c.imu.Lock()
	c.received++
	c.waiting = false
	c.imu.Unlock()
}

// Close makes blocked and later sends fail with an error wrapping
// net.ErrClosed, and reads too once what was delivered before is read.
// Closing twice is not an error.
func (c *Conn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

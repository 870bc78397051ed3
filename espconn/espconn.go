// Package espconn puts package esp between the switch and the underlay
// sockets: a Conn holds the clear VXLAN socket (port 4789) and the ESP in
// UDP socket (port 4500, RFC 3948) of one host and implements the switch's
// underlay contracts (vswitch.Underlay for sending, vswitch.UnderlayReader
// for each receive loop), so the forwarding code does not know whether a
// network is encrypted.
//
// On the way out, the VNI in the VXLAN header of each datagram decides: a
// network listed in the Policy as encrypted is sealed with the outbound SA
// of the destination host (transport mode around the VXLAN UDP datagram,
// see package esp) and sent to port 4500; every other network goes out as
// clear VXLAN on port 4789. A GSO batch is sealed segment by segment into
// one buffer: equal inner sizes seal to equal sizes, so it stays one
// WriteGSO.
//
// On the way in, the ESP reader (Conn.ESPReader) opens each datagram with
// the inbound Table, checks that the inner UDP datagram goes to port 4789
// and that the SA belongs to the packet's source address, and hands the
// VXLAN packet to the switch. The clear reader (Conn.ClearReader) drops,
// and counts, clear VXLAN of an encrypted network: an attacker on the
// underlay must not be able to inject into an encrypted network by
// leaving the encryption out.
//
// The control plane (the agent's key manager) fills the inbound Table and
// swaps the Policy; the data path never waits for it.
package espconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"vxswitch/esp"
	"vxswitch/vxlan"
)

// Socket is what a Conn needs of each underlay socket: the send and receive
// halves of the switch's underlay contract. *vxlan.Conn satisfies it, and
// so does vxlantest.Conn.
type Socket interface {
	WriteTo(pkt []byte, dst netip.AddrPort) error
	WriteGSO(pkt []byte, seg int, dst netip.AddrPort) error
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	EnableGRO() error
	ReadGRO(b []byte) (n, seg int, src netip.AddrPort, err error)
}

// Policy is what the control plane tells the data path: which networks are
// encrypted and which SA seals what goes to each host. A *Policy handed to
// SetPolicy is immutable: never modify it or its maps afterwards.
type Policy struct {
	// Encrypted holds the VNIs of the encrypted networks.
	Encrypted map[uint32]bool
	// Out is the outbound SA per underlay address of a peer host. A
	// packet of an encrypted network to an address without one is
	// dropped and counted as no_sa.
	Out map[netip.Addr]*esp.SA
}

// Counters count what the wrapper itself dropped, besides the ESP drops
// counted in Table.Counters. All fields are atomic; the zero value is all
// zeros.
type Counters struct {
	NoSA        atomic.Uint64 // "no_sa": encrypted network, no outbound SA for the destination yet
	ClearDrop   atomic.Uint64 // "clear_dropped": clear VXLAN of an encrypted network on port 4789
	BadInner    atomic.Uint64 // "bad_inner": decrypted datagram is not UDP to port 4789 or not VXLAN
	WrongSource atomic.Uint64 // "wrong_source": the SA belongs to another host than the packet's source
	TooBig      atomic.Uint64 // "too_big": sealed packet would not fit one UDP datagram
	Sealed      atomic.Uint64 // "sealed": datagrams sent as ESP
	Opened      atomic.Uint64 // "opened": ESP datagrams accepted
}

// Conn is the encrypting underlay of one host. Create it with New; the zero
// value is not usable. All methods may be called from any goroutine at the
// same time; each reader (ClearReader, ESPReader) serves one receive loop.
type Conn struct {
	clear, esp Socket
	espPort    uint16
	policy     atomic.Pointer[Policy]
	// In holds the inbound SAs and counts what Open drops. The control
	// plane adds and removes SAs at any time.
	In       esp.Table
	Counters Counters
	bufs     sync.Pool // *[]byte of sealBuffer bytes
}

// sealBuffer is the size of the buffers a send seals into: the largest UDP
// payload plus the overhead of 64 segments.
const sealBuffer = 65535 + 64*esp.MaxOverhead

// New returns a Conn that sends clear VXLAN on clear and ESP on encrypted,
// to port espPort of peers (0 means esp.Port, 4500). Its policy is empty:
// nothing is encrypted until SetPolicy.
func New(clear, encrypted Socket, espPort uint16) *Conn {
	if espPort == 0 {
		espPort = esp.Port
	}
	c := &Conn{clear: clear, esp: encrypted, espPort: espPort}
	c.bufs.New = func() any { b := make([]byte, sealBuffer); return &b }
	c.policy.Store(&Policy{})
	return c
}

// SetPolicy swaps in a new policy; packets sealed after it returns use it.
func (c *Conn) SetPolicy(p *Policy) {
	if p == nil {
		p = &Policy{}
	}
	c.policy.Store(p)
}

// Policy returns the current policy (immutable).
func (c *Conn) Policy() *Policy { return c.policy.Load() }

// Each calls fn with the name and value of every counter of the wrapper and
// of the inbound table, in a fixed order, for stats and metrics.
func (c *Conn) Each(fn func(name string, value uint64)) {
	fn("sealed", c.Counters.Sealed.Load())
	fn("opened", c.Counters.Opened.Load())
	fn("no_sa", c.Counters.NoSA.Load())
	fn("clear_dropped", c.Counters.ClearDrop.Load())
	fn("bad_inner", c.Counters.BadInner.Load())
	fn("wrong_source", c.Counters.WrongSource.Load())
	fn("too_big", c.Counters.TooBig.Load())
	c.In.Counters.Each(fn)
}

// vni returns the VNI of a VXLAN packet, and false if pkt is too short to
// have one (such a packet is left to the switch to count).
func vni(pkt []byte) (uint32, bool) {
	if len(pkt) < vxlan.HeaderLen {
		return 0, false
	}
	return binary.BigEndian.Uint32(pkt[4:8]) >> 8, true
}

// WriteTo sends one VXLAN packet to dst: sealed to port 4500 of dst's host
// if its network is encrypted, clear otherwise (vswitch.Underlay).
func (c *Conn) WriteTo(pkt []byte, dst netip.AddrPort) error {
	p := c.policy.Load()
	id, ok := vni(pkt)
	if !ok || !p.Encrypted[id] {
		return c.clear.WriteTo(pkt, dst)
	}
	sa := p.Out[dst.Addr()]
	if sa == nil {
		c.Counters.NoSA.Add(1)
		return nil
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	sealed, ok := c.seal(sa, *bp, pkt)
	if !ok {
		return nil
	}
	c.Counters.Sealed.Add(1)
	return c.esp.WriteTo(sealed, netip.AddrPortFrom(dst.Addr(), c.espPort))
}

// seal writes pkt as the payload of an inner UDP datagram into buf after
// esp.Headroom and seals it; false means it was dropped (and counted).
func (c *Conn) seal(sa *esp.SA, buf, pkt []byte) ([]byte, bool) {
	n := esp.UDPHeaderLen + len(pkt)
	if esp.SealedLen(n) > len(buf) || n > 0xffff {
		c.Counters.TooBig.Add(1)
		return nil, false
	}
	copy(buf[esp.Headroom+esp.UDPHeaderLen:], pkt)
	esp.PutUDP(buf[esp.Headroom:esp.Headroom+n], vxlan.Port, esp.VXLANPort)
	sealed, err := sa.Seal(buf, n)
	if err != nil {
		c.In.Counters.Count(err)
		return nil, false
	}
	return sealed, true
}

// WriteGSO sends pkt, VXLAN packets of seg bytes back to back (the last
// possibly shorter), to dst (vswitch.Underlay). If they are all of one
// encrypted network, each is sealed in turn into one buffer, where equal
// sizes stay equal, and the buffer leaves in one WriteGSO to port 4500;
// if none is, pkt goes out clear as it is; a mixed batch is sent packet
// by packet.
func (c *Conn) WriteGSO(pkt []byte, seg int, dst netip.AddrPort) error {
	if seg <= 0 || len(pkt) == 0 {
		return fmt.Errorf("espconn: send to %s: empty packet or segment size %d", dst, seg)
	}
	p := c.policy.Load()
	if len(p.Encrypted) == 0 {
		return c.clear.WriteGSO(pkt, seg, dst)
	}
	encrypted := 0
	n := 0
	for off := 0; off < len(pkt); off += seg {
		id, _ := vni(pkt[off:min(off+seg, len(pkt))])
		if p.Encrypted[id] {
			encrypted++
		}
		n++
	}
	switch encrypted {
	case 0:
		return c.clear.WriteGSO(pkt, seg, dst)
	case n:
	default:
		var first error
		for off := 0; off < len(pkt); off += seg {
			if err := c.WriteTo(pkt[off:min(off+seg, len(pkt))], dst); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	sa := p.Out[dst.Addr()]
	if sa == nil {
		c.Counters.NoSA.Add(uint64(n))
		return nil
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	to := netip.AddrPortFrom(dst.Addr(), c.espPort)
	sealedSeg := esp.SealedLen(esp.UDPHeaderLen + seg)
	out := 0
	for off := 0; off < len(pkt); off += seg {
		if out+sealedSeg > len(buf) {
			// Full: send what is sealed and start again.
			if err := c.esp.WriteGSO(buf[:out], sealedSeg, to); err != nil {
				return err
			}
			out = 0
		}
		sealed, ok := c.seal(sa, buf[out:], pkt[off:min(off+seg, len(pkt))])
		if !ok {
			continue
		}
		c.Counters.Sealed.Add(1)
		out += len(sealed)
	}
	if out == 0 {
		return nil
	}
	return c.esp.WriteGSO(buf[:out], sealedSeg, to)
}

// ClearReader returns the reader of the clear socket for one receive loop
// (vswitch.UnderlayReader): it passes clear VXLAN on and drops that of
// encrypted networks (clear_dropped).
func (c *Conn) ClearReader() *ClearReader { return &ClearReader{c: c} }

// ESPReader returns the reader of the ESP socket for one receive loop
// (vswitch.UnderlayReader): it hands over the VXLAN packets of the ESP
// datagrams that open, and counts the others.
func (c *Conn) ESPReader() *ESPReader {
	return &ESPReader{c: c, buf: make([]byte, 65535)}
}

// ClearReader reads clear VXLAN from the clear socket. Use it from one
// goroutine at a time.
type ClearReader struct{ c *Conn }

// EnableGRO turns on GRO on the clear socket.
func (r *ClearReader) EnableGRO() error { return r.c.clear.EnableGRO() }

// dropped reports whether pkt is clear VXLAN of an encrypted network, and
// counts it.
func (r *ClearReader) dropped(p *Policy, pkt []byte) bool {
	if id, ok := vni(pkt); ok && p.Encrypted[id] {
		r.c.Counters.ClearDrop.Add(1)
		return true
	}
	return false
}

// ReadFrom reads the next datagram that is not of an encrypted network.
func (r *ClearReader) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	for {
		n, src, err := r.c.clear.ReadFrom(b)
		if err != nil || !r.dropped(r.c.policy.Load(), b[:n]) {
			return n, src, err
		}
	}
}

// ReadGRO reads the next receive and takes the datagrams of encrypted
// networks out of it, moving the others together; the sizes stay as they
// were, so what is left is still datagrams of seg bytes, the last maybe
// shorter.
func (r *ClearReader) ReadGRO(b []byte) (int, int, netip.AddrPort, error) {
	for {
		n, seg, src, err := r.c.clear.ReadGRO(b)
		p := r.c.policy.Load()
		if err != nil || len(p.Encrypted) == 0 || seg <= 0 {
			return n, seg, src, err
		}
		out := 0
		for off := 0; off < n; off += seg {
			d := b[off:min(off+seg, n)]
			if r.dropped(p, d) {
				continue
			}
			out += copy(b[out:], d)
		}
		if out > 0 {
			return out, seg, src, nil
		}
	}
}

// ESPReader reads ESP in UDP from the ESP socket and returns the VXLAN
// packets inside. It keeps the opened datagrams of one receive and hands
// them out as runs of equal size. Use it from one goroutine at a time.
type ESPReader struct {
	c    *Conn
	buf  []byte         // the last receive, opened in place
	src  netip.AddrPort // its source
	next [][]byte       // VXLAN packets in buf; next[i:] are not handed out yet
	i    int
	gro  bool
}

// EnableGRO turns on GRO on the ESP socket.
func (r *ESPReader) EnableGRO() error {
	if err := r.c.esp.EnableGRO(); err != nil {
		return err
	}
	r.gro = true
	return nil
}

// open checks and decrypts one ESP datagram from src in place and returns
// the VXLAN packet inside, or false when it was dropped (and counted).
func (c *Conn) open(d []byte, src netip.AddrPort) ([]byte, bool) {
	inner, sa, err := c.In.Open(d)
	if err != nil {
		return nil, false
	}
	if sa.Src() != src.Addr().Unmap() {
		c.Counters.WrongSource.Add(1)
		return nil, false
	}
	_, dport, payload, ok := esp.ParseUDP(inner)
	if !ok || dport != esp.VXLANPort || len(payload) < vxlan.HeaderLen {
		c.Counters.BadInner.Add(1)
		return nil, false
	}
	c.Counters.Opened.Add(1)
	return payload, true
}

// fill reads receives until one holds at least one datagram that opens.
func (r *ESPReader) fill() error {
	for r.i == len(r.next) {
		r.next, r.i = r.next[:0], 0
		var n, seg int
		var err error
		if r.gro {
			n, seg, r.src, err = r.c.esp.ReadGRO(r.buf)
		} else {
			n, r.src, err = r.c.esp.ReadFrom(r.buf)
			seg = n
		}
		if err != nil {
			return err
		}
		if seg <= 0 {
			continue
		}
		for off := 0; off < n; off += seg {
			if p, ok := r.c.open(r.buf[off:min(off+seg, n)], r.src); ok {
				r.next = append(r.next, p)
			}
		}
	}
	return nil
}

// ReadFrom returns the next VXLAN packet that arrived as ESP and opened.
func (r *ESPReader) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	if err := r.fill(); err != nil {
		return 0, netip.AddrPort{}, err
	}
	n := copy(b, r.next[r.i])
	r.i++
	return n, r.src, nil
}

// ReadGRO returns the next run of opened VXLAN packets of one size (the
// last may be shorter) back to back in b, as the underlay contract asks.
func (r *ESPReader) ReadGRO(b []byte) (int, int, netip.AddrPort, error) {
	if err := r.fill(); err != nil {
		return 0, 0, netip.AddrPort{}, err
	}
	seg := len(r.next[r.i])
	n, i := 0, r.i
	for i < len(r.next) && n+len(r.next[i]) <= len(b) {
		p := r.next[i]
		if len(p) > seg {
			break
		}
		n += copy(b[n:], p)
		i++
		if len(p) < seg {
			break // a shorter one ends the run
		}
	}
	if i == r.i {
		return 0, 0, netip.AddrPort{}, errors.New("espconn: read: buffer too small for one packet")
	}
	r.i = i
	return n, seg, r.src, nil
}

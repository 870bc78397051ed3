package esp

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Counters count the packets Table.Open dropped, by reason, and the packets
// Seal refused when the send path passes Seal's errors to Count. The zero
// value is all zeros; all fields are atomic, read them at any time.
type Counters struct {
	NotESP        atomic.Uint64 // "not_esp": NAT keepalive (0xff) or IKE (SPI 0), RFC 3948 section 2.2
	Short         atomic.Uint64 // "short": shorter than header, IV, trailer and ICV
	BadLength     atomic.Uint64 // "bad_length": encrypted part not 4-byte aligned (RFC 4303 section 2.4)
	UnknownSPI    atomic.Uint64 // "unknown_spi": no SA with this SPI in the table
	Replay        atomic.Uint64 // "replay": sequence number seen before, 0, or below the window
	AuthFailed    atomic.Uint64 // "auth_failed": forged, corrupted or wrong key
	BadPadding    atomic.Uint64 // "bad_padding": pad length too long or pad bytes not 1, 2, 3...
	BadNextHeader atomic.Uint64 // "bad_next_header": payload is not a UDP datagram
	Dummy         atomic.Uint64 // "dummy": dummy packet, next header 59 (RFC 4303 section 2.6)
	SeqExhausted  atomic.Uint64 // "seq_exhausted": Seal refused, the SA sent 2^32-1 packets
}

// Each calls fn with the name and value of every counter, in a fixed order,
// for stats output.
func (c *Counters) Each(fn func(name string, value uint64)) {
	fn("not_esp", c.NotESP.Load())
	fn("short", c.Short.Load())
	fn("bad_length", c.BadLength.Load())
	fn("unknown_spi", c.UnknownSPI.Load())
	fn("replay", c.Replay.Load())
	fn("auth_failed", c.AuthFailed.Load())
	fn("bad_padding", c.BadPadding.Load())
	fn("bad_next_header", c.BadNextHeader.Load())
	fn("dummy", c.Dummy.Load())
	fn("seq_exhausted", c.SeqExhausted.Load())
}

// Count adds one to the counter of err if it is one of the errors of Open
// or Seal, and does nothing otherwise.
func (c *Counters) Count(err error) {
	switch err {
	case ErrNotESP:
		c.NotESP.Add(1)
	case ErrShort:
		c.Short.Add(1)
	case ErrBadLength:
		c.BadLength.Add(1)
	case ErrUnknownSPI:
		c.UnknownSPI.Add(1)
	case ErrReplay:
		c.Replay.Add(1)
	case ErrAuthFailed:
		c.AuthFailed.Add(1)
	case ErrBadPadding:
		c.BadPadding.Add(1)
	case ErrBadNext:
		c.BadNextHeader.Add(1)
	case ErrDummy:
		c.Dummy.Add(1)
	case ErrSeqExhausted:
		c.SeqExhausted.Add(1)
	}
}

// Table holds the inbound SAs of a host, keyed by SPI, and the drop
// counters. During a rotation it holds the old and the new SA of a peer, so
// packets sealed with either are accepted until the old one is removed.
//
// The zero value is an empty table ready to use; a Table must not be copied
// after first use. Open and Lookup read an
// immutable map behind an atomic pointer and never wait; Add and Remove
// copy it (they are rare) and may be called concurrently with everything.
type Table struct {
	mu       sync.Mutex // serializes Add and Remove
	sas      atomic.Pointer[map[uint32]*SA]
	Counters Counters
}

// Add puts sa in the table. It fails if the SPI is already there: SPIs are
// chosen by the receiver and unique among its inbound SAs.
func (t *Table) Add(sa *SA) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.load()
	if _, ok := old[sa.SPI()]; ok {
		return fmt.Errorf("esp: add SA: SPI %#x is already in the table: remove it first or pick another SPI", sa.SPI())
	}
	m := make(map[uint32]*SA, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[sa.SPI()] = sa
	t.sas.Store(&m)
	return nil
}

// Remove takes the SA with this SPI out of the table and reports whether it
// was there. Packets of that SA count as unknown_spi from then on.
func (t *Table) Remove(spi uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.load()
	if _, ok := old[spi]; !ok {
		return false
	}
	m := make(map[uint32]*SA, len(old))
	for k, v := range old {
		if k != spi {
			m[k] = v
		}
	}
	t.sas.Store(&m)
	return true
}

// Lookup returns the SA with this SPI, or nil.
func (t *Table) Lookup(spi uint32) *SA {
	return t.load()[spi]
}

// SAs returns the SAs in the table, ordered by SPI.
func (t *Table) SAs() []*SA {
	m := t.load()
	out := make([]*SA, 0, len(m))
	for _, sa := range m {
		out = append(out, sa)
	}
	slices.SortFunc(out, func(a, b *SA) int { return cmp.Compare(a.SPI(), b.SPI()) })
	return out
}

func (t *Table) load() map[uint32]*SA {
	if p := t.sas.Load(); p != nil {
		return *p
	}
	return nil
}

// Open checks and decrypts pkt, the payload of one UDP datagram received on
// port 4500, in place (RFC 4303 section 3.4): SPI lookup, replay check,
// ICV, replay window update, padding and next header. It returns the inner
// UDP datagram (a sub-slice of pkt: its header with destination port 4789,
// then the VXLAN packet) and the SA that accepted it, whose Src the caller may
// compare with the packet's source address. Otherwise it returns
// one of the drop errors (ErrShort, ErrUnknownSPI, ErrReplay, ErrAuthFailed,
// ...) and counts it; pkt may then be partly overwritten. Open does not
// allocate and is safe for concurrent use.
func (t *Table) Open(pkt []byte) ([]byte, *SA, error) {
	plain, sa, err := t.open(pkt)
	if err != nil {
		t.Counters.Count(err)
	}
	return plain, sa, err
}

func (t *Table) open(pkt []byte) ([]byte, *SA, error) {
	if len(pkt) == 1 && pkt[0] == 0xff {
		return nil, nil, ErrNotESP
	}
	if len(pkt) >= 4 && binary.BigEndian.Uint32(pkt) == 0 {
		return nil, nil, ErrNotESP
	}
	if len(pkt) < minPacket {
		return nil, nil, ErrShort
	}
	if (len(pkt)-Headroom-ICVLen)%4 != 0 {
		return nil, nil, ErrBadLength
	}
	sa := t.Lookup(binary.BigEndian.Uint32(pkt))
	if sa == nil {
		return nil, nil, ErrUnknownSPI
	}
	plain, err := sa.open(pkt)
	if err != nil {
		return nil, nil, err
	}
	return plain, sa, nil
}

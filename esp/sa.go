package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Sizes of the parts of an ESP-in-UDP packet (RFC 4303, RFC 4106, RFC 3948).
const (
	// Port is the UDP port of ESP in UDP, source and destination (RFC 3948).
	Port = 4500
	// HeaderLen is the ESP header: SPI and sequence number.
	HeaderLen = 8
	// IVLen is the explicit IV of AES-GCM ESP (RFC 4106 section 3.1).
	IVLen = 8
	// ICVLen is the integrity check value: the 16-byte GCM tag.
	ICVLen = 16
	// TrailerLen is the pad length byte and the next header byte.
	TrailerLen = 2
	// SaltLen is the part of the keying material that is not AES key
	// (RFC 4106 section 8.1).
	SaltLen = 4
	// UDPHeaderLen is one UDP header: the outer one of ESP in UDP, or the
	// inner one of the VXLAN datagram.
	UDPHeaderLen = 8
	// Headroom is how many bytes Seal writes in front of the payload: the
	// ESP header and the IV.
	Headroom = HeaderLen + IVLen
	// MaxTailroom is the most Seal writes after the payload: 3 bytes of
	// padding, the trailer and the ICV.
	MaxTailroom = 3 + TrailerLen + ICVLen
	// NextHeaderUDP is the next header of every packet this package seals:
	// the payload is a UDP datagram (transport mode).
	NextHeaderUDP = 17
	// nextHeaderDummy marks a dummy packet (RFC 4303 section 2.6), which a
	// receiver drops silently.
	nextHeaderDummy = 59
	// minPacket is the shortest valid ESP packet: header, IV, an empty
	// payload with its trailer padded to 4 bytes, and the ICV.
	minPacket = HeaderLen + IVLen + 4 + ICVLen
)

// Errors of Seal and Open. Open returns one of the drop errors and counts it
// under the name in Counters.
var (
	ErrNoRoom       = errors.New("esp: seal: buffer too small for header, payload and trailer")
	ErrSeqExhausted = errors.New("esp: seal: sequence numbers of this SA are used up: rotate to a new SA (RFC 4303 section 3.3.3)")
	ErrNotESP       = errors.New("esp: not an ESP packet (NAT keepalive or IKE)")
	ErrShort        = errors.New("esp: packet too short")
	ErrBadLength    = errors.New("esp: encrypted part is not a multiple of 4 bytes")
	ErrUnknownSPI   = errors.New("esp: unknown SPI")
	ErrReplay       = errors.New("esp: replayed or too old sequence number")
	ErrAuthFailed   = errors.New("esp: integrity check failed")
	ErrBadPadding   = errors.New("esp: bad padding")
	ErrBadNext      = errors.New("esp: next header is not UDP")
	ErrDummy        = errors.New("esp: dummy packet")
)

// Config is what defines one SA: the parameters both ends agree on.
type Config struct {
	// SPI identifies the SA at the receiver; 1..255 are reserved and 0
	// marks non-ESP packets (RFC 4303 section 2.1), so it must be 256 or
	// more.
	SPI uint32
	// Key is the AES key: 16, 24 or 32 bytes.
	Key []byte
	// Salt is the 4-byte salt of RFC 4106 section 4.
	Salt [SaltLen]byte
	// Src and Dst are the underlay addresses of the sender and the
	// receiver. Seal and Open do not look at them; the tools print them
	// and the caller may check a packet's source against Src.
	Src, Dst netip.Addr
}

// SA is one security association: one direction between two hosts, with
// its cipher, its sequence counter (sending) and its replay window
// (receiving). A host uses an SA either to send or to receive.
//
// Create one with NewSA; the zero value is not usable. Seal, and Table.Open
// on an SA in the table, may be called from several goroutines at once.
type SA struct {
	cfg    Config
	aead   cipher.AEAD
	seq    atomic.Uint64 // the last sequence number given out by Seal
	limit  atomic.Uint64 // the largest sequence number Seal may use; 0 = 2^32-1 (SetLimit)
	window window
}

// NewSA checks c and returns an SA with its sequence counter at 0 and an
// empty replay window. It copies c.Key.
func NewSA(c Config) (*SA, error) {
	if c.SPI < 256 {
		return nil, fmt.Errorf("esp: new SA: SPI %d is reserved (RFC 4303 section 2.1): use 256 or more", c.SPI)
	}
	switch len(c.Key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("esp: new SA %#x: key of %d bytes: AES-GCM needs 16, 24 or 32", c.SPI, len(c.Key))
	}
	c.Key = append([]byte(nil), c.Key...)
	block, err := aes.NewCipher(c.Key)
	if err != nil {
		return nil, fmt.Errorf("esp: new SA %#x: %w", c.SPI, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("esp: new SA %#x: %w", c.SPI, err)
	}
	return &SA{cfg: c, aead: aead}, nil
}

// SPI returns the SA's SPI.
func (sa *SA) SPI() uint32 { return sa.cfg.SPI }

// Src returns the underlay address of the SA's sender.
func (sa *SA) Src() netip.Addr { return sa.cfg.Src }

// Dst returns the underlay address of the SA's receiver.
func (sa *SA) Dst() netip.Addr { return sa.cfg.Dst }

// Config returns a copy of the parameters the SA was made from, key
// included (for the tools that export SAs).
func (sa *SA) Config() Config {
	c := sa.cfg
	c.Key = append([]byte(nil), c.Key...)
	return c
}

// StartAfter makes Seal continue after sequence number seq if it has not
// gone beyond it. An SA whose keys outlive the process (the static SAs of
// kernel peers) must never reuse a sequence number, which is also its
// AES-GCM IV: its owner keeps a floor on disk and starts after it.
func (sa *SA) StartAfter(seq uint64) {
	for {
		cur := sa.seq.Load()
		if cur >= seq || sa.seq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// SetLimit makes Seal refuse sequence numbers above max with
// ErrSeqExhausted: the owner of an SA with lasting keys raises it as it
// records larger floors on disk. 0 means no limit but 2^32-1.
func (sa *SA) SetLimit(max uint64) { sa.limit.Store(max) }

// Sent returns how many sequence numbers Seal has used. The control plane
// rotates the SA well before it reaches 2^32-1.
func (sa *SA) Sent() uint64 {
	return min(sa.seq.Load(), math.MaxUint32)
}

// PadLen returns the padding Seal adds after a payload of n bytes so that
// payload, padding and trailer end on a 4-byte boundary (RFC 4303 section
// 2.4).
func PadLen(n int) int {
	return (4 - (n+TrailerLen)%4) % 4
}

// SealedLen returns the length of the ESP packet Seal makes from a payload
// of n bytes: Headroom + n + padding + trailer + ICV.
func SealedLen(n int) int {
	return Headroom + n + PadLen(n) + TrailerLen + ICVLen
}

// Seal turns buf into an ESP packet in place. The payload, the inner UDP
// datagram of n bytes, must already sit at buf[Headroom:Headroom+n]; Seal
// writes the ESP header and IV in front of it, encrypts it, appends padding,
// trailer and ICV, and returns buf[:SealedLen(n)], the UDP payload to send
// to port 4500. len(buf) must be at least SealedLen(n) (Headroom + n +
// MaxTailroom always suffices). Seal does not allocate.
//
// Each call takes the next sequence number. Send packets soon after
// sealing them and in about that order: a receiver drops a packet that
// arrives after WindowSize packets sealed later than it (too old). After
// 2^32-1 packets Seal returns ErrSeqExhausted and sends nothing more with
// this SA (RFC 4303 section 3.3.3, without ESN).
func (sa *SA) Seal(buf []byte, n int) ([]byte, error) {
	return sa.seal(buf, n, NextHeaderUDP)
}

func (sa *SA) seal(buf []byte, n int, next byte) ([]byte, error) {
	pad := PadLen(n)
	total := SealedLen(n)
	if n < 0 || len(buf) < total {
		return nil, ErrNoRoom
	}
	seq := sa.seq.Add(1)
	if l := sa.limit.Load(); seq > math.MaxUint32 || (l != 0 && seq > l) {
		return nil, ErrSeqExhausted
	}
	binary.BigEndian.PutUint32(buf[0:4], sa.cfg.SPI)
	binary.BigEndian.PutUint32(buf[4:8], uint32(seq))
	binary.BigEndian.PutUint64(buf[8:16], seq)
	p := Headroom + n
	for i := 1; i <= pad; i++ {
		buf[p] = byte(i)
		p++
	}
	buf[p] = byte(pad)
	buf[p+1] = next
	plain := buf[Headroom : p+TrailerLen]

	nonce := sa.nonce(buf[HeaderLen:Headroom])
	sa.aead.Seal(plain[:0], nonce[:], plain, buf[0:HeaderLen])
	nonces.Put(nonce)
	return buf[:total], nil
}

// open verifies and decrypts pkt in place (the SPI has been looked up) and
// returns the payload.
func (sa *SA) open(pkt []byte) ([]byte, error) {
	seq := binary.BigEndian.Uint32(pkt[4:8])
	if !sa.window.check(seq) {
		return nil, ErrReplay
	}
	nonce := sa.nonce(pkt[HeaderLen:Headroom])
	sealed := pkt[Headroom:]
	plain, err := sa.aead.Open(sealed[:0], nonce[:], sealed, pkt[:HeaderLen])
	nonces.Put(nonce)
	if err != nil {
		return nil, ErrAuthFailed
	}
	if !sa.window.accept(seq) {
		return nil, ErrReplay
	}
	next := plain[len(plain)-1]
	pad := int(plain[len(plain)-2])
	end := len(plain) - TrailerLen - pad
	if end < 0 {
		return nil, ErrBadPadding
	}
	for i := 0; i < pad; i++ {
		if plain[end+i] != byte(i+1) {
			return nil, ErrBadPadding
		}
	}
	switch next {
	case NextHeaderUDP:
		return plain[:end], nil
	case nextHeaderDummy:
		return nil, ErrDummy
	default:
		return nil, ErrBadNext
	}
}

// nonces holds 12-byte nonce buffers. A nonce passed to the cipher.AEAD
// interface escapes to the heap, so a local array would cost an allocation
// per packet; the pool makes Seal and Open allocation-free and keeps them
// safe for concurrent use.
var nonces = sync.Pool{New: func() any { return new([12]byte) }}

// nonce returns a pooled buffer holding salt || iv (RFC 4106 section 4).
// The caller puts it back into nonces.
func (sa *SA) nonce(iv []byte) *[12]byte {
	n := nonces.Get().(*[12]byte)
	copy(n[:SaltLen], sa.cfg.Salt[:])
	copy(n[SaltLen:], iv)
	return n
}

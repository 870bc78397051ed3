package esp

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Host is one end of a host pair as the key derivation sees it: its
// underlay address and its current X25519 public key (RFC 7748), which the
// control plane replicates. Nothing secret is replicated.
type Host struct {
	Addr netip.Addr
	Key  *ecdh.PublicKey
}

// DeriveConfig returns the configuration of the SA that carries packets
// from host from to host to, with the given SPI. own is the private key of
// the calling host, which must be from or to; the two hosts compute the
// same Config, each with its own private key, from an X25519 agreement
// between their keys and HKDF-SHA256 (RFC 5869) over both public keys,
// both addresses and the SPI, so each direction, each SPI and each new key
// pair gives an unrelated 32-byte AES key and salt. A third host, even one
// holding every public key, cannot compute it.
func DeriveConfig(own *ecdh.PrivateKey, from, to Host, spi uint32) (Config, error) {
	if from.Key == nil || to.Key == nil || own == nil {
		return Config{}, fmt.Errorf("esp: derive SA %#x: a key is missing", spi)
	}
	if from.Key.Curve() != ecdh.X25519() || to.Key.Curve() != ecdh.X25519() || own.Curve() != ecdh.X25519() {
		return Config{}, fmt.Errorf("esp: derive SA %#x: keys must be X25519", spi)
	}
	var peer *ecdh.PublicKey
	switch {
	case own.PublicKey().Equal(from.Key):
		peer = to.Key
	case own.PublicKey().Equal(to.Key):
		peer = from.Key
	default:
		return Config{}, fmt.Errorf("esp: derive SA %#x from %v to %v: the private key belongs to neither host", spi, from.Addr, to.Addr)
	}
	shared, err := own.ECDH(peer)
	if err != nil {
		return Config{}, fmt.Errorf("esp: derive SA %#x: %w", spi, err)
	}
	info := []byte("vxswitch esp v1")
	info = append(info, from.Key.Bytes()...)
	info = append(info, to.Key.Bytes()...)
	info = append(info, from.Addr.AsSlice()...)
	info = append(info, to.Addr.AsSlice()...)
	info = binary.BigEndian.AppendUint32(info, spi)
	material, err := hkdf.Key(sha256.New, shared, nil, string(info), 32+SaltLen)
	if err != nil {
		return Config{}, fmt.Errorf("esp: derive SA %#x: %w", spi, err)
	}
	c := Config{SPI: spi, Key: material[:32], Src: from.Addr, Dst: to.Addr}
	copy(c.Salt[:], material[32:])
	return c, nil
}

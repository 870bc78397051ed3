package esp

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"
)

// ExternalSAs derives the two SAs between a vxswitch host and an external
// (kernel) VTEP: out goes from host to peer, in from peer to host. own is
// the private key of either end: the host's static key on the host, the
// peer's key where 'vtep xfrm' prints the peer's commands; both ends get
// the same SAs (DeriveConfig). index is the host's raftstore.HostKey.Index.
//
// SPIs: out is index<<12 | 1, unique among the peer's inbound SAs (one
// index per host); in is taken from the peer's public key with the low 12
// bits 0, unique among the host's inbound SAs as long as no two peers'
// keys share their first 20 bits (the pair SAs between hosts never use
// generation 0 or 1: key epochs start at 1).
func ExternalSAs(own *ecdh.PrivateKey, host, peer Host, index uint32) (out, in Config, err error) {
	if peer.Key == nil {
		return Config{}, Config{}, fmt.Errorf("esp: external SAs with %v: the peer has no key", peer.Addr)
	}
	out, err = DeriveConfig(own, host, peer, index<<12|1)
	if err != nil {
		return Config{}, Config{}, err
	}
	in, err = DeriveConfig(own, peer, host, ExternalSPI(peer.Key))
	return out, in, err
}

// ExternalSPI returns the SPI of the SAs an external peer with public key
// pub sends with: the first 20 bits of the key, shifted left by 12, at
// least 1<<12.
func ExternalSPI(pub *ecdh.PublicKey) uint32 {
	spi := binary.BigEndian.Uint32(pub.Bytes()[:4]) &^ 0xfff
	return max(spi, 1<<12)
}

package raftstore

import (
	"crypto/ecdh"
	"encoding/hex"
	"errors"
	"fmt"
)

// Keys of encrypted networks (issue 15). Every host makes its own X25519
// key pair (RFC 7748) and publishes only the public half with host.key;
// the SA from host A to host B is derived on A and on B from A's and B's
// keys (esp.DeriveConfig), so nothing secret is ever replicated and a host
// that is removed never knew the keys of any other pair. A new key of
// either host gives the pair new SAs: host.key is how a host rotates.

// HostKey is a host's current public key for encrypted networks. A
// *HostKey in a State is immutable: it is replaced, never modified.
type HostKey struct {
	// Public is the 32-byte X25519 public key.
	Public []byte
	// Epoch counts the host's keys: 1 for its first, one more for each
	// new one. The FSM sets it.
	Epoch uint32
	// ActiveAt (unix nanoseconds) is when peers switch to sending with the
	// SAs of this key; until then they keep the previous ones, and they
	// accept both from the moment they apply the key.
	ActiveAt int64
	// Index is the host's number in the SPIs of the SAs it sends with: set
	// by the FSM at the host's first key to one more than the largest of
	// the members, and kept across its later keys.
	Index uint32
}

// MaxESPIndex is the largest HostKey.Index: SPIs hold it in 20 bits.
const MaxESPIndex = 1<<20 - 1

// ESPPublicKey returns h's public key as an X25519 key, or nil if it has
// none.
func (h Host) ESPPublicKey() *ecdh.PublicKey {
	if h.ESP == nil {
		return nil
	}
	k, err := ecdh.X25519().NewPublicKey(h.ESP.Public)
	if err != nil {
		return nil
	}
	return k
}

func hostKey(st *State, cmd Command) (*Result, error) {
	if cmd.Host == nil || cmd.Host.ESP == nil {
		return nil, errors.New("host.key needs a Host with its name and ESP key")
	}
	h, ok := st.Hosts[cmd.Host.Name]
	if !ok {
		return nil, fmt.Errorf("host.key: host %q is not a member: join it first", cmd.Host.Name)
	}
	k := *cmd.Host.ESP
	if _, err := ecdh.X25519().NewPublicKey(k.Public); err != nil {
		return nil, fmt.Errorf("host.key: host %s: the public key is %d bytes: give a 32-byte X25519 public key", h.Name, len(k.Public))
	}
	if k.ActiveAt < 0 {
		return nil, fmt.Errorf("host.key: host %s: activation time %d is negative: give unix nanoseconds", h.Name, k.ActiveAt)
	}
	k.Public = append([]byte(nil), k.Public...)
	if cmd.Host.ESPStatic != "" {
		if err := checkX25519Hex(cmd.Host.ESPStatic); err != nil {
			return nil, fmt.Errorf("host.key: host %s: static key: %w", h.Name, err)
		}
		h.ESPStatic = cmd.Host.ESPStatic
	}
	if h.ESP != nil {
		k.Epoch = h.ESP.Epoch + 1
		k.Index = h.ESP.Index
	} else {
		k.Epoch, k.Index = 1, 0
		for _, o := range st.Hosts {
			if o.ESP != nil && o.ESP.Index > k.Index {
				k.Index = o.ESP.Index
			}
		}
		k.Index++
		if k.Index > MaxESPIndex {
			return nil, fmt.Errorf("host.key: host %s: no ESP index left (%d in use): remove hosts that left", h.Name, MaxESPIndex)
		}
	}
	h.ESP = &k
	st.Hosts[h.Name] = h
	return &Result{Host: &h}, nil
}

// checkX25519Hex checks that s is a hex 32-byte X25519 public key.
func checkX25519Hex(s string) error {
	b, err := hex.DecodeString(s)
	if err == nil {
		_, err = ecdh.X25519().NewPublicKey(b)
	}
	if err != nil {
		return fmt.Errorf("public key %q is not 64 hex digits of an X25519 key", s)
	}
	return nil
}

// ESPStaticKey returns h's static public key (ESPStatic), or nil if it has
// none.
func (h Host) ESPStaticKey() *ecdh.PublicKey { return parseX25519Hex(h.ESPStatic) }

// ESPKey returns the peer's public key (ESP), or nil if it has none.
func (v VTEP) ESPKey() *ecdh.PublicKey { return parseX25519Hex(v.ESP) }

func parseX25519Hex(s string) *ecdh.PublicKey {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	k, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return nil
	}
	return k
}

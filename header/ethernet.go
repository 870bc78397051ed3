package header

import "encoding/binary"

// EtherType values (IEEE registry) that vxswitch looks at.
const (
	EtherTypeIPv4 = 0x0800 // RFC 894
	EtherTypeARP  = 0x0806 // RFC 826
	EtherTypeIPv6 = 0x86dd // RFC 2464
	EtherTypeVLAN = 0x8100 // IEEE 802.1Q customer tag (C-tag)
	EtherTypeQinQ = 0x88a8 // IEEE 802.1ad service tag (S-tag)
)

// Ethernet header lengths.
const (
	// EthernetLen is the length of an untagged Ethernet header: two
	// addresses and the EtherType.
	EthernetLen = 14
	// VLANTagLen is the length of one 802.1Q tag: TPID and TCI.
	VLANTagLen = 4
)

// IsVLANTPID reports whether etherType is a tag protocol identifier: the
// 802.1Q C-tag 0x8100 or the 802.1ad S-tag 0x88a8.
func IsVLANTPID(etherType uint16) bool {
	return etherType == EtherTypeVLAN || etherType == EtherTypeQinQ
}

// Ethernet is an Ethernet II header (RFC 894 for IPv4 over it; the layout
// is IEEE 802.3 clause 3 with the 802.1Q tag of IEEE 802.1Q clause 9)
// viewed in place over the start of a frame:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination MAC address                      |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                    Source MAC address                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   EtherType, or TPID 0x8100   |  (tagged only) PCP|D|  VID    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  (tagged only) EtherType      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Only one 802.1Q tag (TPID 0x8100) is stepped over; a second tag, or an
// 802.1ad S-tag in the first position, shows as a Type that IsVLANTPID
// reports, which Stacked tells in one call.
//
// Every accessor assumes IsValid: it panics on a shorter slice. A nil
// Ethernet is not valid. The view has no locking: the caller owns the
// bytes.
type Ethernet []byte

// IsValid reports whether e holds a whole Ethernet header: EthernetLen
// bytes, and VLANTagLen more when the EtherType field holds the 802.1Q
// TPID.
func (e Ethernet) IsValid() bool {
	if len(e) < EthernetLen {
		return false
	}
	return !e.Tagged() || len(e) >= EthernetLen+VLANTagLen
}

// Destination returns the destination address (bytes 0-5).
func (e Ethernet) Destination() MAC { return MAC(e[0:6]) }

// Source returns the source address (bytes 6-11).
func (e Ethernet) Source() MAC { return MAC(e[6:12]) }

// SetDestination stores m as the destination address.
func (e Ethernet) SetDestination(m MAC) { copy(e[0:6], m[:]) }

// SetSource stores m as the source address.
func (e Ethernet) SetSource(m MAC) { copy(e[6:12], m[:]) }

// OuterType returns the EtherType field at bytes 12-13 as it is: the
// network protocol of an untagged frame, the TPID of a tagged one. It needs
// only EthernetLen bytes.
func (e Ethernet) OuterType() uint16 { return binary.BigEndian.Uint16(e[12:14]) }

// SetOuterType stores t in the EtherType field at bytes 12-13.
func (e Ethernet) SetOuterType(t uint16) { binary.BigEndian.PutUint16(e[12:14], t) }

// Tagged reports whether the frame carries an 802.1Q tag: its EtherType
// field holds 0x8100. It needs only EthernetLen bytes.
func (e Ethernet) Tagged() bool { return e.OuterType() == EtherTypeVLAN }

// HeaderLen returns the length of the header: EthernetLen, or EthernetLen
// plus VLANTagLen for a tagged frame. The network-layer packet starts
// there.
func (e Ethernet) HeaderLen() int {
	if e.Tagged() {
		return EthernetLen + VLANTagLen
	}
	return EthernetLen
}

// Type returns the EtherType of the payload: the field after the 802.1Q
// tag of a tagged frame, the outer field otherwise.
func (e Ethernet) Type() uint16 {
	return binary.BigEndian.Uint16(e[e.HeaderLen()-2:])
}

// SetType stores t as the EtherType of the payload (after the tag of a
// tagged frame).
func (e Ethernet) SetType(t uint16) {
	binary.BigEndian.PutUint16(e[e.HeaderLen()-2:], t)
}

// VLAN returns the 12-bit VLAN identifier of a tagged frame, or 0 for an
// untagged one.
func (e Ethernet) VLAN() uint16 {
	return e.TCI() & 0x0fff
}

// TCI returns the tag control information of a tagged frame (priority,
// drop eligible bit and VLAN identifier), or 0 for an untagged one.
func (e Ethernet) TCI() uint16 {
	if !e.Tagged() {
		return 0
	}
	return binary.BigEndian.Uint16(e[14:16])
}

// SetTCI stores the tag control information of a tagged frame; it assumes
// Tagged.
func (e Ethernet) SetTCI(tci uint16) { binary.BigEndian.PutUint16(e[14:16], tci) }

// Stacked reports whether the payload type is itself a VLAN tag: a second
// tag behind the 802.1Q one, or an 802.1ad S-tag in the first position
// (which is not stepped over). vxswitch forwards neither.
func (e Ethernet) Stacked() bool { return IsVLANTPID(e.Type()) }

// Payload returns the bytes after the header (network-layer packet and any
// Ethernet padding).
func (e Ethernet) Payload() []byte { return e[e.HeaderLen():] }

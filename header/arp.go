package header

import (
	"encoding/binary"
	"net/netip"
)

// ARP values (RFC 826; numbers from the IANA ARP registry).
const (
	// ARPLen is the length of an ARP packet for IPv4 over Ethernet.
	ARPLen = 28
	// ARPHardwareEthernet is the hardware type of Ethernet.
	ARPHardwareEthernet = 1
	// ARPRequest and ARPReply are the operation codes.
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is an ARP packet for IPv4 over Ethernet (RFC 826, "Packet format")
// viewed in place over the payload of an Ethernet frame:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Hardware type (1)           |   Protocol type (0x0800)      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| HW len (6)    | Proto len (4) |   Operation (1 req, 2 reply)  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Sender hardware address (6 bytes)                  |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               | Sender protocol address       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|   (4 bytes)                   | Target hardware address       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|            (6 bytes)                                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Target protocol address (4 bytes)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The fixed fields (bytes 0-7) can be read on any ARPLen-byte slice; the
// address accessors assume the Ethernet/IPv4 sizes that IsValid checks.
// Every accessor panics on a slice shorter than ARPLen. A nil ARP is not
// valid. The view has no locking: the caller owns the bytes.
type ARP []byte

// IsValid reports whether a is at least ARPLen bytes of ARP for IPv4 over
// Ethernet: hardware type 1, protocol type 0x0800, sizes 6 and 4.
func (a ARP) IsValid() bool {
	return len(a) >= ARPLen && a.HardwareType() == ARPHardwareEthernet && a.HasIPv4Sizes()
}

// HasIPv4Sizes reports whether the protocol type is IPv4 and the address
// sizes are 6 and 4, whatever the hardware type. It assumes ARPLen bytes.
func (a ARP) HasIPv4Sizes() bool {
	return a.ProtocolType() == EtherTypeIPv4 && a.HardwareLen() == 6 && a.ProtocolLen() == 4
}

// HardwareType returns the hardware type (1 for Ethernet).
func (a ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(a[0:2]) }

// ProtocolType returns the protocol type, an EtherType.
func (a ARP) ProtocolType() uint16 { return binary.BigEndian.Uint16(a[2:4]) }

// HardwareLen returns the length of a hardware address.
func (a ARP) HardwareLen() uint8 { return a[4] }

// ProtocolLen returns the length of a protocol address.
func (a ARP) ProtocolLen() uint8 { return a[5] }

// Op returns the operation: ARPRequest or ARPReply.
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:8]) }

// SenderMAC returns the sender hardware address.
func (a ARP) SenderMAC() MAC { return MAC(a[8:14]) }

// SenderIP returns the sender protocol address.
func (a ARP) SenderIP() netip.Addr { return netip.AddrFrom4([4]byte(a[14:18])) }

// TargetMAC returns the target hardware address.
func (a ARP) TargetMAC() MAC { return MAC(a[18:24]) }

// TargetIP returns the target protocol address.
func (a ARP) TargetIP() netip.Addr { return netip.AddrFrom4([4]byte(a[24:28])) }

// Encode writes a whole Ethernet/IPv4 ARP packet into a[:ARPLen]: the fixed
// fields for Ethernet and IPv4, op, and the four addresses. spa and tpa
// must be IPv4 addresses.
func (a ARP) Encode(op uint16, sha MAC, spa netip.Addr, tha MAC, tpa netip.Addr) {
	binary.BigEndian.PutUint16(a[0:2], ARPHardwareEthernet)
	binary.BigEndian.PutUint16(a[2:4], EtherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], op)
	s4, t4 := spa.As4(), tpa.As4()
	copy(a[8:14], sha[:])
	copy(a[14:18], s4[:])
	copy(a[18:24], tha[:])
	copy(a[24:28], t4[:])
}

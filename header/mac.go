package header

import (
	"fmt"
	"net"
)

// MAC is an IEEE 802 MAC-48 Ethernet address. It is a comparable value type
// (usable as a map key), like netip.Addr. The zero value is the all-zero
// address 00:00:00:00:00:00, which IsZero reports. Convert six bytes of a
// frame with MAC(b[0:6]); that copies them and never allocates.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ParseMAC parses a MAC-48 address such as "02:00:5e:10:00:01" (colons,
// dashes or dotted Cisco form, as net.ParseMAC accepts). Longer addresses
// (EUI-64, InfiniBand) are refused.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, fmt.Errorf("parse MAC %q: %w", s, err)
	}
	if len(hw) != 6 {
		return MAC{}, fmt.Errorf("parse MAC %q: %d bytes, want a 6-byte address like 02:00:00:00:00:01", s, len(hw))
	}
	return MAC(hw), nil
}

// String returns the address in lower-case colon form, "02:00:5e:10:00:01".
func (m MAC) String() string {
	return net.HardwareAddr(m[:]).String()
}

// MarshalText implements encoding.TextMarshaler with the String form.
func (m MAC) MarshalText() ([]byte, error) {
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler; it accepts what ParseMAC
// accepts. An empty text gives the zero MAC.
func (m *MAC) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*m = MAC{}
		return nil
	}
	v, err := ParseMAC(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == BroadcastMAC }

// IsMulticast reports whether m is a group address (the I/G bit, the lowest
// bit of the first byte, is set). The broadcast address is multicast too.
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

package vswitch

import (
	"fmt"

	"vxswitch/header"
)

// MAC is an IEEE 802 MAC-48 Ethernet address: header.MAC, a comparable
// value type whose zero value is 00:00:00:00:00:00.
type MAC = header.MAC

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = header.BroadcastMAC

// ParseMAC parses a MAC-48 address such as "02:00:5e:10:00:01" (colons,
// dashes or dotted Cisco form, as net.ParseMAC accepts); see
// header.ParseMAC.
func ParseMAC(s string) (MAC, error) {
	m, err := header.ParseMAC(s)
	if err != nil {
		return MAC{}, fmt.Errorf("vswitch: %w", err)
	}
	return m, nil
}

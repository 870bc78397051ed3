package agent

import (
	"fmt"
	"net"
	"net/netip"
)

// underlayMTU returns the MTU of the interface that holds addr and says
// where it came from. A non-zero override wins.
func underlayMTU(addr netip.Addr, override int) (int, string, error) {
	if override != 0 {
		if override < 576+50 || override > 65535 {
			return 0, "", fmt.Errorf("agent: --underlay-mtu %d is out of range: give the underlay interface's MTU, 626..65535", override)
		}
		return override, "--underlay-mtu", nil
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return 0, "", fmt.Errorf("agent: list interfaces to find the underlay MTU: %w", err)
	}
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap() == addr {
				return ifc.MTU, "interface " + ifc.Name, nil
			}
		}
	}
	return 0, "", fmt.Errorf("agent: no interface of this host has the address %s: --advertise must be one of this host's underlay addresses", addr)
}

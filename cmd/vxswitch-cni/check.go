package main

import (
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vxswitch/api"
)

// checkInterface verifies that the netns at path has ep's interface, up,
// with ep's MAC and address.
func checkInterface(path string, ep api.Endpoint) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", path, err)
	}
	defer h.Close()
	link, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("interface %s in netns %s: %w", ep.IfName, path, err)
	}
	if got := link.Attrs().HardwareAddr.String(); !strings.EqualFold(got, ep.MAC) {
		return fmt.Errorf("interface %s has MAC %s, the cluster records %s", ep.IfName, got, ep.MAC)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", ep.IfName, err)
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if a.IP.Equal(ep.IP.AsSlice()) && ones == ep.Prefix {
			return nil
		}
	}
	return fmt.Errorf("interface %s lacks address %s/%d", ep.IfName, ep.IP, ep.Prefix)
}

package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vxswitch/api"
)

// checkInterface verifies that the netns at path has ep's interface, up,
// with ep's MAC and its address of each family.
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
	for _, want := range []netip.Prefix{prefix(ep.IP, ep.Prefix), prefix(ep.IP6, ep.Prefix6)} {
		if !want.IsValid() {
			continue
		}
		if !hasAddr(addrs, want) {
			return fmt.Errorf("interface %s lacks address %s", ep.IfName, want)
		}
	}
	return nil
}

// prefix is ip/bits, or the zero Prefix if ip is not valid (a family the
// endpoint does not have).
func prefix(ip netip.Addr, bits int) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(ip, bits)
}

// hasAddr reports whether addrs holds want with its prefix length.
func hasAddr(addrs []netlink.Addr, want netip.Prefix) bool {
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if a.IP.Equal(want.Addr().AsSlice()) && ones == want.Bits() {
			return true
		}
	}
	return false
}

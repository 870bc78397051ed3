package main

import (
	"fmt"
	"net/netip"
	"strings"

	"vxswitch/api"
)

// splitSubnets sorts the --subnet values of 'network create NAME' by
// family: a network has one subnet of each family it carries (IPv4,
// IPv6 or both). The server checks each prefix; this only says which is which.
func splitSubnets(name string, subnets []string) (v4, v6 string, err error) {
	if len(subnets) == 0 {
		return "", "", fmt.Errorf("--subnet is required: for example 'vxswitch network create %s --subnet 10.20.0.0/24', and '--subnet fd20::/64' besides for a dual-stack network", name)
	}
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", "", fmt.Errorf("--subnet %q is not a prefix: write it like 10.20.0.0/24 or fd20::/64", s)
		}
		slot, family := &v4, "IPv4"
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			slot, family = &v6, "IPv6"
		}
		if *slot != "" {
			return "", "", fmt.Errorf("--subnet %s and %s are both %s: give at most one subnet of each family", *slot, s, family)
		}
		*slot = s
	}
	return v4, v6, nil
}

// netSubnets returns the subnets of n for a table: "10.20.0.0/24",
// "10.20.0.0/24,fd20::/64" or "fd20::/64".
func netSubnets(n api.Network) string {
	return joinValid(n.Subnet, n.Subnet6)
}

// netResolvers returns the resolver addresses of n for a table.
func netResolvers(n api.Network) string {
	return joinValid(n.Resolver, n.Resolver6)
}

// epAddrs returns the addresses of e with their prefix lengths:
// "10.20.0.2/24", "10.20.0.2/24,fd20::2/64" or "fd20::2/64".
func epAddrs(e api.Endpoint) string {
	var p4, p6 netip.Prefix
	if e.IP.IsValid() {
		p4 = netip.PrefixFrom(e.IP, e.Prefix)
	}
	if e.IP6.IsValid() {
		p6 = netip.PrefixFrom(e.IP6, e.Prefix6)
	}
	return joinValid(p4, p6)
}

// joinValid joins the valid values of a (an address or a prefix of each
// family) with ",".
func joinValid[T interface {
	IsValid() bool
	String() string
}](a ...T) string {
	var out []string
	for _, v := range a {
		if v.IsValid() {
			out = append(out, v.String())
		}
	}
	return strings.Join(out, ",")
}

// epIP returns an address of an endpoint for a table, "-" without one
// (the IPv4 address on an IPv6-only network, the IPv6 one on an IPv4-only
// network).
func epIP(ip netip.Addr) string {
	if !ip.IsValid() {
		return "-"
	}
	return ip.String()
}

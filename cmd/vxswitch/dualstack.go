package main

import (
	"fmt"
	"net/netip"

	"vxswitch/api"
)

// splitSubnets sorts the --subnet values of 'network create NAME' by
// family: a network has one IPv4 subnet and, when dual-stack, one IPv6
// subnet. The server checks each prefix; this only says which is which.
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
	if v4 == "" {
		return "", "", fmt.Errorf("--subnet %s alone: IPv6-only networks are not supported; add an IPv4 --subnet such as 10.20.0.0/24 for a dual-stack network", v6)
	}
	return v4, v6, nil
}

// netSubnets returns the subnets of n for a table: "10.20.0.0/24" or
// "10.20.0.0/24,fd20::/64".
func netSubnets(n api.Network) string {
	if n.Subnet6.IsValid() {
		return n.Subnet.String() + "," + n.Subnet6.String()
	}
	return n.Subnet.String()
}

// netResolvers returns the resolver addresses of n for a table.
func netResolvers(n api.Network) string {
	if n.Resolver6.IsValid() {
		return n.Resolver.String() + "," + n.Resolver6.String()
	}
	return n.Resolver.String()
}

// epAddrs returns the addresses of e with their prefix lengths:
// "10.20.0.2/24" or "10.20.0.2/24,fd20::2/64".
func epAddrs(e api.Endpoint) string {
	s := fmt.Sprintf("%s/%d", e.IP, e.Prefix)
	if e.IP6.IsValid() {
		s += fmt.Sprintf(",%s/%d", e.IP6, e.Prefix6)
	}
	return s
}

// epIP6 returns the IPv6 address of e for a table, "-" without one.
func epIP6(e api.Endpoint) string {
	if !e.IP6.IsValid() {
		return "-"
	}
	return e.IP6.String()
}

package raftstore

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
)

// This file holds the rules for names and subnets, each in one place: the
// state machine applies them, and the agent's API, the CLI and the Docker
// plugin call the same functions to refuse bad input early. Host names
// follow pki.CheckName (a host's name is in its certificate); the VNI range
// is MaxVNI.

// CurrentRules is the version of the rules that Store.Apply stamps on every
// new command (Command.Rules). Rules only tighten between versions: a command
// is checked under the version it carries, so an entry written to the
// Raft log before a rule tightened still applies as it did then, on every
// host and on every replay.
//
//   - 0: commands written before the rules had versions.
//   - 1: a new endpoint's name is a DNS label (CheckEndpointName), not
//     merely a name (IsName).
const CurrentRules = 1

var (
	// nameRE is the form of network and alias names, and of endpoint
	// names under rules 0.
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	// endpointNameRE is a DNS label: RFC 1035 section 2.3.1, with the
	// leading digit RFC 1123 section 2.1 allows.
	endpointNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// IsName reports whether s is a valid network or alias name: 1-63
// lower-case letters, digits, '_', '.' or '-', starting with a letter or
// digit. Endpoint names follow the stricter CheckEndpointName.
func IsName(s string) bool { return nameRE.MatchString(s) }

// checkName returns an error unless name is a valid network or alias name
// (IsName); kind names what it is in the error.
func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty: give it a name such as web-1", kind)
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s name %q is invalid: use 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", kind, name)
	}
	return nil
}

// CheckEndpointName returns an error unless name can be the name of a new
// endpoint: a DNS label of 1-63 lower-case letters, digits and '-',
// starting and ending with a letter or digit, since the endpoint's name is
// its DNS name in the network. The error names the problem and the fix.
func CheckEndpointName(name string) error {
	if name == "" {
		return errors.New("endpoint name is empty: give it a name such as web-1")
	}
	if !endpointNameRE.MatchString(name) {
		return fmt.Errorf("endpoint name %q is invalid: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit, like web-1 (it becomes a DNS name)", name)
	}
	return nil
}

// checkEndpointName is CheckEndpointName under the rules of version
// rules: before version 1 an endpoint name only had to be a name
// (IsName), and old log entries must still apply as they did.
func checkEndpointName(rules int, name string) error {
	if rules < 1 {
		return checkName("endpoint", name)
	}
	return CheckEndpointName(name)
}

// Subnet size limits of an IPv4 network.
const (
	MinPrefixBits = 8  // the largest subnet is a /8
	MaxPrefixBits = 29 // the smallest subnet is a /29: 5 endpoint addresses
)

// ParseSubnet parses s, a prefix like 10.20.0.0/24, and checks it with
// CheckSubnet.
func ParseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %q is not a prefix: write it like 10.20.0.0/24", s)
	}
	return p, CheckSubnet(p)
}

// CheckSubnet returns an error unless p can be the subnet of a new network:
// a prefix of a family vxswitch networks carry (subnetLimits), of a length
// within the limits of that family, without host bits set. The error
// names the problem and the fix. Whether p overlaps an existing network is
// OverlappingNetwork's question.
func CheckSubnet(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("subnet is missing or invalid: give an IPv4 prefix such as 10.20.0.0/24")
	}
	minBits, maxBits, err := subnetLimits(p)
	if err != nil {
		return err
	}
	if p.Bits() < minBits || p.Bits() > maxBits {
		return fmt.Errorf("subnet %s has prefix length /%d: use a length between /%d and /%d", p, p.Bits(), minBits, maxBits)
	}
	if m := p.Masked(); m != p {
		return fmt.Errorf("subnet %s has host bits set: use %s", p, m)
	}
	return nil
}

// subnetLimits returns the shortest and longest prefix a network of p's
// address family may have, or an error when networks do not carry that
// family. An IPv6 prefix is refused here: it is a network's Subnet6
// (CheckSubnet6), never its Subnet.
func subnetLimits(p netip.Prefix) (minBits, maxBits int, err error) {
	switch a := p.Addr(); {
	case a.Is4():
		return MinPrefixBits, MaxPrefixBits, nil
	case a.Is4In6():
		return 0, 0, fmt.Errorf("subnet %s is IPv4-mapped IPv6, not IPv4: write it as an IPv4 prefix such as 10.20.0.0/24", p)
	default:
		return 0, 0, fmt.Errorf("subnet %s is not IPv4: a network's subnet is IPv4; give %s as its IPv6 subnet (Subnet6) instead, alone for an IPv6-only network or beside an IPv4 one such as 10.20.0.0/24 for a dual-stack network", p, p)
	}
}

// Subnet size limits of the IPv6 subnet of a dual-stack network.
const (
	MinPrefixBits6 = 32  // the largest IPv6 subnet is a /32
	MaxPrefixBits6 = 120 // the smallest is a /120: 126 endpoint addresses
)

// ParseSubnet6 parses s, a prefix like fd20::/64, and checks it with
// CheckSubnet6.
func ParseSubnet6(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("IPv6 subnet %q is not a prefix: write it like fd20::/64", s)
	}
	return p, CheckSubnet6(p)
}

// CheckSubnet6 returns an error unless p can be the IPv6 subnet of a new
// dual-stack network (Network.Subnet6, beside its IPv4 Subnet): an IPv6
// prefix of /32 to /120 (usually /64) without host bits set, that is not
// link-local, multicast, loopback or unspecified. The error names the
// problem and the fix. Whether p overlaps an existing network is
// OverlappingNetwork's question.
func CheckSubnet6(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return errors.New("IPv6 subnet is invalid: give a prefix such as fd20::/64")
	case !a.Is6() || a.Is4In6():
		return fmt.Errorf("IPv6 subnet %s is not IPv6: give a prefix such as fd20::/64", p)
	case a.Zone() != "":
		return fmt.Errorf("IPv6 subnet %s has a zone: give a prefix without one, such as fd20::/64", p)
	case p.Bits() < MinPrefixBits6 || p.Bits() > MaxPrefixBits6:
		return fmt.Errorf("IPv6 subnet %s has prefix length /%d: use a length between /%d and /%d, usually /64", p, p.Bits(), MinPrefixBits6, MaxPrefixBits6)
	case p.Masked() != p:
		return fmt.Errorf("IPv6 subnet %s has host bits set: use %s", p, p.Masked())
	case a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsLoopback() || a.IsUnspecified():
		return fmt.Errorf("IPv6 subnet %s is not for endpoint addresses (link-local, multicast, loopback or unspecified): use a unique local prefix such as fd20::/64 or a global one", p)
	}
	return nil
}

// OverlappingNetwork returns the network of st with a subnet (IPv4, or
// IPv6 on a dual-stack network) that overlaps p, the first by name if
// several do. New networks must not overlap any: a subnet names one
// network.
func OverlappingNetwork(st *State, p netip.Prefix) (Network, bool) {
	for _, name := range sortedKeys(st.Networks) {
		if n := st.Networks[name]; n.Subnet.Overlaps(p) || n.Subnet6.IsValid() && n.Subnet6.Overlaps(p) {
			return n, true
		}
	}
	return Network{}, false
}

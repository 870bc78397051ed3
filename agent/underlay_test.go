package agent

import (
	"net/netip"
	"strings"
	"testing"
)

func TestWithPort(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.77.0.1", "10.77.0.1:7947"},
		{"10.77.0.1:9000", "10.77.0.1:9000"},
		{"fd77::1", "[fd77::1]:7947"},
		{"[fd77::1]", "[fd77::1]:7947"},
		{"[fd77::1]:9000", "[fd77::1]:9000"},
		{"h1.example", "h1.example:7947"},
	}
	for _, tt := range tests {
		if got := withPort(tt.in, 7947); got != tt.want {
			t.Errorf("withPort(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConfigUnderlayFamily(t *testing.T) {
	base := func(adv string, join ...string) Config {
		c := Config{Name: "h2", Advertise: netip.MustParseAddr(adv), DataDir: "/tmp/x", Join: join}
		c.setDefaults()
		return c
	}
	ok := []Config{
		base("10.77.0.2", "10.77.0.1"),
		base("fd77::2", "fd77::1"),
		base("fd77::2", "[fd77::1]:7947"),
		base("fd77::2", "h1.example"), // a name: checked when the member answers
	}
	for _, c := range ok {
		if err := c.check(); err != nil {
			t.Errorf("advertise %s join %v: %v", c.Advertise, c.Join, err)
		}
	}
	bad := []struct {
		c    Config
		want string
	}{
		{base("fd77::2", "10.77.0.1"), "one underlay family"},
		{base("10.77.0.2", "[fd77::1]:7947"), "one underlay family"},
		{base("fe80::2"), "link-local"},
		{base("::ffff:10.77.0.2"), "IPv4-mapped"},
		{base("::"), "unicast"},
	}
	for _, tt := range bad {
		err := tt.c.check()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("advertise %s join %v: error %v, want one containing %q", tt.c.Advertise, tt.c.Join, err, tt.want)
		}
	}
}

func TestSameFamily(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fd77::1")
	if err := sameFamily(v4, netip.MustParseAddr("10.77.0.9")); err != nil {
		t.Error(err)
	}
	if err := sameFamily(v6, netip.MustParseAddr("fd77::9")); err != nil {
		t.Error(err)
	}
	err := sameFamily(v4, v6)
	if err == nil || !strings.Contains(err.Error(), "fd77::1 is IPv6, but the cluster's underlay is IPv4") {
		t.Errorf("mixed: %v", err)
	}
}

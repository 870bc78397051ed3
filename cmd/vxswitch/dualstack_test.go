package main

import (
	"strings"
	"testing"
)

func TestSplitSubnets(t *testing.T) {
	tests := []struct {
		in     []string
		v4, v6 string
		err    string
	}{
		{in: []string{"10.20.0.0/24"}, v4: "10.20.0.0/24"},
		{in: []string{"10.20.0.0/24", "fd20::/64"}, v4: "10.20.0.0/24", v6: "fd20::/64"},
		{in: []string{"fd20::/64", "10.20.0.0/24"}, v4: "10.20.0.0/24", v6: "fd20::/64"},
		{in: nil, err: "--subnet is required"},
		{in: []string{"fd20::/64"}, v6: "fd20::/64"}, // an IPv6-only network
		{in: []string{"10.20.0.0/24", "10.30.0.0/24"}, err: "both IPv4"},
		{in: []string{"10.20.0.0/24", "fd20::/64", "fd30::/64"}, err: "both IPv6"},
		{in: []string{"10.20.0.0"}, err: "not a prefix"},
		{in: []string{"::ffff:10.20.0.0/120"}, v4: "::ffff:10.20.0.0/120"}, // the server says what is wrong with it
	}
	for _, tt := range tests {
		v4, v6, err := splitSubnets("web", tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || v4 != tt.v4 || v6 != tt.v6 {
			t.Errorf("%q: %q %q %v, want %q %q", tt.in, v4, v6, err, tt.v4, tt.v6)
		}
	}
}

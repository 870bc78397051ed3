package agent

import (
	"errors"
	"net/netip"
	"testing"

	"vxswitch/raftstore"
)

// TestPeerPolicy: a voter may have any command applied but token.use; a
// non-voter only those that touch its own host entry, endpoints and
// learned MACs, and its own removal; it forwards only the joins of hosts
// that are not members.
func TestPeerPolicy(t *testing.T) {
	st := &raftstore.State{
		Hosts: map[string]raftstore.Host{"h1": {Name: "h1"}, "h4": {Name: "h4"}},
		Endpoints: raftstore.NewEndpointMap(map[string]raftstore.Endpoint{
			"c1": {Name: "c1", Host: "h1"},
			"c4": {Name: "c4", Host: "h4"},
		}),
		Reserved: map[string]raftstore.Reservation{
			raftstore.ReservationKey("web", ip("10.0.0.5")): {Network: "web", IP: ip("10.0.0.5"), Host: "h1"},
			raftstore.ReservationKey("web", ip("10.0.0.6")): {Network: "web", IP: ip("10.0.0.6"), Host: "h4"},
		},
	}
	release := func(addr string) raftstore.Command {
		return raftstore.Command{Op: raftstore.OpAddressRelease, Reservation: &raftstore.Reservation{Network: "web", IP: ip(addr)}}
	}
	mac := func(host string) []raftstore.MACEntry {
		return []raftstore.MACEntry{{Network: "web", MAC: "02:00:00:00:00:01", Host: host}}
	}
	for _, tc := range []struct {
		name  string
		voter bool
		cmd   raftstore.Command
		ok    bool
	}{
		{"voter removes a host", true, raftstore.Command{Op: raftstore.OpHostRemove, Name: "h4"}, true},
		{"voter creates a network", true, raftstore.Command{Op: raftstore.OpNetworkCreate}, true},
		{"voter detaches another host's endpoint", true, raftstore.Command{Op: raftstore.OpEndpointDetach, Name: "c1"}, true},
		{"voter uses a token", true, raftstore.Command{Op: raftstore.OpTokenUse}, false},
		{"own host entry", false, raftstore.Command{Op: raftstore.OpHostAdd, Host: &raftstore.Host{Name: "h4"}}, true},
		{"another host's entry", false, raftstore.Command{Op: raftstore.OpHostAdd, Host: &raftstore.Host{Name: "h1"}}, false},
		{"host.add without a host", false, raftstore.Command{Op: raftstore.OpHostAdd}, false},
		{"own ESP key", false, raftstore.Command{Op: raftstore.OpHostKey, Host: &raftstore.Host{Name: "h4"}}, true},
		{"another host's ESP key", false, raftstore.Command{Op: raftstore.OpHostKey, Host: &raftstore.Host{Name: "h1"}}, false},
		{"attach on itself", false, raftstore.Command{Op: raftstore.OpEndpointAttach, Endpoint: &raftstore.Endpoint{Host: "h4"}}, true},
		{"attach on another host", false, raftstore.Command{Op: raftstore.OpEndpointAttach, Endpoint: &raftstore.Endpoint{Host: "h1"}}, false},
		{"detach its own endpoint", false, raftstore.Command{Op: raftstore.OpEndpointDetach, Name: "c4"}, true},
		{"detach a missing endpoint", false, raftstore.Command{Op: raftstore.OpEndpointDetach, Name: "nobody"}, true},
		{"detach another host's endpoint", false, raftstore.Command{Op: raftstore.OpEndpointDetach, Name: "c1"}, false},
		{"update its own endpoint", false, raftstore.Command{Op: raftstore.OpEndpointUpdate, Endpoint: &raftstore.Endpoint{Name: "c4"}}, true},
		{"update another host's endpoint", false, raftstore.Command{Op: raftstore.OpEndpointUpdate, Endpoint: &raftstore.Endpoint{Name: "c1"}}, false},
		{"reserve for itself", false, raftstore.Command{Op: raftstore.OpAddressReserve, Reservation: &raftstore.Reservation{Network: "web", Host: "h4"}}, true},
		{"reserve for another host", false, raftstore.Command{Op: raftstore.OpAddressReserve, Reservation: &raftstore.Reservation{Network: "web", Host: "h1"}}, false},
		{"release its own reservation", false, release("10.0.0.6"), true},
		{"release another host's reservation", false, release("10.0.0.5"), false},
		{"announce its own MACs", false, raftstore.Command{Op: raftstore.OpMACAnnounce, MACs: mac("h4")}, true},
		{"announce another host's MACs", false, raftstore.Command{Op: raftstore.OpMACAnnounce, MACs: mac("h1")}, false},
		{"withdraw another host's MACs", false, raftstore.Command{Op: raftstore.OpMACWithdraw, MACs: append(mac("h4"), mac("h1")...)}, false},
		{"remove a host through apply", false, raftstore.Command{Op: raftstore.OpHostRemove, Name: "h4"}, false},
		{"create a network", false, raftstore.Command{Op: raftstore.OpNetworkCreate}, false},
		{"remove a network", false, raftstore.Command{Op: raftstore.OpNetworkRemove, Name: "web"}, false},
		{"add a VTEP", false, raftstore.Command{Op: raftstore.OpVTEPAdd}, false},
		{"rotate the token", false, raftstore.Command{Op: raftstore.OpTokenRotate}, false},
		{"create a token", false, raftstore.Command{Op: raftstore.OpTokenCreate}, false},
		{"init the cluster", false, raftstore.Command{Op: raftstore.OpClusterInit}, false},
		{"use a token", false, raftstore.Command{Op: raftstore.OpTokenUse}, false},
	} {
		err := peerMayApply(st, "h4", tc.voter, tc.cmd)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want allowed %v", tc.name, err, tc.ok)
		}
		var fb *forbiddenError
		if err != nil && !errors.As(err, &fb) {
			t.Errorf("%s: %T, want a forbiddenError (403)", tc.name, err)
		}
	}
	if peerMayRemove("h4", false, "h4") != nil || peerMayRemove("h4", false, "h1") == nil || peerMayRemove("h2", true, "h1") != nil {
		t.Error("removal: a non-voter may remove itself only, a voter any host")
	}
	const fp = "1111111111111111111111111111111111111111111111111111111111111111"
	for _, tc := range []struct {
		voter     bool
		name, key string
		ok        bool
	}{
		{false, "h9", fp, true}, {false, "h1", fp, false}, {false, "h9", "", false}, {true, "h1", fp, true},
	} {
		if err := peerMayForwardJoin(st, "h4", tc.voter, tc.name, tc.key); (err == nil) != tc.ok {
			t.Errorf("forward the join of %s (voter %v, key %q): %v, want allowed %v", tc.name, tc.voter, tc.key, err, tc.ok)
		}
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

package vswitch

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Learned is a MAC learned on a local TAP port that is not the port's own
// MAC, for the agent to announce to the other hosts.
type Learned struct {
	VNI  uint32
	MAC  MAC
	Port string    // name of the local port the MAC was seen on
	Seen time.Time // when a frame from the MAC was last read
}

// Learned returns the MACs learned on local TAP ports that have not aged
// out, sorted by VNI then MAC. It may be called from any goroutine.
func (s *Switch) Learned() []Learned {
	var out []Learned
	for k, e := range s.local.all(s.now()) {
		out = append(out, Learned{VNI: k.vni, MAC: k.mac, Port: e.port.name, Seen: e.seen})
	}
	slices.SortFunc(out, func(a, b Learned) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), compareMAC(a.MAC, b.MAC))
	})
	return out
}

// FDBEntry is one row of the forwarding table as shown to people.
type FDBEntry struct {
	VNI     uint32
	Network string // network name from the view; "" if the VNI is not in it
	MAC     MAC
	Port    string     // local port name; "" for a remote MAC
	VTEP    netip.Addr // VTEP of a remote MAC; zero for a local one
	Origin  string     // "local" (a port's own MAC), "raft" (from the view) or "learned"
	Age     time.Duration
}

// FDB returns the whole forwarding table: the ports' own MACs (origin
// "local"), the remote MACs of the view (origin "raft"), and the MACs
// learned on local ports or from external VTEPs that have not aged out
// (origin "learned", with the time since they were last seen). It is sorted
// by VNI, then MAC, then origin. It may be called from any goroutine.
func (s *Switch) FDB() []FDBEntry {
	now := s.now()
	v := s.view.Load()
	name := func(vni uint32) string {
		if nw := v.network(vni); nw != nil {
			return nw.Name
		}
		return ""
	}
	var out []FDBEntry
	for k, p := range s.ports.Load().byMAC {
		out = append(out, FDBEntry{VNI: k.vni, Network: name(k.vni), MAC: k.mac, Port: p.name, Origin: "local"})
	}
	if v != nil {
		for vni, nw := range v.Networks {
			for mac, vtep := range nw.Remote.All() {
				out = append(out, FDBEntry{VNI: vni, Network: nw.Name, MAC: mac, VTEP: vtep, Origin: "raft"})
			}
		}
	}
	for k, e := range s.local.all(now) {
		out = append(out, FDBEntry{VNI: k.vni, Network: name(k.vni), MAC: k.mac, Port: e.port.name, Origin: "learned", Age: now.Sub(e.seen)})
	}
	for k, e := range s.wire.all(now) {
		out = append(out, FDBEntry{VNI: k.vni, Network: name(k.vni), MAC: k.mac, VTEP: e.vtep, Origin: "learned", Age: now.Sub(e.seen)})
	}
	slices.SortFunc(out, func(a, b FDBEntry) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), compareMAC(a.MAC, b.MAC),
			cmp.Compare(a.Origin, b.Origin), cmp.Compare(a.Port, b.Port), a.VTEP.Compare(b.VTEP))
	})
	return out
}

// compareMAC orders MACs bytewise.
func compareMAC(a, b MAC) int {
	return slices.Compare(a[:], b[:])
}

package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"vxswitch/raftstore"
)

// StateFile is the JSON document `vxswitch replay --state` reads: which host
// the replay plays (Self) and the replicated state that host has (State,
// raftstore.State in its JSON form: field names as in Go, addresses and
// prefixes as text). For example:
//
//	{"self": "h1", "state": {
//	  "Hosts": {"h1": {"Name": "h1", "VTEP": "10.0.0.1"}, "h2": {"Name": "h2", "VTEP": "10.0.0.2"}},
//	  "Networks": {"web": {"Name": "web", "VNI": 100, "Subnet": "10.100.0.0/24", "Resolver": "10.100.0.1"}},
//	  "Endpoints": {
//	    "a": {"Name": "a", "Network": "web", "Host": "h1", "MAC": "02:00:00:00:01:0a", "IP": "10.100.0.10"},
//	    "c": {"Name": "c", "Network": "web", "Host": "h2", "MAC": "02:00:00:00:01:0c", "IP": "10.100.0.20"}}}}
//
// Maps left out are empty. DefaultState is the state used when no file is
// given.
type StateFile struct {
	Self  string           `json:"self"`
	State *raftstore.State `json:"state"`
}

// ReadState decodes a StateFile from r and checks it (see Check).
func ReadState(r io.Reader) (StateFile, error) {
	var f StateFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return StateFile{}, fmt.Errorf("replay: read state: %w: write it as {\"self\": \"h1\", \"state\": {...}} (see vxswitch replay --print-state)", err)
	}
	if err := f.Check(); err != nil {
		return StateFile{}, err
	}
	return f, nil
}

// Check reports the first problem that keeps f from being replayed: no
// state, a self host missing from it or without a VTEP address (IPv4 or
// IPv6: the underlay family of the replay).
func (f StateFile) Check() error {
	if f.State == nil {
		return errors.New(`replay: state: no "state" object: give the replicated state, see vxswitch replay --print-state`)
	}
	h, ok := f.State.Hosts[f.Self]
	if !ok {
		var names []string
		for name := range f.State.Hosts {
			names = append(names, name)
		}
		slices.Sort(names)
		return fmt.Errorf("replay: state: self %q is not one of the state's hosts (%s): set \"self\" to the host whose switch replays the capture", f.Self, strings.Join(names, ", "))
	}
	if !h.VTEP.IsValid() {
		return fmt.Errorf("replay: state: host %q has no VTEP address: give it one like \"VTEP\": \"10.0.0.1\" or \"fd77::1\"", f.Self)
	}
	return nil
}

// DefaultState returns the state used when `vxswitch replay` gets no
// --state: this host is h1 (VTEP 10.0.0.1) in a cluster with h2 (10.0.0.2)
// and h3 (10.0.0.3); network "web" has VNI 100, subnet 10.100.0.0/24 and
// its resolver at 10.100.0.1; its endpoints are a (10.100.0.10,
// 02:00:00:00:01:0a) and b (10.100.0.11, 02:00:00:00:01:0b) on h1, c
// (10.100.0.20, 02:00:00:00:01:0c) on h2 and d (10.100.0.30,
// 02:00:00:00:01:0d) on h3. Its endpoint MTU is 1450 (underlay 1500). Each
// call returns a new value.
func DefaultState() StateFile {
	addr := netip.MustParseAddr
	host := func(name, vtep string) raftstore.Host {
		return raftstore.Host{Name: name, VTEP: addr(vtep)}
	}
	ep := func(name, host, mac, ip string) raftstore.Endpoint {
		return raftstore.Endpoint{Name: name, Network: "web", Host: host, MAC: mac, IP: addr(ip), IfName: "eth0"}
	}
	return StateFile{Self: "h1", State: &raftstore.State{
		Hosts: map[string]raftstore.Host{
			"h1": host("h1", "10.0.0.1"),
			"h2": host("h2", "10.0.0.2"),
			"h3": host("h3", "10.0.0.3"),
		},
		Networks: map[string]raftstore.Network{
			"web": {Name: "web", VNI: 100, Subnet: netip.MustParsePrefix("10.100.0.0/24"), Resolver: addr("10.100.0.1")},
		},
		Endpoints: raftstore.NewEndpointMap(map[string]raftstore.Endpoint{
			"a": ep("a", "h1", "02:00:00:00:01:0a", "10.100.0.10"),
			"b": ep("b", "h1", "02:00:00:00:01:0b", "10.100.0.11"),
			"c": ep("c", "h2", "02:00:00:00:01:0c", "10.100.0.20"),
			"d": ep("d", "h3", "02:00:00:00:01:0d", "10.100.0.30"),
		}),
		MACs: map[string]raftstore.MACEntry{},
	}}
}

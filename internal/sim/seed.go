package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/raft"

	"vxswitch/raftstore"
)

// seedTime is the Command.Time of every command the simulation writes: the
// FSM never reads the clock, so any fixed value is as good as another.
const seedTime = int64(1_700_000_000_000_000_000)

// hostName returns the name of simulated host i (0-based).
func hostName(i int) string { return fmt.Sprintf("h%04d", i) }

// networkName returns the name of simulated network k (0-based).
func networkName(k int) string { return fmt.Sprintf("net%d", k) }

// hostVTEP returns the underlay address recorded for host i: consecutive
// addresses of 100.64.0.0/10. No packet is ever sent to them.
func hostVTEP(i int) netip.Addr {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], 100<<24|64<<16+uint32(i)+1)
	return netip.AddrFrom4(a)
}

// endpointMAC returns the MAC of the n-th endpoint the simulation attaches:
// locally administered, unicast, unique.
func endpointMAC(n int) string {
	return fmt.Sprintf("02:5e:%02x:%02x:%02x:%02x", byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// subnets returns K non-overlapping subnets of 10.0.0.0/8, each large
// enough for twice perNetwork endpoints (room for churn).
func subnets(k, perNetwork int) ([]netip.Prefix, error) {
	bits := 29
	for bits > 8 && 1<<(32-bits)-3 < 2*perNetwork+16 {
		bits--
	}
	size := uint32(1) << (32 - bits)
	if uint64(k)*uint64(size) > 1<<24 {
		return nil, fmt.Errorf("sim: %d networks of /%d do not fit in 10.0.0.0/8: use fewer networks or endpoints", k, bits)
	}
	out := make([]netip.Prefix, k)
	for i := range out {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 10<<24+uint32(i)*size)
		out[i] = netip.PrefixFrom(netip.AddrFrom4(a), bits)
	}
	return out, nil
}

// attachCommand returns the endpoint.attach of the n-th endpoint, placed
// on host n mod hosts in network n mod networks, with the fields an agent
// sets (network namespace and interface name) and a request ID, as the
// agent's writes carry one.
func attachCommand(n, hosts, networks int) raftstore.Command {
	name := fmt.Sprintf("ep%d", n)
	return raftstore.Command{
		Op: raftstore.OpEndpointAttach, ReqID: "sim-attach-" + name, Time: seedTime,
		Endpoint: &raftstore.Endpoint{
			Name: name, Network: networkName(n % networks), Host: hostName(n % hosts),
			MAC: endpointMAC(n), NetNS: "/var/run/netns/" + name, IfName: "eth0",
		},
	}
}

// detachCommand returns the endpoint.detach of the endpoint called name.
func detachCommand(name string, n int) raftstore.Command {
	return raftstore.Command{Op: raftstore.OpEndpointDetach, ReqID: fmt.Sprintf("sim-detach-%d", n), Time: seedTime, Name: name}
}

// seedCommands returns the commands that build the starting state: every
// host, every network and every endpoint, in that order.
func seedCommands(o Options) ([]raftstore.Command, error) {
	nets, err := subnets(o.Networks, (o.Endpoints+o.Networks-1)/o.Networks)
	if err != nil {
		return nil, err
	}
	cmds := make([]raftstore.Command, 0, o.Hosts+o.Networks+o.Endpoints)
	for i := range o.Hosts {
		cmds = append(cmds, raftstore.Command{Op: raftstore.OpHostAdd, Time: seedTime,
			Host: &raftstore.Host{Name: hostName(i), VTEP: hostVTEP(i)}})
	}
	for k, p := range nets {
		cmds = append(cmds, raftstore.Command{Op: raftstore.OpNetworkCreate, Time: seedTime,
			Network: &raftstore.Network{Name: networkName(k), Subnet: p}})
	}
	for n := range o.Endpoints {
		cmds = append(cmds, attachCommand(n, o.Hosts, o.Networks))
	}
	return cmds, nil
}

// applyDirect applies cmd to fsm at raft index, without raft, and returns
// an error when the FSM rejects it.
func applyDirect(fsm *raftstore.FSM, index uint64, cmd raftstore.Command) error {
	data, err := raftstore.EncodeCommand(cmd)
	if err != nil {
		return err
	}
	res, _ := fsm.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}).(*raftstore.Result)
	if res == nil || res.Err != "" {
		return fmt.Errorf("sim: seed command %s at index %d rejected: %v", cmd.Op, index, res)
	}
	return nil
}

// seed applies the seed commands to a fresh FSM (the real one, with its
// IPAM) and returns it with the raft index of its last command.
func seed(o Options) (*raftstore.FSM, uint64, error) {
	cmds, err := seedCommands(o)
	if err != nil {
		return nil, 0, err
	}
	fsm := raftstore.NewFSM()
	for i, cmd := range cmds {
		if err := applyDirect(fsm, uint64(i+1), cmd); err != nil {
			return nil, 0, err
		}
	}
	return fsm, uint64(len(cmds)), nil
}

// bufferSink is a raft.SnapshotSink that keeps the snapshot in memory.
type bufferSink struct{ bytes.Buffer }

func (s *bufferSink) Close() error  { return nil }
func (s *bufferSink) ID() string    { return "sim" }
func (s *bufferSink) Cancel() error { return nil }

// snapshotOf takes fsm's snapshot as raft would and returns its bytes and
// how long taking and writing it took.
func snapshotOf(fsm *raftstore.FSM) ([]byte, time.Duration, error) {
	start := time.Now()
	snap, err := fsm.Snapshot()
	if err != nil {
		return nil, 0, fmt.Errorf("sim: snapshot: %w", err)
	}
	defer snap.Release()
	var sink bufferSink
	if err := snap.Persist(&sink); err != nil {
		return nil, 0, fmt.Errorf("sim: snapshot: %w", err)
	}
	return sink.Bytes(), time.Since(start), nil
}

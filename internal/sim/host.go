package sim

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"vxswitch/raftstore"
	"vxswitch/resolver"
	"vxswitch/stateview"
	vswitch "vxswitch/switch"
	"vxswitch/vxlan"
)

// underlayMTU is the underlay MTU every simulated host has; endpoint MTUs
// follow from it as on a real host (agent: underlay MTU - 50).
const underlayMTU = 1500

// raftConfig returns the raft configuration of a simulated host: the one
// raftstore.Open gives a production node (raft's defaults, 1 s heartbeat
// and election timeouts, a snapshot every 1024 entries keeping 1024), with
// raft's own log turned off.
func raftConfig(id string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.SnapshotThreshold = 1024
	c.TrailingLogs = 1024
	c.LogOutput, c.LogLevel = io.Discard, "OFF"
	return c
}

// publish records that a host's view became live for the state of a raft
// index, at a time since the simulation's start.
type publish struct {
	index uint64
	at    time.Duration
}

// host is one simulated vxswitch host: a raft node with the real FSM (its
// own, or a replica of the ledger's) over raft's in-memory transport, and what an agent builds from every new state
// (agent.refresh without the ports): the resolver's name table and the
// switch's view, made live with vswitch.Switch.SetView on a switch without
// ports or underlay. Its methods may be called from any goroutine.
type host struct {
	name  string
	voter bool
	// own is the host's own FSM, or nil when it shares the ledger's (led).
	own   *raftstore.FSM
	led   *ledger
	fsm   machine // own or a replica of led
	raft  *raft.Raft
	trans *raft.InmemTransport
	sw    *vswitch.Switch
	names atomic.Pointer[resolver.Table]
	views stateview.Builder // owned by refresh
	base  time.Time         // the simulation's start

	mu        sync.Mutex
	published []publish // in order; under mu
	view      *vswitch.View

	stop chan struct{}
	done chan struct{}
}

// machine is a host's raft.FSM with what the agent reads from it:
// *raftstore.FSM, or a replica of the ledger.
type machine interface {
	raft.FSM
	State() *raftstore.State
	Changes() <-chan struct{}
}

// newSwitch returns a switch that only takes views: no ports, no underlay.
func newSwitch() *vswitch.Switch {
	return vswitch.New(vswitch.Config{Logger: slog.New(slog.DiscardHandler)})
}

// endpointMTU is the agent's rule for a network's endpoint MTU.
func endpointMTU(n raftstore.Network) int {
	mtu := underlayMTU - vxlan.OverheadIPv4
	if n.MTU > 0 && n.MTU < mtu {
		mtu = n.MTU
	}
	return mtu
}

// refreshView builds what the agent builds from st for host self, with the
// agent's per-change view builder, and makes the view live on sw. It
// returns the view. The name table comes from led when the host shares
// the ledger's states, from views otherwise.
func refreshView(st *raftstore.State, self string, views *stateview.Builder, led *ledger, sw *vswitch.Switch, names *atomic.Pointer[resolver.Table]) *vswitch.View {
	if led != nil {
		names.Store(led.table(st))
	} else {
		names.Store(views.Names(st))
	}
	v := views.View(st, self, endpointMTU)
	sw.SetView(v)
	return v
}

// startHost starts the raft node of host name from a snapshot of the
// cluster state at index (term 1) whose raft configuration is conf, as a
// host restarting from its snapshot does, and builds its first view. Its
// transport is not connected to any other yet. With a ledger, the host
// shares its states and name tables (see ledger); with nil, it applies
// every command with its own FSM.
func startHost(name string, voter bool, led *ledger, conf raft.Configuration, snap []byte, index uint64, base time.Time) (*host, error) {
	h := &host{name: name, voter: voter, led: led, sw: newSwitch(), base: base,
		stop: make(chan struct{}), done: make(chan struct{})}
	if led != nil {
		h.fsm = newReplica(led)
	} else {
		h.own = raftstore.NewFSM()
		h.fsm = h.own
	}
	_, h.trans = raft.NewInmemTransport(raft.ServerAddress(name))
	store := raft.NewInmemStore()
	if err := store.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		return nil, fmt.Errorf("sim: host %s: set term: %w", name, err)
	}
	changes := h.fsm.Changes()
	var err error
	h.raft, err = raft.NewRaft(raftConfig(name), h.fsm, store, store, newSeedSnapshots(snap, index, conf), h.trans)
	if err != nil {
		return nil, fmt.Errorf("sim: host %s: start raft: %w", name, err)
	}
	h.refresh()
	go h.watch(changes)
	return h, nil
}

// refresh makes a view of the current state live and records when.
func (h *host) refresh() {
	st := h.fsm.State()
	v := refreshView(st, h.name, &h.views, h.led, h.sw, &h.names)
	at := time.Since(h.base)
	h.mu.Lock()
	h.published = append(h.published, publish{index: st.Index, at: at})
	h.view = v
	h.mu.Unlock()
}

// watch refreshes after every state change (coalesced, as the agent's
// watch does) until stop is closed.
func (h *host) watch(changes <-chan struct{}) {
	defer close(h.done)
	for {
		select {
		case <-h.stop:
			return
		case <-changes:
			h.refresh()
		}
	}
}

// liveIndex returns the state index of the host's live view.
func (h *host) liveIndex() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.published) == 0 {
		return 0
	}
	return h.published[len(h.published)-1].index
}

// visibleAt returns when the host's view first included the state of
// index, and false if it never did.
func (h *host) visibleAt(index uint64) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := sort.Search(len(h.published), func(i int) bool { return h.published[i].index >= index })
	if i == len(h.published) {
		return 0, false
	}
	return h.published[i].at, true
}

// liveView returns the host's live view.
func (h *host) liveView() *vswitch.View {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.view
}

// shutdown stops the raft node and the view loop.
func (h *host) shutdown() error {
	err := h.raft.Shutdown().Error()
	close(h.stop)
	<-h.done
	h.trans.Close()
	if err != nil {
		return fmt.Errorf("sim: host %s: shut down: %w", h.name, err)
	}
	return nil
}

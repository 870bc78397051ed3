package sim

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"vxswitch/raftstore"
	"vxswitch/resolver"
	"vxswitch/stateview"
)

// A ledger lets the hosts of a simulation that do not apply commands on
// their own (Options.OwnState) share the work every host would repeat:
// the FSM is deterministic, so the state after raft index i, and the name
// table built from it, are the same value on every host. The ledger runs
// one real FSM (ref) and applies each command once, when the first sharing
// host reaches it; every other sharing host gets the same immutable State
// and name table. What differs per host stays per host: its raft node and
// log, its view (which depends on who it is) and SetView.
//
// Its methods may be called from any goroutine; they serialise on mu.
type ledger struct {
	mu       sync.Mutex
	ref      *raftstore.FSM
	last     uint64 // index of the last command ref applied
	count    int    // commands ref applied, for pruning
	entries  map[uint64]*ledgerEntry
	restored map[[32]byte]*raftstore.State // snapshots decoded, by content
	names    stateview.Builder             // name tables, for ref's states
	tables   map[*raftstore.State]*resolver.Table

	replicas []*replica // to find the oldest index still needed
	// mismatches counts commands a host brought at an index where the
	// ledger holds another one: raft guarantees there are none.
	mismatches atomic.Int64
}

// ledgerEntry is the outcome of the command at one raft index.
type ledgerEntry struct {
	data []byte // the command, to check that every host brings the same
	st   *raftstore.State
	res  any
}

// pruneEvery is how many applied commands pass between two prunings of
// the entries every sharing host has gone past.
const pruneEvery = 256

// newLedger returns a ledger whose FSM starts from the seed snapshot.
func newLedger(seed []byte) (*ledger, error) {
	g := &ledger{ref: raftstore.NewFSM(), entries: map[uint64]*ledgerEntry{},
		restored: map[[32]byte]*raftstore.State{}, tables: map[*raftstore.State]*resolver.Table{}}
	if err := g.ref.Restore(io.NopCloser(bytes.NewReader(seed))); err != nil {
		return nil, fmt.Errorf("sim: ledger: %w", err)
	}
	g.restored[sha256.Sum256(seed)] = g.ref.State()
	return g, nil
}

// apply returns the outcome of the command l, applying it to ref if no
// host brought it before, or nil if its index was pruned (counted as a
// mismatch: no sharing host can bring it).
func (g *ledger) apply(l *raft.Log) *ledgerEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.entries[l.Index]; ok {
		if !bytes.Equal(e.data, l.Data) {
			g.mismatches.Add(1)
		}
		return e
	}
	if l.Index <= g.last {
		// Pruned: every sharing host had gone past it, so none can bring
		// it. Count it rather than hand out a wrong state.
		g.mismatches.Add(1)
		return nil
	}
	res := g.ref.Apply(l)
	e := &ledgerEntry{data: l.Data, st: g.ref.State(), res: res}
	g.entries[l.Index], g.last = e, l.Index
	if g.count++; g.count%pruneEvery == 0 {
		g.prune()
	}
	return e
}

// prune drops the entries and name tables that every sharing host has
// gone past. The caller holds g.mu.
func (g *ledger) prune() {
	oldest := g.last
	for _, r := range g.replicas {
		oldest = min(oldest, r.applied.Load())
	}
	keep := map[*raftstore.State]bool{}
	for i, e := range g.entries {
		if i < oldest {
			delete(g.entries, i)
		} else {
			keep[e.st] = true
		}
	}
	for st := range g.tables {
		if !keep[st] && st != g.ref.State() {
			delete(g.tables, st)
		}
	}
}

// restore returns the state of the snapshot snap, decoding each distinct
// snapshot once. A snapshot ahead of ref (a sharing host that fell so far
// behind that the leader sent it a snapshot, and no other sharing host is
// further) moves ref to it.
func (g *ledger) restore(snap []byte) (*raftstore.State, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sum := sha256.Sum256(snap)
	if st, ok := g.restored[sum]; ok {
		return st, nil
	}
	f := raftstore.NewFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		return nil, err
	}
	st := f.State()
	g.restored[sum] = st
	if st.Index > g.ref.State().Index {
		if err := g.ref.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			return nil, err
		}
		g.last = max(g.last, st.Index)
	}
	return st, nil
}

// table returns the name table of st, building it once.
func (g *ledger) table(st *raftstore.State) *resolver.Table {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.tables[st]
	if !ok {
		t = g.names.Names(st)
		g.tables[st] = t
	}
	return t
}

// replica is the state machine of a host that shares the ledger: a
// raft.FSM whose Apply takes the ledger's outcome, with the State and
// Changes of raftstore.FSM. Raft calls Apply, Snapshot and Restore from
// one goroutine; State and Changes may be called from any.
type replica struct {
	g       *ledger
	state   atomic.Pointer[raftstore.State]
	applied atomic.Uint64 // raft index of the last command applied

	changes raftstore.Notifier
}

func newReplica(g *ledger) *replica {
	r := &replica{g: g}
	r.state.Store(g.ref.State())
	g.mu.Lock()
	g.replicas = append(g.replicas, r)
	g.mu.Unlock()
	return r
}

// Apply implements raft.FSM.
func (r *replica) Apply(l *raft.Log) any {
	e := r.g.apply(l)
	if e == nil {
		return &raftstore.Result{Err: fmt.Sprintf("sim: the ledger no longer holds index %d", l.Index)}
	}
	r.applied.Store(l.Index)
	if e.st != r.state.Load() {
		r.publish(e.st)
	}
	return e.res
}

// Snapshot implements raft.FSM: the current state alone (no request log,
// no history; see raftstore.SnapshotOfState).
func (r *replica) Snapshot() (raft.FSMSnapshot, error) {
	return raftstore.SnapshotOfState(r.state.Load()), nil
}

// Restore implements raft.FSM.
func (r *replica) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("sim: restore: %w", err)
	}
	st, err := r.g.restore(b)
	if err != nil {
		return fmt.Errorf("sim: restore: %w", err)
	}
	r.applied.Store(st.Index)
	r.publish(st)
	return nil
}

// State returns the current state.
func (r *replica) State() *raftstore.State { return r.state.Load() }

// Changes returns a channel notified, coalescing, after each new state.
func (r *replica) Changes() <-chan struct{} { return r.changes.Subscribe() }

// publish makes st the current state and tells the subscribers.
func (r *replica) publish(st *raftstore.State) {
	r.state.Store(st)
	r.changes.Notify()
}

package raftstore

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// MaxRequestIDs is how many request IDs (Command.ReqID) the FSM remembers
// for deduplication; the oldest, by apply order, is forgotten first.
const MaxRequestIDs = 10000

// snapshotVersion is written into every snapshot; Restore refuses others.
const snapshotVersion = 1

// FSM is the raft finite state machine of the cluster state (raft.FSM).
// Apply is deterministic: it reads no clock and no randomness, so every node
// that applies the same log reaches the same State. The zero value is not
// usable; call NewFSM.
//
// raft calls Apply, Snapshot and Restore from one goroutine; State and
// Changes may be called from any goroutine at any time.
type FSM struct {
	mu    sync.Mutex // serialises Apply, Snapshot and Restore; guards reqs
	reqs  requestLog
	state atomic.Pointer[State]

	// ran is the raft index of the last command Apply has run, accepted
	// or rejected. raft's own applied index moves when a command is
	// handed to the FSM goroutine, before Apply runs; ran moves after.
	ran atomic.Uint64

	// hist records every applied command (history.go); nil in the
	// bare FSMs a history uses for its base state and for replays.
	hist *history

	changes Notifier
}

// Notifier tells subscribers that something changed: each Subscribe
// channel receives a value after a Notify. Notifications coalesce (a
// channel buffers one), so a subscriber must then read the latest value
// itself. The zero value is ready; its methods may be called from any
// goroutine.
type Notifier struct {
	mu   sync.Mutex
	subs []chan struct{}
}

// Subscribe returns a new channel that receives a value after each Notify.
func (n *Notifier) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs = append(n.subs, ch)
	n.mu.Unlock()
	return ch
}

// Notify wakes every subscriber without blocking.
func (n *Notifier) Notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// requestLog remembers the Result of the last MaxRequestIDs successful
// commands that carried a ReqID.
type requestLog struct {
	order   []string // oldest first
	results map[string]*Result
}

// recordedRequest is one requestLog entry in a snapshot.
type recordedRequest struct {
	ReqID  string
	Result *Result
}

// snapshotData is the JSON document a snapshot holds.
type snapshotData struct {
	Version  int
	State    *State
	Requests []recordedRequest // oldest first
	// History is the FSM's history (history.go); absent in snapshots
	// written before histories existed.
	History *historySnapshot `json:",omitempty"`
}

// NewFSM returns an FSM holding the empty state.
func NewFSM() *FSM {
	f := newBareFSM()
	f.hist = newHistory(HistoryLimits{})
	return f
}

// State returns the current state; never nil. The State is immutable.
func (f *FSM) State() *State { return f.state.Load() }

// Changes returns a new channel that receives a value after each newly
// published state. Notifications coalesce (the channel has a buffer of
// one), so a reader must then load State for the latest one.
func (f *FSM) Changes() <-chan struct{} { return f.changes.Subscribe() }

// publish makes st the current state and notifies every Changes channel
// without blocking.
func (f *FSM) publish(st *State) {
	f.state.Store(st)
	f.changes.Notify()
}

// Apply implements raft.FSM. It decodes one command from l.Data and applies
// it; it returns a *Result, never panics, and leaves the state unchanged
// when the command is rejected (Result.Err != "").
func (f *FSM) Apply(l *raft.Log) any {
	defer f.ran.Store(l.Index)
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		res := &Result{Err: fmt.Sprintf("command at raft index %d is not valid JSON: %v: send commands through Store.Apply", l.Index, err)}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.hist.record(l, Command{Op: "invalid"}, res, false, nil, nil)
		return res
	}
	return f.apply(l, cmd)
}

func (f *FSM) apply(l *raft.Log, cmd Command) *Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.state.Load()
	if cmd.ReqID != "" {
		if r, ok := f.reqs.results[cmd.ReqID]; ok {
			f.hist.record(l, cmd, r, true, prev, prev)
			return r.clone()
		}
	}
	next := prev.clone()
	res := runSafely(next, cmd)
	if res.Err != "" {
		f.hist.record(l, cmd, res, false, prev, prev)
		return res
	}
	next.Index = l.Index
	f.reqs.add(cmd.ReqID, res.clone())
	f.hist.record(l, cmd, res, false, prev, next)
	f.publish(next)
	return res
}

// runSafely runs cmd on st and turns an error, or a panic (a bug), into a
// rejected Result, so one bad command can never stop the node. The same
// command fails the same way on every node, so the outcome stays
// deterministic.
func runSafely(st *State, cmd Command) (res *Result) {
	defer func() {
		if p := recover(); p != nil {
			res = &Result{Err: fmt.Sprintf("internal error applying %q: %v: please report this bug", cmd.Op, p)}
		}
	}()
	r, err := run(st, cmd)
	if err != nil {
		return &Result{Err: err.Error()}
	}
	return r
}

func (l *requestLog) add(id string, r *Result) {
	if id == "" {
		return
	}
	l.order = append(l.order, id)
	l.results[id] = r
	for len(l.order) > MaxRequestIDs {
		delete(l.results, l.order[0])
		l.order = l.order[1:]
	}
}

// Snapshot implements raft.FSM. It captures the current immutable state and
// a copy of the request log; Persist writes them out.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data := f.snapshotData()
	data.History = f.hist.snapshot()
	return fsmSnapshot{data}, nil
}

// Restore implements raft.FSM. It replaces the whole state with the
// snapshot read from rc and publishes it.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var data snapshotData
	if err := json.NewDecoder(rc).Decode(&data); err != nil {
		return fmt.Errorf("raftstore: restore snapshot: %w", err)
	}
	st, reqs, err := snapshotContents(&data)
	if err != nil {
		return fmt.Errorf("raftstore: restore snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.hist.restore(data.History, st); err != nil {
		return fmt.Errorf("raftstore: restore snapshot: %w", err)
	}
	f.reqs = reqs
	f.publish(st)
	return nil
}

// SnapshotOfState returns a snapshot of st alone, without the request log
// and the history an FSM adds: what a node that shares applied states with
// others (the fleet simulator's shared hosts) can write. Restore reads it
// as it reads a snapshot from before histories existed.
func SnapshotOfState(st *State) raft.FSMSnapshot {
	return fsmSnapshot{&snapshotData{Version: snapshotVersion, State: st}}
}

// fsmSnapshot is a point-in-time copy of the FSM; all it holds is immutable.
type fsmSnapshot struct{ data *snapshotData }

// Persist writes the snapshot as JSON.
func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("raftstore: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("raftstore: close snapshot: %w", err)
	}
	return nil
}

// Release does nothing: the snapshot holds no resources.
func (s fsmSnapshot) Release() {}

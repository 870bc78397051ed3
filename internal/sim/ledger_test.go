package sim

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"vxswitch/raftstore"
)

// TestLedger: replicas that share a ledger reach the state an FSM of
// their own reaches from the same snapshot and log, share one State per
// index, build the name table once per state, and drop what every
// replica has gone past; a command at an index where the ledger holds
// another one is counted.
func TestLedger(t *testing.T) {
	o := Options{Hosts: 4, Endpoints: 40, Networks: 2}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	fsm, index, err := seed(o)
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := snapshotOf(fsm)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newLedger(snap)
	if err != nil {
		t.Fatal(err)
	}
	own := raftstore.NewFSM()
	a, b := newReplica(g), newReplica(g)
	for _, m := range []interface{ Restore(io.ReadCloser) error }{own, a, b} {
		if err := m.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			t.Fatal(err)
		}
	}
	if a.State() != b.State() {
		t.Fatal("two replicas restored the same snapshot into two states")
	}
	changes := a.Changes()
	var logs []*raft.Log
	for n := range 3 * pruneEvery {
		cmd := attachCommand(o.Endpoints+n, o.Hosts, o.Networks)
		if n%2 == 1 {
			cmd = detachCommand(attachCommand(o.Endpoints+n-1, o.Hosts, o.Networks).Endpoint.Name, n)
		}
		data, err := raftstore.EncodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: index + 1 + uint64(n), Term: 1, Type: raft.LogCommand, Data: data})
	}
	for _, l := range logs {
		want := own.Apply(l).(*raftstore.Result)
		got := a.Apply(l).(*raftstore.Result)
		if got.Err != want.Err {
			t.Fatalf("index %d: replica result %q, own FSM %q", l.Index, got.Err, want.Err)
		}
	}
	select {
	case <-changes:
	default:
		t.Error("no change notified to a replica's subscriber")
	}
	// b applies the same log later: the same States, nothing applied twice.
	for _, l := range logs {
		b.Apply(l)
	}
	if a.State() != b.State() {
		t.Error("replicas at the same index hold different states")
	}
	if got, want := a.State().Hash(), own.State().Hash(); got != want {
		t.Errorf("replica state hash %s, own FSM %s", got, want)
	}
	if g.table(a.State()) != g.table(b.State()) {
		t.Error("the name table of one state was built twice")
	}
	// The next prune (every pruneEvery commands) drops what both passed.
	g.mu.Lock()
	g.prune()
	n := len(g.entries)
	g.mu.Unlock()
	if n > 1 {
		t.Errorf("ledger holds %d entries after every replica passed them all, want at most the last", n)
	}
	if n := g.mismatches.Load(); n != 0 {
		t.Errorf("%d mismatches, want 0", n)
	}
	last := logs[len(logs)-1]
	b.Apply(&raft.Log{Index: last.Index, Term: 1, Type: raft.LogCommand, Data: logs[0].Data})
	if n := g.mismatches.Load(); n != 1 {
		t.Errorf("another command at an index: %d mismatches, want 1", n)
	}
	b.Apply(&raft.Log{Index: logs[0].Index, Term: 1, Type: raft.LogCommand, Data: logs[0].Data})
	if n := g.mismatches.Load(); n != 2 {
		t.Errorf("a pruned index: %d mismatches, want 2", n)
	}
}

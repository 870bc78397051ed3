package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openInmem(t *testing.T, id string, voters int, bootstrap bool) *Store {
	t.Helper()
	s, err := Open(Config{ID: id, Bind: id, InMemory: true, Voters: voters, Bootstrap: bootstrap})
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// inmemCluster starts n in-memory nodes: n1 bootstraps, the others join.
func inmemCluster(t *testing.T, n, voters int) []*Store {
	t.Helper()
	var stores []*Store
	for i := 1; i <= n; i++ {
		stores = append(stores, openInmem(t, fmt.Sprintf("n%d", i), voters, i == 1))
	}
	ConnectInmem(stores...)
	waitFor(t, 10*time.Second, "n1 to lead", func() bool { return stores[0].Role() == RoleLeader })
	for _, s := range stores[1:] {
		if _, err := stores[0].Join(s.ID(), s.Addr()); err != nil {
			t.Fatalf("join %s: %v", s.ID(), err)
		}
	}
	return stores
}

func applyOK(t *testing.T, s *Store, cmd Command) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.Apply(ctx, cmd)
	if err != nil {
		t.Fatalf("apply %s: %v", cmd.Op, err)
	}
	if res.Err != "" {
		t.Fatalf("apply %s: rejected: %s", cmd.Op, res.Err)
	}
	return res
}

func converged(stores ...*Store) bool {
	want := stores[0].State()
	for _, s := range stores[1:] {
		if st := s.State(); st.Index != want.Index || st.Hash() != want.Hash() {
			return false
		}
	}
	return true
}

func TestClusterReplicates(t *testing.T) {
	stores := inmemCluster(t, 3, 3)
	leader, follower := stores[0], stores[1]
	changes := follower.Changes()

	applyOK(t, leader, addHost("n1", "10.0.0.1"))
	applyOK(t, leader, createNet("web", "10.20.0.0/24", 0))
	res := applyOK(t, leader, attach("api", "web", "n1", mac(1)))
	if res.Endpoint.IP.String() != "10.20.0.2" {
		t.Fatalf("attach got %s, want 10.20.0.2", res.Endpoint.IP)
	}
	// A rejected command comes back as a Result, not an error.
	if r, err := leader.Apply(context.Background(), createNet("web", "10.30.0.0/24", 0)); err != nil || r.Err == "" {
		t.Fatalf("duplicate network: result %+v, error %v; want a rejected result and no error", r, err)
	}

	waitFor(t, 10*time.Second, "followers to converge", func() bool { return converged(stores...) })
	select {
	case <-changes:
	default:
		t.Fatal("follower's Changes channel was not notified")
	}

	_, err := follower.Apply(context.Background(), addHost("n2", "10.0.0.2"))
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("apply on follower: error %v, want ErrNotLeader", err)
	}
	if id, addr := follower.Leader(); id != "n1" || addr != leader.Addr() {
		t.Fatalf("follower sees leader %q at %q, want n1 at %s", id, addr, leader.Addr())
	}
	if _, err := follower.Join("x", "x"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("join on follower: %v, want ErrNotLeader", err)
	}
	if role := follower.Role(); role != "voter" {
		t.Fatalf("follower role %q, want voter", role)
	}
	if got := leader.Stats()["state_hash"]; got != leader.State().Hash() {
		t.Fatalf("Stats state_hash %q, want %q", got, leader.State().Hash())
	}
}

func TestJoinVoterCounting(t *testing.T) {
	stores := inmemCluster(t, 1, 3)
	leader := stores[0]
	var joined []*Store
	for i, wantVoter := range []bool{true, true, false} {
		s := openInmem(t, fmt.Sprintf("j%d", i+2), 3, false)
		joined = append(joined, s)
		ConnectInmem(append([]*Store{leader}, joined...)...)
		voter, err := leader.Join(s.ID(), s.Addr())
		if err != nil || voter != wantVoter {
			t.Fatalf("join %s: voter=%v err=%v, want voter=%v", s.ID(), voter, err, wantVoter)
		}
	}
	// Joining again with the same address changes nothing.
	if voter, err := leader.Join("j2", joined[0].Addr()); err != nil || !voter {
		t.Fatalf("re-join j2: voter=%v err=%v, want true, nil", voter, err)
	}
	servers, err := leader.Servers()
	if err != nil {
		t.Fatal(err)
	}
	voters := 0
	for _, srv := range servers {
		if srv.Voter {
			voters++
		}
	}
	if len(servers) != 4 || voters != 3 {
		t.Fatalf("servers %+v: want 4 with 3 voters", servers)
	}
	applyOK(t, leader, addHost("n1", "10.0.0.1"))
	all := append([]*Store{leader}, joined...)
	waitFor(t, 10*time.Second, "the non-voter to catch up", func() bool { return converged(all...) })
	if role := joined[2].Role(); role != "nonvoter" {
		t.Fatalf("4th node role %q, want nonvoter", role)
	}
	if err := leader.Remove("j4"); err != nil {
		t.Fatal(err)
	}
	if servers, _ := leader.Servers(); len(servers) != 3 {
		t.Fatalf("after Remove: %+v, want 3 servers", servers)
	}
}

// TestFailoverKeepsAllocationsOnce cuts the leader off: it must refuse the
// write within seconds, a new leader takes over, and a retry with the same
// ReqID yields the same single allocation.
func TestFailoverKeepsAllocationsOnce(t *testing.T) {
	stores := inmemCluster(t, 3, 3)
	old := stores[0]
	applyOK(t, old, addHost("n1", "10.0.0.1"))
	applyOK(t, old, createNet("web", "10.20.0.0/24", 0))
	cmd := attach("api", "web", "n1", mac(1))
	cmd.ReqID = "attach-api-1"
	first := applyOK(t, old, cmd)
	waitFor(t, 10*time.Second, "replication", func() bool { return converged(stores...) })

	DisconnectInmem(old, stores[1:]...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	startedAt := time.Now()
	_, err := old.Apply(ctx, addHost("n9", "10.0.0.9"))
	if !errors.Is(err, ErrNoQuorum) && !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write on the cut-off leader: %v, want ErrNoQuorum or ErrNotLeader", err)
	}
	t.Logf("cut-off leader refused the write after %s: %v", time.Since(startedAt).Round(time.Millisecond), err)
	if d := time.Since(startedAt); d > 5*time.Second {
		t.Fatalf("cut-off leader took %s to refuse the write", d)
	}

	var next *Store
	waitFor(t, 10*time.Second, "a new leader", func() bool {
		for _, s := range stores[1:] {
			if s.Role() == RoleLeader {
				next = s
				return true
			}
		}
		return false
	})
	again := applyOK(t, next, cmd)
	if again.Endpoint.IP != first.Endpoint.IP || next.State().Endpoints.Len() != 1 {
		t.Fatalf("retry on the new leader: %+v, want the first result %+v", again.Endpoint, first.Endpoint)
	}
}

// freeAddr returns a loopback TCP address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDiskReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ID: "n1", Dir: dir, Bind: freeAddr(t), Bootstrap: true, SnapshotThreshold: 8}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "leadership", func() bool { return s.Role() == RoleLeader })
	applyOK(t, s, addHost("n1", "127.0.0.1"))
	applyOK(t, s, createNet("web", "10.20.0.0/24", 0))
	for i := 0; i < 5; i++ {
		applyOK(t, s, attach(fmt.Sprintf("e%d", i), "web", "n1", mac(i+1)))
	}
	if err := s.Snapshot(); err != nil { // later entries stay in the log only
		t.Fatal(err)
	}
	applyOK(t, s, Command{Op: OpVTEPAdd, VTEP: &VTEP{Network: "web", Addr: netip.MustParseAddr("127.0.0.9")}})
	want := s.State()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(cfg) // Bootstrap is set again: it must not re-bootstrap
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	waitFor(t, 15*time.Second, "the state to be recovered", func() bool {
		st := s2.State()
		return st.Index == want.Index && st.Hash() == want.Hash()
	})
	waitFor(t, 10*time.Second, "leadership after reopen", func() bool { return s2.Role() == RoleLeader })
	res := applyOK(t, s2, attach("e5", "web", "n1", mac(6)))
	if res.Endpoint.IP.String() != "10.20.0.7" {
		t.Fatalf("attach after reopen got %s, want 10.20.0.7", res.Endpoint.IP)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{ID: "n1"},
		{ID: "n1", Dir: t.TempDir()},
		{ID: "n1", Dir: t.TempDir(), Bind: "0.0.0.0:0"},
	} {
		if s, err := Open(cfg); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded, want an error", cfg)
		}
	}
}

// recordHandler keeps the records it handles.
type recordHandler struct{ records []slog.Record }

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.records = append(h.records, r)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func TestRaftLogToSlog(t *testing.T) {
	tests := []struct {
		in    string
		level slog.Level
		msg   string
	}{
		{"2025-11-28T18:40:00.000Z [WARN]  raft: heartbeat timeout reached: last-leader-addr=\n", slog.LevelWarn, "raft: heartbeat timeout reached: last-leader-addr="},
		{"2025-11-28T18:40:00.000Z [ERROR] raft-net: failed to accept connection: error=closed\n", slog.LevelError, "raft-net: failed to accept connection: error=closed"},
		{"2025-11-28T18:40:00.000Z [INFO]  raft: entering follower state\n", slog.LevelDebug, "raft: entering follower state"},
		{"no level here", slog.LevelDebug, "no level here"},
	}
	for _, tc := range tests {
		h := &recordHandler{}
		w, _ := raftLogOutput(slog.New(h))
		if n, err := w.Write([]byte(tc.in)); n != len(tc.in) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", tc.in, n, err)
		}
		if len(h.records) != 1 || h.records[0].Level != tc.level || h.records[0].Message != tc.msg {
			t.Errorf("Write(%q) logged %+v, want one %s record %q", tc.in, h.records, tc.level, tc.msg)
		}
	}
	if w, level := raftLogOutput(nil); w != io.Discard || level != "OFF" {
		t.Errorf("nil logger: %v %q, want io.Discard and OFF", w, level)
	}
}

// TestAppliedThroughWaitsForTheFSM reopens a node with many commands in its
// log and checks that AppliedThrough turns true only once the state holds
// all of them. raft's own applied index moves before the FSM runs the
// commands; an agent that trusted it deleted the TAP of a live endpoint.
func TestAppliedThroughWaitsForTheFSM(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ID: "n1", Dir: dir, Bind: freeAddr(t), Bootstrap: true, SnapshotThreshold: 100000}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitFor(t, 10*time.Second, "leadership", func() bool { return s.Role() == RoleLeader })
	applyOK(t, s, addHost("n1", "127.0.0.1"))
	applyOK(t, s, createNet("web", "10.20.0.0/16", 0))
	for i := 0; i < 400; i++ {
		applyOK(t, s, attach(fmt.Sprintf("e%d", i), "web", "n1", mac(i+1)))
	}
	want := s.State()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	last := s2.LastIndex()
	if last < want.Index {
		t.Fatalf("reopened log ends at %d, before the last command %d", last, want.Index)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !s2.AppliedThrough(last) {
		if time.Now().After(deadline) {
			t.Fatalf("log up to %d not applied within 15s (state at %d)", last, s2.State().Index)
		}
	}
	if got := s2.State(); got.Index != want.Index || got.Endpoints.Len() != 400 {
		t.Fatalf("AppliedThrough(%d) was true with the state at index %d and %d endpoints; want index %d and 400", last, got.Index, got.Endpoints.Len(), want.Index)
	}
}

// TestReadIndex: a follower that waits for the leader's read index holds
// every write committed before it asked; a leader cut off from its quorum
// cannot give one.
func TestReadIndex(t *testing.T) {
	stores := inmemCluster(t, 3, 3)
	leader, follower := stores[0], stores[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := follower.ReadIndex(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("read index on a follower: %v, want ErrNotLeader", err)
	}
	applyOK(t, leader, addHost("n1", "10.0.0.1"))
	for i := range 20 {
		applyOK(t, leader, createNet(fmt.Sprintf("net%d", i), fmt.Sprintf("10.30.%d.0/24", i), 0))
		index, err := leader.ReadIndex(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := follower.WaitApplied(ctx, index); err != nil {
			t.Fatal(err)
		}
		if _, ok := follower.State().Networks[fmt.Sprintf("net%d", i)]; !ok {
			t.Fatalf("follower applied index %d but lacks net%d", index, i)
		}
	}

	// Cut off, the leader must stop giving read indexes. A heartbeat that
	// was in flight when the cut happened may still count as an answer of
	// the quorum (hashicorp/raft credits a verification with acks that
	// arrive after it was asked), so the first call may succeed; by the
	// time a heartbeat interval has passed, every call must fail.
	DisconnectInmem(leader, stores[1:]...)
	time.Sleep(500 * time.Millisecond)
	for i := range 3 {
		short, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := leader.ReadIndex(short)
		cancel2()
		if !errors.Is(err, ErrNoQuorum) && !errors.Is(err, ErrNotLeader) {
			t.Fatalf("read index %d on a leader cut off 0.5 s ago: %v, want ErrNoQuorum or ErrNotLeader", i, err)
		}
	}
}

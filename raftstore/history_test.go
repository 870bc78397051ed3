package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// movedScript is the story of an address: endpoint "one" on host a holds
// 10.20.0.50, is detached, and endpoint "two" on host b takes the address.
// A refused attach and a retried request sit in between.
func movedScript() []Command {
	one := attach("one", "web", "a", mac(1))
	one.Endpoint.IP = netip.MustParseAddr("10.20.0.50")
	one.ReqID, one.Origin = "req-one", "a"
	two := attach("two", "web", "b", mac(2))
	two.Endpoint.IP = netip.MustParseAddr("10.20.0.50")
	two.ReqID, two.Origin = "req-two", "b"
	clash := two
	clash.ReqID = "req-clash"
	detach := Command{Op: OpEndpointDetach, Name: "one", ReqID: "req-detach", Origin: "c", Time: 4}
	return []Command{
		addHost("a", "10.0.0.1"),
		addHost("b", "10.0.0.2"),
		createNet("web", "10.20.0.0/24", 0),
		one,
		clash, // 10.20.0.50 is taken: refused
		one,   // a retry: a duplicate
		{Op: OpMACAnnounce, MACs: []MACEntry{{Network: "web", MAC: "02:aa:00:00:00:01", Host: "a", Port: "one"}}},
		detach,
		two,
	}
}

func TestHistoryExplainsAnAddressThatMoved(t *testing.T) {
	h := newHarness(t)
	for _, c := range movedScript() {
		h.apply(c)
	}
	entries, base := h.f.Explain("10.20.0.50", "")
	if base != 0 {
		t.Fatalf("base index %d, want 0 (nothing dropped)", base)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%d %s %s %s", e.Index, e.Op, e.Origin, e.ReqID))
	}
	want := []string{
		"4 endpoint.attach a req-one",
		"8 endpoint.detach c req-detach",
		"9 endpoint.attach b req-two",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("explain 10.20.0.50:\n got %q\nwant %q", got, want)
	}
	// By name, MAC and alias of the first endpoint: its learned MAC too.
	for _, subject := range []string{"one", mac(1), strings.ToUpper(mac(1))} {
		entries, _ := h.f.Explain(subject, "")
		var idx []uint64
		for _, e := range entries {
			idx = append(idx, e.Index)
		}
		if subject == "one" && !reflect.DeepEqual(idx, []uint64{4, 7, 8}) {
			t.Errorf("explain %s: indexes %v, want [4 7 8] (attach, MAC learned behind it, detach)", subject, idx)
		}
		if subject != "one" && !reflect.DeepEqual(idx, []uint64{4, 8}) {
			t.Errorf("explain %s: indexes %v, want [4 8]", subject, idx)
		}
	}
	if entries, _ := h.f.Explain("10.20.0.50", "other"); len(entries) != 0 {
		t.Errorf("explain in another network: %d entries, want none", len(entries))
	}
	// The detach entry says what it removed, and the MAC learned behind it.
	det := entries[1]
	if len(det.Changes) != 2 || det.Changes[0].Action() != "removed" || det.Changes[0].Old.Endpoint.Host != "a" ||
		det.Changes[1].Kind != KindMAC {
		t.Fatalf("detach changes: %+v", det.Changes)
	}
	all, gone, _ := h.f.History(0, 0)
	if gone || len(all) != 9 {
		t.Fatalf("History(0): %d entries, gone %v; want 9, false", len(all), gone)
	}
	if all[4].Err == "" || all[4].Changes != nil || all[4].Data != nil {
		t.Errorf("refused entry: %+v, want an error and no changes", all[4])
	}
	if !all[5].Duplicate || all[5].Changes != nil {
		t.Errorf("retried entry: %+v, want a duplicate without changes", all[5])
	}
	if tail, _, _ := h.f.History(7, 1); len(tail) != 1 || tail[0].Index != 8 {
		t.Errorf("History(7, 1) = %v, want entry 8 only", tail)
	}
}

func TestHistoryHostRemovalTakesEndpoints(t *testing.T) {
	h := newHarness(t)
	h.must(addHost("a", "10.0.0.1"))
	h.must(createNet("web", "10.20.0.0/24", 0))
	r := h.must(attach("api", "web", "a", mac(1)))
	h.must(Command{Op: OpHostRemove, Name: "a"})
	entries, _ := h.f.Explain(r.Endpoint.IP.String(), "web")
	if len(entries) != 2 || entries[1].Op != OpHostRemove {
		t.Fatalf("explain %s: %+v, want the attach and the host removal", r.Endpoint.IP, entries)
	}
	if entries, _ := h.f.Explain("10.0.0.1", ""); len(entries) != 2 {
		t.Fatalf("explain the host's VTEP: %d entries, want 2 (added, removed)", len(entries))
	}
}

// hashesAfter applies cmds and returns the state hash after each raft index.
func hashesAfter(h *harness, cmds []Command) map[uint64]string {
	want := map[uint64]string{0: emptyState().Hash()}
	for _, c := range cmds {
		h.apply(c)
		want[h.index] = h.f.State().Hash()
	}
	return want
}

func TestStateAtReplaysTheFSM(t *testing.T) {
	h := newHarness(t)
	want := hashesAfter(h, append(movedScript(), script()[3:]...))
	for i := uint64(0); i <= h.index; i++ {
		st, err := h.f.StateAt(i)
		if err != nil {
			t.Fatalf("StateAt(%d): %v", i, err)
		}
		if st.Hash() != want[i] {
			t.Fatalf("StateAt(%d) differs from the state captured after that index", i)
		}
	}
	if st, _ := h.f.StateAt(h.index + 10); st.Hash() != h.f.State().Hash() {
		t.Fatalf("StateAt past the end differs from the current state")
	}
}

func TestHistoryBoundsFoldIntoTheBase(t *testing.T) {
	h := newHarness(t)
	h.f.SetHistoryLimits(HistoryLimits{Entries: 4})
	want := hashesAfter(h, movedScript())
	info := h.f.HistoryInfo()
	if info.Entries != 4 || info.BaseIndex != 5 || info.First != 6 || info.Last != 9 {
		t.Fatalf("info %+v, want 4 entries after base index 5", info)
	}
	for i := uint64(0); i <= h.index; i++ {
		st, err := h.f.StateAt(i)
		switch {
		case i < 5:
			if !errors.Is(err, ErrHistoryGone) || !strings.Contains(err.Error(), "starts after index 5") {
				t.Errorf("StateAt(%d): %v, want ErrHistoryGone naming index 5", i, err)
			}
		case err != nil:
			t.Errorf("StateAt(%d): %v", i, err)
		case st.Hash() != want[i]:
			t.Errorf("StateAt(%d) differs from the state captured then", i)
		}
	}
	if _, gone, _ := h.f.History(2, 0); !gone {
		t.Errorf("History(2) does not report the dropped entries")
	}
	if _, err := h.f.IndexAt(0); !errors.Is(err, ErrHistoryGone) {
		t.Errorf("IndexAt before the history: %v, want ErrHistoryGone", err)
	}
	if i, err := h.f.IndexAt(4); err != nil || i != 9 {
		t.Errorf("IndexAt(4) = %d, %v; want 9 (the last entry at time 4)", i, err)
	}

	// Bytes and age bounds.
	b := newHarness(t)
	b.f.SetHistoryLimits(HistoryLimits{Bytes: 1500})
	hashesAfter(b, movedScript())
	if info := b.f.HistoryInfo(); info.Bytes > 1500 || info.Entries == 0 || info.BaseIndex == 0 {
		t.Errorf("byte bound 1500: %+v", info)
	}
	a := newHarness(t)
	a.f.SetHistoryLimits(HistoryLimits{Age: 1})
	hashesAfter(a, movedScript()) // times 1, 1, 2, 3, 3, 3, 0, 4, 3
	if info := a.f.HistoryInfo(); info.First != 4 {
		t.Errorf("age bound 1ns: history starts at %d, want 4 (the detach at time 4 drops the entries before time 3)", info.First)
	}
}

func TestHistoryTravelsInSnapshots(t *testing.T) {
	h := newHarness(t)
	h.f.SetHistoryLimits(HistoryLimits{Entries: 6})
	want := hashesAfter(h, movedScript())
	snap := snapshotBytes(t, h.f)
	t.Logf("snapshot with history: %d bytes", len(snap))

	restored := NewFSM()
	restored.SetHistoryLimits(HistoryLimits{Entries: 6})
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if got, orig := restored.HistoryInfo(), h.f.HistoryInfo(); got != orig {
		t.Fatalf("restored history %+v, want %+v", got, orig)
	}
	for i := uint64(3); i <= h.index; i++ {
		st, err := restored.StateAt(i)
		if err != nil || st.Hash() != want[i] {
			t.Fatalf("restored StateAt(%d): %v, or a different state", i, err)
		}
	}
	entries, _ := restored.Explain("10.20.0.50", "")
	if len(entries) != 3 || entries[2].Origin != "b" {
		t.Fatalf("explain after restore: %+v", entries)
	}

	// A snapshot written before histories existed: the history starts at
	// its state.
	old := bytes.Replace(snap, []byte(`,"History":`), []byte(`,"Ignored":`), 1)
	legacy := NewFSM()
	if err := legacy.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatal(err)
	}
	if info := legacy.HistoryInfo(); info.BaseIndex != 9 || info.Entries != 0 {
		t.Fatalf("history after a legacy snapshot: %+v, want base 9 and no entries", info)
	}
	if _, err := legacy.StateAt(8); !errors.Is(err, ErrHistoryGone) {
		t.Fatalf("StateAt before a legacy snapshot: %v, want ErrHistoryGone", err)
	}
}

// TestSameEndpointComparesEveryField fails when Endpoint gains a field
// that sameEndpoint does not compare.
func TestSameEndpointComparesEveryField(t *testing.T) {
	base := Endpoint{Aliases: []string{"x"}}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		other := base
		other.Aliases = []string{"x"}
		f := reflect.ValueOf(&other).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("changed")
		case reflect.Int64:
			f.SetInt(7)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"y"}))
		default:
			f.Set(reflect.ValueOf(netip.MustParseAddr("10.0.0.1")))
		}
		if sameEndpoint(base, other) {
			t.Errorf("sameEndpoint ignores field %s", typ.Field(i).Name)
		}
	}
}

// TestHistoryAcrossLeaderChange checks that every host records every
// command exactly once, in raft order, with the host that proposed it,
// across a leader change and a snapshot that compacts the log.
func TestHistoryAcrossLeaderChange(t *testing.T) {
	stores := inmemCluster(t, 3, 3)
	old := stores[0]
	applyOK(t, old, addHost("n1", "10.0.0.1"))
	applyOK(t, old, createNet("web", "10.20.0.0/24", 0))
	for i := range 5 {
		c := attach(fmt.Sprintf("e%d", i), "web", "n1", mac(i+1))
		c.ReqID = fmt.Sprintf("r%d", i)
		applyOK(t, old, c)
	}
	waitFor(t, 10*time.Second, "replication", func() bool { return converged(stores...) })
	if err := stores[2].Snapshot(); err != nil {
		t.Fatal(err)
	}
	DisconnectInmem(old, stores[1:]...)
	var next *Store
	waitFor(t, 10*time.Second, "a new leader", func() bool {
		for _, s := range stores[1:] {
			if s.Role() == "leader" {
				next = s
				return true
			}
		}
		return false
	})
	for i := 5; i < 8; i++ {
		c := attach(fmt.Sprintf("e%d", i), "web", "n1", mac(i+1))
		c.ReqID = fmt.Sprintf("r%d", i)
		applyOK(t, next, c)
	}
	ConnectInmem(stores...)
	waitFor(t, 15*time.Second, "the old leader to catch up", func() bool { return converged(stores...) })
	for _, s := range stores {
		entries, gone, _ := s.FSM().History(0, 0)
		if gone {
			t.Fatalf("%s: history reports dropped entries", s.ID())
		}
		seen := map[string]bool{}
		var last uint64
		for _, e := range entries {
			if e.Index <= last {
				t.Fatalf("%s: entry %d after %d: not in order", s.ID(), e.Index, last)
			}
			last = e.Index
			if e.ReqID != "" && seen[e.ReqID] {
				t.Fatalf("%s: request %s recorded twice", s.ID(), e.ReqID)
			}
			seen[e.ReqID] = true
			if !e.Applied() {
				t.Fatalf("%s: entry %d not applied: %+v", s.ID(), e.Index, e)
			}
		}
		if len(entries) != 10 {
			t.Fatalf("%s: %d entries, want 10", s.ID(), len(entries))
		}
		if o := entries[9].Origin; o != next.ID() {
			t.Errorf("%s: last entry proposed by %q, want the new leader %s", s.ID(), o, next.ID())
		}
		st, err := s.FSM().StateAt(entries[6].Index)
		if err != nil || st.Endpoints.Len() != 5 {
			t.Fatalf("%s: state at the last write of the first leader: %v", s.ID(), err)
		}
	}
}

// TestHistorySurvivesRestart reopens an on-disk store whose log was
// compacted by a snapshot: the history comes back from the snapshot and
// the log entries after it.
func TestHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ID: "n1", Dir: dir, Bind: freeAddr(t), Bootstrap: true, SnapshotThreshold: 8}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitFor(t, 10*time.Second, "leadership", func() bool { return s.Role() == "leader" })
	applyOK(t, s, addHost("n1", "127.0.0.1"))
	applyOK(t, s, createNet("web", "10.20.0.0/24", 0))
	for i := range 4 {
		applyOK(t, s, attach(fmt.Sprintf("e%d", i), "web", "n1", mac(i+1)))
	}
	applyOK(t, s, Command{Op: OpEndpointDetach, Name: "e1"})
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	applyOK(t, s, attach("e9", "web", "n1", mac(9)))
	before, _, _ := s.FSM().History(0, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	waitFor(t, 15*time.Second, "leadership after reopen", func() bool { return s2.Role() == "leader" })
	if err := s2.WaitApplied(ctx, before[len(before)-1].Index); err != nil {
		t.Fatal(err)
	}
	after, _, _ := s2.FSM().History(0, 0)
	if len(after) != len(before) {
		t.Fatalf("history after restart: %d entries, want %d", len(after), len(before))
	}
	for i := range before {
		if before[i].Index != after[i].Index || before[i].Op != after[i].Op || before[i].Origin != "n1" ||
			!reflect.DeepEqual(before[i].Changes, after[i].Changes) {
			t.Fatalf("entry %d differs after restart: %+v vs %+v", i, before[i], after[i])
		}
	}
	entries, _ := s2.FSM().Explain("e1", "")
	if len(entries) != 2 || entries[1].Op != OpEndpointDetach {
		t.Fatalf("explain e1 after restart: %+v", entries)
	}
}

// TestHistoryCost reports what the history costs for a 1000-endpoint
// cluster: bytes per entry, snapshot size with and without it, and apply
// time while entries are folded into the base. Run with -v to read it.
func TestHistoryCost(t *testing.T) {
	build := func(limits *HistoryLimits) (*harness, time.Duration) {
		h := &harness{t: t, f: newBareFSM()} // nil limits: no history, the baseline
		if limits != nil {
			h.f = NewFSM()
			h.f.SetHistoryLimits(*limits)
		}
		for i := range 10 {
			h.must(addHost(fmt.Sprintf("h%d", i), fmt.Sprintf("10.0.0.%d", i+1)))
		}
		h.must(createNet("web", "10.16.0.0/16", 0))
		start := time.Now()
		for i := range 1000 {
			c := attach(fmt.Sprintf("e%d", i), "web", fmt.Sprintf("h%d", i%10), mac(i+1))
			c.ReqID, c.Origin, c.Time = fmt.Sprintf("%024x", i), "h1", time.Now().UnixNano()
			h.must(c)
		}
		return h, time.Since(start)
	}
	_, bare := build(nil)
	full, took := build(&HistoryLimits{})
	info := full.f.HistoryInfo()
	snap := len(snapshotBytes(t, full.f))
	data := full.f.snapshotData()
	data.History = nil
	var sink bufferSink
	if err := (fsmSnapshot{data}).Persist(&sink); err != nil {
		t.Fatal(err)
	}
	folded, tookFolding := build(&HistoryLimits{Entries: 100})
	t.Logf("1000 attaches: history %d entries, %d bytes (%d bytes an entry); snapshot %d bytes with the history, %d without; apply %v without a history, %v with it, %v while folding every entry into the base (%d entries kept)",
		info.Entries, info.Bytes, info.Bytes/info.Entries, snap, sink.Len(), bare.Round(time.Millisecond), took.Round(time.Millisecond), tookFolding.Round(time.Millisecond), folded.f.HistoryInfo().Entries)
	start := time.Now()
	if _, err := full.f.StateAt(info.Last - 500); err != nil {
		t.Fatal(err)
	}
	t.Logf("StateAt replaying 511 entries of a 1000-endpoint cluster: %v", time.Since(start).Round(time.Millisecond))
}

package raftstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Default bounds of the history (HistoryLimits). A 1000-endpoint cluster
// takes about 3,000 entries to build (host adds, network creates, attaches
// and the MAC announcements that follow); 20,000 entries keep several such
// rebuilds, and at about 0.5-1 KB an entry they stay under 16 MiB.
const (
	DefaultHistoryEntries = 20000
	DefaultHistoryBytes   = 16 << 20
)

// ErrHistoryGone is wrapped by errors for a question about an index older
// than the retained history: the entries it needs were dropped.
var ErrHistoryGone = errors.New("raftstore: history is gone")

// HistoryLimits bound the history an FSM keeps. The oldest entries are
// dropped first, as soon as any bound is passed; dropping one folds it into
// the history's base state. The zero value means the defaults, with no age
// bound. Every host should use the same limits: the bounds decide where
// the retained history starts, which is carried in snapshots.
type HistoryLimits struct {
	Entries int           // at most this many entries; 0 = DefaultHistoryEntries, < 0 = none kept
	Bytes   int           // at most this many bytes (JSON size of the entries); 0 = DefaultHistoryBytes
	Age     time.Duration // drop the oldest entries while they are older than this before the newest (by Command.Time); 0 = no age bound
}

func (l HistoryLimits) withDefaults() HistoryLimits {
	if l.Entries == 0 {
		l.Entries = DefaultHistoryEntries
	}
	if l.Bytes == 0 {
		l.Bytes = DefaultHistoryBytes
	}
	return l
}

// Kinds of objects a Change names (Change.Kind).
const (
	KindHost        = "host"
	KindNetwork     = "network"
	KindEndpoint    = "endpoint"
	KindMAC         = "mac"
	KindVTEP        = "vtep"
	KindReservation = "reservation"
	KindCluster     = "cluster"
	KindToken       = "token"
)

// Object is one object of the State; exactly one field is set, the one
// Change.Kind names (none for KindCluster and KindToken: what they hold
// is not recorded, so a history never shows a secret).
type Object struct {
	Host        *Host        `json:",omitempty"`
	Network     *Network     `json:",omitempty"`
	Endpoint    *Endpoint    `json:",omitempty"`
	MAC         *MACEntry    `json:",omitempty"`
	VTEP        *VTEP        `json:",omitempty"`
	Reservation *Reservation `json:",omitempty"`
}

// Change is one object a command added (Old nil), removed (New nil) or
// updated. It is computed from the states before and after the FSM applied
// the command, so it tells what the FSM did, including what a command only
// implies (the endpoints a host.remove took with it, the address IPAM
// chose).
type Change struct {
	Kind string
	Key  string  // the object's key in its State map: a name, MACKey, ReservationKey, or NETWORK/ADDR for a VTEP
	Old  *Object `json:",omitempty"`
	New  *Object `json:",omitempty"`
}

// Action returns "added", "removed" or "updated".
func (c Change) Action() string {
	switch {
	case c.Old == nil:
		return "added"
	case c.New == nil:
		return "removed"
	}
	return "updated"
}

// Object returns the object as it is after the change, or as it was before
// a removal.
func (c Change) Object() Object {
	if c.New != nil {
		return *c.New
	}
	if c.Old != nil {
		return *c.Old
	}
	return Object{}
}

// HistoryEntry is one command of the raft log as this host's FSM applied
// it. Entries are immutable once recorded.
type HistoryEntry struct {
	Index  uint64 // raft index
	Term   uint64 // raft term
	Time   int64  // Command.Time: unix nanoseconds, chosen by the proposer
	Op     string
	ReqID  string `json:",omitempty"`
	Origin string `json:",omitempty"` // Command.Origin: the host that proposed it
	// Err is the FSM's refusal; a refused command changed nothing.
	Err string `json:",omitempty"`
	// Duplicate marks a retry of a request already applied (same ReqID):
	// it changed nothing.
	Duplicate bool     `json:",omitempty"`
	Changes   []Change `json:",omitempty"`
	// Data is the command as committed; kept only for applied commands,
	// the ones a replay needs.
	Data json.RawMessage `json:",omitempty"`

	size int // JSON size, counted against HistoryLimits.Bytes
}

// Applied reports whether the command changed the state (neither refused
// nor a duplicate).
func (e *HistoryEntry) Applied() bool { return e.Err == "" && !e.Duplicate }

// HistoryInfo says what a history retains.
type HistoryInfo struct {
	Limits  HistoryLimits
	Entries int
	Bytes   int
	// BaseIndex is the raft index the base state is at: everything up to
	// it was dropped (0 = nothing was dropped, the history starts at the
	// beginning of the cluster). First and Last are the indexes of the
	// oldest and newest retained entries (0 without entries).
	BaseIndex   uint64
	First, Last uint64
}

// history is the FSM's bounded record of applied commands, with the state
// before the oldest of them. It is guarded by its FSM's mu, except for the
// fields under hmu, which readers take without blocking Apply for long.
type history struct {
	limits HistoryLimits

	hmu     sync.Mutex
	base    *FSM // the state after BaseIndex: a real FSM, advanced by the entries dropped
	baseIdx uint64
	entries []*HistoryEntry // oldest first
	bytes   int
	wake    chan struct{} // closed and replaced after each new entry
}

func newHistory(limits HistoryLimits) *history {
	return &history{limits: limits.withDefaults(), base: newBareFSM(), wake: make(chan struct{})}
}

// newBareFSM returns an FSM without a history of its own: the base of a
// history, or a replay.
func newBareFSM() *FSM {
	f := &FSM{reqs: requestLog{results: map[string]*Result{}}}
	f.state.Store(emptyState())
	return f
}

// SetHistoryLimits changes the bounds of the history; the next Apply
// enforces them. Call it before raft starts.
func (f *FSM) SetHistoryLimits(l HistoryLimits) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hist.hmu.Lock()
	f.hist.limits = l.withDefaults()
	f.hist.hmu.Unlock()
}

// record adds one applied log entry and drops the oldest ones past the
// limits, folding them into the base state. The caller holds f.mu.
func (h *history) record(l *raft.Log, cmd Command, res *Result, dup bool, prev, next *State) {
	if h == nil {
		return
	}
	e := &HistoryEntry{
		Index: l.Index, Term: l.Term, Time: cmd.Time, Op: cmd.Op, ReqID: cmd.ReqID, Origin: cmd.Origin,
		Err: res.Err, Duplicate: dup,
	}
	if e.Applied() {
		e.Changes = diffStates(prev, next)
		e.Data = json.RawMessage(l.Data)
	}
	if b, err := json.Marshal(e); err == nil {
		e.size = len(b)
	}
	h.hmu.Lock()
	defer h.hmu.Unlock()
	h.entries = append(h.entries, e)
	h.bytes += e.size
	h.trim()
	close(h.wake)
	h.wake = make(chan struct{})
}

// trim drops the oldest entries past the limits. The caller holds hmu.
func (h *history) trim() {
	drop := 0
	newest := h.entries[len(h.entries)-1].Time
	for drop < len(h.entries) {
		n, e := len(h.entries)-drop, h.entries[drop]
		over := n > max(h.limits.Entries, 0) || h.bytes > h.limits.Bytes ||
			(h.limits.Age > 0 && e.Time < newest-int64(h.limits.Age))
		if !over {
			break
		}
		if e.Applied() {
			h.base.Apply(&raft.Log{Index: e.Index, Term: e.Term, Type: raft.LogCommand, Data: e.Data})
		}
		h.baseIdx = e.Index
		h.bytes -= e.size
		drop++
	}
	if drop > 0 {
		// Clear the dropped slots so their entries can be collected, and
		// slice past them: append moves the live entries to a new array
		// when this one is full, so a record costs O(1) amortized. (A
		// clone here copied the whole history, 20,000 pointers, on every
		// apply once the history was full.) Readers copy under hmu.
		clear(h.entries[:drop])
		h.entries = h.entries[drop:]
	}
}

// historySnapshot is the history inside a snapshot: the base FSM's own
// snapshot, its index, and the entries after it.
type historySnapshot struct {
	BaseIndex uint64
	Base      *snapshotData
	Entries   []*HistoryEntry
}

// snapshot captures the history. The caller holds f.mu, so no entry is
// added meanwhile.
func (h *history) snapshot() *historySnapshot {
	if h == nil {
		return nil
	}
	h.hmu.Lock()
	defer h.hmu.Unlock()
	return &historySnapshot{BaseIndex: h.baseIdx, Base: h.base.snapshotData(), Entries: slices.Clone(h.entries)}
}

// restore replaces the history with the one of a snapshot; a snapshot
// without one (written before histories existed) starts the history at the
// restored state cur. The caller holds f.mu.
func (h *history) restore(s *historySnapshot, cur *State) error {
	if h == nil {
		return nil
	}
	base := newBareFSM()
	var baseIdx uint64
	var entries []*HistoryEntry
	if s != nil && s.Base != nil {
		if err := base.restoreData(s.Base); err != nil {
			return fmt.Errorf("history base: %w", err)
		}
		baseIdx, entries = s.BaseIndex, s.Entries
		// cur, decoded apart and not yet published, shares with the base
		// the endpoints the retained commands left alone.
		cur.Endpoints.shareWith(base.State().Endpoints)
	} else {
		base.state.Store(cur)
		baseIdx = cur.Index
	}
	size := 0
	for _, e := range entries {
		if b, err := json.Marshal(e); err == nil {
			e.size = len(b)
		}
		size += e.size
	}
	h.hmu.Lock()
	defer h.hmu.Unlock()
	h.base, h.baseIdx, h.entries, h.bytes = base, baseIdx, entries, size
	close(h.wake)
	h.wake = make(chan struct{})
	return nil
}

// HistoryInfo says what the history retains now.
func (f *FSM) HistoryInfo() HistoryInfo {
	h := f.hist
	h.hmu.Lock()
	defer h.hmu.Unlock()
	info := HistoryInfo{Limits: h.limits, Entries: len(h.entries), Bytes: h.bytes, BaseIndex: h.baseIdx}
	if n := len(h.entries); n > 0 {
		info.First, info.Last = h.entries[0].Index, h.entries[n-1].Index
	}
	return info
}

// History returns the retained entries with an index above after, oldest
// first, at most limit of them (0 = all), and a channel that is closed when
// a newer entry is recorded. gone reports that entries after index after
// were dropped before the first one returned (after is older than the
// retained history).
func (f *FSM) History(after uint64, limit int) (entries []*HistoryEntry, gone bool, wake <-chan struct{}) {
	h := f.hist
	h.hmu.Lock()
	defer h.hmu.Unlock()
	i := sort.Search(len(h.entries), func(i int) bool { return h.entries[i].Index > after })
	out := h.entries[i:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return slices.Clone(out), after < h.baseIdx, h.wake
}

// IndexAt returns the raft index the state was at, at time t (unix
// nanoseconds, compared with Command.Time): the index of the entry before
// the first retained one proposed after t. Command times come from the
// proposers' clocks, so they are in raft order only as far as those clocks
// agree. It fails with ErrHistoryGone when t is older than the retained
// history.
func (f *FSM) IndexAt(t int64) (uint64, error) {
	h := f.hist
	h.hmu.Lock()
	defer h.hmu.Unlock()
	i := slices.IndexFunc(h.entries, func(e *HistoryEntry) bool { return e.Time > t })
	switch {
	case i < 0 && len(h.entries) > 0:
		return h.entries[len(h.entries)-1].Index, nil
	case i > 0:
		return h.entries[i-1].Index, nil
	case i < 0 || h.baseIdx == 0:
		return 0, nil // before the first command: the empty state
	}
	return 0, fmt.Errorf("%w: %s is older than the retained history, which starts after index %d: ask about a later time, or raise the history bounds (agent --history-entries)",
		ErrHistoryGone, time.Unix(0, t).UTC().Format(time.RFC3339Nano), h.baseIdx)
}

// StateAt rebuilds the state as it was after raft index index: it restores
// a fresh FSM from the history's base and applies the retained commands up
// to index through FSM.Apply, the same code that applied them the first
// time. It fails with ErrHistoryGone for an index older than the base.
func (f *FSM) StateAt(index uint64) (*State, error) {
	h := f.hist
	h.hmu.Lock()
	baseIdx := h.baseIdx
	base := h.base.snapshotData()
	n := sort.Search(len(h.entries), func(i int) bool { return h.entries[i].Index > index })
	entries := slices.Clone(h.entries[:n])
	h.hmu.Unlock()
	if index < baseIdx {
		return nil, fmt.Errorf("%w: index %d is older than the retained history, which starts after index %d: ask about a later index, or raise the history bounds (agent --history-entries)",
			ErrHistoryGone, index, baseIdx)
	}
	replay := newBareFSM()
	if err := replay.restoreData(base); err != nil {
		return nil, fmt.Errorf("raftstore: state at index %d: %w", index, err)
	}
	for _, e := range entries {
		if !e.Applied() {
			continue
		}
		res, _ := replay.Apply(&raft.Log{Index: e.Index, Term: e.Term, Type: raft.LogCommand, Data: e.Data}).(*Result)
		if res == nil || res.Err != "" {
			return nil, fmt.Errorf("raftstore: state at index %d: replay of index %d (%s) was refused: %v: please report this bug", index, e.Index, e.Op, res)
		}
	}
	return replay.State(), nil
}

// snapshotData captures f's state and request log, as Snapshot does.
func (f *FSM) snapshotData() *snapshotData {
	data := &snapshotData{Version: snapshotVersion, State: f.state.Load()}
	for _, id := range f.reqs.order {
		data.Requests = append(data.Requests, recordedRequest{ReqID: id, Result: f.reqs.results[id]})
	}
	return data
}

// restoreData makes a bare FSM hold the state and request log of data.
func (f *FSM) restoreData(data *snapshotData) error {
	st, reqs, err := snapshotContents(data)
	if err != nil {
		return err
	}
	f.reqs = reqs
	f.state.Store(st)
	return nil
}

// snapshotContents checks the version of a snapshot and returns its state
// and request log.
func snapshotContents(data *snapshotData) (*State, requestLog, error) {
	if data.Version != snapshotVersion {
		return nil, requestLog{}, fmt.Errorf("version %d is not supported (want %d): upgrade vxswitch", data.Version, snapshotVersion)
	}
	st := data.State
	if st == nil {
		st = emptyState()
	}
	st.normalize()
	reqs := requestLog{results: map[string]*Result{}}
	for _, r := range data.Requests {
		if r.Result != nil {
			reqs.add(r.ReqID, r.Result)
		}
	}
	return st, reqs, nil
}

// Matches reports whether the change touches subject: the name of an
// endpoint (or one of its aliases), host or network, an IP address or a
// MAC address. A non-empty network limits the match to objects of that
// network (hosts belong to every network).
func (c Change) Matches(subject, network string) bool {
	ip, _ := netip.ParseAddr(subject)
	mac, _ := parseMAC(subject)
	for _, o := range []*Object{c.Old, c.New} {
		if o != nil && o.matches(subject, ip, mac, network) {
			return true
		}
	}
	return false
}

func (o *Object) matches(name string, ip netip.Addr, mac, network string) bool {
	inNet := func(n string) bool { return network == "" || n == network }
	switch {
	case o.Host != nil:
		return o.Host.Name == name || (ip.IsValid() && o.Host.VTEP == ip)
	case o.Network != nil:
		return inNet(o.Network.Name) && o.Network.Name == name
	case o.Endpoint != nil:
		e := o.Endpoint
		return inNet(e.Network) && (e.Name == name || slices.Contains(e.Aliases, name) ||
			(ip.IsValid() && (e.IP == ip || e.IP6 == ip)) || (mac != "" && e.MAC == mac))
	case o.MAC != nil:
		return inNet(o.MAC.Network) && ((mac != "" && o.MAC.MAC == mac) || o.MAC.Port == name)
	case o.VTEP != nil:
		return inNet(o.VTEP.Network) && ip.IsValid() && o.VTEP.Addr == ip
	case o.Reservation != nil:
		return inNet(o.Reservation.Network) && ip.IsValid() && o.Reservation.IP == ip
	}
	return false
}

// Matching returns the objects of s that subject names (see
// Change.Matches), by kind, then key.
func (s *State) Matching(subject, network string) []Change {
	none := emptyState()
	var out []Change
	for _, c := range diffStates(none, s) {
		if c.Kind != KindCluster && c.Kind != KindToken && c.Matches(subject, network) {
			out = append(out, c)
		}
	}
	return out
}

// Explain returns the retained entries with a change that touches subject
// (see Change.Matches), oldest first, and the index the retained history
// starts after (0 = the beginning of the cluster).
func (f *FSM) Explain(subject, network string) (entries []*HistoryEntry, baseIndex uint64) {
	h := f.hist
	h.hmu.Lock()
	all, baseIndex := slices.Clone(h.entries), h.baseIdx
	h.hmu.Unlock()
	for _, e := range all {
		for _, c := range e.Changes {
			if c.Matches(subject, network) {
				entries = append(entries, e)
				break
			}
		}
	}
	return entries, baseIndex
}

// diffStates returns the objects that differ between prev and next, in a
// stable order: by kind, then key.
func diffStates(prev, next *State) []Change {
	var out []Change
	out = diffMap(out, KindHost, prev.Hosts, next.Hosts, func(v Host) *Object { return &Object{Host: &v} }, func(a, b Host) bool { return a == b })
	out = diffMap(out, KindNetwork, prev.Networks, next.Networks, func(v Network) *Object { return &Object{Network: &v} }, func(a, b Network) bool { return a == b })
	out = diffEndpoints(out, prev.Endpoints, next.Endpoints)
	out = diffMap(out, KindMAC, prev.MACs, next.MACs, func(v MACEntry) *Object { return &Object{MAC: &v} }, func(a, b MACEntry) bool { return a == b })
	out = diffMap(out, KindReservation, prev.Reserved, next.Reserved, func(v Reservation) *Object { return &Object{Reservation: &v} }, func(a, b Reservation) bool { return a == b })
	vteps := func(s *State) map[string]VTEP {
		m := make(map[string]VTEP, len(s.VTEPs))
		for _, v := range s.VTEPs {
			m[v.Network+"/"+v.Addr.String()] = v
		}
		return m
	}
	if !slices.Equal(prev.VTEPs, next.VTEPs) {
		out = diffMap(out, KindVTEP, vteps(prev), vteps(next), func(v VTEP) *Object { return &Object{VTEP: &v} }, func(a, b VTEP) bool { return a == b })
	}
	out = diffMap(out, KindToken, prev.Tokens, next.Tokens, func(JoinToken) *Object { return &Object{} }, func(a, b JoinToken) bool { return a == b })
	if prev.Cluster != next.Cluster {
		c := Change{Kind: KindCluster, Key: "cluster", Old: &Object{}, New: &Object{}}
		if prev.Cluster == nil {
			c.Old = nil
		}
		out = append(out, c)
	}
	return out
}

func sameEndpoint(a, b Endpoint) bool {
	return a.Name == b.Name && a.Network == b.Network && a.Host == b.Host && a.MAC == b.MAC &&
		a.IP == b.IP && a.IP6 == b.IP6 && a.NetNS == b.NetNS && a.IfName == b.IfName && a.CreatedAt == b.CreatedAt &&
		a.Owner == b.Owner && slices.Equal(a.Aliases, b.Aliases)
}

// diffEndpoints appends the changes between two versions of the
// endpoints, by key; it visits only the parts that differ.
func diffEndpoints(out []Change, prev, next EndpointMap) []Change {
	start := len(out)
	prev.diff(next, func(o, n *Endpoint) {
		c := Change{Kind: KindEndpoint}
		if o != nil {
			c.Key, c.Old = o.Name, &Object{Endpoint: o}
		}
		if n != nil {
			c.Key, c.New = n.Name, &Object{Endpoint: n}
		}
		out = append(out, c)
	})
	sort.Slice(out[start:], func(i, j int) bool { return out[start+i].Key < out[start+j].Key })
	return out
}

// sameMap reports whether a and b are the same map (not a copy): a
// command that did not change a map shares it with the state before.
func sameMap[V any](a, b map[string]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// diffMap appends the changes between two maps of one kind, by key. A map
// the two states share has none.
func diffMap[V any](out []Change, kind string, prev, next map[string]V, obj func(V) *Object, same func(a, b V) bool) []Change {
	if sameMap(prev, next) {
		return out
	}
	start := len(out)
	for k, o := range prev {
		n, ok := next[k]
		switch {
		case !ok:
			out = append(out, Change{Kind: kind, Key: k, Old: obj(o)})
		case !same(o, n):
			out = append(out, Change{Kind: kind, Key: k, Old: obj(o), New: obj(n)})
		}
	}
	for k, n := range next {
		if _, ok := prev[k]; !ok {
			out = append(out, Change{Kind: kind, Key: k, New: obj(n)})
		}
	}
	sort.Slice(out[start:], func(i, j int) bool { return out[start+i].Key < out[start+j].Key })
	return out
}

package vswitch

import (
	"net/netip"
	"sync"
	"time"
)

// owner is what a learned entry counts against for its cap: a local port
// (MACs learned on a TAP) or a network (MACs learned from external VTEPs).
type owner struct {
	port *port
	vni  uint32
}

// learnEntry is where a learned MAC lives: a local port or a VTEP.
type learnEntry struct {
	owner owner
	port  *port      // local entries
	vtep  netip.Addr // wire entries
	seen  time.Time
}

// learnTable is a table of learned MACs with a cap per owner and aging.
// Its zero value is an empty table that never ages entries (age 0); the
// mutex guards everything, so it may be used from any goroutine.
//
// No call scans the whole table under the mutex except all (the API's FDB
// listing): entries are indexed by owner, and an owner at its cap sweeps
// only its own entries, at most once per sweepEvery, so a port that sends
// new source MACs as fast as it can costs O(1) per frame.
type learnTable struct {
	age time.Duration // set once by New, before any use

	mu      sync.Mutex
	entries map[fdbKey]learnEntry
	byOwner map[owner]map[fdbKey]struct{}
	swept   map[owner]time.Time // last sweep of an owner at its cap
}

// sweepEvery is how often an owner at its cap may look for its own
// expired entries.
const sweepEvery = time.Second

// learnResult is what learn did.
type learnResult int

const (
	learned    learnResult = iota // recorded or refreshed
	learnFull                     // the owner is at its cap: nothing recorded
	learnTaken                    // another port or VTEP holds the MAC
)

// expired reports whether e was last seen more than the age time before now.
func (t *learnTable) expired(e learnEntry, now time.Time) bool {
	return t.age > 0 && now.Sub(e.seen) > t.age
}

// learn records e for k, refreshing it when it is already there. A MAC
// learned at another port or VTEP is not moved until its entry expires
// (learnTaken): a frame cannot take a MAC away from where it lives. It
// returns learnFull, recording nothing, when e's owner already has limit
// entries that have not expired.
func (t *learnTable) learn(k fdbKey, e learnEntry, limit int) learnResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.entries[k]
	if ok && old.owner == e.owner && old.port == e.port && old.vtep == e.vtep {
		old.seen = e.seen
		t.entries[k] = old
		return learned
	}
	if ok {
		if !t.expired(old, e.seen) {
			return learnTaken
		}
		t.removeLocked(k, old)
	}
	if len(t.byOwner[e.owner]) >= limit {
		if last, ok := t.swept[e.owner]; !ok || e.seen.Sub(last) >= sweepEvery || e.seen.Before(last) {
			t.swept[e.owner] = e.seen
			for k := range t.byOwner[e.owner] {
				if x := t.entries[k]; t.expired(x, e.seen) {
					t.removeLocked(k, x)
				}
			}
		}
		if len(t.byOwner[e.owner]) >= limit {
			return learnFull
		}
	}
	if t.entries == nil {
		t.entries = make(map[fdbKey]learnEntry)
		t.byOwner = make(map[owner]map[fdbKey]struct{})
		t.swept = make(map[owner]time.Time)
	}
	t.entries[k] = e
	keys := t.byOwner[e.owner]
	if keys == nil {
		keys = make(map[fdbKey]struct{})
		t.byOwner[e.owner] = keys
	}
	keys[k] = struct{}{}
	return learned
}

// holder returns the entry for k if one is there and has not expired,
// without removing anything.
func (t *learnTable) holder(k fdbKey, now time.Time) (learnEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[k]
	return e, ok && !t.expired(e, now)
}

// lookup returns the entry for k unless it is missing or expired; an
// expired entry is removed.
func (t *learnTable) lookup(k fdbKey, now time.Time) (learnEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[k]
	if !ok {
		return learnEntry{}, false
	}
	if t.expired(e, now) {
		t.removeLocked(k, e)
		return learnEntry{}, false
	}
	return e, true
}

// forget removes every entry of owner o.
func (t *learnTable) forget(o owner) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.byOwner[o] {
		t.removeLocked(k, t.entries[k])
	}
	delete(t.swept, o)
}

// all removes expired entries and returns the rest, in no particular order.
func (t *learnTable) all(now time.Time) map[fdbKey]learnEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked(now)
	out := make(map[fdbKey]learnEntry, len(t.entries))
	for k, e := range t.entries {
		out[k] = e
	}
	return out
}

func (t *learnTable) removeLocked(k fdbKey, e learnEntry) {
	delete(t.entries, k)
	if keys := t.byOwner[e.owner]; keys != nil {
		delete(keys, k)
		if len(keys) == 0 {
			delete(t.byOwner, e.owner)
		}
	}
}

func (t *learnTable) expireLocked(now time.Time) {
	for k, e := range t.entries {
		if t.expired(e, now) {
			t.removeLocked(k, e)
		}
	}
}

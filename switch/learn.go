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
type learnTable struct {
	age time.Duration // set once by New, before any use

	mu      sync.Mutex
	entries map[fdbKey]learnEntry
	counts  map[owner]int
}

// expired reports whether e was last seen more than the age time before now.
func (t *learnTable) expired(e learnEntry, now time.Time) bool {
	return t.age > 0 && now.Sub(e.seen) > t.age
}

// learn records e for k, refreshing it when it is already there. It returns
// false, recording nothing, when e's owner already has limit entries that
// have not expired.
func (t *learnTable) learn(k fdbKey, e learnEntry, limit int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.entries[k]
	if ok && old.owner == e.owner && old.port == e.port && old.vtep == e.vtep {
		old.seen = e.seen
		t.entries[k] = old
		return true
	}
	if ok { // the MAC moved: forget where it was
		t.removeLocked(k, old)
	}
	if t.counts[e.owner] >= limit {
		t.expireLocked(e.seen)
		if t.counts[e.owner] >= limit {
			return false
		}
	}
	if t.entries == nil {
		t.entries = make(map[fdbKey]learnEntry)
		t.counts = make(map[owner]int)
	}
	t.entries[k] = e
	t.counts[e.owner]++
	return true
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
	for k, e := range t.entries {
		if e.owner == o {
			t.removeLocked(k, e)
		}
	}
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
	if t.counts[e.owner]--; t.counts[e.owner] <= 0 {
		delete(t.counts, e.owner)
	}
}

func (t *learnTable) expireLocked(now time.Time) {
	for k, e := range t.entries {
		if t.expired(e, now) {
			t.removeLocked(k, e)
		}
	}
}

package agent

import (
	"log/slog"
	"sync"
	"time"
)

// rateLog logs a message at most once per period per key; the calls in
// between are counted and the count is added to the next message that is
// logged, so a peer that sends refused requests in a loop cannot flood the
// log. The zero value logs every message; set period. Safe for concurrent
// use.
type rateLog struct {
	period time.Duration
	mu     sync.Mutex
	last   map[string]time.Time
	quiet  map[string]int // calls not logged since the last one that was
}

// warn logs msg with args at warning level on log, unless key was logged
// less than period ago.
func (r *rateLog) warn(log *slog.Logger, key, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if r.last == nil {
		r.last, r.quiet = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := r.last[key]; ok && now.Sub(t) < r.period {
		r.quiet[key]++
		r.mu.Unlock()
		return
	}
	if len(r.last) > 1024 { // keys come from peers: keep the map bounded
		clear(r.last)
		clear(r.quiet)
	}
	r.last[key] = now
	n := r.quiet[key]
	delete(r.quiet, key)
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "not_logged_since_last", n)
	}
	log.Warn(msg, args...)
}

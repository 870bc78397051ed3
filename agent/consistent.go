package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"vxswitch/api"
)

// readTimeout bounds how long a consistent read waits for a leader to
// confirm the latest state: without a quorum it fails after this, with a
// hint that --stale answers from the last known state.
const readTimeout = 5 * time.Second

// errStaleHint ends every failed consistent read.
const errStaleHint = "retry when the cluster has a leader, or add --stale to read this host's last known state"

// consistentError is a consistent read that could not be made.
type consistentError struct{ err error }

func (e *consistentError) Error() string {
	return fmt.Sprintf("consistent read: no leader confirmed the cluster's latest state within %s (%v): %s", readTimeout, e.err, errStaleHint)
}

func (e *consistentError) Unwrap() error { return e.err }

// readIndex returns the leader's read index (raftstore.Store.ReadIndex),
// asking the leader over the peer API when this host is not it.
func (a *Agent) readIndex(ctx context.Context) (uint64, error) {
	var out api.ReadIndex
	err := a.onLeader(ctx, api.RouteInternalReadIndex, struct{}{}, &out, func(ctx context.Context) error {
		i, err := a.store.ReadIndex(ctx)
		out.Index = i
		return err
	})
	return out.Index, err
}

// catchUpConsistent waits until this host has applied every write that was
// committed anywhere in the cluster before the call, so that what it reads
// next agrees with the leader. It fails within readTimeout without a leader.
func (a *Agent) catchUpConsistent(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	index, err := a.readIndex(ctx)
	if err == nil {
		err = a.store.WaitApplied(ctx, index)
	}
	if err != nil {
		return &consistentError{err}
	}
	return nil
}

// consistent makes h answer from state at least as new as every write
// committed before the request arrived, on whichever host it runs: reads
// and the checks a write makes before it is proposed see what any other
// host acknowledged. A request with ?stale=1 skips the wait and is served
// from this host's applied state, which may lag (Consul's ?stale).
func (a *Agent) consistent(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !isStale(r) {
			if err := a.catchUpConsistent(r.Context()); err != nil {
				reply(w, nil, err)
				return
			}
		}
		h(w, r)
	}
}

// isStale tells whether the request opted out of consistent reads.
func isStale(r *http.Request) bool {
	switch r.URL.Query().Get("stale") {
	case "1", "true", "yes":
		return true
	}
	return false
}

func (a *Agent) handleReadIndex(w http.ResponseWriter, r *http.Request) {
	i, err := a.store.ReadIndex(r.Context())
	reply(w, api.ReadIndex{Index: i}, err)
}

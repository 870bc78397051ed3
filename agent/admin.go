package agent

import "net/http"

// handleSnapshot asks Raft on this host to take a snapshot now and compact
// its log, as it does on its own every couple of minutes. Operators use it
// before backups; tests use it to force a lagging follower onto the
// snapshot path.
func (a *Agent) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	reply(w, struct{}{}, a.store.Snapshot())
}

package agent

import (
	"net/http"

	"vxswitch/api"
)

// whenReady answers requests on the local socket only once the agent has
// joined the cluster and applied its state: before that, a listing would
// show an empty cluster. Until then it says so, and callers (the CLI, the
// lab's readiness poll) try again.
func (a *Agent) whenReady(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-a.ready:
			h.ServeHTTP(w, r)
		default:
			writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: "the agent is starting (joining the cluster and catching up with its state): try again in a moment"})
		}
	})
}

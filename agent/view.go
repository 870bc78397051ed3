package agent

import (
	"context"
	"fmt"
	"time"

	"vxswitch/raftstore"
)

// refresh publishes a new view built from the current state and brings the
// local ports in line with it. The view is rebuilt only for the networks
// and name zones that changed since the last refresh (stateview.Builder).
// Only Start and then the watch loop call it, one after
// the other.
func (a *Agent) refresh() {
	st := a.store.State()
	a.updateTrust()
	a.dns.SetTable(a.views.Names(st))
	a.sw.SetView(a.views.View(st, a.cfg.Name, a.endpointMTU))
	a.reconcile()
}

// watch refreshes after every state change until the agent stops.
func (a *Agent) watch(changes <-chan struct{}) {
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-changes:
			a.refresh()
		}
	}
}

// waitState waits until the local state satisfies ok, for at most
// writeTimeout.
func (a *Agent) waitState(ctx context.Context, ok func(*raftstore.State) bool) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !ok(a.store.State()) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("agent: committed, but this host has not applied it after %v: is it cut off from the leader?", writeTimeout)
		}
	}
	return nil
}

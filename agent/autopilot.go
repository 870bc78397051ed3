package agent

import (
	"context"
	"sort"
	"time"

	"vxswitch/api"
	"vxswitch/raftstore"
)

// autopilot runs until the agent stops. Every second, on the leader only,
// it looks for a voter that has not answered heartbeats for
// Config.VoterDeadAfter and, if a non-voter is healthy, caught up and a
// member for at least Config.VoterStabilize, replaces the dead voter by it
// (raftstore.Store.ReplaceVoter): one change at a time, never one that
// would leave fewer healthy voters than a quorum. So a cluster that loses
// voters one after another keeps its number of voters as long as healthy
// non-voters remain (Consul autopilot's dead-server cleanup).
func (a *Agent) autopilot() {
	a.every(time.Second, func() {
		if a.store.Role() == raftstore.RoleLeader {
			a.replaceDeadVoter()
		}
	})
}

// replaceDeadVoter makes at most one replacement; see autopilot.
func (a *Agent) replaceDeadVoter() {
	unreachable := a.store.Unreachable()
	servers, err := a.store.Servers()
	if err != nil {
		return
	}
	var dead string
	for _, s := range servers {
		if since, ok := unreachable[s.ID]; ok && s.Voter && time.Since(since) >= a.cfg.VoterDeadAfter {
			dead = s.ID
			break
		}
	}
	if dead == "" {
		return
	}
	// Raft's heartbeat observations are dropped when their queue is full,
	// so a lost "resumed" could leave a live voter marked unreachable: a
	// voter whose agent still answers is not replaced.
	if a.answers(dead) {
		return
	}
	next := a.promotable(servers, unreachable)
	if next == "" {
		a.log.Debug("a voter is dead, but no non-voter can replace it yet", "voter", dead)
		return
	}
	if err := a.store.ReplaceVoter(dead, next); err != nil {
		a.log.Warn("could not replace a dead voter", "voter", dead, "by", next, "err", err)
		return
	}
	a.voterReplacements.Add(1)
	a.log.Info("replaced a dead voter", "voter", dead, "dead_for", time.Since(unreachable[dead]).Round(time.Second), "promoted", next)
}

// promotable returns the non-voter that may become a voter now, the
// longest-standing first: answering heartbeats, a member for at least
// VoterStabilize, and caught up (its applied index within a few entries of
// this leader's, from its status).
func (a *Agent) promotable(servers []raftstore.Server, unreachable map[string]time.Time) string {
	st := a.store.State()
	var candidates []string
	for _, s := range servers {
		h, ok := st.Hosts[s.ID]
		if s.Voter || !ok {
			continue
		}
		if _, bad := unreachable[s.ID]; bad || time.Since(time.Unix(0, h.JoinedAt)) < a.cfg.VoterStabilize {
			continue
		}
		candidates = append(candidates, s.ID)
	}
	sort.Slice(candidates, func(i, j int) bool {
		return st.Hosts[candidates[i]].JoinedAt < st.Hosts[candidates[j]].JoinedAt
	})
	for _, id := range candidates {
		if s, ok := a.probe(id); ok && s.AppliedIndex+16 >= a.store.AppliedIndex() {
			return id
		}
	}
	return ""
}

// probe asks host id for its status over the peer API, waiting at most a
// second; ok is false when it does not answer as id.
func (a *Agent) probe(id string) (api.Status, bool) {
	h, known := a.store.State().Hosts[id]
	if !known {
		return api.Status{}, false
	}
	ctx, cancel := context.WithTimeout(a.ctx, time.Second)
	defer cancel()
	s, err := a.peers.host(h).Status(ctx)
	return s, err == nil && s.Name == id
}

// answers tells whether host id's agent answers a status probe now.
func (a *Agent) answers(id string) bool {
	_, ok := a.probe(id)
	return ok
}

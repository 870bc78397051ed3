package raftstore

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// heartbeats records, on the leader, which followers have stopped answering
// its heartbeats and since when, from raft's observations. The zero value
// is not usable; see watchHeartbeats. Safe for concurrent use.
type heartbeats struct {
	mu      sync.Mutex
	failing map[string]time.Time // node id -> last contact (or first failure seen)

	r    *raft.Raft
	obs  *raft.Observer
	stop chan struct{}
	done chan struct{}
}

// watchHeartbeats starts recording the heartbeat failures r observes until
// stop is called.
func watchHeartbeats(r *raft.Raft) *heartbeats {
	h := &heartbeats{failing: map[string]time.Time{}, r: r, stop: make(chan struct{}), done: make(chan struct{})}
	ch := make(chan raft.Observation, 64)
	h.obs = raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(h.obs)
	go func() {
		defer close(h.done)
		for {
			select {
			case o := <-ch:
				h.observe(o)
			case <-h.stop:
				return
			}
		}
	}()
	return h
}

// close stops the recording and waits for its goroutine.
func (h *heartbeats) close() {
	h.r.DeregisterObserver(h.obs)
	close(h.stop)
	<-h.done
}

func (h *heartbeats) observe(o raft.Observation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch d := o.Data.(type) {
	case raft.FailedHeartbeatObservation:
		id := string(d.PeerID)
		if _, ok := h.failing[id]; ok {
			return
		}
		since := d.LastContact
		if since.IsZero() { // never reached by this leader: count from now
			since = time.Now()
		}
		h.failing[id] = since
	case raft.ResumedHeartbeatObservation:
		delete(h.failing, string(d.PeerID))
	case raft.LeaderObservation:
		clear(h.failing) // a new term: the new leader observes afresh
	}
}

// Unreachable returns, on the leader, the members of the configuration
// that stopped answering heartbeats, each with the time of its last
// contact. It is empty on other nodes.
func (s *Store) Unreachable() map[string]time.Time {
	out := map[string]time.Time{}
	if s.raft.State() != raft.Leader {
		return out
	}
	conf, err := s.configuration()
	if err != nil {
		return out
	}
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	for _, srv := range conf.Servers {
		if t, ok := s.health.failing[string(srv.ID)]; ok {
			out[string(srv.ID)] = t
		}
	}
	return out
}

// ReplaceVoter removes the voter dead from the configuration and promotes
// the non-voter next to a voter, in that order, so that the cluster never
// depends on a node that is not yet a full member: with dead gone, the
// remaining voters form the quorum of the smaller configuration, and the
// promotion then restores the number of voters (Consul autopilot's
// dead-server cleanup). Only the leader may call it; it refuses when
// removing dead would leave fewer healthy voters than a quorum.
func (s *Store) ReplaceVoter(dead, next string) error {
	op := fmt.Sprintf("replace voter %s by %s", dead, next)
	if s.raft.State() != raft.Leader {
		return s.notLeader(op)
	}
	conf, err := s.configuration()
	if err != nil {
		return fmt.Errorf("raftstore: %s: read configuration: %w", op, err)
	}
	unreachable := s.Unreachable()
	voters, healthy, found := 0, 0, 0
	for _, srv := range conf.Servers {
		id := string(srv.ID)
		switch {
		case id == dead && srv.Suffrage == raft.Voter:
			found++
		case id == next && srv.Suffrage != raft.Voter:
			found++
		}
		if srv.Suffrage == raft.Voter {
			voters++
			if _, bad := unreachable[id]; !bad && id != dead {
				healthy++
			}
		}
	}
	if found != 2 {
		return fmt.Errorf("raftstore: %s: %s must be a voter and %s a non-voter of the configuration", op, dead, next)
	}
	if healthy < (voters-1)/2+1 {
		return fmt.Errorf("raftstore: %s: %w (only %d healthy voters of %d would remain)", op, ErrNoQuorum, healthy, voters-1)
	}
	if err := s.raft.RemoveServer(raft.ServerID(dead), 0, 0).Error(); err != nil {
		return fmt.Errorf("raftstore: %s: remove: %w", op, err)
	}
	var addr raft.ServerAddress
	for _, srv := range conf.Servers {
		if string(srv.ID) == next {
			addr = srv.Address
		}
	}
	if err := s.raft.AddVoter(raft.ServerID(next), addr, 0, 0).Error(); err != nil {
		return fmt.Errorf("raftstore: %s: promote: %w", op, err)
	}
	return nil
}

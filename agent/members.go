package agent

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"time"

	"vxswitch/api"
	"vxswitch/raftstore"
	"vxswitch/vxlan"
)

// admit adds a joining host to the Raft configuration and to the replicated
// host list. It runs on the leader.
func (a *Agent) admit(ctx context.Context, req api.JoinRequest) (api.JoinResponse, error) {
	if req.Name == "" || !req.VTEP.IsValid() || req.RaftAddr == "" || req.APIAddr == "" {
		return api.JoinResponse{}, badRequest("join request needs a name, a VTEP address, a raft and an API address")
	}
	if err := sameFamily(a.cfg.Advertise, req.VTEP); err != nil {
		return api.JoinResponse{}, badRequest("host %s: %v", req.Name, err)
	}
	for _, h := range a.store.State().Hosts {
		if h.VTEP == req.VTEP && h.Name != req.Name {
			return api.JoinResponse{}, badRequest("VTEP address %s is already used by host %s: give each host its own --advertise address, or remove %s with 'vxswitch members rm %s'", req.VTEP, h.Name, h.Name, h.Name)
		}
	}
	voter, err := a.store.Join(req.Name, req.RaftAddr)
	if err != nil {
		return api.JoinResponse{}, err
	}
	h := raftstore.Host{Name: req.Name, VTEP: req.VTEP, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr, KeyFP: req.KeyFP, CertCA: req.CertCA}
	if _, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpHostAdd, Host: &h}); err != nil {
		return api.JoinResponse{}, err
	}
	return api.JoinResponse{Voter: voter, Leader: a.cfg.Name}, nil
}

// removeHost takes a host out of the replicated state (with its endpoints)
// and out of the Raft configuration. Followers forward it to the leader.
func (a *Agent) removeHost(ctx context.Context, name string) error {
	if _, ok := a.store.State().Hosts[name]; !ok {
		return notFound("no host named %q: see 'vxswitch members'", name)
	}
	return a.onLeader(ctx, api.RouteInternalRemove, api.RemoveRequest{Name: name}, nil, func(ctx context.Context) error {
		if _, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpHostRemove, Name: name}); err != nil {
			return err
		}
		return a.store.Remove(name)
	})
}

func (a *Agent) handleMembers(w http.ResponseWriter, r *http.Request) {
	reply(w, a.members(r.Context()), nil)
}

// members lists the hosts of the replicated state with their Raft role, and
// probes each one's API to tell whether it is alive right now.
func (a *Agent) members(ctx context.Context) []api.Member {
	st := a.store.State()
	roles := map[string]string{}
	if servers, err := a.store.Servers(); err == nil {
		for _, s := range servers {
			roles[s.ID] = string(raftstore.RoleNonvoter)
			if s.Voter {
				roles[s.ID] = string(raftstore.RoleVoter)
			}
		}
	}
	if id, _ := a.store.Leader(); id != "" {
		roles[id] = "leader"
	}
	unreachable := a.store.Unreachable()
	out := make([]api.Member, 0, len(st.Hosts))
	for _, h := range st.Hosts {
		role := roles[h.Name]
		if role == "" {
			role = "none"
		}
		m := api.Member{Name: h.Name, VTEP: h.VTEP, RaftAddr: h.RaftAddr, APIAddr: h.APIAddr, Role: role}
		if since, ok := unreachable[h.Name]; ok {
			m.LastContact = time.Since(since).Round(time.Second).String() + " ago"
		}
		out = append(out, m)
	}
	applied := a.store.AppliedIndex()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	ctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].State = "unreachable"
			if out[i].Name == a.cfg.Name {
				out[i].State = "alive"
				return
			}
			if s, err := a.peers.host(st.Hosts[out[i].Name]).Status(ctx); err == nil && s.Name == out[i].Name {
				out[i].State = "alive"
				if s.AppliedIndex < applied {
					out[i].Lag = applied - s.AppliedIndex
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func (a *Agent) handleMemberRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	voter := a.isVoter(name)
	err := a.removeHost(r.Context(), name)
	if err == nil && voter && a.store.State().Cluster != nil {
		// The removed host held the CA key: a new CA, so certificates
		// it could still sign with the old one stop working (ca.go).
		if rerr := a.onLeader(r.Context(), api.RouteInternalCARotate, struct{}{}, nil, a.rotateCA); rerr != nil {
			err = fmt.Errorf("host %s removed, but rotating the CA it held failed: run 'vxswitch ca rotate': %w", name, rerr)
		}
	}
	reply(w, struct{}{}, err)
}

// handleLeave removes this host from the cluster; the agent then stops.
func (a *Agent) handleLeave(w http.ResponseWriter, r *http.Request) {
	err := a.removeHost(r.Context(), a.cfg.Name)
	if err == nil {
		// The state change removes our endpoints; reconcile now so their
		// TAPs are gone before we answer.
		a.reconcile()
		a.leftOnce.Do(func() { close(a.left) })
	}
	reply(w, struct{}{}, err)
}

func (a *Agent) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := a.store.State()
	leader, _ := a.store.Leader()
	a.mu.Lock()
	n := len(a.ports)
	a.mu.Unlock()
	s := api.Status{
		Name: a.cfg.Name, VTEP: a.cfg.Advertise, Role: string(a.store.Role()), Leader: leader,
		Index: st.Index, StateHash: st.Hash(), UnderlayMTU: a.underlayMTU, MTUSource: a.mtuSource, Ports: n,
		TLSRefused: a.tlsRefused(), AppliedIndex: a.store.AppliedIndex(),
		VoterReplacements: a.voterReplacements.Load(),
		History:           a.historyStatus(),
	}
	// The leader's index, when one answers soon: status must work without
	// a leader too, so a failure leaves it 0.
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if i, err := a.readIndex(ctx); err == nil {
		s.LeaderIndex = i
		if i > s.AppliedIndex {
			s.Lag = i - s.AppliedIndex
		}
	}
	reply(w, s, nil)
}

// sameFamily refuses an underlay address got of another IP family than
// the cluster's, represented by want: one underlay socket bound to the
// advertised address carries all VXLAN traffic of a host, so a cluster (its
// hosts and external VTEPs) uses one family. A mixed cluster is refused,
// not translated.
func sameFamily(want, got netip.Addr) error {
	if vxlan.Family(want) == vxlan.Family(got) {
		return nil
	}
	return fmt.Errorf("underlay address %s is %s, but the cluster's underlay is %s (like %s): a cluster's hosts and VTEPs share one underlay family; use %s addresses for every --advertise, --join and 'vtep add', or build a separate %s cluster",
		got, vxlan.Family(got), vxlan.Family(want), want, vxlan.Family(want), vxlan.Family(got))
}

package agent

import "vxswitch/raftstore"

// Who may send what over the peer API.
//
// As with Docker Swarm's managers and workers, the voters manage the
// cluster: a command a voter forwards is applied as a local one would be
// (a voter can win an election and write the log anyway). A non-voter may
// change only what is its own: its host entry (its addresses and its ESP
// public key), endpoints
// on itself (attach, update, detach) and addresses reserved for them, the
// MAC addresses learned on its ports, and its own removal
// ('vxswitch leave'); it may forward the join of a host that is not a
// member yet. So a compromised non-voter can neither remove other hosts
// nor detach, take over or place endpoints on them, nor move their
// addresses, create or remove networks and external VTEPs, or make and
// rotate join tokens; the CLI on a non-voter says to run such commands on
// a voter. token.use is the leader's own business when it enrols a host: a
// peer never has it applied.
//
// Every check runs on the host that takes the request (the leader, or a
// host that then answers "not the leader"), against its own state and
// Raft configuration.

// peerMayApply returns an error unless host sender may have cmd applied
// through the peer API. voter tells whether sender is a voter.
func peerMayApply(st *raftstore.State, sender string, voter bool, cmd raftstore.Command) error {
	if cmd.Op == raftstore.OpTokenUse {
		return forbidden("%s is applied only by the leader itself, when it enrols a host, never on a peer's behalf", cmd.Op)
	}
	if voter {
		return nil
	}
	own := false
	switch cmd.Op {
	case raftstore.OpHostAdd, raftstore.OpHostKey:
		own = cmd.Host != nil && cmd.Host.Name == sender
	case raftstore.OpEndpointAttach:
		own = cmd.Endpoint != nil && cmd.Endpoint.Host == sender
	case raftstore.OpEndpointDetach:
		ep, ok := st.Endpoints.Get(cmd.Name)
		own = !ok || ep.Host == sender // a missing endpoint: the FSM says so
	case raftstore.OpEndpointUpdate:
		if cmd.Endpoint != nil {
			ep, ok := st.Endpoints.Get(cmd.Endpoint.Name)
			own = !ok || ep.Host == sender
		}
	case raftstore.OpAddressReserve:
		own = cmd.Reservation != nil && cmd.Reservation.Host == sender
	case raftstore.OpAddressRelease:
		if cmd.Reservation != nil {
			r, ok := st.Reserved[raftstore.ReservationKey(cmd.Reservation.Network, cmd.Reservation.IP)]
			own = !ok || r.Host == sender
		}
	case raftstore.OpMACAnnounce, raftstore.OpMACWithdraw:
		own = true
		for _, m := range cmd.MACs {
			own = own && m.Host == sender
		}
	}
	if !own {
		return nonVoterRefusal(sender, cmd.Op)
	}
	return nil
}

// peerMayRemove returns an error unless host sender may remove host name:
// a voter may remove any host, a non-voter only itself.
func peerMayRemove(sender string, voter bool, name string) error {
	if voter || sender == name {
		return nil
	}
	return nonVoterRefusal(sender, "removing host "+name)
}

// peerMayForwardJoin returns an error unless host sender may forward the
// join of host name with the key fingerprint keyFP: a voter may forward
// any join, a non-voter only that of a host that is not a member yet, with
// the key the joining host connected with, so it cannot move a member's
// addresses.
func peerMayForwardJoin(st *raftstore.State, sender string, voter bool, name, keyFP string) error {
	if voter {
		return nil
	}
	if _, member := st.Hosts[name]; member || keyFP == "" {
		return nonVoterRefusal(sender, "forwarding the join of member "+name)
	}
	return nil
}

func nonVoterRefusal(sender, what string) error {
	return forbidden("%s refused: host %q is a non-voter, which may change only its own host entry, endpoints and learned MACs, or leave: run this on a voter (see 'vxswitch members')",
		what, sender)
}

// isVoter tells whether this host's Raft configuration lists host name as
// a voter.
func (a *Agent) isVoter(name string) bool {
	servers, err := a.store.Servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.ID == name {
			return s.Voter
		}
	}
	return false
}

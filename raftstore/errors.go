package raftstore

import "errors"

// ErrNotLeader is returned (wrapped, test with errors.Is) by Store methods
// that only the raft leader may run, when this node is not the leader. The
// wrapping error names the leader when it is known; send the write there.
var ErrNotLeader = errors.New("not the raft leader: send writes to the leader")

// ErrNoQuorum is returned (wrapped, test with errors.Is) by Store.Apply when
// a write could not be committed in time: the leader lost contact with a
// majority of the voters. The command may still be applied later, so retry
// with the same Command.ReqID.
var ErrNoQuorum = errors.New("no quorum: this host cannot reach a majority of voters; writes are refused until it can")

// ErrClosed is returned (wrapped) by Store methods after Close.
var ErrClosed = errors.New("raft store is closed")

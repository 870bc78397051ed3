package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// DefaultVoters is the number of voters a cluster keeps when Config.Voters
// is 0; later hosts join as non-voters.
const DefaultVoters = 3

// DefaultApplyTimeout bounds Store.Apply when its context has no deadline.
const DefaultApplyTimeout = 5 * time.Second

// Config configures Open. The zero value is not usable: ID is required, and
// Bind unless InMemory is set.
type Config struct {
	ID        string       // node id = host name
	Dir       string       // data dir (raft.db + snapshots); "" with InMemory
	Bind      string       // raft TCP listen address "10.0.0.1:7946"; with InMemory, the in-memory address ("" = random)
	Bootstrap bool         // start a new single-node cluster if Dir holds no raft state
	Voters    int          // number of voters the cluster keeps; 0 = DefaultVoters
	InMemory  bool         // tests: raft.InmemStore + InmemTransport, shorter timeouts
	Logger    *slog.Logger // nil = discard; raft's own log goes here at warn level (debug when enabled)

	// TLS, when set, makes raft traffic mutual TLS (see TLS); nil is plain
	// TCP, for tests only. Ignored with InMemory.
	TLS *TLS

	// SnapshotThreshold is how many log entries trigger a snapshot;
	// 0 = 1024. Raft keeps 1024 log entries after a snapshot.
	SnapshotThreshold uint64

	// History bounds the history of applied commands the FSM keeps and
	// carries in snapshots (history.go); the zero value is the defaults.
	History HistoryLimits
}

// Server is one member of the raft configuration.
type Server struct {
	ID    string
	Addr  string
	Voter bool
}

// Store is one raft node with the cluster state. All methods are safe for
// concurrent use. Writes (Apply, Join, Remove) are for the leader only.
type Store struct {
	cfg    Config
	fsm    *FSM
	raft   *raft.Raft
	logs   raft.LogStore
	logger *slog.Logger

	trans   raft.Transport
	inmem   *raft.InmemTransport      // set with InMemory
	tls     *tlsStream                // set with TLS
	started atomic.Pointer[raft.Raft] // raft, for the transport's goroutines
	closers []io.Closer               // transport and log store, closed after raft

	closeOnce sync.Once
	closeErr  error

	health *heartbeats // followers the leader cannot reach (health.go)
}

// Open starts a raft node. On disk it keeps its log and stable store in
// Dir/raft.db and snapshots under Dir. With Bootstrap set and no existing
// raft state, it starts a new cluster with itself as the only voter;
// otherwise it waits to be joined (Join on the leader) or resumes.
func Open(cfg Config) (*Store, error) {
	if cfg.ID == "" {
		return nil, errors.New("raftstore: open: node id is empty: give the host a name")
	}
	if cfg.Voters <= 0 {
		cfg.Voters = DefaultVoters
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 1024
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{cfg: cfg, fsm: NewFSM(), logger: logger}
	s.fsm.SetHistoryLimits(cfg.History)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = 1024
	logOut, logLevel := raftLogOutput(cfg.Logger)
	rc.LogOutput, rc.LogLevel = logOut, logLevel
	if cfg.InMemory {
		// Shorter timeouts keep tests fast; still generous for a busy CI box.
		rc.HeartbeatTimeout = 300 * time.Millisecond
		rc.ElectionTimeout = 300 * time.Millisecond
		rc.LeaderLeaseTimeout = 150 * time.Millisecond
	}

	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.InMemory {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
		addr := raft.ServerAddress(cfg.Bind)
		if addr == "" {
			addr = raft.NewInmemAddr()
		}
		_, s.inmem = raft.NewInmemTransport(addr)
		s.trans = s.inmem
		s.closers = append(s.closers, s.inmem)
	} else {
		if cfg.Dir == "" {
			return nil, errors.New("raftstore: open: data directory is empty: give a directory such as /var/lib/vxswitch")
		}
		if cfg.Bind == "" {
			return nil, errors.New("raftstore: open: bind address is empty: give the host's underlay address and a port, e.g. 10.0.0.1:7946")
		}
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("raftstore: open: create data directory: %w", err)
		}
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
		if err != nil {
			return nil, fmt.Errorf("raftstore: open %s: %w", filepath.Join(cfg.Dir, "raft.db"), err)
		}
		s.closers = append(s.closers, bolt)
		logs, stable = bolt, bolt
		fsnaps, err := raft.NewFileSnapshotStore(cfg.Dir, 2, logOut)
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("raftstore: open snapshot store in %s: %w", cfg.Dir, err)
		}
		snaps = fsnaps
		// A nil advertise address makes raft advertise the listener's
		// address; an unspecified bind address (0.0.0.0) is refused.
		var tcp raft.Transport
		if cfg.TLS != nil {
			tcp, s.tls, err = newTLSTransport(cfg.Bind, cfg.TLS, s.isMember, s.expectPeer, logger, logOut)
		} else {
			tcp, err = raft.NewTCPTransport(cfg.Bind, nil, 3, 10*time.Second, logOut)
		}
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("raftstore: listen on %s: %w (bind to this host's underlay address, not 0.0.0.0)", cfg.Bind, err)
		}
		s.trans = tcp
		s.closers = append([]io.Closer{tcp.(io.Closer)}, s.closers...)
	}

	if cfg.Bootstrap {
		existing, err := raft.HasExistingState(logs, stable, snaps)
		if err != nil {
			s.closeAll()
			return nil, fmt.Errorf("raftstore: open: check existing state: %w", err)
		}
		if !existing {
			conf := raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: rc.LocalID, Address: s.trans.LocalAddr(),
			}}}
			if err := raft.BootstrapCluster(rc, logs, stable, snaps, s.trans, conf); err != nil {
				s.closeAll()
				return nil, fmt.Errorf("raftstore: bootstrap: %w", err)
			}
		}
	}

	r, err := raft.NewRaft(rc, s.fsm, logs, stable, snaps, s.trans)
	if err != nil {
		s.closeAll()
		return nil, fmt.Errorf("raftstore: start raft: %w", err)
	}
	s.raft, s.logs = r, logs
	s.health = watchHeartbeats(r)
	s.started.Store(r)
	return s, nil
}

// closeAll closes the transport and the log store.
func (s *Store) closeAll() error {
	var errs []error
	for _, c := range s.closers {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops the raft node and closes its files and listener. The last
// published State stays readable. Calling Close again returns the first
// result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.health.close()
		err := s.raft.Shutdown().Error()
		if cerr := s.closeAll(); err == nil {
			err = cerr
		}
		if err != nil {
			s.closeErr = fmt.Errorf("raftstore: close: %w", err)
		}
	})
	return s.closeErr
}

// State returns the latest applied state; never nil, immutable.
func (s *Store) State() *State { return s.fsm.State() }

// Changes returns a new channel that receives a value (coalesced, buffer of
// one) after each newly published state.
func (s *Store) Changes() <-chan struct{} { return s.fsm.Changes() }

// FSM returns the store's state machine.
func (s *Store) FSM() *FSM { return s.fsm }

// Addr returns the raft address of this node (the TCP listener address, or
// the in-memory address).
func (s *Store) Addr() string { return string(s.trans.LocalAddr()) }

// ID returns the node id.
func (s *Store) ID() string { return s.cfg.ID }

// notLeader returns ErrNotLeader wrapped with the operation and the leader.
func (s *Store) notLeader(op string) error {
	id, addr := s.Leader()
	if id == "" {
		return fmt.Errorf("raftstore: %s: %w (no leader is known right now)", op, ErrNotLeader)
	}
	return fmt.Errorf("raftstore: %s: %w (leader is %s at %s)", op, ErrNotLeader, id, addr)
}

// Apply commits cmd through raft and returns the FSM's Result. Only the
// leader may call it (ErrNotLeader otherwise). A Result with Err != "" is a
// rejected command (state unchanged) and comes with a nil error. When the
// command cannot be committed before ctx ends (DefaultApplyTimeout without
// a deadline) the error matches ErrNoQuorum; the command may still commit
// later, so retry with the same ReqID. A zero cmd.Time is set to now.
func (s *Store) Apply(ctx context.Context, cmd Command) (*Result, error) {
	op := "apply " + strconv.Quote(cmd.Op)
	if s.raft.State() != raft.Leader {
		return nil, s.notLeader(op)
	}
	if cmd.Time == 0 {
		cmd.Time = time.Now().UnixNano()
	}
	if cmd.Origin == "" {
		cmd.Origin = s.cfg.ID
	}
	// New commands are checked under the current rules, whatever the
	// proposer asked for; entries already in the log keep their own.
	cmd.Rules = CurrentRules
	data, err := EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultApplyTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	f := s.raft.Apply(data, time.Until(deadline))
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("raftstore: %s: %w (not committed in time: %w)", op, ErrNoQuorum, ctx.Err())
	}
	switch {
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader):
		return nil, s.notLeader(op)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout):
		return nil, fmt.Errorf("raftstore: %s: %w (%v)", op, ErrNoQuorum, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return nil, fmt.Errorf("raftstore: %s: %w", op, ErrClosed)
	default:
		return nil, fmt.Errorf("raftstore: %s: %w", op, err)
	}
	res, ok := f.Response().(*Result)
	if !ok {
		return nil, fmt.Errorf("raftstore: %s: unexpected FSM response %T", op, f.Response())
	}
	return res, nil
}

// configuration returns the latest raft configuration.
func (s *Store) configuration() (raft.Configuration, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrRaftShutdown) {
			return raft.Configuration{}, ErrClosed
		}
		return raft.Configuration{}, err
	}
	return f.Configuration(), nil
}

// Join adds node id at raftAddr to the cluster. Only the leader may call it.
// The node becomes a voter while the configuration has fewer than
// Config.Voters voters, a non-voter otherwise; the result says which. A
// node already present with the same address is left as it is; with
// another address (a restarted host) it is removed and added again.
func (s *Store) Join(id, raftAddr string) (voter bool, err error) {
	op := fmt.Sprintf("join %s at %s", id, raftAddr)
	if id == "" || raftAddr == "" {
		return false, fmt.Errorf("raftstore: %s: node id and raft address are required", op)
	}
	if s.raft.State() != raft.Leader {
		return false, s.notLeader(op)
	}
	conf, err := s.configuration()
	if err != nil {
		return false, fmt.Errorf("raftstore: %s: read configuration: %w", op, err)
	}
	voters := 0
	for _, srv := range conf.Servers {
		sameID, sameAddr := srv.ID == raft.ServerID(id), srv.Address == raft.ServerAddress(raftAddr)
		switch {
		case sameID && sameAddr:
			return srv.Suffrage == raft.Voter, nil
		case sameID || sameAddr:
			// A restarted host with a new address, or a new host on
			// the address of a departed one: drop the stale entry.
			if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
				return false, fmt.Errorf("raftstore: %s: remove stale server %s at %s: %w", op, srv.ID, srv.Address, err)
			}
		case srv.Suffrage == raft.Voter:
			voters++
		}
	}
	if voters < s.cfg.Voters {
		err = s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, 0).Error()
		voter = true
	} else {
		err = s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, 0).Error()
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return false, fmt.Errorf("raftstore: %s: %w (%v)", op, ErrNotLeader, err)
		}
		return false, fmt.Errorf("raftstore: %s: %w", op, err)
	}
	return voter, nil
}

// Remove removes node id from the cluster. Only the leader may call it. An
// id that is not a member is not an error.
func (s *Store) Remove(id string) error {
	op := "remove " + id
	if s.raft.State() != raft.Leader {
		return s.notLeader(op)
	}
	conf, err := s.configuration()
	if err != nil {
		return fmt.Errorf("raftstore: %s: read configuration: %w", op, err)
	}
	for _, srv := range conf.Servers {
		if srv.ID == raft.ServerID(id) {
			if err := s.raft.RemoveServer(srv.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("raftstore: %s: %w", op, err)
			}
			return nil
		}
	}
	return nil
}

// Leader returns the id and raft address of the current leader as this
// node knows it; both are empty when no leader is known.
func (s *Store) Leader() (id, raftAddr string) {
	addr, lid := s.raft.LeaderWithID()
	return string(lid), string(addr)
}

// Role is a node's part in the Raft cluster, as Store.Role reports it.
type Role string

// The roles. A follower is RoleVoter or RoleNonvoter by its suffrage in the
// latest configuration; a node not in the configuration yet is a
// RoleNonvoter.
const (
	RoleLeader    Role = "leader"
	RoleVoter     Role = "voter"
	RoleNonvoter  Role = "nonvoter"
	RoleCandidate Role = "candidate"
	RoleShutdown  Role = "shutdown"
)

// Role returns this node's role.
func (s *Store) Role() Role {
	switch s.raft.State() {
	case raft.Leader:
		return RoleLeader
	case raft.Candidate:
		return RoleCandidate
	case raft.Shutdown:
		return RoleShutdown
	}
	conf, err := s.configuration()
	if err != nil {
		return RoleShutdown
	}
	for _, srv := range conf.Servers {
		if srv.ID == raft.ServerID(s.cfg.ID) && srv.Suffrage == raft.Voter {
			return RoleVoter
		}
	}
	return RoleNonvoter
}

// Servers returns the members of the latest raft configuration.
func (s *Store) Servers() ([]Server, error) {
	conf, err := s.configuration()
	if err != nil {
		return nil, fmt.Errorf("raftstore: servers: %w", err)
	}
	out := make([]Server, 0, len(conf.Servers))
	for _, srv := range conf.Servers {
		out = append(out, Server{ID: string(srv.ID), Addr: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// WaitLeader blocks until this node knows a leader (possibly itself) or ctx
// ends.
func (s *Store) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := s.Leader(); id != "" {
			return nil
		}
		if s.raft.State() == raft.Shutdown {
			return fmt.Errorf("raftstore: wait for leader: %w", ErrClosed)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftstore: wait for leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// isMember reports whether the host name, with the key of fingerprint
// keyFP, may speak raft to this node: whether the key is not a removed
// host's nor another than the one the state records for name, and the
// latest raft configuration lists name. A node that knows no
// configuration yet (a host that is joining waits for the leader to call)
// accepts every other certificate of the cluster CA.
func (s *Store) isMember(name, keyFP string) bool {
	st := s.State()
	if _, removed := st.Removed[keyFP]; removed && keyFP != "" {
		return false
	}
	if h, ok := st.Hosts[name]; ok && h.KeyFP != "" && h.KeyFP != keyFP {
		return false
	}
	r := s.started.Load()
	if r == nil {
		return true
	}
	f := r.GetConfiguration()
	if f.Error() != nil || len(f.Configuration().Servers) == 0 {
		return true
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == name {
			return true
		}
	}
	return false
}

// expectPeer names the member this node means to reach at a raft
// address, with the key fingerprint the state records for it: the server
// of the latest raft configuration at that address. It returns "" when no
// server is at addr (a host being joined, say).
func (s *Store) expectPeer(addr raft.ServerAddress) (name, keyFP string) {
	r := s.started.Load()
	if r == nil {
		return "", ""
	}
	f := r.GetConfiguration() // a copy: never waits for raft's main loop
	if f.Error() != nil {
		return "", ""
	}
	for _, srv := range f.Configuration().Servers {
		if srv.Address == addr {
			return string(srv.ID), s.State().Hosts[string(srv.ID)].KeyFP
		}
	}
	return "", ""
}

// AppliedIndex is the index of the last log entry handed to the FSM.
func (s *Store) AppliedIndex() uint64 { return s.raft.AppliedIndex() }

// LastIndex is the index of the last entry in this node's log, committed
// or not.
func (s *Store) LastIndex() uint64 { return s.raft.LastIndex() }

// AppliedThrough reports whether the state includes every command of this
// node's log up to index. raft's applied index alone does not tell: it
// moves when commands are handed to the FSM, before they run. Entries
// that are not commands (no-ops, configuration) and entries a snapshot
// already covers need nothing from the FSM.
func (s *Store) AppliedThrough(index uint64) bool {
	if s.raft.AppliedIndex() < index {
		return false
	}
	snap, _ := strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64)
	for i := index; i > snap; i-- {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			return true // compacted: a snapshot holds it
		}
		if l.Type == raft.LogCommand {
			return s.fsm.ran.Load() >= i
		}
	}
	return true
}

// Stats returns raft's statistics (state, term, last_log_index, ...) plus
// "role", "leader_id", "state_index" and "state_hash".
func (s *Store) Stats() map[string]string {
	m := s.raft.Stats()
	m["role"] = string(s.Role())
	m["leader_id"], _ = s.Leader()
	st := s.State()
	m["state_index"] = strconv.FormatUint(st.Index, 10)
	m["state_hash"] = st.Hash()
	if s.tls != nil {
		m["tls_refused"] = strconv.FormatUint(s.tls.Refused(), 10)
		m["refused_not_member"] = strconv.FormatUint(s.tls.notMember.Load(), 10)
		m["refused_conns_per_source"] = strconv.FormatUint(s.tls.overLimit.Load(), 10)
	}
	return m
}

// Snapshot asks raft to take a snapshot now and compact its log.
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("raftstore: snapshot: %w", err)
	}
	return nil
}

// ConnectInmem connects the in-memory transports of stores opened with
// InMemory, every one to every other, so they can form a cluster.
func ConnectInmem(stores ...*Store) {
	for _, a := range stores {
		for _, b := range stores {
			if a != b && a.inmem != nil && b.inmem != nil {
				a.inmem.Connect(b.trans.LocalAddr(), b.inmem)
			}
		}
	}
}

// DisconnectInmem cuts s off from others in both directions (a network
// partition in tests). ConnectInmem heals it.
func DisconnectInmem(s *Store, others ...*Store) {
	for _, o := range others {
		if s.inmem == nil || o.inmem == nil || o == s {
			continue
		}
		s.inmem.Disconnect(o.trans.LocalAddr())
		o.inmem.Disconnect(s.trans.LocalAddr())
	}
}

// raftLogOutput returns the writer raft's own logger (hclog) writes to and
// the level raft logs at: warn, or debug when logger has debug enabled. A
// nil logger discards raft's log.
func raftLogOutput(logger *slog.Logger) (io.Writer, string) {
	if logger == nil {
		return io.Discard, "OFF"
	}
	if logger.Enabled(context.Background(), slog.LevelDebug) {
		return &slogWriter{logger: logger}, "DEBUG"
	}
	return &slogWriter{logger: logger}, "WARN"
}

// slogWriter turns each line hclog writes ("TIME [LEVEL]  raft: message
// key=value") into one slog record at the matching level; INFO and below
// become debug records, so they only show when debug is enabled.
type slogWriter struct{ logger *slog.Logger }

func (w *slogWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		level, msg := slog.LevelDebug, strings.TrimSpace(line)
		if i := strings.Index(msg, "["); i >= 0 {
			if j := strings.Index(msg[i:], "]"); j > 0 {
				switch msg[i+1 : i+j] {
				case "ERROR":
					level = slog.LevelError
				case "WARN":
					level = slog.LevelWarn
				}
				msg = strings.TrimSpace(msg[i+j+1:])
			}
		}
		if msg != "" {
			w.logger.Log(context.Background(), level, msg, "component", "raft")
		}
	}
	return len(p), nil
}

// ReadIndex confirms that this node still leads the cluster (a heartbeat
// round acknowledged by a quorum) and returns an index that covers every
// write committed before the call: the last index of its log, taken before
// the check. That index also covers the no-op entry the leader appends at
// the start of its term, so a host that has applied it holds everything
// committed so far (the read-index of the Raft thesis, section 6.4, made
// safe for a leader that has not committed in its term yet). Only the
// leader may call it; it returns ErrNotLeader elsewhere and ErrNoQuorum
// when the check does not complete before ctx ends.
func (s *Store) ReadIndex(ctx context.Context) (uint64, error) {
	if s.raft.State() != raft.Leader {
		return 0, s.notLeader("read index")
	}
	index := s.raft.LastIndex()
	f := s.raft.VerifyLeader()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		switch {
		case err == nil:
			return index, nil
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
			return 0, s.notLeader("read index")
		case errors.Is(err, raft.ErrRaftShutdown):
			return 0, fmt.Errorf("raftstore: read index: %w", ErrClosed)
		default:
			return 0, fmt.Errorf("raftstore: read index: %w", err)
		}
	case <-ctx.Done():
		return 0, fmt.Errorf("raftstore: read index: %w (no quorum confirmed this leader in time: %w)", ErrNoQuorum, ctx.Err())
	}
}

// WaitApplied returns once this node's state includes every command up to
// index, or with ctx's error. It polls: a consistent read waits at most a
// few milliseconds past the apply it needs, and no notification channel of
// the FSM is taken from its other readers.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for !s.AppliedThrough(index) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftstore: wait for index %d (applied %d): %w", index, s.raft.AppliedIndex(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

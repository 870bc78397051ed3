package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"vxswitch/api"
	"vxswitch/pki"
	"vxswitch/raftstore"
)

// writeTimeout bounds a write that waits for a leader: long enough to ride
// out an election, short enough that a minority side answers within seconds.
const writeTimeout = 8 * time.Second

// peerClients caches the API clients of peers; every client speaks mutual
// TLS with tls. Safe for concurrent use.
type peerClients struct {
	tls *tls.Config
	mu  sync.Mutex
	m   map[peerKey]*api.Client
}

// peerKey is what a client expects at the other end: the member of that
// name and key at that address, or (name "") any node of the cluster.
type peerKey struct{ name, addr, keyFP string }

func newPeerClients(conf *tls.Config) *peerClients {
	return &peerClients{tls: conf, m: map[peerKey]*api.Client{}}
}

// get returns a client for whatever node of the cluster answers at addr,
// for a host that knows no more (a joining host's --join address).
func (p *peerClients) get(addr string) *api.Client { return p.client(peerKey{addr: addr}) }

// host returns a client for the API of member h that accepts only the
// certificate of h: its name, and its key as the state records it.
func (p *peerClients) host(h raftstore.Host) *api.Client {
	return p.client(peerKey{name: h.Name, addr: h.APIAddr, keyFP: h.KeyFP})
}

func (p *peerClients) client(k peerKey) *api.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.m[k]
	if !ok {
		conf := p.tls
		if k.name != "" {
			conf = pki.ExpectPeer(conf, k.name, k.keyFP)
		}
		c = api.NewTLSClient(k.addr, 3*time.Second, conf)
		p.m[k] = c
	}
	return c
}

// newReqID returns a random request ID. Randomness lives here, in the
// agent, never in the FSM.
func newReqID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rejectedError is a command the FSM refused: the state is unchanged and a
// retry would fail the same way.
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return e.msg }

// apply commits cmd through the leader, wherever it is, and returns the
// FSM's result. The command keeps one request ID across retries, so a retry
// after a lost leader takes effect once.
func (a *Agent) apply(ctx context.Context, cmd raftstore.Command) (*raftstore.Result, error) {
	if cmd.ReqID == "" {
		cmd.ReqID = newReqID()
	}
	if cmd.Time == 0 {
		cmd.Time = time.Now().UnixNano()
	}
	cmd.Origin = a.cfg.Name
	var res raftstore.Result
	err := a.onLeader(ctx, api.RouteInternalApply, cmd, &res, func(ctx context.Context) error {
		start := time.Now()
		r, err := a.store.Apply(ctx, cmd)
		if err == nil {
			a.metrics.observeApply(time.Since(start))
			res = *r
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if res.Err != "" {
		return nil, &rejectedError{res.Err}
	}
	// On the leader the write is applied when Apply returns; elsewhere wait
	// for this host to apply it, so the caller's next read here sees it.
	if a.store.Role() != raftstore.RoleLeader {
		if err := a.catchUpConsistent(ctx); err != nil {
			a.log.Warn("write committed, but this host has not applied it yet", "op", cmd.Op, "err", err)
		}
	}
	return &res, nil
}

// onLeader runs local if this host leads the cluster, and otherwise posts in
// to route on the leader's API, retrying through elections until ctx (or
// writeTimeout) ends. local must return raftstore.ErrNotLeader when
// leadership moved.
func (a *Agent) onLeader(ctx context.Context, route api.Route, in, out any, local func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	var last error
	for {
		err := a.tryLeader(ctx, route, in, out, local)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", raftstore.ErrNoQuorum, err)
		}
		if !retryable(err) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", raftstore.ErrNoQuorum, last)
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func (a *Agent) tryLeader(ctx context.Context, route api.Route, in, out any, local func(context.Context) error) error {
	if a.store.Role() == raftstore.RoleLeader {
		return local(ctx)
	}
	id, _ := a.store.Leader()
	if id == "" {
		return errNoLeader
	}
	h, ok := a.store.State().Hosts[id]
	if !ok || h.APIAddr == "" {
		return errNoLeader
	}
	return a.peers.host(h).Call(ctx, route, in, out)
}

var errNoLeader = errors.New("no leader is known to this host")

// retryable tells whether a write may succeed if tried again soon: the
// leader moved or is being elected, or could not be reached.
func retryable(err error) bool {
	if errors.Is(err, errNoLeader) || errors.Is(err, raftstore.ErrNotLeader) ||
		errors.Is(err, raftstore.ErrNoQuorum) || errors.Is(err, api.ErrUnreachable) {
		return true
	}
	var se *api.StatusError
	return errors.As(err, &se) && (se.Code == http.StatusMisdirectedRequest || se.Code == http.StatusServiceUnavailable)
}

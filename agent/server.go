package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"vxswitch/api"
	"vxswitch/pki"
	"vxswitch/raftstore"
)

// serve starts the API: every route on the unix socket for the CLI, and the
// routes other agents need on TLS at the advertised address (see tls.go
// for who may call which).
func (a *Agent) serve() error {
	local := http.NewServeMux()
	peer := http.NewServeMux()
	both := func(r api.Route, h http.HandlerFunc) {
		local.HandleFunc(r.Pattern(), h)
		peer.HandleFunc(r.Pattern(), h)
	}
	both(api.RouteStatus, a.handleStatus)
	peer.HandleFunc(api.RouteInternalApply.Pattern(), a.fromMember(a.handleInternalApply))
	peer.HandleFunc(api.RouteInternalJoin.Pattern(), a.handleInternalJoin)
	peer.HandleFunc(api.RouteInternalReadIndex.Pattern(), a.fromMember(a.handleReadIndex))
	peer.HandleFunc(api.RouteInternalRemove.Pattern(), a.fromMember(a.handleInternalRemove))
	peer.HandleFunc(api.RouteEnroll.Pattern(), a.handleEnroll)
	peer.HandleFunc(api.RouteInternalCAKey.Pattern(), a.fromMember(a.handleCAKey))
	peer.HandleFunc(api.RouteInternalRenew.Pattern(), a.fromMember(a.handleRenew))
	peer.HandleFunc(api.RouteInternalCARotate.Pattern(), a.fromMember(a.handleInternalCARotate))
	local.HandleFunc(api.RouteCA.Pattern(), a.handleCA)
	local.HandleFunc(api.RouteCARotate.Pattern(), a.handleCARotate)
	local.HandleFunc(api.RouteToken.Pattern(), a.handleToken)
	local.HandleFunc(api.RouteTokenRotate.Pattern(), a.handleTokenRotate)
	local.HandleFunc(api.RouteTokenCreate.Pattern(), a.handleTokenCreate)

	local.HandleFunc(api.RouteMembers.Pattern(), a.consistent(a.asOf(a.handleMembers, a.membersAt)))
	local.HandleFunc(api.RouteMemberRemove.Pattern(), a.consistent(a.handleMemberRemove))
	local.HandleFunc(api.RouteLeave.Pattern(), a.handleLeave)
	local.HandleFunc(api.RouteNetworks.Pattern(), a.consistent(a.asOf(a.handleNetworks, a.networksAt)))
	local.HandleFunc(api.RouteNetwork.Pattern(), a.consistent(a.asOf(a.handleNetwork, a.networkAt)))
	local.HandleFunc(api.RouteNetworkCreate.Pattern(), a.consistent(a.handleNetworkCreate))
	local.HandleFunc(api.RouteNetworkRemove.Pattern(), a.consistent(a.handleNetworkRemove))
	local.HandleFunc(api.RouteEndpoints.Pattern(), a.consistent(a.asOf(a.handleEndpoints, a.endpointsAt)))
	local.HandleFunc(api.RouteAttach.Pattern(), a.consistent(a.handleAttach))
	local.HandleFunc(api.RouteDetach.Pattern(), a.consistent(a.handleDetach))
	local.HandleFunc(api.RouteVTEPs.Pattern(), a.consistent(a.handleVTEPs))
	local.HandleFunc(api.RouteVTEPAdd.Pattern(), a.consistent(a.handleVTEPAdd))
	local.HandleFunc(api.RouteVTEPRemove.Pattern(), a.consistent(a.handleVTEPRemove))
	local.HandleFunc(api.RouteFDB.Pattern(), a.asOf(a.handleFDB, a.fdbAt))
	local.HandleFunc(api.RouteStats.Pattern(), a.handleStats)
	local.HandleFunc(api.RouteESPSAs.Pattern(), a.handleESPSAs)
	local.HandleFunc(api.RouteMTU.Pattern(), a.handleMTU)
	local.HandleFunc(api.RouteDNS.Pattern(), a.consistent(a.handleNames))
	local.HandleFunc(api.RouteDNSLookup.Pattern(), a.consistent(a.handleLookup))
	local.HandleFunc(api.RouteSnapshot.Pattern(), a.handleSnapshot)
	local.HandleFunc(api.RouteCapture.Pattern(), a.handleCapture)
	local.HandleFunc(api.RouteTrace.Pattern(), a.handleTrace)
	local.HandleFunc(api.RouteExplain.Pattern(), a.consistent(a.handleExplain))
	local.HandleFunc(api.RouteEvents.Pattern(), a.handleEvents)

	if err := os.MkdirAll(filepath.Dir(a.cfg.Socket), 0o755); err != nil {
		return fmt.Errorf("agent: create socket dir: %w", err)
	}
	if err := removeStaleSocket(a.cfg.Socket); err != nil {
		return err
	}
	ul, err := net.Listen("unix", a.cfg.Socket)
	if err != nil {
		return fmt.Errorf("agent: listen on %s: %w", a.cfg.Socket, err)
	}
	a.served = true
	// The socket changes the network: root only.
	if err := os.Chmod(a.cfg.Socket, 0o600); err != nil {
		ul.Close()
		return fmt.Errorf("agent: chmod %s: %w", a.cfg.Socket, err)
	}
	tl, err := net.Listen("tcp", a.apiAddr())
	if err != nil {
		ul.Close()
		return fmt.Errorf("agent: listen for peers on %s: %w", a.apiAddr(), err)
	}
	a.apiListener = pki.NewListener(tl, a.peerTLS(), a.log, "peer API")
	for _, s := range []struct {
		l   net.Listener
		srv *http.Server
	}{
		{ul, &http.Server{Handler: a.whenReady(local), ReadHeaderTimeout: 5 * time.Second}},
		{a.apiListener, a.peerServer(a.requireCert(peer))},
	} {
		srv := s.srv
		a.servers = append(a.servers, srv)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := srv.Serve(s.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("api server stopped", "err", err)
			}
		}()
	}
	return nil
}

// Limits of the peer API, which anyone who reaches the advertised address
// can call (the TLS listener bounds the handshakes in progress, see
// pki.Listener): requests are small JSON documents.
const (
	maxPeerBody = 1 << 20 // bytes of a request body; more gets 413
	// peerReadTimeout bounds reading one request, headers and body;
	// peerIdleTimeout closes a kept-alive connection left unused.
	peerReadTimeout  = 15 * time.Second
	peerWriteTimeout = 30 * time.Second
	peerIdleTimeout  = 2 * time.Minute
)

// peerServer returns the HTTP server of the peer API: read, write and
// idle timeouts, bounds on headers and bodies, and at most
// pki.MaxConnsPerSource open connections from one IP address (beyond it a
// new connection is closed at once and counted as refused).
func (a *Agent) peerServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, maxPeerBody)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       peerReadTimeout,
		WriteTimeout:      peerWriteTimeout,
		IdleTimeout:       peerIdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ConnState: func(c net.Conn, state http.ConnState) {
			switch state {
			case http.StateNew:
				if !a.peerConns.Add(c) {
					a.auth.overLimit.Add(1)
					c.Close() // StateClosed follows: the hook below must not count it back
					a.peerConnsRefused.Store(c, true)
				}
			case http.StateClosed, http.StateHijacked:
				if _, refused := a.peerConnsRefused.LoadAndDelete(c); !refused {
					a.peerConns.Done(c)
				}
			}
		},
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
}

// removeStaleSocket deletes a socket file left by a dead agent, and refuses
// to start when a live agent still answers on it.
func removeStaleSocket(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("agent: another agent already listens on %s: stop it, or give this one its own --socket", path)
	}
	return os.Remove(path)
}

// notFoundError is a request for something that does not exist.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

// forbiddenError is a request from a caller without the right credential.
type forbiddenError struct{ msg string }

func (e *forbiddenError) Error() string { return e.msg }

func forbidden(format string, args ...any) error {
	return &forbiddenError{fmt.Sprintf(format, args...)}
}

// badRequestError is a request that cannot be valid as given.
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &badRequestError{fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &notFoundError{fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// reply writes v, or the error with the status that tells the caller what
// kind of failure it is.
func reply(w http.ResponseWriter, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	code := http.StatusInternalServerError
	var (
		rej *rejectedError
		nf  *notFoundError
		br  *badRequestError
		fb  *forbiddenError
		se  *api.StatusError
	)
	switch {
	case errors.As(err, &rej), errors.As(err, &br):
		code = http.StatusBadRequest
	case errors.As(err, &nf):
		code = http.StatusNotFound
	case errors.As(err, &fb):
		code = http.StatusForbidden
	case errors.Is(err, raftstore.ErrNotLeader):
		code = http.StatusMisdirectedRequest
	case errors.Is(err, raftstore.ErrNoQuorum):
		code = http.StatusServiceUnavailable
	case errors.As(err, &se):
		code = se.Code
	}
	writeJSON(w, code, api.Error{Error: err.Error()})
}

func decode(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &api.StatusError{Code: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("request body over %d bytes: this API takes small JSON documents", mb.Limit)}
		}
		return badRequest("malformed request body: %v", err)
	}
	return nil
}

func (a *Agent) handleInternalApply(w http.ResponseWriter, r *http.Request) {
	var cmd raftstore.Command
	if err := decode(r, &cmd); err != nil {
		reply(w, nil, err)
		return
	}
	name, _ := pki.PeerName(r.TLS)
	if err := peerMayApply(a.store.State(), name, a.isVoter(name), cmd); err != nil {
		a.refusals.warn(a.log, "apply/"+name, "refused a command from a peer", "host", name, "op", cmd.Op, "err", err)
		reply(w, nil, err)
		return
	}
	cmd.Origin = name // the host that proposed it, as its certificate says
	res, err := a.store.Apply(r.Context(), cmd)
	reply(w, res, err)
}

// handleInternalJoin admits a host that holds a certificate. A host joins
// under the name its certificate names; a member may forward the join of
// another host to the leader.
func (a *Agent) handleInternalJoin(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := decode(r, &req); err != nil {
		reply(w, nil, err)
		return
	}
	name, _ := pki.PeerName(r.TLS)
	if err := a.checkRemoved(r); err != nil {
		reply(w, nil, err)
		return
	}
	if name == req.Name {
		// The host itself: its key is the one it connected with.
		req.KeyFP = pki.PeerKeyFingerprint(r.TLS)
		req.CertCA = a.issuerDigest(r.TLS.PeerCertificates[0])
	} else if !a.isMember(name) || a.checkMemberKey(r) != nil {
		reply(w, nil, forbidden("host %q cannot join as %q: a host joins under the name of its certificate", name, req.Name))
		return
	} else if err := peerMayForwardJoin(a.store.State(), name, a.isVoter(name), req.Name, req.KeyFP); err != nil {
		reply(w, nil, err)
		return
	}
	var resp api.JoinResponse
	err := a.onLeader(r.Context(), api.RouteInternalJoin, req, &resp, func(ctx context.Context) error {
		var err error
		resp, err = a.admit(ctx, req)
		return err
	})
	reply(w, resp, err)
}

func (a *Agent) handleInternalRemove(w http.ResponseWriter, r *http.Request) {
	var req api.RemoveRequest
	if err := decode(r, &req); err != nil {
		reply(w, nil, err)
		return
	}
	name, _ := pki.PeerName(r.TLS)
	if err := peerMayRemove(name, a.isVoter(name), req.Name); err != nil {
		reply(w, nil, err)
		return
	}
	err := a.removeHost(r.Context(), req.Name)
	reply(w, struct{}{}, err)
}

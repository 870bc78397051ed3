// Package agent composes one host of a vxswitch cluster: the replicated
// state (raftstore), the forwarding engine (vswitch), the endpoints' TAP
// devices (tap), the underlay socket (vxlan) and the API the CLI and the other
// agents talk to.
//
// The agent translates between those packages and owns nothing else: state
// changes arrive from Raft, become an immutable vswitch.View, and local ports
// are reconciled against the endpoints the state places on this host.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"vxswitch/api"
	"vxswitch/esp"
	"vxswitch/espconn"
	"vxswitch/pki"
	"vxswitch/raftstore"
	"vxswitch/resolver"
	"vxswitch/stateview"
	vswitch "vxswitch/switch"
	"vxswitch/vxlan"
)

// Config says how to run one agent. Name, Advertise and DataDir are required;
// every other zero field takes the default named in its comment.
type Config struct {
	Name      string     // host name, unique in the cluster
	Advertise netip.Addr // underlay IPv4 or IPv6 address: VTEP, Raft and API bind here
	DataDir   string     // Raft log, stable store and snapshots
	Bootstrap bool       // start a new cluster
	Join      []string   // API address (host or host:port) of any member to join through
	Socket    string     // unix socket for the CLI; "" = api.DefaultSocket
	VXLANPort uint16     // 0 = 4789
	RaftPort  int        // 0 = 7946
	APIPort   int        // 0 = 7947
	Voters    int        // 0 = 3
	// Token is the join token ('vxswitch token' on a member); required with
	// Join unless the data dir already holds this host's certificate.
	Token string
	// UnderlayMTU overrides the MTU detected on the advertised address's
	// interface; 0 = detect.
	UnderlayMTU int
	// NoClampMSS turns off clamping the MSS of TCP SYNs to the endpoint MTU.
	NoClampMSS bool
	// Metrics is the TCP address (host:port) to serve Prometheus metrics
	// on at /metrics; "" = none.
	Metrics string
	// VoterDeadAfter, when not 0, lets the leader replace a voter it has
	// not reached for that long by a healthy, caught-up non-voter that has
	// been a member for at least VoterStabilize (0 = 10 s): autopilot.go.
	VoterDeadAfter time.Duration
	VoterStabilize time.Duration
	// CertTTL is the lifetime of the node certificates this host signs as
	// leader (0 = pki.NodeValidity, 90 days); CAOverlap is how long a CA
	// replaced by 'ca rotate' stays trusted at most (0 = 24 h). See ca.go.
	CertTTL   time.Duration
	CAOverlap time.Duration
	// DockerPlugin, when not "", is the unix socket to serve Docker's
	// network and IPAM driver on (dockerplugin.DefaultSocket is where
	// Docker looks); DockerHost is the engine's API ("" = DOCKER_HOST or
	// the default socket).
	DockerPlugin string
	DockerHost   string
	// DockerStaleAfter is how long a Docker endpoint or reservation the
	// engine does not list may live (it is being set up); 0 = 1 min.
	DockerStaleAfter time.Duration
	// KeyRotation is how often this host makes a new key pair for the
	// SAs of encrypted networks (esp.go); 0 = 12 h, as Docker's overlay.
	KeyRotation time.Duration
	// History bounds this host's history of committed changes (explain,
	// events, --at); the zero value is raftstore's defaults.
	History raftstore.HistoryLimits
	Logger  *slog.Logger
}

func (c *Config) setDefaults() {
	if c.VoterStabilize == 0 {
		c.VoterStabilize = 10 * time.Second
	}
	if c.KeyRotation == 0 {
		c.KeyRotation = 12 * time.Hour
	}
	if c.Socket == "" {
		c.Socket = api.DefaultSocket
	}
	if c.VXLANPort == 0 {
		c.VXLANPort = vxlan.Port
	}
	if c.RaftPort == 0 {
		c.RaftPort = api.DefaultRaftPort
	}
	if c.APIPort == 0 {
		c.APIPort = api.DefaultAPIPort
	}
	if c.Voters == 0 {
		c.Voters = 3
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) check() error {
	switch {
	case c.Name == "":
		return errors.New("agent: --name is required: give this host a name unique in the cluster")
	case !c.Advertise.IsValid():
		return errors.New("agent: --advertise is required: the host's underlay IPv4 or IPv6 address")
	case c.Advertise.Is4In6():
		return fmt.Errorf("agent: --advertise %s: an IPv4-mapped IPv6 address: give the IPv4 address %s itself", c.Advertise, c.Advertise.Unmap())
	case c.Advertise.Zone() != "" || (c.Advertise.Is6() && c.Advertise.IsLinkLocalUnicast()):
		return fmt.Errorf("agent: --advertise %s: a link-local address needs a zone that peers cannot share: give a global or unique-local address (like fd77::1)", c.Advertise)
	case c.Advertise.IsUnspecified() || c.Advertise.IsMulticast():
		return fmt.Errorf("agent: --advertise %s: give one of this host's unicast underlay addresses, like 10.0.0.1 or fd77::1", c.Advertise)
	case c.DataDir == "":
		return errors.New("agent: --data-dir is required: where the Raft log and snapshots live")
	case c.Bootstrap && len(c.Join) > 0:
		return errors.New("agent: --bootstrap and --join exclude each other: bootstrap the first host, join the others")
	case c.joinFamily() != nil:
		return fmt.Errorf("agent: --join: %w", c.joinFamily())
	case c.VoterDeadAfter < 0 || (c.VoterDeadAfter > 0 && c.VoterDeadAfter < time.Second):
		return fmt.Errorf("agent: --voter-dead-after %v: use 0 (off) or at least 1s, longer than an election (a few seconds)", c.VoterDeadAfter)
	}
	return nil
}

// joinFamily refuses a --join address that is an IP address of the other
// family than --advertise, before any enrolment uses up a token: the
// cluster behind it could not carry this host's VXLAN traffic.
func (c *Config) joinFamily() error {
	for _, j := range c.Join {
		host := j
		if h, _, err := net.SplitHostPort(j); err == nil {
			host = h
		}
		if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			if err := sameFamily(ip, c.Advertise); err != nil {
				return fmt.Errorf("%s: %w", j, err)
			}
		}
	}
	return nil
}

// Agent is one running host. Create it with Start; stop it with Close. All
// methods are safe for concurrent use.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	store *raftstore.Store
	sw    *vswitch.Switch
	conn  *vxlan.Conn
	// espSock is the ESP in UDP socket (port 4500); esp wraps it and conn
	// for the switch, and keys fills esp's SAs (esp.go).
	espSock *vxlan.Conn
	esp     *espconn.Conn
	keys    *keyManager
	prober  *prober
	dns     *resolver.Server
	views   stateview.Builder // owned by refresh (view.go)

	underlayMTU int
	mtuSource   string

	// mu serialises attach, detach and reconcile, which all change ports.
	mu     sync.Mutex
	ports  map[string]*port
	broken map[string]string    // endpoint name -> why re-attaching failed (logged once)
	last   map[string]savedPort // endpoint name -> its port in the last run (loadPorts)
	// orphansDone: removeOrphans ran with a current state.
	orphansDone bool

	servers []*http.Server
	metrics *metrics     // apply latency (metrics.go); the port counters are the switch's
	fanout  fanout       // capture and trace streams (capture.go)
	peers   *peerClients // set by setupIdentity

	// id is this host's certificate; auth and apiListener count refused
	// peers (see tls.go).
	id          *pki.Live
	auth        peerAuth
	apiListener *pki.Listener
	// peerConns counts the peer API's open connections by source;
	// peerConnsRefused holds those closed over its limit until the server
	// reports them closed (see peerServer).
	peerConns        pki.SourceLimit
	peerConnsRefused sync.Map

	ready     chan struct{} // closed when Start is done: the local socket answers
	left      chan struct{} // closed when this host has left the cluster
	leftOnce  sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	// lock holds the data directory for this process (lock.go); served
	// tells that the unix socket is this agent's to remove at Close.
	lock   *os.File
	served bool
	// voterReplacements counts the dead voters this agent, as leader,
	// replaced by a non-voter (autopilot.go; shown in status).
	voterReplacements atomic.Uint64
	// refusals rate-limits the warnings about refused peer requests.
	refusals rateLog
}

// Start opens everything the agent needs and returns once it listens on its
// socket. A bootstrapping agent becomes the leader of a new cluster; a joining
// agent is admitted by the cluster before Start returns.
func Start(cfg Config) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("agent: must run as root: it creates TAP devices and moves them into network namespaces")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: create data dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		cfg:      cfg,
		log:      cfg.Logger.With("host", cfg.Name),
		ports:    map[string]*port{},
		broken:   map[string]string{},
		left:     make(chan struct{}),
		ready:    make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		lock:     lock,
		refusals: rateLog{period: 10 * time.Second},
	}
	if err := a.open(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *Agent) open() error {
	a.metrics = newMetrics()
	// The static ESP key of external (kernel) VTEPs' SAs (esp.go).
	static, err := loadStaticKey(filepath.Join(a.cfg.DataDir, "esp-static.key"))
	if err != nil {
		return err
	}
	seq, err := loadSeqFloor(filepath.Join(a.cfg.DataDir, "esp-static.seq"))
	if err != nil {
		return err
	}
	// The certificate comes first: a refused join changes nothing.
	if err := a.setupIdentity(a.ctx); err != nil {
		return err
	}
	mtu, src, err := underlayMTU(a.cfg.Advertise, a.cfg.UnderlayMTU)
	if err != nil {
		return err
	}
	a.underlayMTU, a.mtuSource = mtu, src

	a.conn, err = vxlan.Listen(netip.AddrPortFrom(a.cfg.Advertise, a.cfg.VXLANPort))
	if err != nil {
		return fmt.Errorf("agent: open underlay socket: %w", err)
	}
	a.espSock, err = vxlan.Listen(netip.AddrPortFrom(a.cfg.Advertise, esp.Port))
	if err != nil {
		return fmt.Errorf("agent: open ESP in UDP socket (port %d, encrypted networks): %w", esp.Port, err)
	}
	a.esp = espconn.New(a.conn, a.espSock, esp.Port)
	a.dns = resolver.New(resolver.Config{Logger: a.log})
	a.sw = vswitch.New(vswitch.Config{
		Underlay: a.esp, Port: a.cfg.VXLANPort, Logger: a.log,
		DNS: a.dns, NoClampMSS: a.cfg.NoClampMSS, PortStopped: a.portStopped,
	})
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		if err := a.sw.ServeUnderlay(a.esp.ClearReader()); err != nil {
			a.log.Error("underlay receive loop stopped", "err", err)
		}
	}()
	go func() {
		defer a.wg.Done()
		if err := a.sw.ServeUnderlay(a.esp.ESPReader()); err != nil {
			a.log.Error("ESP underlay receive loop stopped", "err", err)
		}
	}()

	a.prober, err = newProber(netip.AddrPortFrom(a.cfg.Advertise, uint16(a.cfg.APIPort)))
	if err != nil {
		return err
	}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.prober.serve() }()

	a.store, err = raftstore.Open(raftstore.Config{
		ID:        a.cfg.Name,
		Dir:       filepath.Join(a.cfg.DataDir, "raft"),
		Bind:      a.raftAddr(),
		Bootstrap: a.cfg.Bootstrap,
		Voters:    a.cfg.Voters,
		History:   a.cfg.History,
		Logger:    a.log,
		TLS: &raftstore.TLS{
			Server: a.id.ServerTLS(tls.RequireAndVerifyClientCert),
			Client: a.id.ClientTLS(),
		},
	})
	if err != nil {
		return fmt.Errorf("agent: open raft store: %w", err)
	}
	lastPorts := a.loadPorts()
	caughtUp := false
	if len(a.cfg.Join) == 0 {
		caughtUp = a.catchUp(10 * time.Second)
	}
	// Watch before anything can change, so no change is missed.
	changes := a.store.Changes()
	a.refresh()
	tokenChanges := a.store.Changes()
	keyChanges := a.store.Changes()
	a.keys = newKeyManager(a.esp, a.cfg.Name, a.cfg.KeyRotation, a.log, a.publishKey)
	a.keys.static, a.keys.seq = static, seq
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.keys.run(a.ctx, a.store.State, keyChanges) }()
	a.wg.Add(3)
	go func() { defer a.wg.Done(); a.keepTokenFile(tokenChanges) }()
	go func() { defer a.wg.Done(); a.watch(changes) }()
	go func() { defer a.wg.Done(); a.announceLoop() }()
	if a.cfg.VoterDeadAfter > 0 {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.autopilot() }()
	}

	if err := a.serve(); err != nil {
		return err
	}
	if err := a.serveMetrics(); err != nil {
		return err
	}

	if err := a.register(); err != nil {
		return err
	}
	if len(a.cfg.Join) > 0 {
		// A joining host catches up after the join: if its address
		// changed, only the join tells the leader where it is now.
		caughtUp = a.catchUp(10 * time.Second)
	}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.caLoop() }()
	// Docker calls need this host to be a member.
	if err := a.startDockerPlugin(); err != nil {
		return err
	}
	close(a.ready)
	if caughtUp {
		// Only a state known to be current may tell which TAPs of the
		// last run have no endpoint any more.
		a.removeOrphans(lastPorts)
	}
	a.log.Info("agent ready", "vtep", a.cfg.Advertise, "socket", a.cfg.Socket,
		"underlay_mtu", a.underlayMTU, "role", a.store.Role())
	return nil
}

func (a *Agent) raftAddr() string {
	return net.JoinHostPort(a.cfg.Advertise.String(), strconv.Itoa(a.cfg.RaftPort))
}

func (a *Agent) apiAddr() string {
	return net.JoinHostPort(a.cfg.Advertise.String(), strconv.Itoa(a.cfg.APIPort))
}

func (a *Agent) self() raftstore.Host {
	return raftstore.Host{Name: a.cfg.Name, VTEP: a.cfg.Advertise, RaftAddr: a.raftAddr(), APIAddr: a.apiAddr(), KeyFP: a.id.Load().KeyFingerprint(), CertCA: digestHex(a.id.Load().CA)}
}

// catchUp waits, at most d, until a restarted host has applied the log it
// holds on disk. Raft applies entries only once a leader confirms they are
// committed, so a host cut off from the majority goes on with the state of
// its last snapshot.
func (a *Agent) catchUp(d time.Duration) bool {
	last := a.store.LastIndex()
	deadline := time.Now().Add(d)
	for !a.store.AppliedThrough(last) {
		if time.Now().After(deadline) {
			a.log.Warn("log on disk not applied yet: no leader confirmed it; going on with the last snapshot's state", "applied", a.store.Stats()["applied_index"], "on_disk", last)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// register makes sure the replicated state lists this host with its current
// addresses: a new cluster's first host adds itself, a joining host asks a
// member, and a restarted host updates its entry if its addresses changed.
func (a *Agent) register() error {
	ctx, cancel := context.WithTimeout(a.ctx, 20*time.Second)
	defer cancel()
	if err := a.initCluster(ctx); err != nil {
		return err
	}
	if len(a.cfg.Join) > 0 {
		return a.join(ctx)
	}
	cur, ok := a.store.State().Hosts[a.cfg.Name]
	if !ok && !a.cfg.Bootstrap && a.store.Stats()["last_log_index"] != "0" {
		// A restarted host that no leader has reached yet has not applied
		// its log and lists nobody: wait for the leader instead of failing.
		cur, ok = a.waitListed(ctx)
	}
	if ok && cur.VTEP == a.cfg.Advertise && cur.RaftAddr == a.raftAddr() && cur.APIAddr == a.apiAddr() {
		return nil
	}
	if !a.cfg.Bootstrap && !ok {
		return errors.New("agent: this data dir holds no cluster: start with --bootstrap (new cluster) or --join ADDR --token T (existing one)")
	}
	for _, o := range a.store.State().Hosts {
		if o.Name != a.cfg.Name {
			if err := sameFamily(o.VTEP, a.cfg.Advertise); err != nil { // a restarted host with a new address
				return fmt.Errorf("agent: --advertise %s: %w", a.cfg.Advertise, err)
			}
		}
	}
	h := a.self()
	_, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpHostAdd, Host: &h})
	if err != nil {
		return fmt.Errorf("agent: register host %s: %w", a.cfg.Name, err)
	}
	return nil
}

// waitListed waits until the state lists this host or ctx ends.
func (a *Agent) waitListed(ctx context.Context) (raftstore.Host, bool) {
	for {
		if h, ok := a.store.State().Hosts[a.cfg.Name]; ok {
			return h, true
		}
		select {
		case <-ctx.Done():
			return raftstore.Host{}, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// join asks the members in cfg.Join, in turn and repeatedly, to admit this
// host until one does or ctx ends.
func (a *Agent) join(ctx context.Context) error {
	req := api.JoinRequest{Name: a.cfg.Name, VTEP: a.cfg.Advertise, RaftAddr: a.raftAddr(), APIAddr: a.apiAddr()}
	var last error
	for {
		for _, addr := range a.cfg.Join {
			resp, err := a.peers.get(withPort(addr, a.cfg.APIPort)).Join(ctx, req)
			if err == nil {
				a.log.Info("joined cluster", "via", addr, "voter", resp.Voter, "leader", resp.Leader)
				return nil
			}
			last = err
			var se *api.StatusError
			if errors.As(err, &se) && (se.Code == http.StatusBadRequest || se.Code == http.StatusForbidden) {
				return fmt.Errorf("agent: join through %s refused: %w", addr, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: cannot join the cluster through %v: %v: check the address and that an agent runs there", a.cfg.Join, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// withPort adds the default port to an address given without one: a host
// name, an IPv4 address, a bare IPv6 address (fd77::1) or a bracketed one
// ([fd77::1]) gets port; host:port and [IPv6]:port stay as they are.
func withPort(addr string, port int) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	if len(addr) > 2 && addr[0] == '[' && addr[len(addr)-1] == ']' {
		addr = addr[1 : len(addr)-1]
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

// Left is closed once this host has left the cluster (vxswitch leave); the
// process should then exit.
func (a *Agent) Left() <-chan struct{} { return a.left }

// Close stops the agent. Endpoints keep their persistent TAP devices, so a
// restarted agent re-attaches to them.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.cancel()
		for _, s := range a.servers {
			s.Close()
		}
		if a.sw != nil {
			a.mu.Lock()
			a.sw.Close()
			a.ports = map[string]*port{}
			a.mu.Unlock()
		}
		if a.espSock != nil {
			a.espSock.Close()
		}
		if a.conn != nil {
			a.conn.Close()
		}
		if a.prober != nil {
			a.prober.close()
		}
		if a.store != nil {
			if err := a.store.Close(); err != nil {
				a.log.Warn("close raft store", "err", err)
			}
		}
		a.wg.Wait()
		if a.served {
			os.Remove(a.cfg.Socket)
		}
		a.lock.Close()
	})
	return nil
}

// Package sim simulates a vxswitch cluster of many hosts in one process and
// measures its control plane: the real state machine (raftstore.FSM), the
// real hashicorp/raft library over its in-memory transport, and on every
// host what the agent builds from each new state (the resolver's name table
// and the switch's view, made live with vswitch.Switch.SetView); no TAPs,
// no sockets. It backs `vxswitch lab sim`.
//
// Every host starts from a snapshot of the same seeded state (hosts,
// networks, endpoints applied by the real FSM), as a restarted host does;
// the first Voters hosts are raft voters, the others non-voters, as the
// agent makes them. A driver then commits endpoint.attach and
// endpoint.detach commands on the leader at a steady rate, and every host's
// view is timestamped when it becomes live, which gives the time from a
// write's commit to its view being live on every host.
//
// What one process cannot repeat a thousand times is shared, never
// skipped: the first Options.OwnState hosts (the voters first) apply every
// command with their own FSM and build their own name table; the others
// take both from a ledger (ledger.go) that applies each command once, since
// the same log gives the same state. Every host keeps its own raft node,
// log and view, and the run checks that every host ends with the same state
// hash. The garbage collector runs with a higher GOGC (Options.GCPercent):
// one collection of the shared heap would stall every host at once, which
// no real host sees.
//
// All hosts share this machine's cores, while real hosts each have their
// own: when the simulation uses every core (Result.Saturated), its latencies
// say more about this machine than about a fleet, and the per-host costs
// (ApplyCPUMicros, ViewCPUMicros) are the figures to size with.
package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"

	"vxswitch/raftstore"
)

// Options describe a simulation. Zero fields take the default in their
// comment.
type Options struct {
	Hosts     int // simulated hosts; 0 = 10
	Voters    int // raft voters among them; 0 = raftstore.DefaultVoters (at most Hosts)
	Endpoints int // endpoints attached before the churn, spread over hosts and networks; 0 = 100
	Networks  int // networks; 0 = 1
	// Churn is the rate of writes during the run, in commands per second,
	// alternating endpoint.attach of a new endpoint and endpoint.detach of
	// a random one, so the number of endpoints stays about the same.
	// 0 = no writes.
	Churn    float64
	Duration time.Duration // length of the churn; 0 = 10 s
	// Converge bounds the wait, after the churn, for every host's view to
	// hold the last write; 0 = 60 s.
	Converge time.Duration
	Logger   *slog.Logger // progress; nil = discard
	// Seed seeds the choice of endpoints to detach; 0 = 1.
	Seed uint64
	// GCPercent is the garbage collector's GOGC while the simulation
	// runs; 0 = DefaultGCPercent. All hosts share one heap here, so one
	// collection marks the whole fleet's memory (seconds at 1000 hosts)
	// and slows every host at once, which no real host sees: each
	// collects its own few megabytes. So the run collects once after the
	// hosts start, and a high percent keeps collections out of the churn
	// where memory allows (Result.GCCycles counts those that happened); a
	// memory limit of 3/4 of this machine's memory still bounds the heap.
	// The CPU a host spends on its own garbage is in ApplyCPUMicros and
	// ViewCPUMicros, measured alone.
	GCPercent int
	// CPUProfile, when not nil, receives a CPU profile (runtime/pprof)
	// of the churn: every host, the driver and the simulation together.
	CPUProfile io.Writer
	// OwnState is how many hosts, the voters first, apply every command
	// with their own FSM and build their own name table; the others share
	// both through one ledger (see ledger), because this machine cannot
	// repeat that work and hold those states a thousand times. Their raft
	// nodes, logs and views stay their own. 0 = every host up to
	// DefaultOwnState, and at least the voters; -1 = every host.
	OwnState int
}

// DefaultOwnState is how many hosts apply commands on their own when
// Options.OwnState is 0.
const DefaultOwnState = 20

// DefaultGCPercent is Options.GCPercent when it is 0.
const DefaultGCPercent = 1000

func (o *Options) setDefaults() error {
	if o.Hosts == 0 {
		o.Hosts = 10
	}
	if o.Voters == 0 {
		o.Voters = min(raftstore.DefaultVoters, o.Hosts)
	}
	if o.Endpoints == 0 {
		o.Endpoints = 100
	}
	if o.Networks == 0 {
		o.Networks = 1
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Converge == 0 {
		o.Converge = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.GCPercent == 0 {
		o.GCPercent = DefaultGCPercent
	}
	switch o.OwnState {
	case 0:
		o.OwnState = max(min(o.Hosts, DefaultOwnState), o.Voters)
	case -1:
		o.OwnState = o.Hosts
	}
	switch {
	case o.Hosts < 1 || o.Hosts > 10000:
		return fmt.Errorf("sim: --hosts %d: use 1..10000", o.Hosts)
	case o.Voters < 1 || o.Voters > o.Hosts:
		return fmt.Errorf("sim: --voters %d: use 1..%d (the number of hosts)", o.Voters, o.Hosts)
	case o.Endpoints < 0 || o.Endpoints > 1_000_000:
		return fmt.Errorf("sim: --endpoints %d: use 0..1000000", o.Endpoints)
	case o.Networks < 1 || o.Networks > 4096:
		return fmt.Errorf("sim: --networks %d: use 1..4096", o.Networks)
	case o.Churn < 0 || o.Churn > 10000 || math.IsNaN(o.Churn):
		return fmt.Errorf("sim: --churn %v: use 0..10000 commands per second", o.Churn)
	case o.Duration < 0:
		return fmt.Errorf("sim: --duration %v: give a positive duration", o.Duration)
	case o.GCPercent < 0:
		return fmt.Errorf("sim: --gc-percent %d: give a positive percent", o.GCPercent)
	case o.OwnState < o.Voters || o.OwnState > o.Hosts:
		return fmt.Errorf("sim: --own-state %d: use %d..%d (every voter applies on its own; -1 = every host)", o.OwnState, o.Voters, o.Hosts)
	}
	return nil
}

// Result holds the run's parameters and figures. Times are in
// milliseconds (_ms) or microseconds (_us); every figure was measured in
// this run.
type Result struct {
	// Command is the command line that produced the figures, set by the
	// caller (the CLI); "" otherwise.
	Command   string `json:"command,omitempty"`
	Hosts     int    `json:"hosts"`
	Voters    int    `json:"voters"`
	Endpoints int    `json:"endpoints"`
	Networks  int    `json:"networks"`
	// OwnStateHosts apply every command with their own FSM and build their
	// own name table; SharedStateHosts take both from the ledger, where
	// each command is applied once (Options.OwnState).
	OwnStateHosts    int     `json:"own_state_hosts"`
	SharedStateHosts int     `json:"shared_state_hosts"`
	Churn            float64 `json:"churn_per_s"`
	DurationS        float64 `json:"duration_s"`
	GOMAXPROCS       int     `json:"gomaxprocs"`
	GCPercent        int     `json:"gc_percent"` // the simulation's GOGC (Options.GCPercent)
	// Load is this machine's 1-minute load average at the start of the
	// run and at the end of the churn (/proc/loadavg): above GOMAXPROCS, other processes
	// took CPU from the simulation and its times are longer for it.
	Load [2]float64 `json:"load"`

	SeedMS     float64 `json:"seed_ms"`     // applying the seed commands to one FSM, without raft
	StartMS    float64 `json:"start_ms"`    // starting every host from the seed snapshot (restore and first view)
	ElectionMS float64 `json:"election_ms"` // from connecting the hosts to every host following a leader

	Writes         int     `json:"writes"`          // commands committed during the churn
	WritesFailed   int     `json:"writes_failed"`   // not committed (no leader, timeout)
	WritesRejected int     `json:"writes_rejected"` // committed, but the FSM refused them
	FirstFailure   string  `json:"first_failure,omitempty"`
	LeaderChanges  int     `json:"leader_changes"` // leaders seen by the churn driver after the first
	CommitP50MS    float64 `json:"commit_p50_ms"`  // raft.Apply on the leader until the leader has applied it
	CommitP99MS    float64 `json:"commit_p99_ms"`
	VisibleP50MS   float64 `json:"visible_p50_ms"` // from commit to the view holding it being live on every host
	VisibleP99MS   float64 `json:"visible_p99_ms"`
	VisibleMaxMS   float64 `json:"visible_max_ms"`
	NotVisible     int     `json:"not_visible"` // writes some host's view never held within Converge

	Converged          bool   `json:"converged"`           // every host has the same state hash
	LedgerMismatches   int64  `json:"ledger_mismatches"`   // shared hosts that brought another command at an index than the ledger held (must be 0)
	StateHash          string `json:"state_hash"`          // of the leader's final state
	LaggingHosts       int    `json:"lagging_hosts"`       // hosts whose view missed the last write at the end
	DuplicateAddresses int    `json:"duplicate_addresses"` // IPs or MACs held twice in one network (must be 0)
	FinalEndpoints     int    `json:"final_endpoints"`

	CPUCores         float64 `json:"cpu_cores"`           // process CPU seconds per second during churn and convergence
	CPUPerHostPct    float64 `json:"cpu_per_host_pct"`    // CPUCores / Hosts, in percent of one core
	GCCycles         uint32  `json:"gc_cycles"`           // collections of the simulation's heap during the churn and convergence (Options.GCPercent)
	Saturated        bool    `json:"saturated"`           // CPUCores >= 90% of GOMAXPROCS, or a load average >= GOMAXPROCS: latencies are this machine's limit
	HeapBytes        uint64  `json:"heap_bytes"`          // live heap of the whole simulation after the churn
	HeapBytesPerHost uint64  `json:"heap_bytes_per_host"` // HeapBytes / Hosts (raft logs and transports included)

	FloodMean    float64 `json:"flood_mean"`    // mean head-end replication list length (hosts) per host and network
	FloodMax     int     `json:"flood_max"`     // longest replication list
	FloodForeign int     `json:"flood_foreign"` // replication entries of hosts without an endpoint in that network (must be 0)

	StateBytesPerHost uint64  `json:"state_bytes_per_host"` // heap of one host's state, name table and view, restored from the final snapshot
	SnapshotBytes     int     `json:"snapshot_bytes"`
	SnapshotMS        float64 `json:"snapshot_ms"`    // FSM.Snapshot and Persist of the final state
	RestoreMS         float64 `json:"restore_ms"`     // FSM.Restore of that snapshot plus the first view on a new host
	ApplyCPUMicros    float64 `json:"apply_cpu_us"`   // process CPU per attach or detach applied to the FSM, nothing else running
	ViewCPUMicros     float64 `json:"view_cpu_us"`    // process CPU per view refresh after one change (name table, view rebuilt for the changed network, SetView), nothing else running
	CostSamples       int     `json:"cost_samples"`   // commands behind ApplyCPUMicros
	RunMS             float64 `json:"run_ms"`         // the whole simulation
	Note              string  `json:"note,omitempty"` // what to keep in mind reading these figures
}

// write is one command the churn driver committed, or tried to.
type write struct {
	index    uint64
	start    time.Duration // since the simulation's start
	commit   time.Duration // when the leader's Apply returned
	failed   bool
	rejected bool
	err      error  // why it failed
	leader   string // the host it was sent to
}

// Run runs the simulation described by o and returns its figures. It
// returns an error when the cluster cannot be built or elects no leader;
// a cluster that falls behind is a result, not an error.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	base := time.Now()
	res := &Result{Hosts: o.Hosts, Voters: o.Voters, Endpoints: o.Endpoints, Networks: o.Networks,
		OwnStateHosts: o.OwnState, SharedStateHosts: o.Hosts - o.OwnState, GCPercent: o.GCPercent,
		Churn: o.Churn, DurationS: o.Duration.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0), Load: [2]float64{loadAverage()}}
	log := o.Logger
	defer debug.SetGCPercent(debug.SetGCPercent(o.GCPercent))
	if limit := memoryBytes() / 4 * 3; limit > 0 {
		prev := debug.SetMemoryLimit(-1) // -1 reads it
		debug.SetMemoryLimit(min(limit, prev))
		defer debug.SetMemoryLimit(prev)
	}

	t := time.Now()
	seedFSM, index, err := seed(o)
	if err != nil {
		return nil, err
	}
	snap, _, err := snapshotOf(seedFSM)
	if err != nil {
		return nil, err
	}
	if snap, err = withoutHistory(snap); err != nil {
		return nil, err
	}
	seedFSM = nil
	res.SeedMS = ms(time.Since(t))
	log.Info("seeded the state", "hosts", o.Hosts, "networks", o.Networks, "endpoints", o.Endpoints, "snapshot_bytes", len(snap), "took", time.Since(t).Round(time.Millisecond))

	t = time.Now()
	c, err := startCluster(o, snap, index, base)
	if err != nil {
		return nil, err
	}
	snap = nil
	defer func() { c.shutdown() }() // c is nil once stopped below
	res.StartMS = ms(time.Since(t))
	log.Info("hosts started", "hosts", o.Hosts, "voters", o.Voters, "took", time.Since(t).Round(time.Millisecond))

	runtime.GC() // the start's garbage, before anything is measured
	t = time.Now()
	c.connect()
	if err := c.waitFollowing(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	res.ElectionMS = ms(time.Since(t))
	log.Info("leader elected and followed by every host", "leader", c.leader().name, "took", time.Since(t).Round(time.Millisecond))

	var gc0 runtime.MemStats
	runtime.ReadMemStats(&gc0)
	if o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			return nil, fmt.Errorf("sim: profile: %w", err)
		}
	}
	cpu0, t0 := processCPU(), time.Now()
	writes := c.churn(ctx, o, base)
	if o.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	log.Info("churn done", "writes", len(writes))
	last := uint64(0)
	for _, w := range writes {
		if !w.failed && !w.rejected {
			last = max(last, w.index)
		}
	}
	res.LaggingHosts = c.waitVisible(ctx, last, o.Converge)
	res.CPUCores = (processCPU() - cpu0).Seconds() / time.Since(t0).Seconds()
	var gc1 runtime.MemStats
	runtime.ReadMemStats(&gc1)
	res.GCCycles = gc1.NumGC - gc0.NumGC
	res.CPUPerHostPct = 100 * res.CPUCores / float64(o.Hosts)
	res.Load[1] = loadAverage()
	res.Saturated = res.CPUCores >= 0.9*float64(res.GOMAXPROCS) || max(res.Load[0], res.Load[1]) >= float64(res.GOMAXPROCS)
	log.Info("views converged", "lagging_hosts", res.LaggingHosts)

	c.figureWrites(res, writes)
	c.figureState(res)
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	res.HeapBytes = ms0.HeapAlloc
	res.HeapBytesPerHost = ms0.HeapAlloc / uint64(o.Hosts)

	final := c.leader().own // a voter: its own FSM
	snap, took, err := snapshotOf(final)
	if err != nil {
		return nil, err
	}
	res.SnapshotBytes, res.SnapshotMS = len(snap), ms(took)
	if err := c.shutdown(); err != nil {
		return nil, err
	}
	c = nil
	log.Info("cluster stopped; measuring one host alone")
	if err := measureHost(res, snap, index+uint64(len(writes))+16, o); err != nil {
		return nil, err
	}
	res.RunMS = ms(time.Since(base))
	var notes []string
	if res.SharedStateHosts > 0 {
		notes = append(notes, fmt.Sprintf("%d hosts applied every command with their own state machine and name table; the other %d took one shared copy of each state and name table (the same log gives the same state; their raft nodes, logs and views were their own), and every host ended with the same state hash: %v",
			res.OwnStateHosts, res.SharedStateHosts, res.Converged))
	}
	if res.Saturated {
		notes = append(notes, fmt.Sprintf("CPU was the limit: the simulation used %.1f of %d cores with a load average of %.1f, then %.1f; every host shares them, so visible and commit times include waiting for this machine's CPU; real hosts each have their own, and apply_cpu_us + view_cpu_us is what one host spends per change",
			res.CPUCores, res.GOMAXPROCS, res.Load[0], res.Load[1]))
	}
	res.Note = strings.Join(notes, "; ")
	return res, nil
}

// cluster is the simulated hosts.
type cluster struct {
	hosts    []*host
	led      *ledger // of the hosts that share states; nil if none
	stopOnce sync.Once
	stopErr  error
	mu       sync.Mutex
	lead     *host // last known leader; under mu
}

// startCluster starts every host from the snapshot, in parallel.
func startCluster(o Options, snap []byte, index uint64, base time.Time) (*cluster, error) {
	conf := raft.Configuration{}
	for i := range o.Hosts {
		s := raft.Server{Suffrage: raft.Nonvoter, ID: raft.ServerID(hostName(i)), Address: raft.ServerAddress(hostName(i))}
		if i < o.Voters {
			s.Suffrage = raft.Voter
		}
		conf.Servers = append(conf.Servers, s)
	}
	c := &cluster{hosts: make([]*host, o.Hosts)}
	if o.OwnState < o.Hosts {
		var err error
		if c.led, err = newLedger(snap); err != nil {
			return nil, err
		}
	}
	errs := make([]error, o.Hosts)
	parallel(o.Hosts, func(i int) {
		var led *ledger
		if i >= o.OwnState {
			led = c.led
		}
		c.hosts[i], errs[i] = startHost(hostName(i), i < o.Voters, led, conf, snap, index, base)
	})
	if err := errors.Join(errs...); err != nil {
		c.shutdown()
		return nil, err
	}
	return c, nil
}

// parallel calls f(0..n-1) on GOMAXPROCS goroutines and waits.
func parallel(n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// connect links the transports: every voter reaches every host (a voter
// may lead, and a leader sends to all); non-voters only answer.
func (c *cluster) connect() {
	for _, v := range c.hosts {
		if !v.voter {
			continue
		}
		for _, h := range c.hosts {
			if h != v {
				v.trans.Connect(h.trans.LocalAddr(), h.trans)
			}
		}
	}
}

// leader returns the host that leads now, or the last one known.
func (c *cluster) leader() *host {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lead != nil && c.lead.raft.State() == raft.Leader {
		return c.lead
	}
	for _, h := range c.hosts {
		if h.voter && h.raft.State() == raft.Leader {
			c.lead = h
			return h
		}
	}
	return c.lead
}

// waitFollowing waits until a leader exists and every host has applied
// the leader's log as of its election (its no-op entry): every host
// follows it.
func (c *cluster) waitFollowing(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var target uint64
	for {
		if l := c.leader(); l != nil && target == 0 {
			target = l.raft.LastIndex()
		}
		if target != 0 {
			behind := 0
			for _, h := range c.hosts {
				if h.raft.AppliedIndex() < target {
					behind++
				}
			}
			if behind == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sim: no leader followed by every host after %v: %w", limit, ctx.Err())
		case <-tick.C:
		}
	}
}

// churn commits attach and detach commands on the leader at o.Churn per
// second for o.Duration, each from its own goroutine (independent
// clients), and returns them once all have returned.
func (c *cluster) churn(ctx context.Context, o Options, base time.Time) []write {
	if o.Churn == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0))
	var (
		mu     sync.Mutex
		live   = make([]string, 0, o.Endpoints)
		writes []write
		wg     sync.WaitGroup
	)
	for n := range o.Endpoints {
		live = append(live, fmt.Sprintf("ep%d", n))
	}
	send := func(cmd raftstore.Command, attached string) {
		defer wg.Done()
		w := write{start: time.Since(base)}
		data, err := raftstore.EncodeCommand(cmd)
		l := c.leader()
		switch {
		case err != nil:
			w.failed, w.err = true, err
		case l == nil:
			w.failed, w.err = true, errors.New("no leader")
		default:
			w.leader = l.name
			f := l.raft.Apply(data, 10*time.Second)
			w.err = f.Error()
			w.failed = w.err != nil
			w.commit = time.Since(base)
			if !w.failed {
				w.index = f.Index()
				r, _ := f.Response().(*raftstore.Result)
				w.rejected = r == nil || r.Err != ""
			}
		}
		mu.Lock()
		defer mu.Unlock()
		writes = append(writes, w)
		if attached != "" && !w.failed && !w.rejected {
			live = append(live, attached)
		}
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.Churn))
	defer tick.Stop()
	end := time.After(o.Duration)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
		case <-end:
		case <-tick.C:
			mu.Lock()
			var cmd raftstore.Command
			attached := ""
			if n%2 == 1 && len(live) > 0 {
				i := rng.IntN(len(live))
				name := live[i]
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
				cmd = detachCommand(name, n)
			} else {
				cmd = attachCommand(o.Endpoints+n, o.Hosts, o.Networks)
				cmd.Time = seedTime + int64(n)
				attached = cmd.Endpoint.Name
			}
			mu.Unlock()
			wg.Add(1)
			go send(cmd, attached)
			continue
		}
		break
	}
	wg.Wait()
	slices.SortFunc(writes, func(a, b write) int { return cmp.Compare(a.start, b.start) })
	return writes
}

// waitVisible waits until every host's live view holds the state of
// index, at most limit, and returns how many hosts still lag.
func (c *cluster) waitVisible(ctx context.Context, index uint64, limit time.Duration) int {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		lagging := 0
		for _, h := range c.hosts {
			if h.liveIndex() < index {
				lagging++
			}
		}
		if lagging == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return lagging
		case <-tick.C:
		}
	}
}

// figureWrites fills the commit and visibility figures of res.
func (c *cluster) figureWrites(res *Result, writes []write) {
	var commit, visible []time.Duration
	leader := ""
	for _, w := range writes {
		if w.leader != "" && w.leader != leader {
			if leader != "" {
				res.LeaderChanges++
			}
			leader = w.leader
		}
		switch {
		case w.failed:
			res.WritesFailed++
			if res.FirstFailure == "" {
				res.FirstFailure = fmt.Sprintf("%s on %s: %v", time.Duration(w.start).Round(time.Millisecond), w.leader, w.err)
			}
			continue
		case w.rejected:
			res.WritesRejected++
		}
		res.Writes++
		commit = append(commit, w.commit-w.start)
		if w.rejected {
			continue // changed no state: no view to wait for
		}
		var last time.Duration
		seen := true
		for _, h := range c.hosts {
			at, ok := h.visibleAt(w.index)
			if !ok {
				seen = false
				break
			}
			last = max(last, at)
		}
		if !seen {
			res.NotVisible++
			continue
		}
		visible = append(visible, max(0, last-w.commit))
	}
	res.CommitP50MS, res.CommitP99MS = ms(quantile(commit, 0.5)), ms(quantile(commit, 0.99))
	res.VisibleP50MS, res.VisibleP99MS = ms(quantile(visible, 0.5)), ms(quantile(visible, 0.99))
	res.VisibleMaxMS = ms(quantile(visible, 1))
}

// figureState checks that every host holds the same state, that no
// address is held twice, and how far each network's flooding reaches.
func (c *cluster) figureState(res *Result) {
	st := c.leader().fsm.State()
	res.StateHash = st.Hash()
	res.FinalEndpoints = st.Endpoints.Len()
	// Hosts that share the ledger's states mostly hold the same one:
	// hash each distinct state once.
	var mu sync.Mutex
	byState := map[*raftstore.State]string{}
	hashes := make([]string, len(c.hosts))
	parallel(len(c.hosts), func(i int) {
		s := c.hosts[i].fsm.State()
		mu.Lock()
		h, ok := byState[s]
		mu.Unlock()
		if !ok {
			h = s.Hash()
			mu.Lock()
			byState[s] = h
			mu.Unlock()
		}
		hashes[i] = h
	})
	if c.led != nil {
		res.LedgerMismatches = c.led.mismatches.Load()
	}
	res.Converged = true
	for _, h := range hashes {
		if h != res.StateHash {
			res.Converged = false
		}
	}
	res.DuplicateAddresses = duplicates(st)

	// members[network] = VTEPs of the hosts with an endpoint in it.
	members := map[string]map[netip.Addr]bool{}
	for _, e := range st.Endpoints.All() {
		if members[e.Network] == nil {
			members[e.Network] = map[netip.Addr]bool{}
		}
		members[e.Network][st.Hosts[e.Host].VTEP] = true
	}
	total, lists := 0, 0
	for _, h := range c.hosts {
		v := h.liveView()
		if v == nil {
			continue
		}
		for _, n := range v.Networks {
			total += len(n.Flood)
			lists++
			res.FloodMax = max(res.FloodMax, len(n.Flood))
			for _, a := range n.Flood {
				if !members[n.Name][a] || a == v.Self {
					res.FloodForeign++
				}
			}
		}
	}
	if lists > 0 {
		res.FloodMean = float64(total) / float64(lists)
	}
}

// duplicates counts the addresses and MACs held by two endpoints of the
// same network.
func duplicates(st *raftstore.State) int {
	seen := map[string]bool{}
	dup := 0
	for _, e := range st.Endpoints.All() {
		for _, k := range []string{e.Network + "/ip/" + e.IP.String(), e.Network + "/mac/" + e.MAC} {
			if seen[k] {
				dup++
			}
			seen[k] = true
		}
	}
	return dup
}

// shutdown stops every host; later calls return the first result.
func (c *cluster) shutdown() error {
	if c == nil {
		return nil
	}
	c.stopOnce.Do(func() {
		errs := make([]error, len(c.hosts))
		parallel(len(c.hosts), func(i int) {
			if h := c.hosts[i]; h != nil {
				errs[i] = h.shutdown()
			}
		})
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// quantile returns the q-quantile of d (nearest rank), 0 for none.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// ms returns d in milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// loadAverage returns the 1-minute load average of this machine, 0 when
// /proc/loadavg cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}

// memoryBytes returns this machine's physical memory, 0 when unknown.
func memoryBytes() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// processCPU returns the CPU time (user and system) this process used.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package agent

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"vxswitch/api"
)

// portCounters count the frames and bytes that one port's device carries:
// rx is what the endpoint sent (read from the TAP), tx what the switch
// wrote into it. The zero value is ready; all methods are safe for
// concurrent use.
type portCounters struct {
	rxFrames, rxBytes atomic.Uint64
	txFrames, txBytes atomic.Uint64
}

func (c *portCounters) read(n int) {
	c.rxFrames.Add(1)
	c.rxBytes.Add(uint64(n))
}

func (c *portCounters) wrote(n int) {
	c.txFrames.Add(1)
	c.txBytes.Add(uint64(n))
}

// metrics holds what the agent counts besides the switch: per-port
// counters and the latency of Raft applies. It has its own lock, so a
// scrape never waits for an attach that holds the agent's. Create it with
// newMetrics; all methods are safe for concurrent use.
type metrics struct {
	apply latencyObserver

	mu    sync.Mutex
	ports map[string]portEntry // by endpoint (port) name
}

// portEntry is one port's network and counters.
type portEntry struct {
	network string
	count   *portCounters
}

func newMetrics() *metrics {
	return &metrics{
		apply: newApplyLatency(),
		ports: map[string]portEntry{},
	}
}

// addPort lists the counters c of the port called name in network; a port
// of the same name is replaced.
func (m *metrics) addPort(name, network string, c *portCounters) {
	m.mu.Lock()
	m.ports[name] = portEntry{network, c}
	m.mu.Unlock()
}

// removePort forgets the port called name.
func (m *metrics) removePort(name string) {
	m.mu.Lock()
	delete(m.ports, name)
	m.mu.Unlock()
}

// portStats returns the counters of every port, sorted by name.
func (m *metrics) portStats() []api.PortStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.PortStats, 0, len(m.ports))
	for _, name := range slices.Sorted(maps.Keys(m.ports)) {
		e := m.ports[name]
		out = append(out, api.PortStats{
			Name: name, Network: e.network,
			RxFrames: e.count.rxFrames.Load(), RxBytes: e.count.rxBytes.Load(),
			TxFrames: e.count.txFrames.Load(), TxBytes: e.count.txBytes.Load(),
		})
	}
	return out
}

// latencyObserver records durations in seconds; a prometheus.Histogram is one.
type latencyObserver interface{ Observe(seconds float64) }

// observeApply records how long one apply on the leader took.
func (m *metrics) observeApply(d time.Duration) { m.apply.Observe(d.Seconds()) }

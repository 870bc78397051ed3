package agent

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"vxswitch/api"
	"vxswitch/raftstore"
	vswitch "vxswitch/switch"
)

// raftRoles are the values of the role label of vxswitch_raft_role.
var raftRoles = []raftstore.Role{raftstore.RoleLeader, raftstore.RoleVoter, raftstore.RoleNonvoter, raftstore.RoleCandidate, raftstore.RoleShutdown}

// metricsSource is what the collector reads at every scrape. Each function
// must be safe to call from any goroutine.
type metricsSource struct {
	// switchStats returns the forwarding engine's counters.
	switchStats func() vswitch.Stats
	// ports returns the per-port counters (Switch.PortStats).
	ports func() []api.PortStats
	// raft returns raft's statistics as raftstore.Store.Stats does: it
	// reads the keys "role", "term", "commit_index" and "applied_index".
	raft func() map[string]string
}

// collector is a prometheus.Collector that turns the agent's counters into
// metrics when scraped; it keeps no copies of its own.
type collector struct {
	src metricsSource

	portRx, portRxBytes, portTx, portTxBytes *prometheus.Desc
	counters                                 []switchCounter
	drops                                    *prometheus.Desc
	role, term, commit, applied              *prometheus.Desc
}

// switchCounter is one global counter of the switch.
type switchCounter struct {
	desc *prometheus.Desc
	get  func(vswitch.Stats) uint64
}

func newCollector(src metricsSource) *collector {
	portLabels := []string{"network", "port"}
	c := &collector{
		src:         src,
		portRx:      prometheus.NewDesc("vxswitch_port_rx_frames_total", "Frames the endpoint sent into its port (read from the TAP).", portLabels, nil),
		portRxBytes: prometheus.NewDesc("vxswitch_port_rx_bytes_total", "Bytes of the frames the endpoint sent into its port.", portLabels, nil),
		portTx:      prometheus.NewDesc("vxswitch_port_tx_frames_total", "Frames the switch wrote into the port (to the endpoint).", portLabels, nil),
		portTxBytes: prometheus.NewDesc("vxswitch_port_tx_bytes_total", "Bytes of the frames the switch wrote into the port.", portLabels, nil),
		drops:       prometheus.NewDesc("vxswitch_dropped_frames_total", "Frames the switch dropped (and MACs it refused to learn), by reason.", []string{"reason"}, nil),
		role:        prometheus.NewDesc("vxswitch_raft_role", "1 for this host's current Raft role, 0 for the others.", []string{"role"}, nil),
		term:        prometheus.NewDesc("vxswitch_raft_term", "Current Raft term.", nil, nil),
		commit:      prometheus.NewDesc("vxswitch_raft_commit_index", "Index of the last Raft log entry known to be committed.", nil, nil),
		applied:     prometheus.NewDesc("vxswitch_raft_applied_index", "Index of the last Raft log entry applied to this host's state.", nil, nil),
	}
	counter := func(name, help string, get func(vswitch.Stats) uint64) {
		c.counters = append(c.counters, switchCounter{prometheus.NewDesc(name, help, nil, nil), get})
	}
	counter("vxswitch_rx_frames_total", "Frames read from all TAP ports.", func(s vswitch.Stats) uint64 { return s.RxFrames })
	counter("vxswitch_rx_bytes_total", "Bytes read from all TAP ports.", func(s vswitch.Stats) uint64 { return s.RxBytes })
	counter("vxswitch_tx_frames_total", "Frames written to all TAP ports.", func(s vswitch.Stats) uint64 { return s.TxFrames })
	counter("vxswitch_tx_bytes_total", "Bytes written to all TAP ports.", func(s vswitch.Stats) uint64 { return s.TxBytes })
	counter("vxswitch_encap_frames_total", "VXLAN packets sent to the underlay.", func(s vswitch.Stats) uint64 { return s.EncapFrames })
	counter("vxswitch_decap_frames_total", "VXLAN packets from the underlay that passed the header, VNI and member checks.", func(s vswitch.Stats) uint64 { return s.DecapFrames })
	counter("vxswitch_flood_copies_total", "Copies made by flooding, one per port or VTEP a frame went to.", func(s vswitch.Stats) uint64 { return s.FloodCopies })
	counter("vxswitch_local_switched_total", "Frames switched from one local port to another.", func(s vswitch.Stats) uint64 { return s.LocalSwitched })
	counter("vxswitch_csum_completed_total", "Partial inner checksums completed on frames from the underlay.", func(s vswitch.Stats) uint64 { return s.CsumCompleted })
	counter("vxswitch_arp_answered_total", "ARP requests answered by the switch itself.", func(s vswitch.Stats) uint64 { return s.ARPSuppressed })
	counter("vxswitch_arp_flooded_total", "ARP requests the switch could not answer and flooded.", func(s vswitch.Stats) uint64 { return s.ARPFlooded })
	counter("vxswitch_garp_sent_total", "Gratuitous ARPs sent because an address moved.", func(s vswitch.Stats) uint64 { return s.GARPSent })
	counter("vxswitch_ndp_answered_total", "IPv6 neighbour solicitations answered by the switch itself.", func(s vswitch.Stats) uint64 { return s.NDPAnswered })
	counter("vxswitch_ndp_dad_answered_total", "IPv6 duplicate address probes for another endpoint's address, answered by the switch.", func(s vswitch.Stats) uint64 { return s.NDPDADAnswered })
	counter("vxswitch_ndp_flooded_total", "IPv6 neighbour solicitations the switch could not answer and flooded.", func(s vswitch.Stats) uint64 { return s.NDPFlooded })
	counter("vxswitch_unsolicited_na_sent_total", "Unsolicited IPv6 neighbour advertisements sent because an address moved.", func(s vswitch.Stats) uint64 { return s.UNASent })
	counter("vxswitch_dns_queries_total", "DNS queries to the in-band resolver.", func(s vswitch.Stats) uint64 { return s.DNSQueries })
	counter("vxswitch_dns_tcp_connections_total", "TCP connections to the in-band resolver's port 53.", func(s vswitch.Stats) uint64 { return s.DNSTCPConns })
	counter("vxswitch_dns_tcp_queries_total", "DNS queries to the in-band resolver over TCP (also in vxswitch_dns_queries_total).", func(s vswitch.Stats) uint64 { return s.DNSTCPQueries })
	counter("vxswitch_dns_tcp_resets_total", "RSTs sent for TCP to the resolver that no connection or port takes.", func(s vswitch.Stats) uint64 { return s.DNSTCPResets })
	counter("vxswitch_dns_tcp_aborted_total", "DNS-over-TCP connections reset because their unsent answers passed the memory bound (a client that does not read).", func(s vswitch.Stats) uint64 { return s.DNSTCPAborted })
	counter("vxswitch_echo_replies_total", "ICMP echo replies sent for the resolver address.", func(s vswitch.Stats) uint64 { return s.EchoReplies })
	counter("vxswitch_icmp_frag_needed_total", "ICMP fragmentation-needed messages sent for oversize IPv4 packets with DF (RFC 1191).", func(s vswitch.Stats) uint64 { return s.ICMPFragNeeded })
	counter("vxswitch_icmpv6_too_big_total", "ICMPv6 packet-too-big messages sent for oversize IPv6 packets (RFC 4443).", func(s vswitch.Stats) uint64 { return s.ICMPv6TooBig })
	counter("vxswitch_fragmented_total", "Oversize IPv4 packets without DF split into fragments.", func(s vswitch.Stats) uint64 { return s.Fragmented })
	counter("vxswitch_mss_clamped_total", "TCP SYNs whose MSS option was lowered to fit the network MTU.", func(s vswitch.Stats) uint64 { return s.MSSClamped })
	return c
}

// Describe sends the descriptions of every metric the collector makes.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.portRx, c.portRxBytes, c.portTx, c.portTxBytes, c.drops, c.role, c.term, c.commit, c.applied} {
		ch <- d
	}
	for _, sc := range c.counters {
		ch <- sc.desc
	}
}

// Collect reads the counters now and sends them as metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, p := range c.src.ports() {
		counter(c.portRx, p.RxFrames, p.Network, p.Name)
		counter(c.portRxBytes, p.RxBytes, p.Network, p.Name)
		counter(c.portTx, p.TxFrames, p.Network, p.Name)
		counter(c.portTxBytes, p.TxBytes, p.Network, p.Name)
	}
	s := c.src.switchStats()
	for _, sc := range c.counters {
		counter(sc.desc, sc.get(s))
	}
	for reason, n := range s.Drops {
		counter(c.drops, n, reason)
	}
	rs := c.src.raft()
	for _, role := range raftRoles {
		v := 0.0
		if rs["role"] == string(role) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.role, prometheus.GaugeValue, v, string(role))
	}
	for key, d := range map[string]*prometheus.Desc{"term": c.term, "commit_index": c.commit, "applied_index": c.applied} {
		if n, err := strconv.ParseUint(rs[key], 10, 64); err == nil {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n))
		}
	}
}

// metrics holds what the agent measures besides the switch's counters:
// the latency of Raft applies. Create it with newMetrics; all methods are
// safe for concurrent use.
type metrics struct {
	apply latencyObserver
}

func newMetrics() *metrics { return &metrics{apply: newApplyLatency()} }

// latencyObserver records durations in seconds; a prometheus.Histogram is one.
type latencyObserver interface{ Observe(seconds float64) }

// observeApply records how long one apply on the leader took.
func (m *metrics) observeApply(d time.Duration) { m.apply.Observe(d.Seconds()) }

// newApplyLatency returns the histogram of Raft apply latency.
func newApplyLatency() latencyObserver {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vxswitch_raft_apply_seconds",
		Help: "Time from handing a command to Raft on the leader until the FSM applied it.",
		// 0.5 ms .. about 4 s: a commit takes about 1 ms on a quiet cluster.
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
}

// serveMetrics serves Prometheus metrics at http://ADDR/metrics when
// cfg.Metrics is ADDR; the server stops with the agent (Close).
func (a *Agent) serveMetrics() error {
	if a.cfg.Metrics == "" {
		return nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(metricsSource{
			switchStats: a.sw.Stats,
			ports:       a.portStats,
			raft:        a.store.Stats,
		}),
		newESPCollector(a.esp),
		a.metrics.apply.(prometheus.Histogram), // made by newApplyLatency
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	ln, err := net.Listen("tcp", a.cfg.Metrics)
	if err != nil {
		return fmt.Errorf("agent: --metrics %s: %w: give a free host:port such as 127.0.0.1:9464", a.cfg.Metrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	a.servers = append(a.servers, srv)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server stopped", "err", err)
		}
	}()
	a.log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

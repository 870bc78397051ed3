package agent

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vxswitch/api"
	vswitch "vxswitch/switch"
)

// testPorts are the per-port counters of fakeSource.
var testPorts = []api.PortStats{
	{Name: "c1", Network: "web", RxFrames: 3, RxBytes: 300, TxFrames: 1, TxBytes: 60},
	{Name: "c2", Network: "db", TxFrames: 1, TxBytes: 70},
}

// fakeSource is a metricsSource over fixed numbers.
func fakeSource() metricsSource {
	return metricsSource{
		switchStats: func() vswitch.Stats {
			return vswitch.Stats{
				RxFrames: 10, RxBytes: 1000, TxFrames: 9, TxBytes: 900, EncapFrames: 7, DecapFrames: 6,
				FloodCopies: 5, ARPSuppressed: 4, DNSQueries: 3, ICMPFragNeeded: 2, MSSClamped: 1,
				Drops: map[string]uint64{"unknown_vni": 2, "not_member": 1},
			}
		},
		ports: func() []api.PortStats { return testPorts },
		raft: func() map[string]string {
			return map[string]string{"role": "voter", "term": "3", "commit_index": "42", "applied_index": "41", "state": "Follower"}
		},
	}
}

func TestCollector(t *testing.T) {
	want := `
# HELP vxswitch_port_rx_frames_total Frames the endpoint sent into its port (read from the TAP).
# TYPE vxswitch_port_rx_frames_total counter
vxswitch_port_rx_frames_total{network="db",port="c2"} 0
vxswitch_port_rx_frames_total{network="web",port="c1"} 3
# HELP vxswitch_port_tx_bytes_total Bytes of the frames the switch wrote into the port.
# TYPE vxswitch_port_tx_bytes_total counter
vxswitch_port_tx_bytes_total{network="db",port="c2"} 70
vxswitch_port_tx_bytes_total{network="web",port="c1"} 60
# HELP vxswitch_encap_frames_total VXLAN packets sent to the underlay.
# TYPE vxswitch_encap_frames_total counter
vxswitch_encap_frames_total 7
# HELP vxswitch_flood_copies_total Copies made by flooding, one per port or VTEP a frame went to.
# TYPE vxswitch_flood_copies_total counter
vxswitch_flood_copies_total 5
# HELP vxswitch_arp_answered_total ARP requests answered by the switch itself.
# TYPE vxswitch_arp_answered_total counter
vxswitch_arp_answered_total 4
# HELP vxswitch_icmp_frag_needed_total ICMP fragmentation-needed messages sent for oversize IPv4 packets with DF (RFC 1191).
# TYPE vxswitch_icmp_frag_needed_total counter
vxswitch_icmp_frag_needed_total 2
# HELP vxswitch_dropped_frames_total Frames the switch dropped (and MACs it refused to learn), by reason.
# TYPE vxswitch_dropped_frames_total counter
vxswitch_dropped_frames_total{reason="not_member"} 1
vxswitch_dropped_frames_total{reason="unknown_vni"} 2
# HELP vxswitch_raft_role 1 for this host's current Raft role, 0 for the others.
# TYPE vxswitch_raft_role gauge
vxswitch_raft_role{role="candidate"} 0
vxswitch_raft_role{role="leader"} 0
vxswitch_raft_role{role="nonvoter"} 0
vxswitch_raft_role{role="shutdown"} 0
vxswitch_raft_role{role="voter"} 1
# HELP vxswitch_raft_term Current Raft term.
# TYPE vxswitch_raft_term gauge
vxswitch_raft_term 3
# HELP vxswitch_raft_commit_index Index of the last Raft log entry known to be committed.
# TYPE vxswitch_raft_commit_index gauge
vxswitch_raft_commit_index 42
# HELP vxswitch_raft_applied_index Index of the last Raft log entry applied to this host's state.
# TYPE vxswitch_raft_applied_index gauge
vxswitch_raft_applied_index 41
`
	names := []string{
		"vxswitch_port_rx_frames_total", "vxswitch_port_tx_bytes_total", "vxswitch_encap_frames_total",
		"vxswitch_flood_copies_total", "vxswitch_arp_answered_total", "vxswitch_icmp_frag_needed_total",
		"vxswitch_dropped_frames_total", "vxswitch_raft_role", "vxswitch_raft_term",
		"vxswitch_raft_commit_index", "vxswitch_raft_applied_index",
	}
	c := newCollector(fakeSource())
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// Every description is used and every metric is described (lint also
	// checks names and help texts).
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

}

// The handler serves the collector and the apply histogram in the text
// format Prometheus scrapes.
func TestMetricsHandler(t *testing.T) {
	m := newMetrics()
	m.observeApply(2 * time.Millisecond)
	m.observeApply(3 * time.Second)
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(fakeSource()), m.apply.(prometheus.Histogram))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"vxswitch_raft_apply_seconds_count 2",
		`vxswitch_raft_apply_seconds_bucket{le="0.002"} 1`,
		`vxswitch_raft_apply_seconds_bucket{le="+Inf"} 2`,
		"vxswitch_rx_frames_total 10",
		"vxswitch_mss_clamped_total 1",
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("scrape lacks %q:\n%s", line, body)
		}
	}
}

package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// metricsAddr is where every lab agent serves metrics, inside its own
// host namespace.
const metricsAddr = "127.0.0.1:9464"

// TestMetrics pings across hosts a known number of times and checks that
// the Prometheus counters of the sending host moved by at least as much,
// and that 'vxswitch stats' shows the same counters.
func TestMetrics(t *testing.T) {
	const n = 20
	c := newLab(t, lab.Options{Hosts: 2, AgentArgs: []string{"--metrics", metricsAddr}})
	c1, c2 := c.Endpoints[0], c.Endpoints[1]
	h1 := c1.Agent
	port := fmt.Sprintf(`{network="web",port="%s"}`, c1.Name)

	before := scrape(t, h1)
	ping(t, c1.NS, c2.IP.String(), n)
	after := scrape(t, h1)

	t.Logf("after %d pings: c1 rx %v tx %v, encap %v, decap %v", n,
		after["vxswitch_port_rx_frames_total"+port]-before["vxswitch_port_rx_frames_total"+port],
		after["vxswitch_port_tx_frames_total"+port]-before["vxswitch_port_tx_frames_total"+port],
		after["vxswitch_encap_frames_total"]-before["vxswitch_encap_frames_total"],
		after["vxswitch_decap_frames_total"]-before["vxswitch_decap_frames_total"])
	for _, m := range []string{
		"vxswitch_port_rx_frames_total" + port, // echo requests from c1
		"vxswitch_port_tx_frames_total" + port, // echo replies to c1
		"vxswitch_encap_frames_total",
		"vxswitch_decap_frames_total",
	} {
		if d := after[m] - before[m]; d < n {
			t.Errorf("%s moved by %v after %d pings, want at least %d", m, d, n, n)
		}
	}
	if after["vxswitch_port_rx_bytes_total"+port]-before["vxswitch_port_rx_bytes_total"+port] < n*98 {
		t.Errorf("c1 rx bytes moved by less than %d pings of 98 bytes", n)
	}
	if roles := after[`vxswitch_raft_role{role="leader"}`] + after[`vxswitch_raft_role{role="voter"}`]; roles != 1 {
		t.Errorf("h1 is neither leader nor voter in the scrape: %v", roles)
	}
	if after["vxswitch_raft_applied_index"] == 0 || after["vxswitch_raft_term"] == 0 {
		t.Errorf("raft gauges missing: applied %v term %v", after["vxswitch_raft_applied_index"], after["vxswitch_raft_term"])
	}
	if after["vxswitch_raft_apply_seconds_count"] == 0 {
		t.Errorf("no apply latency observed on h1, which bootstrapped and committed the lab's writes")
	}

	// vxswitch stats reads the same counters: between two scrapes, each of
	// its numbers lies between theirs.
	out, err := cli(t, h1, "stats", "-o", "json")
	if err != nil {
		t.Fatalf("stats: %v: %s", err, out)
	}
	last := scrape(t, h1)
	var s api.Stats
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stats -o json: %v: %s", err, out)
	}
	var p *api.PortStats
	for i := range s.Ports {
		if s.Ports[i].Name == c1.Name {
			p = &s.Ports[i]
		}
	}
	if p == nil || p.Network != "web" {
		t.Fatalf("stats has no port %s in network web: %+v", c1.Name, s.Ports)
	}
	for name, v := range map[string]uint64{
		"vxswitch_port_rx_frames_total" + port: p.RxFrames,
		"vxswitch_port_rx_bytes_total" + port:  p.RxBytes,
		"vxswitch_port_tx_frames_total" + port: p.TxFrames,
		"vxswitch_port_tx_bytes_total" + port:  p.TxBytes,
		"vxswitch_rx_frames_total":             s.RxFrames,
		"vxswitch_tx_frames_total":             s.TxFrames,
		"vxswitch_encap_frames_total":          s.EncapFrames,
		"vxswitch_decap_frames_total":          s.DecapFrames,
		"vxswitch_flood_copies_total":          s.FloodCopies,
		"vxswitch_arp_answered_total":          s.ARPSuppressed,
	} {
		if f := float64(v); f < after[name] || f > last[name] {
			t.Errorf("stats says %s = %d, scrapes before and after say %v and %v", name, v, after[name], last[name])
		}
	}
	out, err = cli(t, h1, "stats")
	if err != nil || !strings.Contains(out, c1.Name) {
		t.Errorf("stats table lacks the port row of %s: %v\n%s", c1.Name, err, out)
	}
	t.Logf("vxswitch stats on h1:\n%s", out)
}

// scrape fetches agent a's metrics over HTTP from inside its host's
// namespace and returns every sample by its name with labels, as written
// in the text format (name{label="value",...}).
func scrape(t *testing.T, a *lab.Agent) map[string]float64 {
	t.Helper()
	var body []byte
	err := netlab.Do(a.Host.NSPath, func() error {
		// Dial here, on the thread that is in the namespace; an
		// http.Client would dial from another goroutine.
		conn, err := net.DialTimeout("tcp", metricsAddr, 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.NewRequest("GET", "http://"+metricsAddr+"/metrics", nil)
		if err != nil {
			return err
		}
		req.Close = true
		if err := req.Write(conn); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		var sb strings.Builder
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			sb.WriteString(sc.Text() + "\n")
		}
		body = []byte(sb.String())
		return sc.Err()
	})
	if err != nil {
		t.Fatalf("scrape metrics of %s: %v", a.Host.Name, err)
	}
	samples := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("scrape of %s: bad sample line %q", a.Host.Name, line)
		}
		samples[line[:i]] = v
	}
	return samples
}

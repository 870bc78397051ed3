package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
	"vxswitch/vxlan"
)

// The fault tests of the reliability issue. The long ones skip under -short
// and run in CI.

// leaderIndex returns the index in c.Agents of the current leader, asking
// agent ask.
func leaderIndex(t *testing.T, c *lab.Cluster, ask int) int {
	t.Helper()
	var idx int
	eventually(t, 15*time.Second, "a leader is elected", func() error {
		var st api.Status
		if err := c.Agents[ask].Client().Get(context.Background(), "/v1/status", &st); err != nil {
			return err
		}
		for i, a := range c.Agents {
			if a.Host.Name == st.Leader && c.Running(i) {
				idx = i
				return nil
			}
		}
		return fmt.Errorf("leader %q is not a running agent", st.Leader)
	})
	return idx
}

// TestLeaderKilled1000 runs 1000 concurrent attaches (allocations) with
// retries in two rounds, killing the leader with SIGKILL in each: no
// address twice, no acknowledged allocation lost, exactly one allocation per
// request.
func TestLeaderKilled1000(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test; runs without -short")
	}
	c := newLab(t, lab.Options{Hosts: 3, Network: "big", Subnet: "10.40.0.0/20", NoEndpoints: true})
	acked := map[string]netip.Addr{}
	var failovers []time.Duration
	for round := 0; round < 2; round++ {
		got, failover := attachStorm(t, c, "big", fmt.Sprintf("r%da", round), 500)
		maps.Copy(acked, got)
		failovers = append(failovers, failover)
	}
	checkAllocations(t, c, acked, 1000)
	t.Logf("failover (SIGKILL of the leader to a new leader seen by a follower): %v", failovers)
}

// attachStorm attaches n endpoints named prefix0 ... concurrently through
// the two followers of the current leader, retrying each until it is
// acknowledged, and kills the leader with SIGKILL after n/4 have been. It
// restarts the killed agent afterwards, and returns the acknowledged
// addresses and the time from the kill until a follower saw a new leader.
func attachStorm(t *testing.T, c *lab.Cluster, network, prefix string, n int) (map[string]netip.Addr, time.Duration) {
	t.Helper()
	ctx := context.Background()
	leader := leaderIndex(t, c, 0)
	var followers []*lab.Agent
	for i, a := range c.Agents {
		if i != leader {
			followers = append(followers, a)
		}
	}
	var (
		mu       sync.Mutex
		acked    = map[string]netip.Addr{}
		wg       sync.WaitGroup
		count    atomic.Int32
		failover = make(chan time.Duration, 1)
	)
	kill := func() {
		killed := time.Now()
		c.Stop(leader, syscall.SIGKILL)
		for time.Since(killed) < 30*time.Second {
			var st api.Status
			err := followers[0].Client().Get(ctx, "/v1/status", &st)
			if err == nil && st.Leader != "" && st.Leader != c.Agents[leader].Host.Name {
				failover <- time.Since(killed)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		failover <- -1
	}
	for i := range n {
		name := fmt.Sprintf("%s%d", prefix, i)
		if _, err := netlab.AddNS(c.Opt.Prefix + name); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := followers[i%2]
			req := api.AttachRequest{Network: network, Name: name, NetNS: c.Opt.Prefix + name}
			for try := 0; try < 10; try++ {
				var e api.Endpoint
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := a.Client().Post(cctx, "/v1/endpoints", req, &e)
				cancel()
				if err == nil {
					mu.Lock()
					acked[name] = e.IP
					mu.Unlock()
					if count.Add(1) == int32(n/4) {
						kill()
					}
					return
				}
				var se *api.StatusError
				if errors.As(err, &se) && strings.Contains(se.Message, "already used") {
					return // an earlier try committed; its answer was lost
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	var took time.Duration
	select {
	case took = <-failover:
	default:
		t.Fatalf("only %d of %d attaches were acknowledged; the leader was never killed", count.Load(), n)
	}
	if took < 0 {
		t.Fatalf("no new leader within 30 s of killing %s", c.Agents[leader].Host.Name)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.Start(cctx, leader); err != nil {
		t.Fatal(err)
	}
	return acked, took
}

// checkAllocations waits until every running host lists the same
// endpoints, then checks that no address was given twice, that every
// acknowledged attach is there with the address it was told, and that there
// are want endpoints: one allocation per request.
func checkAllocations(t *testing.T, c *lab.Cluster, acked map[string]netip.Addr, want int) {
	t.Helper()
	var es []api.Endpoint
	eventually(t, 15*time.Second, "every host agrees on the endpoints", func() error {
		var all [][]api.Endpoint
		for i, a := range c.Agents {
			if c.Running(i) {
				all = append(all, endpoints(t, a))
			}
		}
		for _, other := range all[1:] {
			if fmt.Sprint(other) != fmt.Sprint(all[0]) {
				return fmt.Errorf("hosts differ: %d vs %d endpoints", len(all[0]), len(other))
			}
		}
		es = all[0]
		return nil
	})
	owner := map[netip.Addr]string{}
	byName := map[string]netip.Addr{}
	dups, lost := 0, 0
	for _, e := range es {
		if other, dup := owner[e.IP]; dup {
			dups++
			t.Errorf("address %s given to both %s and %s", e.IP, other, e.Name)
		}
		owner[e.IP] = e.Name
		byName[e.Name] = e.IP
	}
	for name, ip := range acked {
		if byName[name] != ip {
			lost++
			t.Errorf("acknowledged %s at %s, the state has %v", name, ip, byName[name])
		}
	}
	if len(es) != want {
		t.Errorf("%d endpoints in the state, want %d: one allocation per request", len(es), want)
	}
	t.Logf("%d attaches, %d acknowledged, %d in state, %d lost, %d duplicate addresses", want, len(acked), len(es), lost, dups)
}

// TestPartition cuts one of three hosts off the underlay for 30 s while the
// other two exchange traffic.
func TestPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test; runs without -short")
	}
	c := newLab(t, lab.Options{Hosts: 3})
	ctx := context.Background()
	h1, h3 := c.Agents[0], c.Agents[2]
	c1, c2, c3 := c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]
	c3b, err := c.Attach(ctx, h3, "web", "c3b")
	if err != nil {
		t.Fatal(err)
	}
	ping(t, c1.NS, c2.IP.String(), 1)
	ping(t, c3.NS, c3b.IP.String(), 1)

	const cut = 30 * time.Second
	if err := c.Net.Cut(h3.Host); err != nil {
		t.Fatal(err)
	}
	healed := false
	defer func() {
		if !healed {
			c.Net.Heal(h3.Host)
		}
	}()
	// Traffic between the majority hosts for the whole cut: 100 pings a
	// second; none may be lost.
	count := int(cut / (10 * time.Millisecond))
	majority := make(chan string, 1)
	go func() {
		out, err := netlab.Exec(ctx, c1.NS, "ping", "-q", "-c", fmt.Sprint(count), "-i", "0.01", "-W", "1", c2.IP.String())
		majority <- fmt.Sprintf("%v %s", err, out)
	}()
	// The minority side refuses writes within 10 s and never hangs.
	start := time.Now()
	out, err := cli(t, h3, "network", "create", "minority", "--subnet", "10.70.0.0/24")
	if err == nil || !strings.Contains(out, "no quorum") || time.Since(start) > 10*time.Second {
		t.Errorf("write on the cut-off host: %v after %v: %s; want 'no quorum' within 10 s", err, time.Since(start), out)
	}
	// ... and keeps forwarding with its last state: its two endpoints
	// still reach each other.
	ping(t, c3.NS, c3b.IP.String(), 3)
	// The majority keeps accepting writes.
	if out, err := cli(t, h1, "network", "create", "majority", "--subnet", "10.71.0.0/24"); err != nil {
		t.Errorf("write on the majority during the cut: %v: %s", err, out)
	}
	time.Sleep(time.Until(start.Add(cut)))
	if err := c.Net.Heal(h3.Host); err != nil {
		t.Fatal(err)
	}
	healed = true
	healStart := time.Now()
	eventually(t, 5*time.Second, "every host converges after the heal", func() error {
		var seen []string
		for _, a := range c.Agents {
			var s api.Status
			if err := a.Client().Get(ctx, "/v1/status", &s); err != nil {
				return err
			}
			seen = append(seen, fmt.Sprintf("%d/%s", s.Index, s.StateHash))
		}
		if seen[0] != seen[1] || seen[0] != seen[2] {
			return fmt.Errorf("index/hash differ: %v", seen)
		}
		return nil
	})
	converged := time.Since(healStart)
	res := <-majority
	if !strings.Contains(res, fmt.Sprintf("%d packets transmitted, %d received", count, count)) {
		t.Errorf("majority traffic lost packets during the cut: %s", res)
	}
	t.Logf("converged %v after the heal; majority, %d pings during the cut: %s", converged.Round(time.Millisecond), count, lastLine(res))
	ping(t, c3.NS, c1.IP.String(), 2)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestRestartUnderTraffic kills an agent with SIGKILL and restarts it 20
// times while its endpoint is pinged: the endpoint keeps its address and
// MAC, its TAP is re-attached and traffic resumes each time.
func TestRestartUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test; runs without -short")
	}
	c := newLab(t, lab.Options{Hosts: 3})
	ctx := context.Background()
	c1, c2 := c.Endpoints[0], c.Endpoints[1]
	want := fmt.Sprint(endpoints(t, c.Agents[0]))
	var ready, resumed []time.Duration
	for i := 0; i < 20; i++ {
		if err := c.Stop(1, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := c.Start(cctx, 1)
		cancel()
		if err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		ready = append(ready, time.Since(start))
		eventually(t, 10*time.Second, fmt.Sprintf("restart %d: c1 reaches c2", i+1), func() error {
			_, err := netlab.Exec(ctx, c1.NS, "ping", "-c", "1", "-W", "1", c2.IP.String())
			return err
		})
		resumed = append(resumed, time.Since(start))
		if got := fmt.Sprint(endpoints(t, c.Agents[1])); got != want {
			t.Fatalf("restart %d: endpoints changed:\nwant %s\ngot  %s", i+1, want, got)
		}
	}
	slices.Sort(ready)
	slices.Sort(resumed)
	t.Logf("20 restarts: time to ready median %v max %v; traffic resumed median %v max %v",
		ready[10].Round(time.Millisecond), ready[19].Round(time.Millisecond),
		resumed[10].Round(time.Millisecond), resumed[19].Round(time.Millisecond))
}

// TestSnapshotCatchUp cuts a follower off while the leader writes more than
// it keeps in its log, then heals it: the follower catches up by snapshot
// and ends with the same state.
func TestSnapshotCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("long fault test; runs without -short")
	}
	c := newLab(t, lab.Options{Hosts: 3, NoEndpoints: true})
	ctx := context.Background()
	leader := leaderIndex(t, c, 0)
	lagger := (leader + 1) % 3
	if err := c.Net.Cut(c.Agents[lagger].Host); err != nil {
		t.Fatal(err)
	}
	healed := false
	defer func() {
		if !healed {
			c.Net.Heal(c.Agents[lagger].Host)
		}
	}()
	// 1400 writes: more than the 1024 entries raft keeps behind a snapshot.
	cl := c.Agents[leader].Client()
	for i := 0; i < 700; i++ {
		req := api.VTEPRequest{Network: "web", Addr: fmt.Sprintf("10.88.%d.%d", i/250, i%250+1)}
		if err := cl.Post(ctx, "/v1/vteps", req, nil); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if i%2 == 1 { // keep half of them, so the state differs from the start
			if err := cl.Post(ctx, "/v1/vteps/remove", req, nil); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
	}
	for i := 0; i < 350; i++ { // and 350 more: add and remove
		req := api.VTEPRequest{Network: "web", Addr: fmt.Sprintf("10.89.%d.%d", i/250, i%250+1)}
		if err := cl.Post(ctx, "/v1/vteps", req, nil); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if err := cl.Post(ctx, "/v1/vteps/remove", req, nil); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := cl.Post(ctx, "/v1/snapshot", nil, nil); err != nil {
		t.Fatalf("snapshot on the leader: %v", err)
	}
	if err := c.Net.Heal(c.Agents[lagger].Host); err != nil {
		t.Fatal(err)
	}
	healed = true
	var want api.Status
	if err := cl.Get(ctx, "/v1/status", &want); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the lagging follower catches up", func() error {
		var s api.Status
		if err := c.Agents[lagger].Client().Get(ctx, "/v1/status", &s); err != nil {
			return err
		}
		if s.StateHash != want.StateHash || s.Index < want.Index {
			return fmt.Errorf("follower at %d/%s, leader at %d/%s", s.Index, s.StateHash[:12], want.Index, want.StateHash[:12])
		}
		return nil
	})
	snaps, _ := filepath.Glob(filepath.Join(c.Agents[lagger].DataDir, "raft", "snapshots", "*"))
	if len(snaps) == 0 {
		t.Errorf("the follower caught up without a snapshot in %s: the test did not force the snapshot path", c.Agents[lagger].DataDir)
	}
}

// TestNewUnderlayAddress restarts a host with another underlay address: no
// host keeps forwarding to the old one.
func TestNewUnderlayAddress(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3})
	ctx := context.Background()
	c1, c2 := c.Endpoints[0], c.Endpoints[1]
	h2 := c.Agents[1]
	old := h2.Host.Addr
	if err := c.Stop(1, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	moved := netip.MustParseAddr("10.77.0.12")
	run(t, h2.Host.NS, "ip", "addr", "del", old.String()+"/24", "dev", "eth0")
	run(t, h2.Host.NS, "ip", "addr", "add", moved.String()+"/24", "dev", "eth0")
	h2.Host.Addr = moved
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.Start(cctx, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "every host forwards to h2's new address only", func() error {
		for _, a := range []*lab.Agent{c.Agents[0], c.Agents[2]} {
			var fdb []api.FDBEntry
			if err := a.Client().Get(ctx, "/v1/fdb", &fdb); err != nil {
				return err
			}
			for _, e := range fdb {
				if e.VTEP == old.String() {
					return fmt.Errorf("%s still forwards %s to the old address %s", a.Host.Name, e.MAC, old)
				}
				if e.MAC == c2.MAC && e.VTEP != moved.String() {
					return fmt.Errorf("%s forwards c2 to %q", a.Host.Name, e.VTEP)
				}
			}
		}
		return nil
	})
	ping(t, c1.NS, c2.IP.String(), 3)
	var ms []api.Member
	if err := c.Agents[0].Client().Get(ctx, "/v1/members", &ms); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Name == "h2" && (m.VTEP != moved || m.State != "alive") {
			t.Errorf("members lists h2 as %+v, want VTEP %s alive", m, moved)
		}
	}
}

// TestNonMemberInjection sends 100,000 VXLAN packets for a real VNI from a
// host that is not a member: none is delivered and the drop counter counts
// each one.
func TestNonMemberInjection(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 1, Bare: 1})
	ctx := context.Background()
	h1, c1 := c.Agents[0], c.Endpoints[0]
	var n api.Network
	if err := h1.Client().Get(ctx, "/v1/networks/web", &n); err != nil {
		t.Fatal(err)
	}
	// A frame for c1's MAC, from a MAC nobody has.
	mac, _ := net.ParseMAC(c1.MAC)
	pkt := make([]byte, vxlan.HeaderLen+60)
	vxlan.Encode(pkt, n.VNI)
	copy(pkt[8:], mac)
	copy(pkt[14:], []byte{0x02, 0xee, 0, 0, 0, 1})
	pkt[20], pkt[21] = 0x08, 0x00

	var conn *net.UDPConn
	bare := c.Net.Hosts[1]
	if err := netlab.Do(netlab.NetNSDir+bare.NS, func() (err error) {
		conn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(h1.Host.Addr, vxlan.Port)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before := stats(t, h1)
	const total, burst = 100000, 500
	for sent := 0; sent < total; sent += burst {
		for i := 0; i < burst; i++ {
			if _, err := conn.Write(pkt); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("send: %v", err)
			}
		}
		// Pace the bursts by the counter so the socket buffer never
		// overflows: the count must be exact.
		eventually(t, 5*time.Second, "the agent counts the burst", func() error {
			if d := stats(t, h1).Drops["not_member"] - before.Drops["not_member"]; d < uint64(sent+burst) {
				return fmt.Errorf("%d counted of %d sent", d, sent+burst)
			}
			return nil
		})
	}
	after := stats(t, h1)
	if d := after.Drops["not_member"] - before.Drops["not_member"]; d != total {
		t.Errorf("not_member drops = %d, want exactly %d", d, total)
	}
	if d := after.DecapFrames - before.DecapFrames; d != 0 {
		t.Errorf("%d frames decapsulated from a non-member, want 0", d)
	}
	if d := after.TxFrames - before.TxFrames; d != 0 {
		t.Errorf("%d frames written to TAPs, want 0", d)
	}
	t.Logf("%d injected, %d dropped as not_member, 0 delivered", total, after.Drops["not_member"]-before.Drops["not_member"])
}

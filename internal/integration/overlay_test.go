package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestOverlay runs one 3-host cluster (plus a bare host for a kernel VTEP)
// through what a user does with it. Subtests share the cluster and run in
// order.
func TestOverlay(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3, Bare: 1})
	h1, h2, h3 := c.Agents[0], c.Agents[1], c.Agents[2]
	c1, c2, c3 := c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]

	t.Run("members", func(t *testing.T) {
		var ms []api.Member
		if err := h2.Client().Get(context.Background(), "/v1/members", &ms); err != nil {
			t.Fatal(err)
		}
		leaders := 0
		for _, m := range ms {
			if m.State != "alive" {
				t.Errorf("member %s is %s, want alive", m.Name, m.State)
			}
			switch m.Role {
			case "leader":
				leaders++
			case "voter":
			default:
				t.Errorf("member %s has role %s, want leader or voter (3 voters)", m.Name, m.Role)
			}
		}
		if len(ms) != 3 || leaders != 1 {
			t.Fatalf("members = %+v, want 3 with one leader", ms)
		}
	})

	t.Run("ping across hosts", func(t *testing.T) {
		ping(t, c1.NS, c2.IP.String(), 3)
		ping(t, c1.NS, c3.IP.String(), 3)
		ping(t, c3.NS, c2.IP.String(), 3)
	})

	t.Run("endpoint MTU is underlay minus 50", func(t *testing.T) {
		out := run(t, c1.NS, "ip", "-o", "link", "show", "eth0")
		if !strings.Contains(out, "mtu 1450") {
			t.Fatalf("eth0 in %s: %s, want mtu 1450", c1.NS, out)
		}
	})

	t.Run("100 MB TCP keeps its sha256", func(t *testing.T) {
		transfer(t, c1.NS, c3.NS, c3.IP, 100<<20)
	})

	t.Run("broadcast stays in its network", func(t *testing.T) {
		ctx := context.Background()
		if err := h1.Client().Post(ctx, "/v1/networks", api.NetworkRequest{Name: "other", Subnet: "10.30.0.0/24"}, nil); err != nil {
			t.Fatal(err)
		}
		o1, err := c.Attach(ctx, h1, "other", "o1")
		if err != nil {
			t.Fatal(err)
		}
		o2, err := c.Attach(ctx, h2, "other", "o2")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*udpCatcher{}
		for _, e := range []lab.Endpoint{c2, c3, o1, o2} {
			got[e.Name] = catchUDP(t, e.NS, 9999)
		}
		sendUDP(t, c1.NS, "10.20.0.255:9999", "hello web")
		for _, name := range []string{"c2", "c3"} {
			if msg := got[name].wait(3 * time.Second); msg != "hello web" {
				t.Errorf("%s got %q, want the broadcast", name, msg)
			}
		}
		for _, name := range []string{"o1", "o2"} {
			if msg := got[name].wait(500 * time.Millisecond); msg != "" {
				t.Errorf("%s of network other got %q from network web", name, msg)
			}
		}
	})

	t.Run("unicast makes no copies at uninvolved hosts", func(t *testing.T) {
		ping(t, c1.NS, c2.IP.String(), 1) // neighbours resolved
		before := stats(t, h3)
		run(t, c1.NS, "ping", "-f", "-c", "500", "-s", "1000", "-W", "2", c2.IP.String())
		after := stats(t, h3)
		// Background multicast (IPv6 neighbour discovery) is flooded; 500
		// flooded echo requests would show as 500 more.
		if d := after.DecapFrames - before.DecapFrames; d > 20 {
			t.Fatalf("h3 decapsulated %d frames during 500 pings c1->c2, want none of them", d)
		}
	})

	t.Run("MAC behind an endpoint is announced through raft", func(t *testing.T) {
		// A macvlan inside c1 is a second MAC behind c1's TAP, like a VM or
		// a bridge in the container.
		run(t, c1.NS, "ip", "link", "add", "link", "eth0", "name", "mv0", "address", "02:aa:00:00:00:01", "type", "macvlan", "mode", "bridge")
		// Its address is outside the network's subnet: one inside that
		// IPAM has not assigned is refused (unassigned_ip).
		run(t, c1.NS, "ip", "addr", "add", "192.168.77.1/24", "dev", "mv0")
		run(t, c1.NS, "ip", "link", "set", "mv0", "up")
		run(t, c1.NS, "ip", "route", "add", "10.20.0.0/24", "dev", "mv0", "metric", "500")
		// Only mv0 answers ARP for its address (not eth0 as well, the weak
		// host model's default), so replies come back to mv0's MAC.
		run(t, c1.NS, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1")
		for _, ep := range []string{c2.NS, c3.NS} {
			run(t, ep, "ip", "route", "add", "192.168.77.0/24", "dev", "eth0")
		}
		run(t, c1.NS, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-I", "mv0", c2.IP.String())
		eventually(t, 5*time.Second, "h3 forwards to the learned MAC from raft", func() error {
			var es []api.FDBEntry
			if err := h3.Client().Get(context.Background(), "/v1/fdb?network=web", &es); err != nil {
				return err
			}
			for _, e := range es {
				if e.MAC == "02:aa:00:00:00:01" && e.Origin == "raft" && e.Host == "h1" {
					return nil
				}
			}
			return fmt.Errorf("h3's fdb has no raft entry for 02:aa:00:00:00:01 on h1: %v", es)
		})
		var es []api.FDBEntry
		if err := h1.Client().Get(context.Background(), "/v1/fdb?network=web", &es); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range es {
			found = found || (e.MAC == "02:aa:00:00:00:01" && e.Origin == "learned" && e.Port == "c1")
		}
		if !found {
			t.Errorf("h1's fdb has no learned entry for the macvlan on port c1: %v", es)
		}
		ping(t, c3.NS, "192.168.77.1", 2)
	})

	t.Run("kernel vxlan peer", func(t *testing.T) {
		kh := c.Net.Hosts[3]
		var n api.Network
		if err := h1.Client().Get(context.Background(), "/v1/networks/web", &n); err != nil {
			t.Fatal(err)
		}
		var peers []netip.Addr
		for _, a := range c.Agents {
			peers = append(peers, a.Host.Addr)
		}
		kaddr := netip.MustParsePrefix("10.20.0.250/24")
		if err := kh.KernelVTEP(netlab.VTEPOptions{Name: "vx0", VNI: n.VNI, Peers: peers, Addr: kaddr, MAC: "02:00:00:00:02:50"}); err != nil {
			t.Fatal(err)
		}
		if out, err := cli(t, h2, "vtep", "add", "web", kh.Addr.String()); err != nil {
			t.Fatalf("vtep add: %v: %s", err, out)
		}
		eventually(t, 5*time.Second, "kernel VTEP known to every host", func() error {
			for _, a := range c.Agents {
				var vs []api.VTEP
				if err := a.Client().Get(context.Background(), "/v1/vteps", &vs); err != nil || len(vs) != 1 {
					return fmt.Errorf("%s lists %v (%v)", a.Host.Name, vs, err)
				}
			}
			return nil
		})
		ping(t, c1.NS, kaddr.Addr().String(), 3)
		ping(t, kh.NS, c2.IP.String(), 3)
		transfer(t, kh.NS, c3.NS, c3.IP, 10<<20)
		transfer(t, c1.NS, kh.NS, kaddr.Addr(), 10<<20)
	})

	t.Run("agent restart keeps addresses and traffic", func(t *testing.T) {
		before := endpoints(t, h1)
		if err := c.Stop(1, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Start(ctx, 1); err != nil {
			t.Fatal(err)
		}
		after := endpoints(t, h2)
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Fatalf("endpoints changed across restart:\nbefore %v\nafter  %v", before, after)
		}
		eventually(t, 10*time.Second, "c1 reaches c2 after h2's restart", func() error {
			_, err := netlab.Exec(ctx, c1.NS, "ping", "-c", "1", "-W", "1", c2.IP.String())
			return err
		})
		ping(t, c2.NS, c3.IP.String(), 2)
	})

	t.Run("detach frees the address everywhere", func(t *testing.T) {
		if out, err := cli(t, h1, "detach", "o2"); err != nil {
			t.Fatalf("detach: %v: %s", err, out)
		}
		eventually(t, 5*time.Second, "o2 gone on h2 and its TAP deleted", func() error {
			for _, e := range endpoints(t, h3) {
				if e.Name == "o2" {
					return fmt.Errorf("h3 still lists o2")
				}
			}
			if out, _ := netlab.Exec(context.Background(), c.Opt.Prefix+"o2", "ip", "link", "show", "eth0"); !bytes.Contains(out, []byte("does not exist")) {
				return fmt.Errorf("eth0 still in o2's netns: %s", out)
			}
			return nil
		})
	})

	t.Run("CLI", func(t *testing.T) { testCLI(t, c) })
	t.Run("not root", func(t *testing.T) { testNotRoot(t, c) })
}

// testNotRoot runs the CLI as an unprivileged user: the socket refuses it,
// and the agent refuses to start, each with an error that says why.
func testNotRoot(t *testing.T, c *lab.Cluster) {
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--socket", c.Agents[0].Socket, "members"}, "run as root"},
		{[]string{"agent", "--name", "x", "--advertise", "127.0.0.1", "--data-dir", "/tmp/x"}, "must run as root"},
	} {
		cmd := exec.Command(binary, tc.args...)
		cmd.SysProcAttr = nobody
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("as nobody: vxswitch %s = %v %q, want an error mentioning %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}

// testCLI checks listings and the errors people get for bad input.
func testCLI(t *testing.T, c *lab.Cluster) {
	h1 := c.Agents[0]
	out, err := cli(t, h1, "endpoints", "web", "-o", "json")
	if err != nil {
		t.Fatalf("endpoints: %v: %s", err, out)
	}
	var es []api.Endpoint
	if err := json.Unmarshal([]byte(out), &es); err != nil || len(es) != 3 {
		t.Fatalf("endpoints web -o json = %s (%v), want 3 endpoints", out, err)
	}
	for _, args := range [][]string{{"members"}, {"network", "ls"}, {"network", "inspect", "web"}, {"fdb", "web"}, {"vtep", "ls"}, {"stats"}, {"status"}} {
		if out, err := cli(t, h1, args...); err != nil || len(strings.Split(out, "\n")) < 2 {
			t.Errorf("vxswitch %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "web", "--subnet", "10.50.0.0/24"}, "web"},
		{[]string{"network", "create", "n2", "--subnet", "10.20.0.0/25"}, "overlap"},
		{[]string{"network", "create", "n3", "--subnet", "10.60.0.1/24"}, "10.60.0.0/24"},
		{[]string{"network", "create", "n4", "--subnet", "nonsense"}, "like 10.20.0.0/24"},
		{[]string{"network", "create", "n5", "--subnet", "10.61.0.0/24", "--vni", "16777216"}, "1..16777215"},
		{[]string{"network", "create", "n6", "--subnet", "10.62.0.0/24", "--mtu", "1451"}, "1450"},
		{[]string{"network", "create", "n7"}, "--subnet is required"},
		{[]string{"attach", "web", "x1", "--netns", "no-such-ns"}, "ip netns add"},
		{[]string{"attach", "nonet", "x1", "--netns", "x"}, "network create"},
		{[]string{"attach", "web", "c1", "--netns", c.Opt.Prefix + "c1"}, "already used"},
		{[]string{"detach", "nobody"}, "no endpoint"},
		{[]string{"members", "rm", "h9"}, "no host"},
		{[]string{"network", "rm", "web"}, "detach"},
		{[]string{"--socket", "/nonexistent/x.sock", "members"}, "is the agent running"},
	} {
		out, err := cli(t, h1, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("vxswitch %s = %v, %q; want a one-line error mentioning %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
	// A rejected command left the state as it was.
	var ns []api.Network
	if err := h1.Client().Get(context.Background(), "/v1/networks", &ns); err != nil || len(ns) != 2 {
		t.Errorf("networks after bad input = %v (%v), want web and other only", ns, err)
	}
}

// transfer sends size pseudo-random bytes over TCP from netns fromNS to a
// listener in netns toNS at dst, and checks the sha256 on both sides.
func transfer(t *testing.T, fromNS, toNS string, dst netip.Addr, size int64) {
	t.Helper()
	var ln net.Listener
	if err := netlab.Do(netlab.NetNSDir+toNS, func() (err error) {
		ln, err = net.Listen("tcp", ":5201")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- "accept: " + err.Error()
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * time.Minute))
		h := sha256.New()
		n, err := io.Copy(h, conn)
		if err != nil {
			got <- fmt.Sprintf("after %d bytes: %v", n, err)
			return
		}
		got <- fmt.Sprintf("%x/%d", h.Sum(nil), n)
	}()
	var conn net.Conn
	if err := netlab.Do(netlab.NetNSDir+fromNS, func() (err error) {
		conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(dst, 5201).String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	h := sha256.New()
	src := io.LimitReader(rand.NewChaCha8([32]byte{1, 2, 3}), size)
	start := time.Now()
	if _, err := io.Copy(io.MultiWriter(conn, h), src); err != nil {
		t.Fatalf("send: %v", err)
	}
	conn.Close()
	want := fmt.Sprintf("%x/%d", h.Sum(nil), size)
	if g := <-got; g != want {
		t.Fatalf("received %s, sent %s", g, want)
	}
	t.Logf("%d MB %s -> %s in %v", size>>20, fromNS, toNS, time.Since(start).Round(time.Millisecond))
}

// udpCatcher holds the first datagram a socket in a namespace receives.
type udpCatcher struct {
	conn net.PacketConn
	once sync.Once
	msg  chan string
}

func catchUDP(t *testing.T, ns string, port int) *udpCatcher {
	t.Helper()
	u := &udpCatcher{msg: make(chan string, 1)}
	if err := netlab.Do(netlab.NetNSDir+ns, func() (err error) {
		u.conn, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.conn.Close() })
	go func() {
		b := make([]byte, 1500)
		n, _, err := u.conn.ReadFrom(b)
		if err == nil {
			u.msg <- string(b[:n])
		}
	}()
	return u
}

// wait returns the datagram received within d, or "".
func (u *udpCatcher) wait(d time.Duration) string {
	select {
	case m := <-u.msg:
		return m
	case <-time.After(d):
		return ""
	}
}

// sendUDP sends one broadcast-capable datagram from netns ns.
func sendUDP(t *testing.T, ns, dst, msg string) {
	t.Helper()
	var conn *net.UDPConn
	if err := netlab.Do(netlab.NetNSDir+ns, func() (err error) {
		conn, err = net.ListenUDP("udp4", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, _ := conn.SyscallConn()
	raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1) })
	addr, _ := net.ResolveUDPAddr("udp4", dst)
	if _, err := conn.WriteTo([]byte(msg), addr); err != nil {
		t.Fatalf("send to %s: %v", dst, err)
	}
}

package integration

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// dockerLab makes a lab of hosts agent hosts whose first engines hosts run
// a real Docker engine (Debian's docker.io) with the busybox image "vxbox",
// the agents serving the vxswitch plugin to them.
func dockerLab(t *testing.T, hosts, engines int, agentArgs ...string) (*lab.Cluster, []*lab.Engine) {
	t.Helper()
	netlab.RequireRoot(t)
	if _, err := exec.LookPath("dockerd"); err != nil {
		const msg = "dockerd is not installed: apt-get install docker.io"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this test must run)")
		}
		t.Skip(msg)
	}
	c := newLab(t, lab.Options{Hosts: hosts, Network: "-", Docker: true, AgentArgs: agentArgs})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var engines_ []*lab.Engine
	for i := range engines {
		e, err := c.StartDocker(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("dockerd log of %s:\n%s", e.Host, e.LogTail())
			}
			e.Stop()
		})
		if err := e.BuildBusybox(ctx, "vxbox"); err != nil {
			t.Fatal(err)
		}
		engines_ = append(engines_, e)
	}
	return c, engines_
}

// mustDocker runs the docker CLI on e and fails the test on error.
func mustDocker(t *testing.T, e *lab.Engine, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := e.Docker(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// containerIP returns the address Docker gave container name on network.
func containerIP(t *testing.T, e *lab.Engine, name, network string) netip.Addr {
	t.Helper()
	out := mustDocker(t, e, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", network), name)
	ip, err := netip.ParseAddr(out)
	if err != nil {
		t.Fatalf("address of %s: %q", name, out)
	}
	return ip
}

// dockerPing pings target (an address or a name) from container name.
func dockerPing(e *lab.Engine, name, target string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.Docker(ctx, "exec", name, "ping", "-c", "1", "-W", "2", target)
	return err
}

// TestDockerTwoEngines: two Docker engines on two hosts create the same
// network; a container on each gets an address from the cluster's IPAM,
// the overlay MTU and a TAP Docker moved in; they ping each other by
// address and by name (with --dns RESOLVER), and a bare attach endpoint on
// a third host reaches both by name. docker rm -f frees the address and
// leaves no TAP.
func TestDockerTwoEngines(t *testing.T) {
	c, eng := dockerLab(t, 3, 2)
	for _, e := range eng {
		mustDocker(t, e, "network", "create", "-d", "vxswitch", "--ipam-driver", "vxswitch", "--subnet", "10.30.0.0/24", "web")
	}
	// The plugin creates the cluster network after answering Docker, so
	// the third host sees it shortly after, not at once.
	eventually(t, 10*time.Second, "one cluster network web after two docker network create", func() error {
		var nets []api.Network
		if err := c.Agents[2].Client().Get(context.Background(), "/v1/networks", &nets); err != nil {
			return err
		}
		if len(nets) != 1 || nets[0].Name != "web" || nets[0].Subnet.String() != "10.30.0.0/24" {
			return fmt.Errorf("cluster networks: %+v", nets)
		}
		return nil
	})
	// A subnet that disagrees with the cluster's network is refused.
	if out, err := eng[1].Docker(context.Background(), "network", "create", "-d", "vxswitch", "--ipam-driver", "vxswitch", "--subnet", "10.30.0.0/16", "web2"); err == nil ||
		!strings.Contains(out, "overlaps subnet 10.30.0.0/24 of vxswitch network web") {
		t.Errorf("overlapping docker network: err %v, output %q", err, out)
	}

	for i, e := range eng {
		name := fmt.Sprintf("web%d", i+1)
		mustDocker(t, e, "run", "-d", "--name", name, "--network", "web", "--dns", "10.30.0.1", "vxbox", "sleep", "3600")
	}
	bare, err := c.Attach(context.Background(), c.Agents[2], "web", "bare")
	if err != nil {
		t.Fatal(err)
	}
	ip1, ip2 := containerIP(t, eng[0], "web1", "web"), containerIP(t, eng[1], "web2", "web")
	if ip1 == ip2 || ip1 == bare.IP || ip2 == bare.IP {
		t.Fatalf("duplicate addresses: web1 %v, web2 %v, bare %v", ip1, ip2, bare.IP)
	}
	if mtu := mustDocker(t, eng[0], "exec", "web1", "cat", "/sys/class/net/eth0/mtu"); mtu != "1450" {
		t.Errorf("container MTU %s, want 1450 (1500 underlay - 50 VXLAN)", mtu)
	}
	eventually(t, 10*time.Second, "web1 pings web2 by address", func() error { return dockerPing(eng[0], "web1", ip2.String()) })
	eventually(t, 10*time.Second, "web1 pings web2 by name", func() error { return dockerPing(eng[0], "web1", "web2") })
	eventually(t, 10*time.Second, "web2 pings web1 by name", func() error { return dockerPing(eng[1], "web2", "web1") })
	eventually(t, 10*time.Second, "web1 pings bare by name", func() error { return dockerPing(eng[0], "web1", "bare") })
	for _, target := range []string{"web1", "web2"} {
		eventually(t, 10*time.Second, "bare pings "+target+" by name", func() error {
			out, err := netlab.Exec(context.Background(), bare.NS, "ping", "-c", "1", "-W", "2", target)
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	}

	// docker rm -f: the endpoint and its address go, no TAP stays.
	mustDocker(t, eng[1], "rm", "-f", "web2")
	for _, e := range endpoints(t, c.Agents[0]) {
		if e.IP == ip2 {
			t.Fatalf("endpoint %s still holds %v after docker rm -f", e.Name, ip2)
		}
	}
	if err := noDockerTAPs(c, 1); err != nil {
		t.Errorf("after docker rm -f: %v", err)
	}
}

// noDockerTAPs returns an error if host i still has a Docker endpoint's TAP
// in its own namespace.
func noDockerTAPs(c *lab.Cluster, i int) error {
	out, err := netlab.Exec(context.Background(), c.Agents[i].Host.NS, "ip", "-o", "link", "show", "type", "tun")
	if err != nil {
		return err
	}
	if strings.Contains(string(out), "vxd") {
		return fmt.Errorf("TAP left on %s: %s", c.Agents[i].Host.Name, out)
	}
	return nil
}

// endpointWithIP returns the name of the cluster endpoint holding ip, or "".
func endpointWithIP(t *testing.T, a *lab.Agent, ip netip.Addr) string {
	for _, e := range endpoints(t, a) {
		if e.IP == ip {
			return e.Name
		}
	}
	return ""
}

// TestDockerFailures: network disconnect and connect, an agent restarted
// under a running container, a container removed while its host's agent is
// down, and an engine restarted: addresses are freed exactly once, no TAP
// is left behind, and traffic flows again after each.
func TestDockerFailures(t *testing.T) {
	c, eng := dockerLab(t, 2, 2, "--docker-stale-after", "2s")
	for _, e := range eng {
		mustDocker(t, e, "network", "create", "-d", "vxswitch", "--ipam-driver", "vxswitch", "--subnet", "10.31.0.0/24", "web")
	}
	mustDocker(t, eng[0], "run", "-d", "--name", "c1", "--network", "web", "--dns", "10.31.0.1", "vxbox", "sleep", "3600")
	mustDocker(t, eng[1], "run", "-d", "--name", "c2", "--network", "web", "--dns", "10.31.0.1", "vxbox", "sleep", "3600")
	ip2 := containerIP(t, eng[1], "c2", "web")
	eventually(t, 10*time.Second, "c1 pings c2 by name", func() error { return dockerPing(eng[0], "c1", "c2") })

	// Disconnect frees the address and deletes the TAP; connect gives a
	// new endpoint that works.
	ip1 := containerIP(t, eng[0], "c1", "web")
	mustDocker(t, eng[0], "network", "disconnect", "web", "c1")
	if name := endpointWithIP(t, c.Agents[1], ip1); name != "" {
		t.Fatalf("endpoint %s still holds %v after docker network disconnect", name, ip1)
	}
	if err := noDockerTAPs(c, 0); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, eng[0], "network", "connect", "web", "c1")
	eventually(t, 10*time.Second, "c1 pings c2 after connect", func() error { return dockerPing(eng[0], "c1", "c2") })

	// An agent restarted under a running container finds its TAP in the
	// container (renamed eth0 by Docker) and forwards again.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Stop(0, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "c1 pings c2 after the agent restarted", func() error { return dockerPing(eng[0], "c1", ip2.String()) })
	if strings.Contains(c.Agents[0].LogTail(), "cannot re-attach") {
		t.Errorf("agent did not re-attach the container's TAP:\n%s", c.Agents[0].LogTail())
	}

	// A container removed while its host's agent is down: Docker cannot
	// tell the plugin; the agent removes the endpoint, its address and the
	// TAP once it is back.
	if err := c.Stop(1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := eng[1].Docker(ctx, "rm", "-f", "c2")
	t.Logf("docker rm -f with the agent down took %v: err %v: %s", time.Since(start).Round(time.Millisecond), err, out)
	if err := c.Start(ctx, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the endpoint of the removed container is gone", func() error {
		if name := endpointWithIP(t, c.Agents[0], ip2); name != "" {
			return fmt.Errorf("endpoint %s still holds %v", name, ip2)
		}
		return noDockerTAPs(c, 1)
	})

	// An engine restarted: Docker stops its containers and detaches
	// them, asks the plugin again for its networks' pools, and a
	// container started afterwards works.
	eng[1].Kill(syscall.SIGTERM)
	e, err := c.StartDocker(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	eng[1] = e
	mustDocker(t, e, "run", "-d", "--name", "c3", "--network", "web", "--dns", "10.31.0.1", "vxbox", "sleep", "3600")
	eventually(t, 10*time.Second, "c1 pings c3 by name after the engine restarted", func() error { return dockerPing(eng[0], "c1", "c3") })
	var nets []api.Network
	if err := c.Agents[0].Client().Get(ctx, "/v1/networks", &nets); err != nil {
		t.Fatal(err)
	}
	if len(nets) != 1 || len(nets[0].Reserved) != 0 || nets[0].Endpoints != 2 {
		t.Errorf("after all this, want 2 endpoints (c1, c3) and no reservation: %+v", nets)
	}
	for i := range c.Agents {
		for _, e := range endpoints(t, c.Agents[i]) {
			t.Logf("endpoint %s on %s: %v aliases %v", e.Name, e.Host, e.IP, e.Aliases)
		}
		break
	}
}

// TestDockerDualStack: docker network create --ipv6 with an IPv4 and an
// IPv6 subnet on two engines makes one dual-stack vxswitch network; a
// container on each gets an IPv6 address from the cluster's IPAM beside
// its IPv4 one, and they ping each other over IPv6 by address and by name
// (AAAA from the vxswitch resolver).
func TestDockerDualStack(t *testing.T) {
	c, eng := dockerLab(t, 2, 2)
	for _, e := range eng {
		mustDocker(t, e, "network", "create", "-d", "vxswitch", "--ipam-driver", "vxswitch", "--ipv6",
			"--subnet", "10.31.0.0/24", "--subnet", "fd31::/64", "dual")
	}
	eventually(t, 10*time.Second, "one dual-stack cluster network", func() error {
		var nets []api.Network
		if err := c.Agents[1].Client().Get(context.Background(), "/v1/networks", &nets); err != nil {
			return err
		}
		if len(nets) != 1 || nets[0].Subnet.String() != "10.31.0.0/24" || nets[0].Subnet6.String() != "fd31::/64" {
			return fmt.Errorf("cluster networks: %+v", nets)
		}
		return nil
	})
	var ip6 []netip.Addr
	for i, e := range eng {
		name := fmt.Sprintf("dual%d", i+1)
		mustDocker(t, e, "run", "-d", "--name", name, "--network", "dual", "--dns", "10.31.0.1", "vxbox", "sleep", "3600")
		out := mustDocker(t, e, "inspect", "-f", "{{(index .NetworkSettings.Networks \"dual\").GlobalIPv6Address}}", name)
		ip, err := netip.ParseAddr(out)
		if err != nil || !netip.MustParsePrefix("fd31::/64").Contains(ip) {
			t.Fatalf("IPv6 address of %s: %q, want one in fd31::/64", name, out)
		}
		ip6 = append(ip6, ip)
	}
	if ip6[0] == ip6[1] {
		t.Fatalf("both containers got %s", ip6[0])
	}
	for _, e := range endpoints(t, c.Agents[0]) {
		if e.IP6 == ip6[0] && !strings.HasPrefix(e.Owner, "docker:") {
			t.Errorf("endpoint %s holds %s without a docker owner: %+v", e.Name, ip6[0], e)
		}
	}
	t.Logf("dual1 eth0: %s", mustDocker(t, eng[0], "exec", "dual1", "ip", "addr", "show", "eth0"))
	ping6 := func(e *lab.Engine, name, target string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := e.Docker(ctx, "exec", name, "ping", "-6", "-c", "1", "-W", "2", target)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	eventually(t, 15*time.Second, "dual1 pings dual2 over IPv6", func() error { return ping6(eng[0], "dual1", ip6[1].String()) })
	eventually(t, 15*time.Second, "dual2 pings dual1 over IPv6", func() error { return ping6(eng[1], "dual2", ip6[0].String()) })
	eventually(t, 15*time.Second, "dual1 pings dual2 by name over IPv6", func() error { return ping6(eng[0], "dual1", "dual2") })
	eventually(t, 10*time.Second, "dual1 pings dual2 over IPv4", func() error { return dockerPing(eng[0], "dual1", "dual2") })

	// docker rm -f frees both addresses.
	mustDocker(t, eng[1], "rm", "-f", "dual2")
	for _, e := range endpoints(t, c.Agents[0]) {
		if e.IP6 == ip6[1] {
			t.Fatalf("endpoint %s still holds %v after docker rm -f", e.Name, ip6[1])
		}
	}
}

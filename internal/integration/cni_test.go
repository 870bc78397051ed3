package integration

import (
	"context"
	"syscall"
	"time"

	"bytes"
	"encoding/json"
	"fmt"
	"github.com/containernetworking/cni/libcni"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

var (
	cniOnce   sync.Once
	cniDir    string
	cniErr    error
	cniBinary string
)

// cniPlugin builds vxswitch-cni once into a directory that also serves as
// CNI_PATH, and returns the directory.
func cniPlugin(t *testing.T) string {
	t.Helper()
	cniOnce.Do(func() {
		cniDir = filepath.Join(filepath.Dir(binary), "cni")
		if cniErr = os.MkdirAll(cniDir, 0o755); cniErr != nil {
			return
		}
		cniBinary = filepath.Join(cniDir, "vxswitch-cni")
		out, err := exec.Command("go", "build", "-o", cniBinary, "vxswitch/cmd/vxswitch-cni").CombinedOutput()
		if err != nil {
			cniErr = fmt.Errorf("build vxswitch-cni: %v\n%s", err, out)
		}
	})
	if cniErr != nil {
		t.Fatal(cniErr)
	}
	return cniDir
}

// cniCall runs the plugin the way a runtime does: the command and the
// container in the environment, the network configuration on stdin.
func cniCall(t *testing.T, command, containerID, netnsPath, args string, conf []byte) ([]byte, error) {
	t.Helper()
	dir := cniPlugin(t)
	cmd := exec.Command(cniBinary)
	cmd.Env = []string{
		"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + containerID, "CNI_NETNS=" + netnsPath,
		"CNI_IFNAME=eth0", "CNI_PATH=" + dir, "CNI_ARGS=" + args,
	}
	cmd.Stdin = bytes.NewReader(conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %v: %s (stderr: %s)", command, err, out, stderr.String())
	}
	return out, nil
}

// cniError decodes the CNI error a failed call printed; a zero Code means
// there was none.
func cniError(out []byte) types.Error {
	var e types.Error
	json.Unmarshal(out, &e)
	return e
}

func cniConf(version, socket string) []byte {
	return fmt.Appendf(nil, `{"cniVersion":%q,"name":"web","type":"vxswitch-cni","network":"web","socket":%q}`, version, socket)
}

// cniNetNS makes an empty namespace for a "container" and removes it when
// the test ends.
func cniNetNS(t *testing.T, c *lab.Cluster, name string) (ns, path string) {
	t.Helper()
	ns = c.Opt.Prefix + name
	path, err := netlab.AddNS(ns)
	if err != nil {
		t.Fatalf("add netns: %v", err)
	}
	t.Cleanup(func() { netlab.DelNS(ns) })
	return ns, path
}

// TestCNIPluginLifecycle runs vxswitch-cni as a runtime would: ADD gives
// the container namespace a working interface that reaches an endpoint on
// another host by address and by name, CHECK passes, DEL frees the
// address and is idempotent, GC frees what is not listed as valid.
func TestCNIPluginLifecycle(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2})
	h1 := c.Agents[0]
	c2 := c.Endpoints[1]
	ns, path := cniNetNS(t, c, "ctr1")
	conf := cniConf("1.1.0", h1.Socket)

	out, err := cniCall(t, "ADD", "abcdef0123456789", path, "IgnoreUnknown=1;K8S_POD_NAME=Web_Server.1", conf)
	if err != nil {
		t.Fatal(err)
	}
	var res current.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decode ADD result %s: %v", out, err)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" || res.Interfaces[0].Sandbox != path || res.Interfaces[0].Mtu == 0 {
		t.Fatalf("ADD interfaces: %s", out)
	}
	if len(res.IPs) != 1 || res.IPs[0].Gateway != nil || !strings.HasPrefix(res.IPs[0].Address.String(), "10.20.0.") || !strings.HasSuffix(res.IPs[0].Address.String(), "/24") {
		t.Fatalf("ADD ips: %s", out)
	}
	if len(res.DNS.Nameservers) != 1 || len(res.DNS.Search) != 1 || res.DNS.Search[0] != "web" {
		t.Fatalf("ADD dns: %s", out)
	}
	var mine *struct{ name, owner string }
	for _, e := range endpoints(t, h1) {
		if e.Owner == "cni:abcdef0123456789/eth0" {
			mine = &struct{ name, owner string }{e.Name, e.Owner}
			if e.MAC != res.Interfaces[0].Mac || e.IP.String() != res.IPs[0].Address.IP.String() {
				t.Fatalf("cluster record %+v does not match result %s", e, out)
			}
		}
	}
	if mine == nil || mine.name != "web-server-1" {
		t.Fatalf("no endpoint web-server-1 tagged with the container: %+v", endpoints(t, h1))
	}
	// A second container of the same name, and a network that does not
	// exist, are refused with what to do.
	_, path2 := cniNetNS(t, c, "ctr2")
	for _, tc := range []struct{ conf, args, want string }{
		{string(conf), "K8S_POD_NAME=web-server-1", "already used"},
		{strings.Replace(string(conf), `"network":"web"`, `"network":"nope"`, 1), "", "vxswitch network create nope"},
	} {
		out, err := cniCall(t, "ADD", "second000001", path2, tc.args, []byte(tc.conf))
		if e := cniError(out); err == nil || e.Code != 7 || !strings.Contains(e.Msg, tc.want) {
			t.Fatalf("ADD (%s): %v %s; want error 7 saying %q", tc.args, err, out, tc.want)
		}
	}
	link := run(t, ns, "ip", "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(link, res.IPs[0].Address.String()) {
		t.Fatalf("eth0 in the container lacks %s: %s", res.IPs[0].Address, link)
	}
	ping(t, ns, c2.IP.String(), 3)
	eventually(t, 10*time.Second, "web-server-1 resolves on h2", func() error {
		_, err := netlab.Exec(context.Background(), c2.NS, "ping", "-c", "1", "-W", "2", "web-server-1")
		return err
	})

	// The first call of a 1.0.0 runtime (Podman 4.3) is answered in its
	// version; CHECK in 0.4.0 and 1.1.0 passes.
	if _, err := cniCall(t, "CHECK", "abcdef0123456789", path, "", withPrev(t, cniConf("1.1.0", h1.Socket), out)); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	// CHECK notices a changed interface.
	run(t, ns, "ip", "addr", "flush", "dev", "eth0")
	if _, err := cniCall(t, "CHECK", "abcdef0123456789", path, "", withPrev(t, cniConf("1.1.0", h1.Socket), out)); err == nil || !strings.Contains(err.Error(), "lacks address") {
		t.Fatalf("CHECK of a flushed eth0 = %v, want 'lacks address'", err)
	}

	for i := range 2 {
		if _, err := cniCall(t, "DEL", "abcdef0123456789", path, "", conf); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	for _, e := range endpoints(t, h1) {
		if strings.HasPrefix(e.Owner, "cni:") {
			t.Fatalf("endpoint %s left after DEL", e.Name)
		}
	}
	if out := run(t, ns, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("eth0 left in the container after DEL: %s", out)
	}

	// GC: two containers, one listed as valid.
	_, pathA := cniNetNS(t, c, "ctra")
	_, pathB := cniNetNS(t, c, "ctrb")
	if _, err := cniCall(t, "ADD", "aaaa", pathA, "", conf); err != nil {
		t.Fatal(err)
	}
	if _, err := cniCall(t, "ADD", "bbbb", pathB, "", conf); err != nil {
		t.Fatal(err)
	}
	gc := fmt.Appendf(nil, `{"cniVersion":"1.1.0","name":"web","type":"vxswitch-cni","network":"web","socket":%q,"cni.dev/valid-attachments":[{"containerID":"aaaa","ifname":"eth0"}]}`, h1.Socket)
	if _, err := cniCall(t, "GC", "", "", "", gc); err != nil {
		t.Fatalf("GC: %v", err)
	}
	var owners []string
	for _, e := range endpoints(t, h1) {
		owners = append(owners, e.Owner)
	}
	if got := strings.Join(owners, ","); !strings.Contains(got, "cni:aaaa/eth0") || strings.Contains(got, "cni:bbbb/eth0") {
		t.Fatalf("after GC owners are %q: want cni:aaaa/eth0 kept and cni:bbbb/eth0 freed", got)
	}
	if _, err := cniCall(t, "STATUS", "", "", "", conf); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
}

// withPrev adds an ADD result as prevResult to a configuration.
func withPrev(t *testing.T, conf, prev []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(conf, &m); err != nil {
		t.Fatal(err)
	}
	m["prevResult"] = json.RawMessage(prev)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCNIChainWithTuning runs a conflist of vxswitch-cni and the reference
// tuning plugin (Debian's containernetworking-plugins) through libcni, in
// CNI 1.0.0 as Podman 4.3 speaks it: tuning gets vxswitch-cni's result as
// prevResult and sets a sysctl on the interface it names.
func TestCNIChainWithTuning(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2})
	h1 := c.Agents[0]
	dir := cniPlugin(t)
	ns, path := cniNetNS(t, c, "chain")
	list, err := libcni.ConfListFromBytes(fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"web","plugins":[
		{"type":"vxswitch-cni","network":"web","socket":%q},
		{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_filter":"1"}}]}`, h1.Socket))
	if err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{dir, "/usr/lib/cni"}, t.TempDir(), nil)
	rt := &libcni.RuntimeConf{ContainerID: "chain0001", NetNS: path, IfName: "eth0", Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", "chained"}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		t.Fatalf("ADD of the chain: %v", err)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != "1.0.0" || len(res.IPs) != 1 || len(res.Interfaces) != 1 {
		t.Fatalf("chain result %+v", res)
	}
	if got := strings.TrimSpace(run(t, ns, "cat", "/proc/sys/net/ipv4/conf/eth0/arp_filter")); got != "1" {
		t.Fatalf("tuning did not set arp_filter on eth0 (%s): prevResult did not reach it", got)
	}
	// h2 learns the name when it applies the attach.
	eventually(t, 10*time.Second, "chained resolves on h2", func() error {
		_, err := netlab.Exec(ctx, c.Endpoints[1].NS, "ping", "-c", "1", "-W", "2", "chained")
		return err
	})
	if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
		t.Fatalf("CHECK of the chain: %v", err)
	}
	for i := range 2 {
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			t.Fatalf("DEL #%d of the chain: %v", i+1, err)
		}
	}
	for _, e := range endpoints(t, h1) {
		if e.Name == "chained" {
			t.Fatalf("endpoint chained left after DEL")
		}
	}
}

// TestCNIAgentDown: ADD, DEL and STATUS while the agent is stopped fail
// with CNI's "try again later" (11; STATUS 50) and a message that says to
// start the agent, and leave nothing in the container; once the agent is
// back, the same ADD works.
func TestCNIAgentDown(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 1})
	h1 := c.Agents[0]
	ns, path := cniNetNS(t, c, "down")
	conf := cniConf("1.0.0", h1.Socket)
	if err := c.Stop(0, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"ADD", "DEL", "STATUS"} {
		cf := conf
		if cmd == "STATUS" {
			cf = cniConf("1.1.0", h1.Socket)
		}
		out, err := cniCall(t, cmd, "down0001", path, "", cf)
		if err == nil {
			t.Fatalf("%s with the agent down succeeded: %s", cmd, out)
		}
		e := cniError(out)
		want := uint(11)
		if cmd == "STATUS" {
			want = 50
		}
		if e.Code != want || !strings.Contains(e.Msg, "start it") {
			t.Fatalf("%s with the agent down: code %d %q, want %d and a hint to start the agent", cmd, e.Code, e.Msg, want)
		}
	}
	if out := run(t, ns, "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("eth0 made while the agent was down: %s", out)
	}
	if err := c.Start(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := cniCall(t, "ADD", "down0001", path, "", conf); err != nil {
		t.Fatalf("ADD after the agent came back: %v", err)
	}
	if _, err := cniCall(t, "DEL", "down0001", path, "", conf); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

// TestCNIPodman runs a real runtime, Podman 4.3 with its CNI backend,
// inside lab host h1: a container on network web gets its interface from
// vxswitch-cni and pings the bare attach endpoint of h2 by name; removing
// the container frees its endpoint.
func TestCNIPodman(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2})
	h1 := c.Agents[0]
	dir := cniPlugin(t)
	work := t.TempDir()
	confDir := filepath.Join(work, "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, text string) {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(confDir, "web.conflist"), fmt.Sprintf(`{"cniVersion":"1.0.0","name":"web","plugins":[{"type":"vxswitch-cni","network":"web","socket":%q}]}`, h1.Socket))
	containersConf := filepath.Join(work, "containers.conf")
	write(containersConf, fmt.Sprintf("[network]\ncni_plugin_dirs = [%q, \"/usr/lib/cni\"]\n", dir))

	// An image of a static busybox, imported from a tar of its root.
	rootfs := filepath.Join(work, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(rootfs, "bin", "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("copy busybox: %v %s", err, out)
	}
	for _, l := range []string{"sh", "ping", "ip", "cat", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	tarball := filepath.Join(work, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	podman := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		base := []string{"--net=" + netlab.NetNSDir + h1.Host.NS, "podman",
			"--root", filepath.Join(work, "root"), "--runroot", filepath.Join(work, "runroot"),
			"--storage-driver", "vfs", "--network-backend", "cni", "--cni-config-dir", confDir,
			"--cgroup-manager", "cgroupfs", "--events-backend", "file", "--tmpdir", filepath.Join(work, "tmp")}
		cmd := exec.CommandContext(ctx, "nsenter", append(base, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+containersConf)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		podman("rm", "-af", "-t", "0")
		exec.Command("umount", "-R", filepath.Join(work, "root")).Run()
		exec.Command("umount", "-R", filepath.Join(work, "runroot")).Run()
	})
	if out, err := podman("import", tarball, "vxbusybox"); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
	// A running container is named by Podman's K8S_POD_NAME, reachable by
	// that name from h2, and freed by podman rm -f.
	if out, err := podman("run", "-d", "--name", "pc2", "--network", "web",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"vxbusybox", "/bin/sleep", "300"); err != nil {
		t.Fatalf("podman run -d: %v\n%s", err, out)
	}
	found := false
	for _, e := range endpoints(t, h1) {
		if e.Name == "pc2" && strings.HasPrefix(e.Owner, "cni:") && strings.HasSuffix(e.Owner, "/eth0") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no endpoint pc2 tagged cni:ID/eth0: %+v", endpoints(t, h1))
	}
	eventually(t, 10*time.Second, "pc2 answers c2 by name", func() error {
		_, err := netlab.Exec(context.Background(), c.Endpoints[1].NS, "ping", "-c", "1", "-W", "2", "pc2")
		return err
	})
	out, err := podman("run", "--rm", "--name", "pc1", "--network", "web",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"vxbusybox", "/bin/sh", "-c", "ip addr show eth0; cat /etc/resolv.conf; ping -c 3 -W 2 c2; ping -c 1 -W 2 pc2")
	if err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "3 packets received") || !strings.Contains(out, "1 packets received") || !strings.Contains(out, "10.20.0.") {
		t.Fatalf("container on h1 did not ping c2 and pc2 by name:\n%s", out)
	}
	t.Logf("podman run:\n%s", out)
	for _, e := range endpoints(t, h1) {
		if e.Name == "pc1" {
			t.Fatalf("endpoint pc1 left after podman run --rm ended")
		}
	}

	if out, err := podman("rm", "-f", "-t", "0", "pc2"); err != nil {
		t.Fatalf("podman rm: %v\n%s", err, out)
	}
	for _, e := range endpoints(t, h1) {
		if e.Name == "pc2" {
			t.Fatalf("endpoint pc2 left after podman rm -f")
		}
	}
}

// TestCNIAgentKilledMidAdd: the agent dies while an ADD waits for Raft (h2
// is down, so the attach cannot commit yet). The plugin answers "try again
// later" (11); after both agents are back the half-made attach may have
// committed, and the runtime's DEL, which follows a failed ADD, frees it
// by its owner tag: no endpoint, no TAP and no address are left.
func TestCNIAgentKilledMidAdd(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2})
	h1 := c.Agents[0]
	ns, path := cniNetNS(t, c, "mid")
	conf := cniConf("1.1.0", h1.Socket)
	if err := c.Stop(1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := cniCall(t, "ADD", "mid00001", path, "K8S_POD_NAME=mid", conf)
		done <- result{out, err}
	}()
	time.Sleep(time.Second) // the attach is now waiting for a quorum
	if err := c.Stop(0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := <-done
	e := cniError(r.out)
	if r.err == nil || e.Code != 11 {
		t.Fatalf("ADD with the agent killed: %v (%s), want CNI error 11", r.err, r.out)
	}
	t.Logf("ADD answered: %s", e.Msg)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := make(chan error, 1)
	go func() { started <- c.Start(ctx, 1) }()
	if err := c.Start(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a leader after the restart", func() error {
		var es []api.Endpoint
		if err := h1.Client().Get(ctx, "/v1/endpoints", &es); err != nil {
			return err
		}
		for _, ep := range es {
			if ep.Owner == "cni:mid00001/eth0" {
				t.Logf("the interrupted attach committed: endpoint %s %s", ep.Name, ep.IP)
			}
		}
		return nil
	})
	// The runtime cleans up a failed ADD with DEL; it may need a retry
	// while the cluster elects a leader.
	eventually(t, 30*time.Second, "DEL after the failed ADD", func() error {
		_, err := cniCall(t, "DEL", "mid00001", path, "", conf)
		return err
	})
	for _, ep := range endpoints(t, h1) {
		if ep.Owner == "cni:mid00001/eth0" || ep.Name == "mid" {
			t.Fatalf("endpoint %s left after DEL", ep.Name)
		}
	}
	eventually(t, 10*time.Second, "no TAP left in the container", func() error {
		if out := run(t, ns, "ip", "-o", "link"); strings.Contains(out, "eth0") {
			return fmt.Errorf("eth0 still there: %s", out)
		}
		return nil
	})
	// The address is free again: the subnet's addresses in use are the
	// lab's two endpoints only.
	var n struct {
		Endpoints int `json:"endpoints"`
	}
	if err := h1.Client().Get(ctx, "/v1/networks/web", &n); err != nil || n.Endpoints != 2 {
		t.Fatalf("network web has %d endpoints (%v), want the lab's 2", n.Endpoints, err)
	}
}

// TestCNIDualStack: on a dual-stack network, ADD through libcni (CNI
// 1.0.0) gives each container both addresses on eth0 and both in the
// result, with the on-link route and the resolver of each family; two
// containers on two hosts ping each other over IPv6 and IPv4, a lab
// endpoint finds a container's AAAA record, CHECK verifies both addresses.
func TestCNIDualStack(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 2, Subnet: "10.20.0.0/24", Subnet6: "fd20::/64"})
	dir := cniPlugin(t)
	subnet6 := netip.MustParsePrefix("fd20::/64")
	cni := libcni.NewCNIConfigWithCacheDir([]string{dir, "/usr/lib/cni"}, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type container struct {
		ns       string
		ip4, ip6 netip.Addr
		list     *libcni.NetworkConfigList
		rt       *libcni.RuntimeConf
	}
	var ctrs []container
	for i, a := range c.Agents {
		name := fmt.Sprintf("dual%d", i+1)
		ns, path := cniNetNS(t, c, name)
		list, err := libcni.ConfListFromBytes(fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":"web","plugins":[{"type":"vxswitch-cni","network":"web","socket":%q}]}`, a.Socket))
		if err != nil {
			t.Fatal(err)
		}
		rt := &libcni.RuntimeConf{ContainerID: name + "id", NetNS: path, IfName: "eth0", Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAME", name}}}
		r, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			t.Fatalf("ADD %s: %v", name, err)
		}
		t.Cleanup(func() { cni.DelNetworkList(context.Background(), list, rt) })
		res, err := current.NewResultFromResult(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res)
		if len(res.Interfaces) != 1 || len(res.IPs) != 2 || len(res.Routes) != 2 {
			t.Fatalf("ADD %s: want one interface, two addresses and two routes: %s", name, b)
		}
		ctr := container{ns: ns, list: list, rt: rt}
		for _, ip := range res.IPs {
			a, _ := netip.AddrFromSlice(ip.Address.IP)
			ones, _ := ip.Address.Mask.Size()
			switch {
			case a.Unmap().Is4() && ones == 24:
				ctr.ip4 = a.Unmap()
			case subnet6.Contains(a) && ones == 64 && ip.Gateway == nil && *ip.Interface == 0:
				ctr.ip6 = a
			}
		}
		if !ctr.ip4.IsValid() || !ctr.ip6.IsValid() {
			t.Fatalf("ADD %s: want an IPv4 /24 and an IPv6 /64 in %s: %s", name, subnet6, b)
		}
		if got := fmt.Sprint(res.DNS.Nameservers); got != "[10.20.0.1 fd20::1]" {
			t.Fatalf("ADD %s: nameservers %s, want both resolver addresses: %s", name, got, b)
		}
		for _, e := range endpoints(t, a) {
			if e.Name == name && (e.IP6 != ctr.ip6 || e.IP != ctr.ip4) {
				t.Fatalf("cluster record %+v does not match result %s", e, b)
			}
		}
		if out := run(t, ns, "ip", "-6", "addr", "show", "dev", "eth0"); !strings.Contains(out, ctr.ip6.String()+"/64") {
			t.Fatalf("eth0 of %s lacks %s/64: %s", name, ctr.ip6, out)
		}
		ctrs = append(ctrs, ctr)
	}
	a, b := ctrs[0], ctrs[1]
	eventually(t, 10*time.Second, "ping6 between the containers", func() error {
		_, err := netlab.Exec(ctx, a.ns, "ping", "-6", "-c", "1", "-W", "1", b.ip6.String())
		return err
	})
	ping(t, a.ns, b.ip6.String(), 3)
	ping(t, b.ns, a.ip6.String(), 3)
	ping(t, b.ns, a.ip4.String(), 2)
	eventually(t, 10*time.Second, "AAAA of dual1 on h2", func() error {
		out, err := netlab.Exec(ctx, c.Endpoints[1].NS, "getent", "ahostsv6", "dual1")
		if err != nil || !strings.HasPrefix(string(out), a.ip6.String()+" ") {
			return fmt.Errorf("getent ahostsv6 dual1 = %q, %v; want %s", out, err, a.ip6)
		}
		return nil
	})
	if err := cni.CheckNetworkList(ctx, a.list, a.rt); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	// CHECK notices a lost IPv6 address.
	run(t, a.ns, "ip", "-6", "addr", "del", a.ip6.String()+"/64", "dev", "eth0")
	if err := cni.CheckNetworkList(ctx, a.list, a.rt); err == nil || !strings.Contains(err.Error(), "lacks address "+a.ip6.String()) {
		t.Fatalf("CHECK without the IPv6 address = %v, want 'lacks address %s'", err, a.ip6)
	}
	for _, ctr := range ctrs {
		if err := cni.DelNetworkList(ctx, ctr.list, ctr.rt); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	}
	for _, e := range endpoints(t, c.Agents[0]) {
		if strings.HasPrefix(e.Owner, "cni:") {
			t.Fatalf("endpoint %s left after DEL", e.Name)
		}
	}
}

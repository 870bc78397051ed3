// Package lab runs a whole vxswitch overlay on one machine: host network
// namespaces on a bridged veth underlay (internal/netlab), one agent process
// per host, a network, and one endpoint namespace per host attached to it.
//
// It backs `vxswitch lab up|down` and the integration tests, so that what
// people try by hand is what the tests prove.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vxswitch/api"
	"vxswitch/internal/netlab"
)

// Options describe a lab. The zero value of every field but Binary takes the
// default named in its comment.
type Options struct {
	Prefix string // namespace name prefix; "" = "vxlab-"
	Hosts  int    // 0 = 3
	// Bare is how many extra hosts get no agent (to run a kernel vxlan
	// device, say); they come after the agent hosts in Net.Hosts.
	Bare        int
	Binary      string // vxswitch executable; "" = this process's own
	StateDir    string // sockets, logs, pid files and data dirs; "" = /run/vxswitch/lab
	Network     string // network created by Up; "" = "web"; "-" = none
	Subnet      string // its subnet; "" = 10.20.0.0/24
	Subnet6     string // its IPv6 subnet, like fd20::/64, for a dual-stack network; "" = none
	UnderlayMTU int    // 0 = 1500
	// IPv6Underlay puts the hosts on the IPv6 underlay fd77::/64 (host i
	// is fd77::i) instead of 10.77.0.0/24: the agents advertise IPv6
	// addresses and VXLAN travels over UDP/IPv6 (70 bytes of overhead).
	IPv6Underlay bool
	// NoEndpoints skips attaching one endpoint per host.
	NoEndpoints bool
	// AgentArgs are appended to every agent's command line.
	AgentArgs []string
	// Docker runs every agent with --docker-plugin in a mount namespace
	// of its host that a Docker engine started with StartDocker shares
	// (docker.go).
	Docker bool
}

func (o *Options) setDefaults() error {
	if o.Prefix == "" {
		o.Prefix = "vxlab-"
	}
	if o.Hosts == 0 {
		o.Hosts = 3
	}
	if o.Hosts < 1 || o.Hosts > 50 {
		return fmt.Errorf("lab: --hosts %d: use 1..50", o.Hosts)
	}
	if o.StateDir == "" {
		o.StateDir = "/run/vxswitch/lab"
	}
	if o.Network == "" {
		o.Network = "web"
	}
	if o.Subnet == "" && o.Subnet6 == "" { // Subnet6 alone: an IPv6-only network
		o.Subnet = "10.20.0.0/24"
	}
	if o.UnderlayMTU == 0 {
		o.UnderlayMTU = 1500
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("lab: find the vxswitch binary: %w", err)
		}
		o.Binary = exe
	}
	return nil
}

// IPv6UnderlaySubnet is the underlay of a lab with IPv6Underlay.
var IPv6UnderlaySubnet = netip.MustParsePrefix("fd77::/64")

// underlaySubnet is the netlab subnet: the zero Prefix (netlab's IPv4
// default) or IPv6UnderlaySubnet.
func (o *Options) underlaySubnet() netip.Prefix {
	if o.IPv6Underlay {
		return IPv6UnderlaySubnet
	}
	return netip.Prefix{}
}

// Cluster is a running lab.
type Cluster struct {
	Opt       Options
	Net       *netlab.Lab
	Agents    []*Agent
	Endpoints []Endpoint
	token     string // the last join token read from a member
}

// Agent is one host's agent process.
type Agent struct {
	Host    *netlab.Host
	Socket  string
	DataDir string
	LogFile string
	PIDFile string
	// MountNS is the mount namespace file the agent runs in, with its
	// host's engine (Options.Docker); "" runs it with ip netns exec.
	MountNS string
	proc    *os.Process
	exited  chan struct{}
}

// Endpoint is an endpoint namespace the lab attached.
type Endpoint struct {
	Name  string // endpoint name, like "c1"
	NS    string // its network namespace
	Host  string // host it is attached on
	IP    netip.Addr
	IP6   netip.Addr // on a dual-stack network; zero otherwise
	MAC   string
	Agent *Agent
}

// Client returns an API client for the agent's unix socket.
func (a *Agent) Client() *api.Client { return api.NewUnixClient(a.Socket) }

// Pid returns the process ID of the agent, or 0 when it is not running.
func (a *Agent) Pid() int {
	if a.proc == nil {
		return 0
	}
	return a.proc.Pid
}

// Up builds the lab. On failure it removes what it made.
func Up(ctx context.Context, opt Options) (_ *Cluster, err error) {
	if err := opt.setDefaults(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("lab: must run as root: it creates network namespaces")
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); bytes.Contains(out, []byte(opt.Prefix+"h1")) {
		return nil, fmt.Errorf("lab: a lab with prefix %q already exists: run 'vxswitch lab down' first", opt.Prefix)
	}
	c := &Cluster{Opt: opt}
	defer func() {
		if err != nil {
			c.Down()
		}
	}()
	if err := os.MkdirAll(opt.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	c.Net, err = netlab.New(netlab.Options{Prefix: opt.Prefix, Hosts: opt.Hosts + opt.Bare, MTU: opt.UnderlayMTU, Subnet: opt.underlaySubnet()})
	if err != nil {
		return nil, err
	}
	for i, h := range c.Net.Hosts[:opt.Hosts] {
		a := &Agent{
			Host:    h,
			Socket:  filepath.Join(opt.StateDir, h.Name+".sock"),
			DataDir: filepath.Join(opt.StateDir, "data", h.Name),
			LogFile: filepath.Join(opt.StateDir, h.Name+".log"),
			PIDFile: filepath.Join(opt.StateDir, h.Name+".pid"),
		}
		c.Agents = append(c.Agents, a)
		if opt.Docker {
			if err := c.makeMountNS(a); err != nil {
				return nil, err
			}
		}
		if err := c.Start(ctx, i); err != nil {
			return nil, err
		}
	}
	if opt.Network == "-" {
		return c, nil
	}
	cl := c.Agents[0].Client()
	if _, err := cl.CreateNetwork(ctx, api.NetworkRequest{Name: opt.Network, Subnet: opt.Subnet, Subnet6: opt.Subnet6}); err != nil {
		return nil, fmt.Errorf("lab: create network %s: %w", opt.Network, err)
	}
	if opt.NoEndpoints {
		return c, nil
	}
	for i, a := range c.Agents {
		if _, err := c.Attach(ctx, a, opt.Network, fmt.Sprintf("c%d", i+1)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Attach makes a new endpoint namespace <prefix><name> and attaches it to
// network through agent a.
func (c *Cluster) Attach(ctx context.Context, a *Agent, network, name string) (Endpoint, error) {
	ns := c.Opt.Prefix + name
	if _, err := netlab.AddNS(ns); err != nil {
		return Endpoint{}, err
	}
	req := api.AttachRequest{Network: network, Name: name, NetNS: ns}
	e, err := a.Client().Attach(ctx, req)
	if err != nil {
		return Endpoint{}, fmt.Errorf("lab: attach %s on %s: %w", name, a.Host.Name, err)
	}
	ep := Endpoint{Name: name, NS: ns, Host: a.Host.Name, IP: e.IP, IP6: e.IP6, MAC: e.MAC, Agent: a}
	c.Endpoints = append(c.Endpoints, ep)
	return ep, nil
}

// Token returns the cluster's current join token, asking the running
// agents in turn ('vxswitch token') until one answers or ctx ends. The
// first host's agent answers once it has created the cluster's CA.
func (c *Cluster) Token(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error = errors.New("no agent runs")
	for {
		for i, a := range c.Agents {
			if !c.Running(i) {
				continue
			}
			var t api.Token
			if t, last = a.Client().Token(ctx); last == nil {
				c.token = t.Token
				return t.Token, nil
			}
		}
		select {
		case <-ctx.Done():
			if c.token != "" {
				return c.token, nil // every agent is down: the last token read
			}
			return "", fmt.Errorf("lab: read the join token: %w", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Start runs host i's agent (bootstrapping the cluster on host 0, joining
// through host 0 with the join token elsewhere) and waits until it answers
// on its socket.
func (c *Cluster) Start(ctx context.Context, i int) error {
	a := c.Agents[i]
	args := []string{"netns", "exec", a.Host.NS, c.Opt.Binary, "--socket", a.Socket, "agent",
		"--name", a.Host.Name, "--advertise", a.Host.Addr.String(), "--data-dir", a.DataDir}
	env := os.Environ()
	if i == 0 {
		args = append(args, "--bootstrap")
	} else {
		args = append(args, "--join", c.Agents[0].Host.Addr.String())
		if _, err := os.Stat(filepath.Join(a.DataDir, "node.crt")); err != nil {
			// Not joined yet: the token goes in the environment, not on
			// the command line where ps shows it.
			tok, err := c.Token(ctx)
			if err != nil {
				return err
			}
			env = append(env, "VXSWITCH_TOKEN="+tok)
		}
	}
	args = append(args, c.Opt.AgentArgs...)
	if a.MountNS != "" {
		args = append(args, c.dockerAgentArgs(a)...)
		// The agent's mount namespace is the one its host's engine
		// uses: nsenter, not ip netns exec (which makes its own).
		args = append([]string{"--mount=" + a.MountNS, "--net=" + a.Host.NSPath}, args[3:]...)
	}
	if _, err := os.Stat(filepath.Join(a.DataDir, "raft")); err == nil && i == 0 {
		// A restarted first host recovers its cluster from disk.
		args = slicesDelete(args, "--bootstrap")
	}
	log, err := os.OpenFile(a.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer log.Close()
	prog := "ip"
	if a.MountNS != "" {
		prog = "nsenter"
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: start agent on %s: %w", a.Host.Name, err)
	}
	a.proc = cmd.Process
	a.exited = make(chan struct{})
	go func() { cmd.Wait(); close(a.exited) }()
	os.WriteFile(a.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	return a.waitReady(ctx)
}

func slicesDelete(args []string, drop string) []string {
	out := args[:0:0]
	for _, s := range args {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

// waitReady polls the agent's socket until it answers, the process exits,
// or 60 s pass.
func (a *Agent) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cl := a.Client()
	for {
		if _, err := cl.Status(ctx); err == nil {
			return nil
		}
		select {
		case <-a.exited:
			return fmt.Errorf("lab: agent on %s exited during start:\n%s", a.Host.Name, a.LogTail())
		case <-ctx.Done():
			return fmt.Errorf("lab: agent on %s not ready after 60 s:\n%s", a.Host.Name, a.LogTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LogTail returns the last lines of the agent's log.
func (a *Agent) LogTail() string {
	b, _ := os.ReadFile(a.LogFile)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends sig to host i's agent and waits up to 10 s for it to exit.
func (c *Cluster) Stop(i int, sig syscall.Signal) error {
	a := c.Agents[i]
	if a.proc == nil {
		return nil
	}
	// ip netns exec replaces itself with the agent, so the pid is the agent's.
	a.proc.Signal(sig)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		a.proc.Kill()
		<-a.exited
	}
	a.proc = nil
	os.Remove(a.PIDFile)
	return nil
}

// Running tells whether host i's agent process is running.
func (c *Cluster) Running(i int) bool {
	a := c.Agents[i]
	if a.proc == nil {
		return false
	}
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// Down stops the agents, removes the namespaces and the state directory.
func (c *Cluster) Down() error {
	for i := range c.Agents {
		c.Stop(i, syscall.SIGTERM)
	}
	return Down(c.Opt)
}

// Down removes a lab made with these options even if the process that made
// it is gone: it kills agents found by pid file or by their data directory,
// deletes every namespace with the prefix and the state directory.
func Down(opt Options) error {
	opt.setDefaults() // only the names matter here
	stopEngines(opt)
	killAgents(opt.StateDir)
	removeMountNSes(opt)
	var errs []error
	if err := netlab.Cleanup(opt.Prefix); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(opt.StateDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killAgents kills every process whose command line names a data directory
// below stateDir, waiting up to 5 s for each.
func killAgents(stateDir string) {
	marker := []byte(filepath.Join(stateDir, "data") + "/")
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, marker) {
			continue
		}
		syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 50; i++ {
			if syscall.Kill(pid, 0) != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

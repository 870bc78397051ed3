package main

import (
	"vxswitch/dockerplugin"

	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"vxswitch/agent"
	"vxswitch/api"
	"vxswitch/raftstore"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run this host's switch and control-plane node",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "host name, unique in the cluster (required)"},
			&cli.StringFlag{Name: "advertise", Usage: "underlay IPv4 or IPv6 address of this host (required); every host of a cluster uses the same family"},
			&cli.StringFlag{Name: "data-dir", Usage: "directory for the Raft log and snapshots (required)"},
			&cli.BoolFlag{Name: "bootstrap", Usage: "start a new cluster with this host as its first member"},
			&cli.StringSliceFlag{Name: "join", Usage: "join the cluster through this member's address: ADDR, ADDR:PORT or [IPv6]:PORT (repeatable)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"VXSWITCH_TOKEN"}, Usage: "join token, needed with --join ('vxswitch token' on a member prints it)"},
			&cli.UintFlag{Name: "vxlan-port", Value: 4789, Usage: "UDP port for VXLAN"},
			&cli.IntFlag{Name: "raft-port", Value: api.DefaultRaftPort, Usage: "TCP port for Raft"},
			&cli.IntFlag{Name: "api-port", Value: api.DefaultAPIPort, Usage: "TCP port for agent-to-agent API calls"},
			&cli.IntFlag{Name: "voters", Value: 3, Usage: "how many hosts vote in Raft; later hosts join as non-voters"},
			&cli.DurationFlag{Name: "voter-dead-after", Usage: "replace a voter out of contact this long by a healthy non-voter (0 = never)"},
			&cli.DurationFlag{Name: "voter-stabilize", Value: 10 * time.Second, Usage: "how long a new host serves as a non-voter before it can be promoted"},
			&cli.IntFlag{Name: "underlay-mtu", Usage: "MTU of the underlay (default: detected on the advertised address's interface)"},
			&cli.BoolFlag{Name: "clamp-mss", Value: true, Usage: "lower the MSS of TCP SYNs to fit the endpoint MTU (--clamp-mss=false to turn off)"},
			&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics at http://ADDR/metrics (ADDR like 127.0.0.1:9464)"},
			&cli.DurationFlag{Name: "key-rotation", Value: 12 * time.Hour, Usage: "how often this host makes a new key pair for the ESP SAs of encrypted networks (also after 2^31 packets on one SA, and at every start)"},
			&cli.DurationFlag{Name: "cert-ttl", Value: 90 * 24 * time.Hour, Usage: "lifetime of the host certificates this host signs as leader; each host renews its own after 2/3 of it"},
			&cli.DurationFlag{Name: "ca-overlap", Value: 24 * time.Hour, Usage: "after 'ca rotate', how long the replaced CA stays trusted at most (it is retired as soon as every host renewed)"},
			&cli.StringFlag{Name: "docker-plugin", Usage: "serve the Docker network and IPAM driver 'vxswitch' on this unix socket (Docker looks for " + dockerplugin.DefaultSocket + ")"},
			&cli.StringFlag{Name: "docker-host", Usage: "the Docker engine API the plugin asks for container names (default: $DOCKER_HOST or unix:///var/run/docker.sock)"},
			&cli.DurationFlag{Name: "docker-stale-after", Value: time.Minute, Usage: "remove a Docker endpoint or reserved address the engine has not listed for this long (its container went away while the agent was down)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.IntFlag{Name: "procs", Usage: "CPUs the agent's Go code may use at once (default: half of them, at least 1; the kernel's own network work needs the rest)"},
		}, historyFlags()...),
		Action: runAgent,
	}
}

func runAgent(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var adv netip.Addr
	if s := c.String("advertise"); s != "" {
		var err error
		if adv, err = netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err != nil {
			return fmt.Errorf("--advertise %q is not an IP address: give this host's underlay IPv4 or IPv6 address, like 10.0.0.1 or fd77::1", s)
		}
	}
	procs, err := agentProcs(c.Int("procs"), os.Getenv("GOMAXPROCS") != "")
	if err != nil {
		return err
	}
	runtime.GOMAXPROCS(procs)
	port := c.Uint("vxlan-port")
	if port == 0 || port > 65535 {
		return fmt.Errorf("--vxlan-port %d is not a UDP port: use 1..65535 (4789 is the IANA port)", port)
	}
	log.Info("agent starting", "procs", procs, "cpus", runtime.NumCPU())
	a, err := agent.Start(agent.Config{
		Name:             c.String("name"),
		Advertise:        adv,
		DataDir:          c.String("data-dir"),
		Bootstrap:        c.Bool("bootstrap"),
		Join:             c.StringSlice("join"),
		Token:            c.String("token"),
		Socket:           c.String("socket"),
		VXLANPort:        uint16(port),
		RaftPort:         c.Int("raft-port"),
		APIPort:          c.Int("api-port"),
		Voters:           c.Int("voters"),
		VoterDeadAfter:   c.Duration("voter-dead-after"),
		VoterStabilize:   c.Duration("voter-stabilize"),
		UnderlayMTU:      c.Int("underlay-mtu"),
		NoClampMSS:       !c.Bool("clamp-mss"),
		Metrics:          c.String("metrics"),
		CertTTL:          c.Duration("cert-ttl"),
		KeyRotation:      c.Duration("key-rotation"),
		CAOverlap:        c.Duration("ca-overlap"),
		DockerPlugin:     c.String("docker-plugin"),
		DockerHost:       c.String("docker-host"),
		DockerStaleAfter: c.Duration("docker-stale-after"),
		History:          raftstore.HistoryLimits{Entries: c.Int("history-entries"), Bytes: c.Int("history-bytes"), Age: c.Duration("history-age")},
		Logger:           log,
	})
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		log.Info("stopping", "signal", s.String())
	case <-a.Left():
		log.Info("left the cluster; stopping")
	}
	return a.Close()
}

// agentProcs picks the agent's GOMAXPROCS: flag when given, else the
// GOMAXPROCS environment variable when set (fromEnv), else half of what Go
// would use, at least 1. Every frame the agent switches also costs the
// kernel work on other threads (the endpoints' TCP/IP stacks, the UDP path
// to the underlay), so on a small host the agent's goroutines do best on
// fewer threads: more threads only wake each other. On 2 CPUs, 1 thread
// measured faster for small frames and ping (PERFORMANCE.md, what paid).
func agentProcs(flag int, fromEnv bool) (int, error) {
	switch {
	case flag < 0:
		return 0, fmt.Errorf("--procs %d: give a positive number of CPUs, or leave it out for half of them", flag)
	case flag > 0:
		return flag, nil
	case fromEnv:
		return runtime.GOMAXPROCS(0), nil
	}
	return max(1, runtime.GOMAXPROCS(0)/2), nil
}

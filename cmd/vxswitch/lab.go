package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"vxswitch/internal/bench"
	"vxswitch/internal/lab"
	"vxswitch/vxlan"
)

func labCommand() *cli.Command {
	prefix := &cli.StringFlag{Name: "prefix", Value: "vxlab-", Usage: "name prefix of the lab's network namespaces"}
	dir := &cli.StringFlag{Name: "state-dir", Value: "/run/vxswitch/lab", Usage: "where the lab keeps sockets, logs and data"}
	return &cli.Command{
		Name:  "lab",
		Usage: "run a whole multi-host overlay in network namespaces on this machine",
		Subcommands: []*cli.Command{
			{
				Name:  "up",
				Usage: "build host namespaces on a bridged underlay, start one agent per host, attach one endpoint per host",
				Flags: []cli.Flag{
					prefix, dir,
					&cli.IntFlag{Name: "hosts", Value: 3, Usage: "number of hosts"},
					&cli.IntFlag{Name: "underlay-mtu", Value: 1500, Usage: "MTU of the hosts' underlay links"},
					&cli.BoolFlag{Name: "ipv6-underlay", Usage: "put the hosts on an IPv6-only underlay (fd77::/64): VXLAN over UDP/IPv6, endpoint MTU = underlay - 70"},
					&cli.StringFlag{Name: "network", Value: "web", Usage: "name of the network to create"},
					&cli.StringSliceFlag{Name: "subnet", Value: cli.NewStringSlice("10.20.0.0/24"), Usage: "subnet of that network; give it twice, once with an IPv6 prefix like fd20::/64, for a dual-stack network"},
					&cli.BoolFlag{Name: "docker", Usage: "also run a Docker engine (dockerd, from docker.io) on every host, served by its agent's vxswitch plugin, with a busybox image 'vxbox'"},
				},
				Action: func(c *cli.Context) error {
					subnet, subnet6, err := splitSubnets(c.String("network"), c.StringSlice("subnet"))
					if err != nil {
						return err
					}
					cl, err := lab.Up(c.Context, lab.Options{
						Prefix: c.String("prefix"), StateDir: c.String("state-dir"), Hosts: c.Int("hosts"),
						UnderlayMTU: c.Int("underlay-mtu"), Network: c.String("network"), Subnet: subnet, Subnet6: subnet6,
						Docker: c.Bool("docker"), IPv6Underlay: c.Bool("ipv6-underlay"),
					})
					if err != nil {
						return err
					}
					var engines []*lab.Engine
					if c.Bool("docker") {
						if engines, err = startEngines(c, cl); err != nil {
							lab.Down(cl.Opt)
							return err
						}
					}
					printLab(c, cl, engines)
					return nil
				},
			},
			{
				Name:  "bench",
				Usage: "measure vxswitch against the kernel vxlan device and a naive userspace relay on the same namespaces (needs iperf3)",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "rounds", Value: 3, Usage: "interleaved rounds per figure (kernel, vxswitch, ...)"},
					&cli.DurationFlag{Name: "time", Value: 5 * time.Second, Usage: "length of each throughput run"},
					&cli.IntFlag{Name: "pings", Value: 500, Usage: "pings per latency round, every 10 ms (p99 is the 5th slowest of 500)"},
					&cli.StringFlag{Name: "congestion-control", Usage: "TCP congestion control of the TCP figures, like cubic or bbr (default: this machine's, see sysctl net.ipv4.tcp_congestion_control)"},
					&cli.BoolFlag{Name: "naive", Value: true, Usage: "also measure a naive userspace relay, one frame per system call (--naive=false leaves it out)"},
					&cli.BoolFlag{Name: "floor", Usage: "also measure a minimal C relay (built with gcc) in two designs: the least latency any userspace relay adds here"},
					&cli.BoolFlag{Name: "ipv6-underlay", Usage: "run both hosts on an IPv6 underlay: vxswitch and the kernel vxlan device over UDP/IPv6 (the IPv4-only relays are left out)"},
					&cli.BoolFlag{Name: "encrypted", Usage: "also measure an encrypted network (ESP in UDP, AES-GCM) between the same agents, as path vxswitch-esp"},
					outputFlag,
				},
				Action: func(c *cli.Context) error {
					r, err := bench.Run(c.Context, bench.Options{
						Rounds: c.Int("rounds"), Duration: c.Duration("time"), Pings: c.Int("pings"), Log: c.App.ErrWriter,
						CongestionControl: c.String("congestion-control"), NoNaive: !c.Bool("naive"), Floor: c.Bool("floor"),
						IPv6Underlay: c.Bool("ipv6-underlay"), Encrypted: c.Bool("encrypted"),
					})
					if err != nil {
						return err
					}
					return printOut(c, r, func(w io.Writer) { r.Write(w) })
				},
			},
			{
				Name:  "down",
				Usage: "stop the lab's agents and remove its namespaces and files (also after a crash)",
				Flags: []cli.Flag{prefix, dir},
				Action: func(c *cli.Context) error {
					if err := lab.Down(lab.Options{Prefix: c.String("prefix"), StateDir: c.String("state-dir")}); err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, "lab removed")
					return nil
				},
			},
			naiveRelayCommand(),
			labSimCommand(),
		},
	}
}

// printLab tells a person what was built and what to try.
func printLab(c *cli.Context, cl *lab.Cluster, engines []*lab.Engine) {
	w := c.App.Writer
	fmt.Fprintf(w, "lab up: %d hosts on underlay bridge %sul (%s), network %s (%s), MTU %d underlay\n\n",
		len(cl.Agents), cl.Opt.Prefix, cl.Net.Subnet, cl.Opt.Network, strings.Trim(cl.Opt.Subnet+","+cl.Opt.Subnet6, ","), cl.Opt.UnderlayMTU)
	fmt.Fprintln(w, "hosts (each runs one agent in its own namespace):")
	for _, a := range cl.Agents {
		fmt.Fprintf(w, "  %-4s netns %-12s underlay %-12s socket %s  log %s\n", a.Host.Name, a.Host.NS, a.Host.Addr, a.Socket, a.LogFile)
	}
	fmt.Fprintln(w, "\nendpoints (TAP eth0 inside each namespace):")
	for _, e := range cl.Endpoints {
		ip6 := ""
		if e.IP6.IsValid() {
			ip6 = " ip6 " + e.IP6.String()
		}
		fmt.Fprintf(w, "  %-4s netns %-12s on %-4s ip %-12s mac %s%s\n", e.Name, e.NS, e.Host, epIP(e.IP), e.MAC, ip6)
	}
	if len(cl.Endpoints) >= 2 {
		a, b := cl.Endpoints[0], cl.Endpoints[len(cl.Endpoints)-1]
		sock := cl.Agents[0].Socket
		fmt.Fprintf(w, "\ntry:\n")
		if b.IP.IsValid() {
			fmt.Fprintf(w, "  ip netns exec %s ping -c 3 %s              # %s on %s -> %s on %s, across hosts\n", a.NS, b.IP, a.Name, a.Host, b.Name, b.Host)
		} else {
			fmt.Fprintf(w, "  ip netns exec %s ping -c 3 %s              # %s on %s -> %s on %s, across hosts (IPv6-only)\n", a.NS, b.IP6, a.Name, a.Host, b.Name, b.Host)
		}
		if b.IP6.IsValid() && b.IP.IsValid() {
			fmt.Fprintf(w, "  ip netns exec %s ping -6 -c 3 %s             # the same over IPv6\n", a.NS, b.Name)
		}
		fmt.Fprintf(w, "  ip netns exec %s ip link show eth0          # MTU = underlay - %d (%s underlay)\n", a.NS, cl.Net.Overhead(), vxlan.Family(cl.Net.Subnet.Addr()))
		fmt.Fprintf(w, "  vxswitch --socket %s members\n", sock)
		fmt.Fprintf(w, "  vxswitch --socket %s token                  # the join token other hosts need\n", sock)
		fmt.Fprintf(w, "  vxswitch --socket %s endpoints\n", sock)
		fmt.Fprintf(w, "  vxswitch --socket %s fdb %s\n", sock, cl.Opt.Network)
		fmt.Fprintf(w, "  ip netns exec %s tcpdump -ni eth0 udp port 4789   # the VXLAN on the underlay\n", cl.Agents[0].Host.NS)
		fmt.Fprintf(w, "  export VXSWITCH_SOCKET=%s   # then plain 'vxswitch ...' talks to %s\n", sock, cl.Agents[0].Host.Name)
	}
	printDocker(c, cl, engines)
	fmt.Fprintf(w, "\nremove it all: vxswitch lab down%s\n", strings.TrimSuffix(" --prefix "+cl.Opt.Prefix, " --prefix vxlab-"))
}

// startEngines starts a Docker engine on every host of cl and builds the
// busybox image on each.
func startEngines(c *cli.Context, cl *lab.Cluster) ([]*lab.Engine, error) {
	var engines []*lab.Engine
	for i := range cl.Agents {
		e, err := cl.StartDocker(c.Context, i)
		if err != nil {
			return nil, err
		}
		if err := e.BuildBusybox(c.Context, "vxbox"); err != nil {
			return nil, err
		}
		engines = append(engines, e)
	}
	return engines, nil
}

// printDocker prints what to try with the lab's Docker engines.
func printDocker(c *cli.Context, cl *lab.Cluster, engines []*lab.Engine) {
	if len(engines) < 2 {
		return
	}
	w := c.App.Writer
	d := func(e *lab.Engine) string { return "docker -H unix://" + e.Socket }
	fmt.Fprintf(w, "\ndocker (one engine per host, driver and IPAM 'vxswitch'):\n")
	fmt.Fprintf(w, "  %s network create -d vxswitch --ipam-driver vxswitch --subnet 10.30.0.0/24 app\n", d(engines[0]))
	fmt.Fprintf(w, "  %s network create -d vxswitch --ipam-driver vxswitch --subnet 10.30.0.0/24 app\n", d(engines[1]))
	fmt.Fprintf(w, "  %s run -d --name web1 --network app --dns 10.30.0.1 vxbox sleep 1d\n", d(engines[0]))
	fmt.Fprintf(w, "  %s run -d --name web2 --network app --dns 10.30.0.1 vxbox sleep 1d\n", d(engines[1]))
	fmt.Fprintf(w, "  %s exec web1 ping -c 3 web2    # across hosts, by name\n", d(engines[0]))
}

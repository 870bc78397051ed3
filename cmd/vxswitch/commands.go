package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"vxswitch/api"
	"vxswitch/raftstore"
)

func networkCommand() *cli.Command {
	return &cli.Command{
		Name:  "network",
		Usage: "create, list, inspect and remove networks",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a network", ArgsUsage: "NAME",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "subnet", Usage: "subnet of the network, like 10.20.0.0/24 or fd20::/64 (required); give one of each family for a dual-stack network"},
					&cli.UintFlag{Name: "vni", Usage: "VXLAN network identifier 1..16777215 (default: allocated)"},
					&cli.IntFlag{Name: "mtu", Usage: "endpoint MTU, at most the underlay MTU - 50 (default: that)"},
					&cli.BoolFlag{Name: "encrypted", Usage: "carry the network's frames between hosts as ESP in UDP (AES-GCM, port 4500); the endpoint MTU is 42-45 bytes lower"},
				},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, "NAME"); err != nil {
						return err
					}
					subnet, subnet6, err := splitSubnets(c.Args().First(), c.StringSlice("subnet"))
					if err != nil {
						return err
					}
					if _, err := raftstore.ParseSubnet(subnet); subnet != "" && err != nil {
						return fmt.Errorf("--subnet: %w", err)
					}
					if _, err := raftstore.ParseSubnet6(subnet6); subnet6 != "" && err != nil {
						return fmt.Errorf("--subnet: %w", err)
					}
					if c.Uint("vni") > raftstore.MaxVNI {
						return fmt.Errorf("--vni %d is out of range: a VNI is 24 bits, 1..%d", c.Uint("vni"), raftstore.MaxVNI)
					}
					ctx, cancel := ctx(c)
					defer cancel()
					req := api.NetworkRequest{Name: c.Args().First(), Subnet: subnet, Subnet6: subnet6, VNI: uint32(c.Uint("vni")), MTU: c.Int("mtu"), Encrypted: c.Bool("encrypted")}
					n, err := client(c).CreateNetwork(ctx, req)
					if err != nil {
						return err
					}
					enc := ""
					if n.Encrypted {
						enc = ", encrypted (ESP)"
					}
					fmt.Fprintf(c.App.Writer, "network %s: vni %d, subnet %s, resolver %s, endpoint mtu %d%s\n", n.Name, n.VNI, netSubnets(n), netResolvers(n), n.EndpointMTU, enc)
					return nil
				},
			},
			{
				Name: "ls", Usage: "list networks", Flags: []cli.Flag{outputFlag, atFlag},
				Action: func(c *cli.Context) error {
					ctx, cancel := ctx(c)
					defer cancel()
					ns, err := client(c).Networks(ctx, c.String("at"))
					if err != nil {
						return err
					}
					return printOut(c, ns, func(w io.Writer) {
						row(w, "NAME", "VNI", "SUBNET", "RESOLVER", "MTU", "ENDPOINTS", "HOSTS")
						for _, n := range ns {
							row(w, n.Name, n.VNI, netSubnets(n), netResolvers(n), n.EndpointMTU, n.Endpoints, dash(strings.Join(n.Hosts, ",")))
						}
					})
				},
			},
			{
				Name: "inspect", Usage: "show one network and its endpoints", ArgsUsage: "NAME", Flags: []cli.Flag{outputFlag, atFlag},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, "NAME"); err != nil {
						return err
					}
					ctx, cancel := ctx(c)
					defer cancel()
					n, err := client(c).Network(ctx, c.Args().First(), c.String("at"))
					if err != nil {
						return err
					}
					return printOut(c, n, func(w io.Writer) {
						row(w, "name:", n.Name)
						row(w, "vni:", n.VNI)
						row(w, "subnet:", netSubnets(n))
						row(w, "resolver:", netResolvers(n))
						mtu := fmt.Sprint(n.EndpointMTU)
						if n.MTU > 0 {
							mtu += fmt.Sprintf(" (asked for %d)", n.MTU)
						}
						row(w, "endpoint mtu:", mtu)
						if n.Encrypted {
							row(w, "encrypted:", "yes: ESP in UDP 4500, AES-GCM, per host pair keys")
						} else {
							row(w, "encrypted:", "no")
						}
						row(w, "hosts:", dash(strings.Join(n.Hosts, ", ")))
						row(w, "external vteps:", dash(strings.Join(n.VTEPs, ", ")))
						row(w, "endpoints:", len(n.Members))
						for _, e := range n.Members {
							row(w, "", e.Name, e.Host, e.MAC, epAddrs(e))
						}
					})
				},
			},
			{
				Name: "rm", Usage: "remove a network without endpoints", ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					if err := needArgs(c, "NAME"); err != nil {
						return err
					}
					ctx, cancel := ctx(c)
					defer cancel()
					return client(c).RemoveNetwork(ctx, c.Args().First())
				},
			},
		},
	}
}

func attachCommand() *cli.Command {
	return &cli.Command{
		Name: "attach", Usage: "attach a network namespace to a network through a new TAP", ArgsUsage: "NETWORK NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "netns", Usage: "network namespace: a name under /var/run/netns or a path like /proc/PID/ns/net (required)"},
			&cli.StringFlag{Name: "ifname", Value: "eth0", Usage: "interface name inside the namespace"},
			&cli.StringSliceFlag{Name: "alias", Usage: "another DNS name of the endpoint (repeatable)"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, "NETWORK", "NAME"); err != nil {
				return err
			}
			if err := raftstore.CheckEndpointName(c.Args().Get(1)); err != nil {
				return err
			}
			if c.String("netns") == "" {
				return fmt.Errorf("--netns is required: 'vxswitch attach %s %s --netns NAME' (create one with 'ip netns add NAME')", c.Args().Get(0), c.Args().Get(1))
			}
			ctx, cancel := ctx(c)
			defer cancel()
			req := api.AttachRequest{Network: c.Args().Get(0), Name: c.Args().Get(1), NetNS: c.String("netns"), IfName: c.String("ifname"), Aliases: c.StringSlice("alias")}
			e, err := client(c).Attach(ctx, req)
			if err != nil {
				return err
			}
			return printOut(c, e, func(w io.Writer) {
				row(w, "NAME", "NETWORK", "IFNAME", "MAC", "IP", "MTU", "RESOLVER")
				row(w, e.Name, e.Network, e.IfName, e.MAC, epAddrs(e), e.MTU, joinValid(e.Resolver, e.Resolver6))
				if e.ResolvConf != "" {
					fmt.Fprintf(w, "names: %s points at the resolver (try: ip netns exec %s getent hosts NAME)\n", e.ResolvConf, c.String("netns"))
				} else {
					fmt.Fprintf(w, "names: use nameserver %s, search %s, inside the namespace\n", joinValid(e.Resolver, e.Resolver6), e.Network)
				}
			})
		},
	}
}

func detachCommand() *cli.Command {
	return &cli.Command{
		Name: "detach", Usage: "detach an endpoint: delete its TAP and free its address", ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, "NAME"); err != nil {
				return err
			}
			ctx, cancel := ctx(c)
			defer cancel()
			return client(c).Detach(ctx, c.Args().First())
		},
	}
}

func endpointsCommand() *cli.Command {
	return &cli.Command{
		Name: "endpoints", Usage: "list endpoints of every network, or of one", ArgsUsage: "[NETWORK]", Flags: []cli.Flag{outputFlag, atFlag},
		Action: func(c *cli.Context) error {
			ctx, cancel := ctx(c)
			defer cancel()
			es, err := client(c).Endpoints(ctx, c.Args().First(), c.String("at"))
			if err != nil {
				return err
			}
			return printOut(c, es, func(w io.Writer) {
				row(w, "NAME", "NETWORK", "HOST", "MAC", "IP", "IPV6", "ALIASES")
				for _, e := range es {
					aliases := strings.Join(e.Aliases, ",")
					if aliases == "" {
						aliases = "-"
					}
					row(w, e.Name, e.Network, e.Host, e.MAC, epIP(e.IP), epIP(e.IP6), aliases)
				}
			})
		},
	}
}

func membersCommand() *cli.Command {
	return &cli.Command{
		Name: "members", Usage: "list the hosts of the cluster", Flags: []cli.Flag{outputFlag, atFlag},
		Action: func(c *cli.Context) error {
			ctx, cancel := ctx(c)
			defer cancel()
			ms, err := client(c).Members(ctx, c.String("at"))
			if err != nil {
				return err
			}
			return printOut(c, ms, func(w io.Writer) {
				row(w, "NAME", "VTEP", "ROLE", "STATE", "LAST CONTACT", "LAG", "RAFT", "API")
				for _, m := range ms {
					row(w, m.Name, m.VTEP, m.Role, m.State, dash(m.LastContact), m.Lag, m.RaftAddr, m.APIAddr)
				}
			})
		},
		Subcommands: []*cli.Command{{
			Name: "rm", Usage: "remove a host and its endpoints from the cluster", ArgsUsage: "NAME",
			Action: func(c *cli.Context) error {
				if err := needArgs(c, "NAME"); err != nil {
					return err
				}
				ctx, cancel := ctx(c)
				defer cancel()
				return client(c).RemoveMember(ctx, c.Args().First())
			},
		}},
	}
}

func leaveCommand() *cli.Command {
	return &cli.Command{
		Name: "leave", Usage: "remove this host and its endpoints from the cluster, then stop its agent",
		Action: func(c *cli.Context) error {
			ctx, cancel := ctx(c)
			defer cancel()
			return client(c).Leave(ctx)
		},
	}
}

func fdbCommand() *cli.Command {
	return &cli.Command{
		Name: "fdb", Usage: "show this host's forwarding table", ArgsUsage: "[NETWORK]", Flags: []cli.Flag{outputFlag, atFlag},
		Action: func(c *cli.Context) error {
			ctx, cancel := ctx(c)
			defer cancel()
			es, err := client(c).FDB(ctx, c.Args().First(), c.String("at"))
			if err != nil {
				return err
			}
			return printOut(c, es, func(w io.Writer) {
				row(w, "NETWORK", "MAC", "PORT/VTEP", "HOST", "ORIGIN", "AGE")
				for _, e := range es {
					to := e.Port
					if e.VTEP != "" {
						to = "vtep " + e.VTEP
					}
					age := "-"
					if e.Origin == "learned" {
						age = fmt.Sprintf("%.0fs", e.AgeSeconds)
					}
					row(w, e.Network, e.MAC, to, dash(e.Host), e.Origin, age)
				}
			})
		},
	}
}

func vtepCommand() *cli.Command {
	post := func(remove bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			if err := needArgs(c, "NETWORK", "ADDR"); err != nil {
				return err
			}
			ctx, cancel := ctx(c)
			defer cancel()
			req := api.VTEPRequest{Network: c.Args().Get(0), Addr: c.Args().Get(1)}
			if remove {
				return client(c).RemoveVTEP(ctx, req)
			}
			return client(c).AddVTEP(ctx, req)
		}
	}
	return &cli.Command{
		Name:  "vtep",
		Usage: "register external VTEPs (kernel vxlan devices that do not run vxswitch)",
		Subcommands: []*cli.Command{
			{Name: "add", Usage: "add an external VTEP to a network", ArgsUsage: "NETWORK ADDR", Action: post(false)},
			{Name: "rm", Usage: "remove an external VTEP from a network", ArgsUsage: "NETWORK ADDR", Action: post(true)},
			vtepXfrmCommand(),
			{
				Name: "ls", Usage: "list external VTEPs", Flags: []cli.Flag{outputFlag},
				Action: func(c *cli.Context) error {
					ctx, cancel := ctx(c)
					defer cancel()
					vs, err := client(c).VTEPs(ctx)
					if err != nil {
						return err
					}
					return printOut(c, vs, func(w io.Writer) {
						row(w, "NETWORK", "VNI", "ADDR", "ESP KEY")
						for _, v := range vs {
							row(w, v.Network, v.VNI, v.Addr, espKeyLabel(v.ESP))
						}
					})
				},
			},
		},
	}
}

// espKeyLabel shows an external VTEP's ESP key in a table: the start of
// the public key, enough to tell two apart, or "-" for none.
func espKeyLabel(key string) string {
	switch {
	case key == "":
		return "-"
	case len(key) > 16:
		return "x25519:" + key[:16] + "..."
	}
	return "x25519:" + key
}

func statsCommand() *cli.Command {
	return &cli.Command{
		Name: "stats", Usage: "show this host's data-plane counters", Flags: []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			ctx, cancel := ctx(c)
			defer cancel()
			s, err := client(c).Stats(ctx)
			if err != nil {
				return err
			}
			return printOut(c, s, func(w io.Writer) {
				row(w, "rx frames", s.RxFrames)
				row(w, "tx frames", s.TxFrames)
				row(w, "rx bytes", s.RxBytes)
				row(w, "tx bytes", s.TxBytes)
				row(w, "encapsulated", s.EncapFrames)
				row(w, "decapsulated", s.DecapFrames)
				row(w, "flood copies", s.FloodCopies)
				row(w, "switched locally", s.LocalSwitched)
				row(w, "checksums completed", s.CsumCompleted)
				row(w, "ARP answered locally", s.ARPSuppressed)
				row(w, "ARP flooded", s.ARPFlooded)
				row(w, "gratuitous ARP sent", s.GARPSent)
				row(w, "IPv6 neighbour solicitations answered locally", s.NDPAnswered)
				row(w, "IPv6 duplicate address probes answered", s.NDPDADAnswered)
				row(w, "IPv6 neighbour solicitations flooded", s.NDPFlooded)
				row(w, "unsolicited neighbour advertisements sent", s.UNASent)
				row(w, "DNS queries", s.DNSQueries)
				row(w, "DNS over TCP: connections", s.DNSTCPConns)
				row(w, "DNS over TCP: queries", s.DNSTCPQueries)
				row(w, "resolver TCP resets sent", s.DNSTCPResets)
				row(w, "resolver echo replies", s.EchoReplies)
				row(w, "ICMP frag needed sent", s.ICMPFragNeeded)
				row(w, "ICMPv6 too big sent", s.ICMPv6TooBig)
				row(w, "IPv4 fragmented", s.Fragmented)
				row(w, "TCP MSS clamped", s.MSSClamped)
				for _, reason := range slices.Sorted(maps.Keys(s.Drops)) {
					row(w, "dropped: "+reason, s.Drops[reason])
				}
				for _, name := range slices.Sorted(maps.Keys(s.ESP)) {
					row(w, "esp: "+name, s.ESP[name])
				}
				if len(s.Ports) > 0 {
					row(w)
					row(w, "PORT", "NETWORK", "RX FRAMES", "RX BYTES", "TX FRAMES", "TX BYTES")
					for _, p := range s.Ports {
						row(w, p.Name, p.Network, p.RxFrames, p.RxBytes, p.TxFrames, p.TxBytes)
					}
				}
			})
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name: "status", Usage: "show the local agent's state", Flags: []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			ctx, cancel := ctx(c)
			defer cancel()
			s, err := client(c).Status(ctx)
			if err != nil {
				return err
			}
			return printOut(c, s, func(w io.Writer) {
				row(w, "host:", s.Name)
				row(w, "vtep:", s.VTEP)
				row(w, "raft role:", s.Role)
				row(w, "leader:", dash(s.Leader))
				row(w, "applied index:", s.AppliedIndex)
				if s.LeaderIndex == 0 {
					row(w, "leader index:", "- (no leader answered)")
				} else {
					row(w, "leader index:", fmt.Sprintf("%d (lag %d)", s.LeaderIndex, s.Lag))
				}
				row(w, "state hash:", s.StateHash)
				row(w, "voters replaced:", s.VoterReplacements)
				row(w, "underlay mtu:", fmt.Sprintf("%d (%s)", s.UnderlayMTU, s.MTUSource))
				row(w, "ports:", s.Ports)
				row(w, "history:", historyRow(s.History))
			})
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

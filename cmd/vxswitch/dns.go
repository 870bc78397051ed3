package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

func dnsCommand() *cli.Command {
	return &cli.Command{
		Name:      "dns",
		Usage:     "list the names each network's in-band resolver answers",
		ArgsUsage: "[NETWORK]",
		Flags:     []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			ctx, cancel := ctx(c)
			defer cancel()
			ns, err := client(c).DNSNames(ctx, c.Args().First())
			if err != nil {
				return err
			}
			return printOut(c, ns, func(w io.Writer) {
				row(w, "NAME", "NETWORK", "IP", "KIND")
				for _, n := range ns {
					row(w, n.Name, n.Network, n.IP, n.Kind)
				}
			})
		},
		Subcommands: []*cli.Command{{
			Name:      "lookup",
			Usage:     "ask this host's resolver for a name, as an endpoint of the network would",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "network", Usage: "the network to ask in (required)"},
				outputFlag,
			},
			Action: func(c *cli.Context) error {
				if err := needArgs(c, "NAME"); err != nil {
					return err
				}
				if c.String("network") == "" {
					return fmt.Errorf("--network is required: 'vxswitch dns lookup %s --network web'", c.Args().First())
				}
				ctx, cancel := ctx(c)
				defer cancel()
				r, err := client(c).LookupDNS(ctx, c.String("network"), c.Args().First())
				if err != nil {
					return err
				}
				return printOut(c, r, func(w io.Writer) {
					for _, a := range r.Addrs {
						row(w, r.Name, a)
					}
				})
			},
		}},
	}
}

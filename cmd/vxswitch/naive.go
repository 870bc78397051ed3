package main

import (
	"fmt"
	"net/netip"

	"github.com/urfave/cli/v2"

	"vxswitch/internal/naive"
)

// naiveRelayCommand is 'vxswitch lab naive-relay', hidden: the naive relay
// that 'lab bench' starts on each host to measure beside vxswitch. It runs
// in the caller's network namespace and prints "ready" once its TAP and
// socket exist.
func naiveRelayCommand() *cli.Command {
	return &cli.Command{
		Name:   "naive-relay",
		Hidden: true,
		Usage:  "run the naive relay lab bench compares against: one frame per system call, to one peer",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tap", Value: "nvx", Usage: "name of the TAP device to create"},
			&cli.StringFlag{Name: "addr", Required: true, Usage: "address of the TAP with prefix length, like 10.98.0.1/24"},
			&cli.IntFlag{Name: "mtu", Value: 1450, Usage: "MTU of the TAP: the underlay's minus 50"},
			&cli.StringFlag{Name: "listen", Required: true, Usage: "local UDP address, like 10.77.0.1:4791"},
			&cli.StringFlag{Name: "peer", Required: true, Usage: "UDP address of the other relay, like 10.77.0.2:4791"},
			&cli.UintFlag{Name: "vni", Value: 998, Usage: "VXLAN network identifier"},
		},
		Action: func(c *cli.Context) error {
			cfg := naive.Config{TAP: c.String("tap"), MTU: c.Int("mtu"), VNI: uint32(c.Uint("vni"))}
			var err error
			if cfg.Addr, err = netip.ParsePrefix(c.String("addr")); err != nil {
				return fmt.Errorf("--addr %q: give an address with its prefix length, like 10.98.0.1/24", c.String("addr"))
			}
			for _, f := range []struct {
				name string
				to   *netip.AddrPort
			}{{"listen", &cfg.Listen}, {"peer", &cfg.Peer}} {
				if *f.to, err = netip.ParseAddrPort(c.String(f.name)); err != nil {
					return fmt.Errorf("--%s %q: give an address and a port, like 10.77.0.1:4791", f.name, c.String(f.name))
				}
			}
			r, err := naive.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := interruptible(c)
			defer stop()
			fmt.Fprintln(c.App.Writer, "ready")
			return r.Run(ctx)
		},
	}
}

package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"vxswitch/api"
)

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "print the join token other hosts need for 'vxswitch agent --join ADDR --token T'",
		Description: "The token names the cluster's CA by its digest, so a joining host knows it talks to this\n" +
			"cluster before it sends anything, and carries a secret that earns it a node certificate.\n" +
			"Keep it as secret as a password. --rotate replaces the secret on every host: tokens printed\n" +
			"before, and every extra token, are refused from then on; hosts that have joined keep their\n" +
			"certificates. --create makes an extra token for automation, shown only once: with\n" +
			"--single-use it admits one host, with --ttl it expires. Only voters may rotate or create\n" +
			"tokens. A token's expiry, if any, is printed on standard error.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "rotate", Usage: "replace the token cluster-wide and print the new one"},
			&cli.BoolFlag{Name: "create", Usage: "make and print an extra token (see --single-use, --ttl)"},
			&cli.BoolFlag{Name: "single-use", Usage: "with --create: the token admits one host only"},
			&cli.DurationFlag{Name: "ttl", Usage: "with --rotate or --create: the token expires after this long, e.g. 10m (default: never)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c); err != nil {
				return err
			}
			ttl := c.Duration("ttl")
			req := api.TokenRequest{TTL: int64(ttl / time.Second), SingleUse: c.Bool("single-use")}
			switch {
			case c.Bool("rotate") && c.Bool("create"):
				return errors.New("--rotate and --create exclude each other: rotate the cluster's token, or create an extra one")
			case ttl < 0 || (ttl > 0 && req.TTL == 0):
				return fmt.Errorf("--ttl %v: give at least 1s", ttl)
			case req.SingleUse && !c.Bool("create"):
				return errors.New("--single-use goes with --create: the cluster's own token admits any number of hosts")
			case ttl != 0 && !c.Bool("rotate") && !c.Bool("create"):
				return errors.New("--ttl goes with --rotate or --create: a token's expiry is set when it is made")
			}
			ctx, cancel := ctx(c)
			defer cancel()
			var t api.Token
			var err error
			switch {
			case c.Bool("create"):
				t, err = client(c).CreateToken(ctx, req)
			case c.Bool("rotate"):
				t, err = client(c).RotateToken(ctx, req)
			default:
				t, err = client(c).Token(ctx)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, t.Token)
			if t.Expires != 0 {
				at := time.Unix(0, t.Expires).UTC().Format(time.RFC3339)
				if time.Now().UnixNano() >= t.Expires {
					fmt.Fprintf(c.App.ErrWriter, "expired at %s: make a new one with 'vxswitch token --rotate' or --create\n", at)
				} else {
					fmt.Fprintf(c.App.ErrWriter, "expires at %s\n", at)
				}
			}
			return nil
		},
	}
}

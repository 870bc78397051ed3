package main

import (
	"fmt"

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
			"before are refused from then on; hosts that have joined keep their certificates.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "rotate", Usage: "replace the token cluster-wide and print the new one"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c); err != nil {
				return err
			}
			ctx, cancel := ctx(c)
			defer cancel()
			var t api.Token
			var err error
			if c.Bool("rotate") {
				err = client(c).Post(ctx, "/v1/token/rotate", nil, &t)
			} else {
				err = client(c).Get(ctx, "/v1/token", &t)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, t.Token)
			return nil
		},
	}
}

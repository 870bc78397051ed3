package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"vxswitch/api"
)

func caCommand() *cli.Command {
	show := func(c *cli.Context, info api.CAInfo) error {
		return printOut(c, info, func(w io.Writer) { writeCA(w, info) })
	}
	// call shows the CA, after rotating it if rotate.
	call := func(c *cli.Context, rotate bool) error {
		if err := needArgs(c); err != nil {
			return err
		}
		ctx, cancel := ctx(c)
		defer cancel()
		if !rotate {
			info, err := client(c).CA(ctx)
			if err != nil {
				return err
			}
			return show(c, info)
		}
		info, err := client(c).RotateCA(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.App.ErrWriter, "CA rotated; get the new join token with 'vxswitch token'")
		return show(c, info)
	}
	return &cli.Command{
		Name:  "ca",
		Usage: "show the cluster CA and this host's certificate",
		Description: "The cluster CA signs every host's certificate. Its key is held by the voters only, never by\n" +
			"non-voters and never in the replicated state. Certificates live 90 days (agent --cert-ttl) and\n" +
			"each agent renews its own after two thirds of that. 'ca rotate' makes a new CA and a new join\n" +
			"token: every host renews its certificate from it at once, the old CA stays trusted until all\n" +
			"have (at most agent --ca-overlap), and extra tokens are revoked. Removing a voter with\n" +
			"'members rm' rotates the CA too, since that host held its key.",
		Flags:  []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error { return call(c, false) },
		Subcommands: []*cli.Command{{
			Name:   "rotate",
			Usage:  "make a new cluster CA and join token; hosts renew their certificates from it",
			Flags:  []cli.Flag{outputFlag},
			Action: func(c *cli.Context) error { return call(c, true) },
		}},
	}
}

// writeCA prints the CA and this host's certificate for people.
func writeCA(w io.Writer, info api.CAInfo) {
	fmt.Fprintf(w, "cluster CA        %s\n", info.Digest)
	for _, p := range info.Previous {
		fmt.Fprintf(w, "still trusted     %s (replaced; retired once every host renewed)\n", p)
	}
	if info.RotatedAt != 0 {
		fmt.Fprintf(w, "rotated           %s\n", time.Unix(0, info.RotatedAt).UTC().Format(time.RFC3339))
	}
	if info.KeyInState {
		fmt.Fprintln(w, "CA key            in the replicated state (cluster made before keys moved off it): run 'vxswitch ca rotate'")
	}
	fmt.Fprintf(w, "this host         holds the CA key: %v (voters do)\n", info.HoldsKey)
	fmt.Fprintf(w, "its certificate   from CA %.16s..., expires %s (renewed after 2/3 of its life)\n",
		info.CertCA, time.Unix(0, info.CertExpires).UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "hosts on this CA  %s\n", strings.Join(info.Renewed, ", "))
}

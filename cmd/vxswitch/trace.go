package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// traceCommand is 'vxswitch trace': one line per frame the agent switches.
func traceCommand() *cli.Command {
	return &cli.Command{
		Name:  "trace",
		Usage: "print one line per frame as the local agent switches it: ingress, MACs, packet, lookup, action, outer header",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json (one object per line)"},
		}, filterFlags...),
		Action: func(c *cli.Context) error {
			q, err := streamQuery(c)
			if err != nil {
				return err
			}
			jsonLines := false
			switch o := c.String("output"); o {
			case "text", "":
			case "json":
				jsonLines = true
			default:
				return fmt.Errorf("-o %q is not a format: use -o text or -o json", o)
			}
			ctx, cancel := interruptible(c)
			defer cancel()
			body, err := client(c).Trace(ctx, q, jsonLines)
			if err != nil {
				return fmt.Errorf("trace: %w", err)
			}
			defer body.Close()
			_, err = io.Copy(c.App.Writer, body)
			return streamEnd(ctx, "trace", err)
		},
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"vxswitch/api"
	"vxswitch/capture"
)

// filterFlags select the frames of 'vxswitch capture' and 'vxswitch trace'.
var filterFlags = []cli.Flag{
	&cli.StringFlag{Name: "network", Usage: "only frames of this network"},
	&cli.StringFlag{Name: "endpoint", Usage: "only frames entering or leaving this endpoint's port"},
	&cli.IntFlag{Name: "count", Aliases: []string{"c"}, Usage: "stop after this many records (capture) or lines (trace); 0 = until Ctrl-C"},
}

// streamQuery selects the frames of a capture or trace request.
func streamQuery(c *cli.Context) (api.StreamQuery, error) {
	if c.Int("count") < 0 {
		return api.StreamQuery{}, fmt.Errorf("-c %d is not a count: use a positive number, or 0 for no limit", c.Int("count"))
	}
	return api.StreamQuery{Network: c.String("network"), Endpoint: c.String("endpoint"), Count: c.Int("count")}, nil
}

// interruptible returns a context that ends on Ctrl-C or SIGTERM.
func interruptible(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}

// captureCommand is 'vxswitch capture': pcapng from the running agent.
func captureCommand() *cli.Command {
	return &cli.Command{
		Name:  "capture",
		Usage: "write the frames the local agent switches as pcapng: one interface per TAP port, one for the underlay (real outer headers), comments linking each frame to its packets",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "underlay", Usage: "only the packets on the underlay"},
			&cli.StringFlag{Name: "write", Aliases: []string{"w"}, Required: true, Usage: "pcapng file to write; - for stdout (vxswitch capture -w - | tshark -r -)"},
		}, filterFlags...),
		Action: func(c *cli.Context) error {
			q, err := streamQuery(c)
			if err != nil {
				return err
			}
			out := io.Writer(c.App.Writer)
			if name := c.String("write"); name != "-" {
				f, err := os.Create(name)
				if err != nil {
					return fmt.Errorf("capture: %w", err)
				}
				defer f.Close()
				out = f
			}
			ctx, cancel := interruptible(c)
			defer cancel()
			body, err := client(c).Capture(ctx, q, c.Bool("underlay"))
			if err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			defer body.Close()
			err = capture.CopyBlocks(out, body)
			if f, ok := out.(*os.File); ok && f != os.Stdout {
				if cerr := f.Close(); err == nil && cerr != nil {
					return fmt.Errorf("capture: %w", cerr)
				}
			}
			return streamEnd(ctx, "capture", err)
		},
	}
}

// streamEnd turns the end of a stream into the command's result: Ctrl-C
// is a normal end.
func streamEnd(ctx context.Context, what string, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return fmt.Errorf("%s: the agent's stream broke off: %w", what, err)
}

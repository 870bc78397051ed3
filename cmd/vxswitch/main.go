// Command vxswitch runs a userspace VXLAN switch agent and talks to it.
//
// One agent runs per host (vxswitch agent); every other command asks the
// local agent over its unix socket. vxswitch lab builds a whole multi-host
// overlay in network namespaces on one machine.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"vxswitch/api"
)

func main() {
	app := newApp()
	if err := app.Run(interspersed(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "vxswitch:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "vxswitch",
		Usage: "a userspace VXLAN switch with an embedded Raft control plane",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name: "socket", Value: api.DefaultSocket, EnvVars: []string{"VXSWITCH_SOCKET"},
				Usage: "unix socket of the local agent",
			},
			&cli.BoolFlag{
				Name:  "stale",
				Usage: "answer from the local agent's applied state without catching up with the leader: faster, works without a leader, may miss a write made elsewhere a moment ago",
			},
		},
		Commands: []*cli.Command{
			agentCommand(),
			networkCommand(),
			attachCommand(),
			detachCommand(),
			endpointsCommand(),
			membersCommand(),
			tokenCommand(),
			caCommand(),
			leaveCommand(),
			fdbCommand(),
			vtepCommand(),
			statsCommand(),
			espCommand(),
			statusCommand(),
			mtuCommand(),
			dnsCommand(),
			labCommand(),
			decodeCommand(),
			replayCommand(),
			captureCommand(),
			traceCommand(),
			explainCommand(),
			eventsCommand(),
		},
		HideHelpCommand: true,
		Writer:          os.Stdout,
		ErrWriter:       os.Stderr,
	}
}

// client returns a client for the agent named by --socket.
func client(c *cli.Context) *api.Client {
	cl := api.NewUnixClient(c.String("socket"))
	cl.Stale = c.Bool("stale")
	return cl
}

// ctx bounds a CLI request: long enough for a write that rides out a leader
// election, short enough that nothing hangs.
func ctx(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, 30*time.Second)
}

var outputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"}

// printOut writes v as JSON with -o json, else calls table with a tab
// writer whose columns it aligns.
func printOut(c *cli.Context, v any, table func(w io.Writer)) error {
	switch c.String("output") {
	case "json":
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "table", "":
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	default:
		return fmt.Errorf("-o %q is not a format: use -o table or -o json", c.String("output"))
	}
}

// row writes one tab-separated table row.
func row(w io.Writer, cols ...any) {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(s, "\t"))
}

// needArgs checks the count of positional arguments and names them in the
// error.
func needArgs(c *cli.Context, names ...string) error {
	if c.NArg() != len(names) {
		return fmt.Errorf("%s needs %d argument(s): %s (see 'vxswitch %s --help')",
			c.Command.FullName(), len(names), strings.Join(names, " "), c.Command.FullName())
	}
	return nil
}

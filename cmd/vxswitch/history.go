package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"vxswitch/api"
)

// atFlag shows a table as it was after a past Raft index, or at a time.
var atFlag = &cli.StringFlag{
	Name:  "at",
	Usage: "show the table as it was after this Raft index, at this time (2025-01-02T15:04:05Z) or this long ago (10m), rebuilt from the history",
}

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "tell what an address or name is now and every committed change that touched it",
		ArgsUsage: "IP|MAC|NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "network", Usage: "only objects of this network"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, "IP|MAC|NAME"); err != nil {
				return err
			}
			ctx, cancel := ctx(c)
			defer cancel()
			x, err := client(c).Explain(ctx, c.Args().First(), c.String("network"))
			if err != nil {
				return err
			}
			return printOut(c, x, func(w io.Writer) { printExplanation(w, x) })
		},
	}
}

func printExplanation(w io.Writer, x api.Explanation) {
	if len(x.Now) == 0 {
		fmt.Fprintf(w, "%s now: nothing in the cluster has it (state at index %d)\n", x.Subject, x.Index)
	}
	for _, o := range x.Now {
		fmt.Fprintf(w, "%s now: %s\n", x.Subject, describeObject(o))
	}
	switch {
	case x.HistoryFrom > 0:
		fmt.Fprintf(w, "history: changes up to index %d are gone (raise agent --history-entries to keep more)\n", x.HistoryFrom)
	default:
		fmt.Fprintln(w, "history: complete since the cluster began")
	}
	if len(x.History) == 0 {
		fmt.Fprintln(w, "no retained change touched it")
		return
	}
	fmt.Fprintln(w)
	printEventHeader(w)
	for _, e := range x.History {
		printEvent(w, e)
	}
}

// describeObject writes an object of the history for people.
func describeObject(o api.Object) string {
	var parts []string
	add := func(label, v string) {
		if v != "" && v != "invalid IP" && v != "invalid Prefix" {
			parts = append(parts, label+v)
		}
	}
	name := o.Name
	switch o.Kind {
	case "mac":
		name = o.MAC + " (learned)"
	case "vtep":
		name = o.VTEP.String() + " (external)"
	case "reservation":
		name = o.IP.String() + " (reserved)"
	}
	if o.Kind != "network" {
		add("network ", o.Network)
	} else {
		add("vni ", fmt.Sprint(o.VNI))
		add("subnet ", o.Subnet.String())
		add("subnet ", o.Subnet6.String())
	}
	add("host ", o.Host)
	if o.Kind == "endpoint" {
		add("ip ", o.IP.String())
		add("ip ", o.IP6.String())
		add("mac ", o.MAC)
		if o.Host != "" {
			add("port ", o.Name)
		}
	}
	if o.Kind == "host" {
		add("vtep ", o.VTEP.String())
	}
	add("behind port ", o.Port)
	add("owner ", o.Owner)
	s := o.Kind + " " + name
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	return s
}

func printEventHeader(w io.Writer) {
	row(w, "INDEX", "TERM", "TIME", "BY", "REQUEST", "OP", "WHAT")
}

func printEvent(w io.Writer, e api.Event) {
	t := "-"
	if !e.Time.IsZero() {
		t = e.Time.Local().Format("2006-01-02 15:04:05.000")
	}
	req := e.ReqID
	if len(req) > 8 {
		req = req[:8]
	}
	row(w, e.Index, e.Term, t, dash(e.Origin), dash(req), e.Op, e.Summary)
}

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name:  "events",
		Usage: "stream the committed changes as this host applies them",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "network", Usage: "only changes to objects of this network"},
			&cli.Uint64Flag{Name: "since", Usage: "resume after this Raft index (0 = everything retained); default: the next change"},
			&cli.IntFlag{Name: "count", Aliases: []string{"c"}, Usage: "stop after this many events"},
			&cli.BoolFlag{Name: "no-follow", Usage: "stop after the retained events instead of waiting for new ones"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			q := api.EventsQuery{Network: c.String("network"), Count: c.Int("count"), NoFollow: c.Bool("no-follow")}
			if c.IsSet("since") {
				since := c.Uint64("since")
				q.Since = &since
			}
			format := c.String("output")
			if format != "table" && format != "json" && format != "" {
				return fmt.Errorf("-o %q is not a format: use -o table or -o json", format)
			}
			s, err := client(c).Events(c.Context, q)
			if err != nil {
				return err
			}
			defer s.Close()
			enc := json.NewEncoder(c.App.Writer)
			if format != "json" {
				printEventHeader(c.App.Writer)
			}
			for {
				e, err := s.Next()
				if errors.Is(err, io.EOF) || c.Context.Err() != nil {
					return nil
				}
				if err != nil {
					return err
				}
				if format == "json" {
					if err := enc.Encode(e); err != nil {
						return err
					}
					continue
				}
				if e.Op == api.OpHistoryGone {
					fmt.Fprintf(c.App.Writer, "-- %s (resume with --since %d or later)\n", e.Summary, e.Index)
					continue
				}
				printEvent(c.App.Writer, e)
			}
		},
	}
}

// historyRow is the status line about the history.
func historyRow(h *api.HistoryStatus) string {
	if h == nil {
		return "-"
	}
	s := fmt.Sprintf("%d entries, %d bytes", h.Entries, h.Bytes)
	if h.Entries > 0 {
		s += fmt.Sprintf(", indexes %d..%d", h.First, h.Last)
	}
	if h.BaseIndex > 0 {
		s += fmt.Sprintf(" (up to %d gone)", h.BaseIndex)
	} else {
		s += " (complete)"
	}
	s += fmt.Sprintf("; bounds %d entries, %d bytes", h.MaxEntries, h.MaxBytes)
	if h.MaxAge != "" {
		s += ", " + h.MaxAge
	}
	return s
}

// historyFlags bound the agent's history.
func historyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "history-entries", Usage: "history of committed changes (explain, events, --at): keep at most this many entries (0 = 20000)"},
		&cli.IntFlag{Name: "history-bytes", Usage: "history: keep at most this many bytes of entries (0 = 16 MiB)"},
		&cli.DurationFlag{Name: "history-age", Usage: "history: drop entries older than this (0 = no age bound)"},
	}
}

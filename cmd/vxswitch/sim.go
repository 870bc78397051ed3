package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"vxswitch/internal/sim"
	"vxswitch/raftstore"
)

// labSimCommand is `vxswitch lab sim`: many simulated hosts in this process
// (internal/sim), with figures for sizing a deployment.
func labSimCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "simulate a cluster of many hosts in this process (real state machine, real Raft over its in-memory transport, real view builder; no TAPs or sockets) and measure its control plane",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "hosts", Value: 100, Usage: "simulated hosts"},
			&cli.IntFlag{Name: "voters", Value: raftstore.DefaultVoters, Usage: "raft voters among them; the others are non-voters, as with the agent's --voters"},
			&cli.IntFlag{Name: "endpoints", Value: 1000, Usage: "endpoints attached before the churn, spread over hosts and networks"},
			&cli.IntFlag{Name: "networks", Value: 1, Usage: "networks"},
			&cli.StringFlag{Name: "churn", Value: "10/s", Usage: "writes per second during the run, alternating endpoint attach and detach (R or R/s; 0 = none)"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "length of the churn"},
			&cli.DurationFlag{Name: "converge", Value: 60 * time.Second, Usage: "how long to wait after the churn for every host's view to hold the last write"},
			&cli.IntFlag{Name: "own-state", Usage: fmt.Sprintf("hosts, voters first, that apply every command with their own state machine and build their own name table; the others share one copy of each state (applied once: same log, same state) and keep their own raft node, log and view (default: every host up to %d, at least the voters; -1 = every host)", sim.DefaultOwnState)},
			&cli.IntFlag{Name: "gc-percent", Value: sim.DefaultGCPercent, Usage: "the simulation's GOGC: every host shares one heap here, so one collection marks the whole fleet's memory and stalls every host at once, which no real host sees; the default keeps collections out of the churn where memory allows (limit: 3/4 of this machine's memory)"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the churn (all hosts together) to `FILE`, for go tool pprof"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines on stderr"},
			outputFlag,
		},
		Action: func(c *cli.Context) error {
			churn, err := parseRate(c.String("churn"))
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
			if c.Bool("quiet") {
				logger = slog.New(slog.DiscardHandler)
			}
			var profile io.Writer
			if path := c.String("cpuprofile"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				profile = f
			}
			res, err := sim.Run(c.Context, sim.Options{
				CPUProfile: profile,
				Hosts:      c.Int("hosts"), Voters: c.Int("voters"), Endpoints: c.Int("endpoints"), Networks: c.Int("networks"),
				Churn: churn, Duration: c.Duration("duration"), Converge: c.Duration("converge"), Logger: logger,
				OwnState: c.Int("own-state"), GCPercent: c.Int("gc-percent"),
			})
			if err != nil {
				return err
			}
			// Every option spelled out, defaults too, so the figures can
			// be produced again.
			res.Command = fmt.Sprintf("vxswitch lab sim --hosts %d --voters %d --endpoints %d --networks %d --churn %g/s --duration %v --own-state %d --gc-percent %d",
				res.Hosts, res.Voters, res.Endpoints, res.Networks, res.Churn, c.Duration("duration"), res.OwnStateHosts, res.GCPercent)
			return printOut(c, res, func(w io.Writer) { printSim(w, res) })
		},
	}
}

// parseRate reads a rate given as "R" or "R/s".
func parseRate(s string) (float64, error) {
	r, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "/s"), 64)
	if err != nil || r < 0 {
		return 0, fmt.Errorf("--churn %q is not a rate: give writes per second, like 50/s", s)
	}
	return r, nil
}

// printSim writes the figures of a simulation for people, one a row.
func printSim(w io.Writer, r *sim.Result) {
	fmt.Fprintf(w, "%d hosts (%d voters), %d networks, %d endpoints, churn %g/s for %gs, on %d cores (load average %.1f, then %.1f)\n",
		r.Hosts, r.Voters, r.Networks, r.Endpoints, r.Churn, r.DurationS, r.GOMAXPROCS, r.Load[0], r.Load[1])
	if r.Command != "" {
		fmt.Fprintf(w, "command: %s\n", r.Command)
	}
	fmt.Fprintln(w)
	row(w, "writes", fmt.Sprintf("%d (%d failed, %d rejected), %d leader changes", r.Writes, r.WritesFailed, r.WritesRejected, r.LeaderChanges))
	if r.FirstFailure != "" {
		row(w, "first failure", r.FirstFailure)
	}
	row(w, "commit p50 / p99", fmt.Sprintf("%.2f / %.2f ms", r.CommitP50MS, r.CommitP99MS), "leader: Apply until applied there")
	row(w, "visible p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms", r.VisibleP50MS, r.VisibleP99MS, r.VisibleMaxMS), "from commit to the view being live on every host")
	row(w, "converged", fmt.Sprintf("%v (%d hosts lagging, %d writes never visible)", r.Converged, r.LaggingHosts, r.NotVisible))
	if r.SharedStateHosts > 0 {
		row(w, "shared state", fmt.Sprintf("%d hosts apply on their own, %d share one copy (%d mismatches)", r.OwnStateHosts, r.SharedStateHosts, r.LedgerMismatches))
	}
	row(w, "duplicate addresses", r.DuplicateAddresses)
	row(w, "flood list mean / max", fmt.Sprintf("%.1f / %d hosts (%d without the network)", r.FloodMean, r.FloodMax, r.FloodForeign))
	row(w, "state per host", fmt.Sprintf("%.2f MB", float64(r.StateBytesPerHost)/1e6), "measured heap: state, name table, view")
	row(w, "snapshot", fmt.Sprintf("%.2f MB in %.1f ms; restore + first view %.1f ms", float64(r.SnapshotBytes)/1e6, r.SnapshotMS, r.RestoreMS))
	row(w, "per change on one host", fmt.Sprintf("apply %.1f us + view rebuild %.1f us CPU", r.ApplyCPUMicros, r.ViewCPUMicros))
	row(w, "simulation CPU", fmt.Sprintf("%.2f cores (%.2f%% of a core per host)%s", r.CPUCores, r.CPUPerHostPct, map[bool]string{true: ", saturated"}[r.Saturated]))
	row(w, "simulation GC", fmt.Sprintf("GOGC %d, %d collections during the churn", r.GCPercent, r.GCCycles), "each marks every host's memory at once")
	row(w, "simulation heap", fmt.Sprintf("%.1f MB (%.2f MB per host)", float64(r.HeapBytes)/1e6, float64(r.HeapBytesPerHost)/1e6))
	row(w, "setup", fmt.Sprintf("seed %.0f ms, start %.0f ms, election %.0f ms; whole run %.1f s", r.SeedMS, r.StartMS, r.ElectionMS, r.RunMS/1000))
	if r.Note != "" {
		fmt.Fprintf(w, "\nnote: %s\n", r.Note)
	}
}

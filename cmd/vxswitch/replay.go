package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/urfave/cli/v2"

	"vxswitch/replay"
)

// replayCommand is 'vxswitch replay IN --out OUT [--state STATE.json]': it
// runs the real switch over a capture without an agent. The work is in
// package replay.
func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "run the switch over a capture and write every frame it emits (for capture-driven tests)",
		ArgsUsage: "IN.pcapng|IN.pcap",
		Description: `Replays IN through the same switch the agent runs, with fake TAP ports and a
recording underlay, and writes what it emits to --out as pcapng.

In a pcapng input, an interface named after an endpoint of this host carries the
Ethernet frames that endpoint sends; an interface named "underlay" carries whole
outer Ethernet/IP/UDP/VXLAN packets (IPv4 or IPv6 outside) arriving at this host. A plain pcap input
is all underlay packets. The output has one interface per port and one named
"underlay", whose packets carry outer headers from this host's VTEP, so tshark
dissects VXLAN on 4789 with no options.

--state STATE.json is {"self": "h1", "state": <the replicated state as JSON>}.
Without it the built-in state is used: this host h1 (VTEP 10.0.0.1) with peers
h2 (10.0.0.2) and h3 (10.0.0.3); network "web", VNI 100, 10.100.0.0/24,
resolver 10.100.0.1; endpoints a 10.100.0.10 02:00:00:00:01:0a and
b 10.100.0.11 02:00:00:00:01:0b on h1, c 10.100.0.20 02:00:00:00:01:0c on h2,
d 10.100.0.30 02:00:00:00:01:0d on h3. --print-state prints it as a template.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"w"}, Usage: "write the emitted frames to this pcapng file (- for stdout)"},
			&cli.StringFlag{Name: "state", Usage: "JSON file with the host and replicated state to replay with (default: the built-in state)"},
			&cli.BoolFlag{Name: "print-state", Usage: "print the state that would be used as JSON and exit"},
			&cli.IntFlag{Name: "underlay-mtu", Value: replay.DefaultUnderlayMTU, Usage: "this host's underlay MTU; endpoint MTUs derive from it"},
			&cli.UintFlag{Name: "vxlan-port", Value: 4789, Usage: "UDP port of VXLAN"},
		},
		Action: runReplay,
	}
}

func runReplay(c *cli.Context) error {
	state := replay.DefaultState()
	if name := c.String("state"); name != "" {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		state, err = replay.ReadState(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if c.Bool("print-state") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(state)
	}
	if err := needArgs(c, "IN"); err != nil {
		return err
	}
	if c.String("out") == "" {
		return fmt.Errorf("replay: --out is required: the pcapng file to write the emitted frames to")
	}
	port := c.Uint("vxlan-port")
	if port == 0 || port > 65535 {
		return fmt.Errorf("--vxlan-port %d is not a UDP port: use 1..65535 (4789 is the IANA port)", port)
	}
	if mtu := c.Int("underlay-mtu"); mtu < 68+50 {
		return fmt.Errorf("--underlay-mtu %d is too small: VXLAN needs 50 bytes plus an inner IPv4 MTU of at least 68", mtu)
	}

	in, err := os.Open(c.Args().First())
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer in.Close()
	out, status := os.Stdout, c.App.Writer
	if name := c.String("out"); name != "-" {
		if out, err = os.Create(name); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer out.Close()
	} else {
		status = c.App.ErrWriter // stdout carries the capture
	}
	res, err := replay.Run(out, in, replay.Options{State: state, UnderlayMTU: c.Int("underlay-mtu"), VXLANPort: uint16(port)})
	if err != nil {
		return err
	}
	if out != os.Stdout {
		if err := out.Close(); err != nil {
			return fmt.Errorf("replay: write %s: %w", c.String("out"), err)
		}
	}
	fmt.Fprintf(status, "replayed %d packets as host %s, emitted %d\n", res.Packets, state.Self, res.Emitted)
	for _, reason := range slices.Sorted(maps.Keys(res.Ignored)) {
		fmt.Fprintf(status, "ignored %d underlay packets: %s\n", res.Ignored[reason], reason)
	}
	s := res.Stats
	fmt.Fprintf(status, "switch: rx %d tx %d encapsulated %d decapsulated %d flood copies %d\n",
		s.RxFrames, s.TxFrames, s.EncapFrames, s.DecapFrames, s.FloodCopies)
	for _, reason := range slices.Sorted(maps.Keys(s.Drops)) {
		fmt.Fprintf(status, "dropped %d: %s\n", s.Drops[reason], reason)
	}
	return nil
}

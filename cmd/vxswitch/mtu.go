package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"vxswitch/api"
)

func mtuCommand() *cli.Command {
	return &cli.Command{
		Name:      "mtu",
		Usage:     "explain this host's MTU numbers and probe the path MTU to every peer host",
		ArgsUsage: "[NETWORK]",
		Flags:     []cli.Flag{outputFlag},
		Action: func(c *cli.Context) error {
			ctx, cancel := ctx(c)
			defer cancel()
			r, err := client(c).MTU(ctx, c.Args().First())
			if err != nil {
				return err
			}
			return printOut(c, r, func(w io.Writer) { writeMTU(w, r) })
		},
	}
}

// writeMTU explains an MTU report for a person.
func writeMTU(w io.Writer, r api.MTUReport) {
	family, ipLen, other := "IPv4", 20, "40 with an IPv6 underlay"
	if r.Family == "IPv6" {
		family, ipLen, other = "IPv6", 40, "20 with an IPv4 underlay"
	}
	fmt.Fprintf(w, "host %s: underlay MTU %d (%s), underlay family %s\n\n", r.Host, r.UnderlayMTU, r.Source, family)
	fmt.Fprintf(w, "VXLAN wraps every inner IP packet in %d bytes before it meets the underlay MTU:\n", r.Overhead)
	row(w, "  inner Ethernet header", 14, "the endpoint's frame travels whole")
	row(w, "  VXLAN header", 8, "flags + 24-bit VNI (RFC 7348)")
	row(w, "  outer UDP header", 8, "destination port 4789")
	row(w, "  outer "+family+" header", ipLen, other)
	row(w, "  total", r.Overhead, "")
	fmt.Fprintf(w, "\nendpoint MTU = %d - %d = %d\n", r.UnderlayMTU, r.Overhead, r.EndpointMTU)
	for _, n := range r.Networks {
		note := ""
		if n.Asked > 0 && n.Asked < r.EndpointMTU {
			note = fmt.Sprintf(" (lowered by network create --mtu %d)", n.Asked)
		}
		mss := fmt.Sprintf("TCP MSS %d", n.EndpointMTU-40)
		switch {
		case n.IPv6Only:
			mss = fmt.Sprintf("TCP MSS %d over IPv6", n.EndpointMTU-60)
		case n.DualStack:
			mss = fmt.Sprintf("TCP MSS %d over IPv4, %d over IPv6", n.EndpointMTU-40, n.EndpointMTU-60)
		}
		fmt.Fprintf(w, "  network %s: endpoint MTU %d%s, %s\n", n.Name, n.EndpointMTU, note, mss)
	}
	if len(r.Networks) > 0 {
		fmt.Fprintln(w, "inside a network the switch clamps the MSS of TCP SYNs to the endpoint MTU - 40 (IPv4) or - 60 (IPv6);")
		fmt.Fprintln(w, "a larger packet gets ICMP \"fragmentation needed\" (IPv4 with DF; without DF the switch fragments it)")
		fmt.Fprintln(w, "or ICMPv6 \"packet too big\" (IPv6), both naming the endpoint MTU, instead of vanishing")
	}
	fmt.Fprintf(w, "\npath MTU to each peer host, probed now with DF set:\n")
	if len(r.Peers) == 0 {
		fmt.Fprintln(w, "  (no other hosts)")
	}
	for _, p := range r.Peers {
		status := "ok"
		if p.Warning != "" {
			status = "WARNING: " + p.Warning
		}
		fmt.Fprintf(w, "  %-8s %-15s %5d  %s\n", p.Host, p.VTEP, p.PathMTU, status)
	}
}

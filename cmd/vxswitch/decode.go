package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"vxswitch/decode"
)

// decodeCommand is 'vxswitch decode FILE|-': it explains a capture for a
// person learning encapsulation. The work is in package decode.
func decodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "decode",
		Usage:     "explain every packet of a pcap or pcapng file: layers with byte offsets, VXLAN bit by bit, the inner frame",
		ArgsUsage: "FILE|-",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "hex", Usage: "add a hex dump of each packet, split into outer headers and inner frame"},
			&cli.UintFlag{Name: "vxlan-port", Usage: "also decode this UDP port as VXLAN (4789 always is), e.g. 8472"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, "FILE"); err != nil {
				return err
			}
			port := c.Uint("vxlan-port")
			if port > 65535 {
				return fmt.Errorf("--vxlan-port %d is not a UDP port: use 1..65535", port)
			}
			var in io.Reader = os.Stdin
			if name := c.Args().First(); name != "-" {
				f, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("decode: %w", err)
				}
				defer f.Close()
				in = f
			}
			return decode.Write(c.App.Writer, in, decode.Options{Hex: c.Bool("hex"), VXLANPort: uint16(port)})
		},
	}
}

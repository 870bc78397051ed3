package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// espCommand is 'vxswitch esp sa': this host's SAs of encrypted networks,
// as a table, as JSON, or as Wireshark's esp_sa file.
func espCommand() *cli.Command {
	return &cli.Command{
		Name:  "esp",
		Usage: "the ESP SAs of encrypted networks on this host",
		Subcommands: []*cli.Command{{
			Name: "sa",
			Usage: "list this host's current SAs with their keys; -o wireshark writes Wireshark's esp_sa file " +
				"(copy it to ~/.config/wireshark/esp_sa, or pass each line as tshark -o 'uat:esp_sa:LINE') to decrypt an underlay capture",
			Flags: []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table, json or wireshark"}},
			Action: func(c *cli.Context) error {
				ctx, cancel := ctx(c)
				defer cancel()
				sas, err := client(c).ESPSAs(ctx)
				if err != nil {
					return err
				}
				if c.String("output") == "wireshark" {
					w := c.App.Writer
					fmt.Fprintln(w, "# Wireshark ESP SAs (esp_sa) of this host: keep this file secret, it decrypts the traffic")
					for _, sa := range sas {
						fmt.Fprintln(w, sa.Wireshark)
					}
					return nil
				}
				return printOut(c, sas, func(w io.Writer) {
					row(w, "DIR", "SPI", "SRC", "DST", "SENT")
					for _, sa := range sas {
						row(w, sa.Direction, fmt.Sprintf("%#x", sa.SPI), sa.Src, sa.Dst, sa.Sent)
					}
				})
			},
		}},
	}
}

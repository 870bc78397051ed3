package main

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/urfave/cli/v2"

	"vxswitch/api"
	"vxswitch/esp"
)

// vtepXfrmCommand is 'vxswitch vtep xfrm NETWORK ADDR': it makes a key pair
// for the external VTEP ADDR of the encrypted network NETWORK, registers
// the public half (adding the VTEP if needed), and prints the 'ip xfrm'
// commands of the peer's SAs with every member host, derived from the
// private half and each host's static key. The private key exists only in
// this process and in the printed keys: running the command again gives
// the peer new SAs (the old ones stop at once on the hosts).
func vtepXfrmCommand() *cli.Command {
	return &cli.Command{
		Name: "xfrm",
		Usage: "make ADDR (a Linux host with a kernel vxlan device) a peer of the encrypted NETWORK: " +
			"prints the 'ip xfrm' commands to run there; rerun it to rotate the peer's keys and after a host is added or removed",
		ArgsUsage: "NETWORK ADDR",
		Action: func(c *cli.Context) error {
			if err := needArgs(c, "NETWORK", "ADDR"); err != nil {
				return err
			}
			peerAddr, err := netip.ParseAddr(c.Args().Get(1))
			if err != nil {
				return fmt.Errorf("vtep xfrm: %q is not an IP address: give the underlay address of the kernel vxlan device's host", c.Args().Get(1))
			}
			peerAddr = peerAddr.Unmap()
			priv, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				return fmt.Errorf("vtep xfrm: make key: %w", err)
			}
			ctx, cancel := ctx(c)
			defer cancel()
			hosts, err := client(c).XfrmVTEP(ctx, api.VTEPRequest{
				Network: c.Args().Get(0), Addr: peerAddr.String(), ESP: hex.EncodeToString(priv.PublicKey().Bytes()),
			})
			if err != nil {
				return err
			}
			script, err := xfrmScript(priv, peerAddr, hosts)
			if err != nil {
				return err
			}
			fmt.Fprint(c.App.Writer, script)
			return nil
		},
	}
}

// xfrmScript renders the commands of the peer at peerAddr with private key
// priv for each of hosts, then the encapsulation socket once.
func xfrmScript(priv *ecdh.PrivateKey, peerAddr netip.Addr, hosts []api.XfrmHost) (string, error) {
	out := fmt.Sprintf("# Run on %s (as root) to make it an ESP peer of the encrypted network.\n"+
		"# ESP in UDP (RFC 3948, port 4500), AES-GCM (RFC 4106), transport mode around VXLAN (UDP 4789).\n"+
		"# Keep this secret: the keys decrypt the traffic. Rerun 'vxswitch vtep xfrm' to rotate them,\n"+
		"# and after hosts join or leave; first remove the old SAs here: ip xfrm state flush; ip xfrm policy flush\n", peerAddr)
	var holder []string
	n := 0
	for _, h := range hosts {
		static, err := hex.DecodeString(h.Static)
		var key *ecdh.PublicKey
		if err == nil {
			key, err = ecdh.X25519().NewPublicKey(static)
		}
		if err != nil || h.Index == 0 || !h.VTEP.IsValid() {
			out += fmt.Sprintf("# host %s: skipped, it has not published its ESP keys yet (is its agent running?): rerun later\n", h.Name)
			continue
		}
		toPeer, fromPeer, err := esp.ExternalSAs(priv, esp.Host{Addr: h.VTEP, Key: key},
			esp.Host{Addr: peerAddr, Key: priv.PublicKey()}, h.Index)
		if err != nil {
			return "", fmt.Errorf("vtep xfrm: host %s: %w", h.Name, err)
		}
		x, err := esp.XfrmCommands(fromPeer, toPeer, h.Index)
		if err != nil {
			return "", fmt.Errorf("vtep xfrm: host %s: %w", h.Name, err)
		}
		out += fmt.Sprintf("# host %s (%s): the first SA sends to it, the second receives; the policies hold VXLAN to the SAs\n", h.Name, h.VTEP)
		for _, cmd := range x.Commands {
			out += esp.ShellLine(cmd) + "\n"
		}
		holder = x.EncapSocket
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("vtep xfrm: no host has published its ESP keys yet: start the agents (a version with 'vtep xfrm') and rerun")
	}
	out += "# The kernel opens ESP in UDP only on a UDP socket on port 4500 with UDP_ENCAP_ESPINUDP.\n" +
		"# An IKE daemon (strongSwan, Libreswan) holds one; without one, keep this running:\n" +
		esp.ShellLine(holder) + " &\n"
	return out, nil
}

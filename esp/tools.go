package esp

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// WiresharkSA returns c as one line of Wireshark's ESP SA table, the "esp_sa"
// file of a Wireshark profile (Preferences > Protocols > ESP > ESP SAs):
// eight quoted, comma-separated fields, protocol, source, destination, SPI,
// encryption algorithm, encryption key, authentication algorithm and
// authentication key. For AES-GCM the encryption key is the AES key
// followed by the salt, and the authentication is NULL, the GCM tag being
// the ICV. The same line, as 'uat:esp_sa:LINE', is a tshark -o option.
// An invalid address in c is written as the wildcard "*".
func WiresharkSA(c Config) string {
	proto := "IPv4"
	if c.Src.Is6() || c.Dst.Is6() {
		proto = "IPv6"
	}
	addr := func(a netip.Addr) string {
		if !a.IsValid() {
			return "*"
		}
		return a.String()
	}
	return fmt.Sprintf(`"%s","%s","%s","0x%08x","AES-GCM with 16 octet ICV [RFC4106]","0x%s","NULL",""`,
		proto, addr(c.Src), addr(c.Dst), c.SPI, hex.EncodeToString(keyAndSalt(c)))
}

// WriteWiresharkSAs writes the esp_sa file for sas: a comment line, then one
// line per SA (see WiresharkSA).
func WriteWiresharkSAs(w io.Writer, sas []*SA) error {
	var b strings.Builder
	b.WriteString("# Wireshark ESP SAs (esp_sa) exported by vxswitch: AES-GCM, RFC 4106\n")
	for _, sa := range sas {
		b.WriteString(WiresharkSA(sa.cfg))
		b.WriteByte('\n')
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("esp: write Wireshark SAs: %w", err)
	}
	return nil
}

// keyAndSalt returns the keying material as xfrm and Wireshark take it: the
// AES key followed by the 4-byte salt (RFC 4106 section 8.1).
func keyAndSalt(c Config) []byte {
	return append(append([]byte(nil), c.Key...), c.Salt[:]...)
}

// Xfrm is the configuration that makes a Linux host (its kernel vxlan
// device, 'ip xfrm' and a UDP_ENCAP socket, no vxswitch) an ESP peer of a
// vxswitch host: see XfrmCommands.
type Xfrm struct {
	// Commands are 'ip xfrm state add' for both SAs and 'ip xfrm policy
	// add' for both directions, each as an argument vector starting with
	// "ip".
	Commands [][]string
	// EncapSocket is a command that holds a UDP socket on port 4500 with
	// UDP_ENCAP_ESPINUDP open until it is killed. The kernel decapsulates
	// ESP in UDP only on such a socket; an IKE daemon (strongSwan,
	// Libreswan) holds one, and without one this does.
	EncapSocket []string
}

// XfrmCommands returns the configuration of a Linux host that sends with
// SA send and receives with SA recv: send.Src (= recv.Dst) is the Linux
// host and send.Dst (= recv.Src) the vxswitch host, both of one address
// family. Both SAs are transport mode ESP in UDP 4500 -> 4500 with
// rfc4106(gcm(aes)) and a 128-bit ICV; the policies apply them to UDP to
// port 4789 between the two hosts in both directions, so the Linux host
// also refuses clear VXLAN from the vxswitch host. The policies' selector
// cannot see the VNI: every VXLAN packet between the two hosts is ESP.
// reqid ties the policies to the SAs; a rotation adds SAs with the same
// reqid and then deletes the old ones, leaving the policies in place.
func XfrmCommands(send, recv Config, reqid uint32) (Xfrm, error) {
	linux, host := send.Src, send.Dst
	switch {
	case !linux.IsValid() || !host.IsValid():
		return Xfrm{}, fmt.Errorf("esp: xfrm commands: SA %#x needs both addresses, have %v -> %v", send.SPI, linux, host)
	case recv.Src != host || recv.Dst != linux:
		return Xfrm{}, fmt.Errorf("esp: xfrm commands: SA %#x goes %v -> %v but SA %#x goes %v -> %v: the receiving SA must be the reverse direction",
			send.SPI, linux, host, recv.SPI, recv.Src, recv.Dst)
	case linux.Is4() != host.Is4():
		return Xfrm{}, fmt.Errorf("esp: xfrm commands: %v and %v are of different address families", linux, host)
	case send.SPI < 256 || recv.SPI < 256:
		return Xfrm{}, fmt.Errorf("esp: xfrm commands: SPIs %#x and %#x: both must be 256 or more", send.SPI, recv.SPI)
	}
	any, bits, family := "0.0.0.0", "/32", "AF_INET"
	if linux.Is6() {
		any, bits, family = "::", "/128", "AF_INET6"
	}
	state := func(c Config) []string {
		return []string{"ip", "xfrm", "state", "add",
			"src", c.Src.String(), "dst", c.Dst.String(),
			"proto", "esp", "spi", fmt.Sprintf("0x%08x", c.SPI),
			"reqid", strconv.FormatUint(uint64(reqid), 10), "mode", "transport",
			"replay-window", "32",
			"aead", "rfc4106(gcm(aes))", "0x" + hex.EncodeToString(keyAndSalt(c)), "128",
			"encap", "espinudp", strconv.Itoa(Port), strconv.Itoa(Port), any}
	}
	policy := func(from, to netip.Addr, dir string) []string {
		return []string{"ip", "xfrm", "policy", "add",
			"src", from.String() + bits, "dst", to.String() + bits,
			"proto", "udp", "dport", strconv.Itoa(VXLANPort), "dir", dir,
			"tmpl", "src", from.String(), "dst", to.String(),
			"proto", "esp", "reqid", strconv.FormatUint(uint64(reqid), 10), "mode", "transport"}
	}
	// UDP_ENCAP is option 100 of level IPPROTO_UDP, UDP_ENCAP_ESPINUDP is 2
	// (linux/udp.h).
	holder := fmt.Sprintf("import socket,time; s=socket.socket(socket.%s,socket.SOCK_DGRAM); "+
		"s.setsockopt(socket.IPPROTO_UDP,100,2); s.bind((\"%s\",%d)); time.sleep(1e9)", family, any, Port)
	return Xfrm{
		Commands: [][]string{
			state(send),
			state(recv),
			policy(linux, host, "out"),
			policy(host, linux, "in"),
		},
		EncapSocket: []string{"python3", "-c", holder},
	}, nil
}

// Script returns x as a shell script to paste on the Linux host, with
// comments saying what each part does.
func (x Xfrm) Script() string {
	var b strings.Builder
	b.WriteString("# ESP in UDP (RFC 3948, port 4500), AES-GCM (RFC 4106), transport mode around VXLAN (UDP 4789).\n")
	b.WriteString("# SAs: the first sends from this host, the second receives.\n")
	for i, c := range x.Commands {
		if i == 2 {
			b.WriteString("# Policies: VXLAN to and from the vxswitch host must go through the SAs.\n")
		}
		b.WriteString(shellJoin(c))
		b.WriteByte('\n')
	}
	b.WriteString("# The kernel opens ESP in UDP only on a UDP socket on port 4500 with UDP_ENCAP_ESPINUDP.\n")
	b.WriteString("# An IKE daemon (strongSwan, Libreswan) holds one; without one, keep this running:\n")
	b.WriteString(shellJoin(x.EncapSocket))
	b.WriteString(" &\n")
	return b.String()
}

// shellJoin quotes each argument that needs it for a POSIX shell.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/-_,=") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// ShellLine returns argv (one of Xfrm.Commands or EncapSocket) as a line
// for a POSIX shell, arguments quoted where they need it.
func ShellLine(argv []string) string { return shellJoin(argv) }

package esp

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestWiresharkSA(t *testing.T) {
	c := Config{
		SPI:  0x1234abcd,
		Key:  []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		Salt: [4]byte{0xde, 0xad, 0xbe, 0xef},
		Src:  netip.MustParseAddr("10.77.0.1"),
		Dst:  netip.MustParseAddr("10.77.0.2"),
	}
	want := `"IPv4","10.77.0.1","10.77.0.2","0x1234abcd","AES-GCM with 16 octet ICV [RFC4106]",` +
		`"0x000102030405060708090a0b0c0d0e0fdeadbeef","NULL",""`
	if got := WiresharkSA(c); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	c.Src, c.Dst = netip.MustParseAddr("fd00::1"), netip.Addr{}
	if got := WiresharkSA(c); !strings.HasPrefix(got, `"IPv6","fd00::1","*",`) {
		t.Errorf("IPv6 with wildcard: %s", got)
	}
	sa, _ := NewSA(c)
	var b bytes.Buffer
	if err := WriteWiresharkSAs(&b, []*SA{sa, sa}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(b.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "#") {
		t.Errorf("file:\n%s", b.String())
	}
}

func TestXfrmCommands(t *testing.T) {
	linux, host := netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("10.77.0.1")
	send := Config{SPI: 0x1001, Key: bytes.Repeat([]byte{0xaa}, 16), Salt: [4]byte{1, 2, 3, 4}, Src: linux, Dst: host}
	recv := Config{SPI: 0x2002, Key: bytes.Repeat([]byte{0xbb}, 32), Salt: [4]byte{5, 6, 7, 8}, Src: host, Dst: linux}
	x, err := XfrmCommands(send, recv, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := `# ESP in UDP (RFC 3948, port 4500), AES-GCM (RFC 4106), transport mode around VXLAN (UDP 4789).
# SAs: the first sends from this host, the second receives.
ip xfrm state add src 10.77.0.2 dst 10.77.0.1 proto esp spi 0x00001001 reqid 7 mode transport replay-window 32 aead 'rfc4106(gcm(aes))' 0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01020304 128 encap espinudp 4500 4500 0.0.0.0
ip xfrm state add src 10.77.0.1 dst 10.77.0.2 proto esp spi 0x00002002 reqid 7 mode transport replay-window 32 aead 'rfc4106(gcm(aes))' 0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb05060708 128 encap espinudp 4500 4500 0.0.0.0
# Policies: VXLAN to and from the vxswitch host must go through the SAs.
ip xfrm policy add src 10.77.0.2/32 dst 10.77.0.1/32 proto udp dport 4789 dir out tmpl src 10.77.0.2 dst 10.77.0.1 proto esp reqid 7 mode transport
ip xfrm policy add src 10.77.0.1/32 dst 10.77.0.2/32 proto udp dport 4789 dir in tmpl src 10.77.0.1 dst 10.77.0.2 proto esp reqid 7 mode transport
# The kernel opens ESP in UDP only on a UDP socket on port 4500 with UDP_ENCAP_ESPINUDP.
# An IKE daemon (strongSwan, Libreswan) holds one; without one, keep this running:
python3 -c 'import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.setsockopt(socket.IPPROTO_UDP,100,2); s.bind(("0.0.0.0",4500)); time.sleep(1e9)' &
`
	if got := x.Script(); got != want {
		t.Errorf("script:\n%s\nwant:\n%s", got, want)
	}

	l6, h6 := netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1")
	x6, err := XfrmCommands(Config{SPI: 0x1001, Key: send.Key, Src: l6, Dst: h6}, Config{SPI: 0x2002, Key: recv.Key, Src: h6, Dst: l6}, 7)
	if err != nil {
		t.Fatal(err)
	}
	script6 := x6.Script()
	for _, want := range []string{"encap espinudp 4500 4500 ::\n", "src fd00::2/128 dst fd00::1/128 proto udp", "socket.AF_INET6", `s.bind(("::",4500))`} {
		if !strings.Contains(script6, want) {
			t.Errorf("IPv6 script lacks %q:\n%s", want, script6)
		}
	}

	bad := []struct {
		name       string
		send, recv Config
	}{
		{"same direction", send, send},
		{"no address", Config{SPI: 0x1001, Key: send.Key}, recv},
		{"mixed families", Config{SPI: 0x1001, Key: send.Key, Src: netip.MustParseAddr("fd00::2"), Dst: host},
			Config{SPI: 0x2002, Key: send.Key, Src: host, Dst: netip.MustParseAddr("fd00::2")}},
		{"reserved spi", Config{SPI: 1, Src: linux, Dst: host}, recv},
	}
	for _, tc := range bad {
		if _, err := XfrmCommands(tc.send, tc.recv, 1); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

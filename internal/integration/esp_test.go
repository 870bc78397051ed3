package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vxswitch/esp"
	"vxswitch/internal/netlab"
)

// espConfig returns an SA configuration from src to dst with a random
// 128-bit key and salt.
func espConfig(t *testing.T, spi uint32, src, dst netip.Addr) esp.Config {
	t.Helper()
	c := esp.Config{SPI: spi, Key: make([]byte, 16), Src: src, Dst: dst}
	rand.Read(c.Key)
	rand.Read(c.Salt[:])
	return c
}

func newSA(t *testing.T, c esp.Config) *esp.SA {
	t.Helper()
	sa, err := esp.NewSA(c)
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

// listenUDPIn opens a UDP socket bound to addr inside the namespace of h.
// It is closed when the test ends.
func listenUDPIn(t *testing.T, h *netlab.Host, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := netlab.Do(h.NSPath, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, h.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUDP reads one datagram within d, or returns an error.
func readUDP(c *net.UDPConn, d time.Duration) ([]byte, netip.AddrPort, error) {
	buf := make([]byte, 65536)
	c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return buf[:n], from, nil
}

// vxlanPacket returns a VXLAN header (I flag, vni) followed by an Ethernet
// frame whose payload is msg: what a VTEP puts in its UDP datagram.
func vxlanPacket(vni uint32, msg string) []byte {
	b := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5) // local experimental ethertype
	return append(b, msg...)
}

// sealUDP seals a UDP datagram from port srcPort to 4789 carrying payload.
func sealUDP(t *testing.T, sa *esp.SA, srcPort uint16, payload []byte) []byte {
	t.Helper()
	n := esp.UDPHeaderLen + len(payload)
	buf := make([]byte, esp.Headroom+n+esp.MaxTailroom)
	esp.PutUDP(buf[esp.Headroom:esp.Headroom+n], srcPort, esp.VXLANPort)
	copy(buf[esp.Headroom+esp.UDPHeaderLen:], payload)
	pkt, err := sa.Seal(buf, n)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(pkt)
}

// TestESPOnTheWire: two hosts in namespaces exchange VXLAN as ESP in UDP
// through the esp package over a real veth underlay. The receiver opens
// every packet to the exact datagram sealed; a replayed, a forged and a
// truncated packet are dropped and counted; tcpdump on the underlay sees
// ESP only, and tshark with the exported SA file decrypts it to VXLAN.
func TestESPOnTheWire(t *testing.T) {
	l := netlab.NewT(t, "vxesp", netlab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	c1 := listenUDPIn(t, h1, netip.AddrPortFrom(h1.Addr, esp.Port))
	c2 := listenUDPIn(t, h2, netip.AddrPortFrom(h2.Addr, esp.Port))
	cfg12 := espConfig(t, 0x12000001, h1.Addr, h2.Addr)
	cfg21 := espConfig(t, 0x21000001, h2.Addr, h1.Addr)
	send12, send21 := newSA(t, cfg12), newSA(t, cfg21)
	var in1, in2 esp.Table
	if err := in2.Add(newSA(t, cfg12)); err != nil {
		t.Fatal(err)
	}
	if err := in1.Add(newSA(t, cfg21)); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	capture := filepath.Join(dir, "underlay.pcap")
	stop := startCapture(t, h2.NS, "eth0", capture, "udp")

	// h1 -> h2 and h2 -> h1, a few sizes each (every padding length).
	var sent [][]byte
	for i := range 4 {
		msg := fmt.Sprintf("secret payload %d%s", i, strings.Repeat("x", i))
		inner := vxlanPacket(42, msg)
		pkt := sealUDP(t, send12, 50000+uint16(i), inner)
		sent = append(sent, pkt)
		if _, err := c1.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(h2.Addr, esp.Port)); err != nil {
			t.Fatal(err)
		}
		got, from, err := readUDP(c2, 10*time.Second)
		if err != nil {
			t.Fatalf("h2 read: %v", err)
		}
		plain, sa, err := in2.Open(got)
		if err != nil {
			t.Fatalf("h2 open packet %d: %v", i, err)
		}
		if sa.Src() != from.Addr() || from.Port() != esp.Port {
			t.Errorf("packet %d from %v, SA source %v", i, from, sa.Src())
		}
		src, dst, payload, ok := esp.ParseUDP(plain)
		if !ok || src != 50000+uint16(i) || dst != esp.VXLANPort || !bytes.Equal(payload, inner) {
			t.Fatalf("h2 packet %d: ports %d->%d ok=%v payload %q, want %q", i, src, dst, ok, payload, inner)
		}

		back := vxlanPacket(42, "reply "+msg)
		if _, err := c2.WriteToUDPAddrPort(sealUDP(t, send21, 40000, back), netip.AddrPortFrom(h1.Addr, esp.Port)); err != nil {
			t.Fatal(err)
		}
		got, _, err = readUDP(c1, 10*time.Second)
		if err != nil {
			t.Fatalf("h1 read: %v", err)
		}
		plain, _, err = in1.Open(got)
		if err != nil {
			t.Fatalf("h1 open reply %d: %v", i, err)
		}
		if _, _, payload, _ := esp.ParseUDP(plain); !bytes.Equal(payload, back) {
			t.Fatalf("h1 reply %d: %q, want %q", i, payload, back)
		}
	}

	// Replayed, forged and truncated packets, sent over the wire too.
	forged := bytes.Clone(sealUDP(t, send12, 50009, vxlanPacket(42, "forged")))
	forged[len(forged)/2] ^= 0x40
	bad := [][]byte{sent[0], sent[3], forged, sent[1][:30], sent[2][:len(sent[2])-3]}
	for _, pkt := range bad {
		if _, err := c1.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(h2.Addr, esp.Port)); err != nil {
			t.Fatal(err)
		}
		got, _, err := readUDP(c2, 10*time.Second)
		if err != nil {
			t.Fatalf("h2 read: %v", err)
		}
		if plain, _, err := in2.Open(got); err == nil {
			t.Errorf("opened a bad packet: %q", plain)
		}
	}
	drops := map[string]uint64{}
	in2.Counters.Each(func(name string, v uint64) { drops[name] = v })
	if drops["replay"] != 2 || drops["auth_failed"] != 1 || drops["short"] != 1 || drops["bad_length"] != 1 {
		t.Errorf("h2 drops: %v, want replay 2, auth_failed 1, short 1, bad_length 1", drops)
	}
	stop()

	// The underlay carries ESP only: no VXLAN, no payload bytes.
	raw, err := os.ReadFile(capture)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("secret payload")) {
		t.Error("the underlay capture holds plaintext")
	}
	out := runTshark(t, nil, "-r", capture, "-T", "fields", "-e", "frame.protocols")
	if n := strings.Count(out, "udpencap:esp"); n != 8+len(bad) || strings.Contains(out, "vxlan") {
		t.Errorf("tshark without keys: %d ESP packets, want %d:\n%s", n, 8+len(bad), out)
	}
	// With the exported SAs, Wireshark decrypts the 8 good packets and the
	// 2 replays to VXLAN VNI 42 with a correct ICV, and finds the forged
	// packet's ICV wrong.
	conf := filepath.Join(dir, "config")
	os.MkdirAll(filepath.Join(conf, "wireshark"), 0o755)
	var sas bytes.Buffer
	esp.WriteWiresharkSAs(&sas, append(in1.SAs(), in2.SAs()...))
	if err := os.WriteFile(filepath.Join(conf, "wireshark", "esp_sa"), sas.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out = runTshark(t, []string{"XDG_CONFIG_HOME=" + conf}, "-r", capture,
		"-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
		"-T", "fields", "-e", "esp.icv_good", "-e", "vxlan.vni")
	if good, bad := strings.Count(out, "1\t42\n"), strings.Count(out, "0\t42\n"); good != 8+2 || bad != 1 {
		t.Errorf("tshark with the SAs: %d VXLAN packets with a good ICV (want 10: 8 + 2 replays), %d bad (want 1):\n%s", good, bad, out)
	}
}

// TestESPKernelXfrm: the Linux kernel's own ESP (xfrm), configured with
// exactly the commands esp.XfrmCommands prints, is a peer. The kernel of
// h2 encrypts a UDP datagram to port 4789 that h1's esp.Table opens to the
// exact bytes; h1's Seal reaches a socket on port 4789 in h2 through the
// kernel's decryption; the kernel drops a replay; h1 drops the kernel's
// packet replayed, forged and truncated.
//
// It needs a kernel with ESP and GCM (CONFIG_INET_ESP, CONFIG_CRYPTO_GCM,
// as modules or built in) and python3 for the encapsulation socket; on a
// kernel without them it skips, also under CI=true, naming what is missing.
func TestESPKernelXfrm(t *testing.T) {
	l := netlab.NewT(t, "vxespk", netlab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1] // h1 runs the esp package, h2 is a plain Linux host
	toH1 := espConfig(t, 0x0000a001, h2.Addr, h1.Addr)
	toH2 := espConfig(t, 0x0000b002, h1.Addr, h2.Addr)
	x, err := esp.XfrmCommands(toH1, toH2, 15)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("h2 is configured with:\n%s", x.Script())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, argv := range x.Commands {
		out, err := netlab.Exec(ctx, h2.NS, argv[0], argv[1:]...)
		if err != nil && i == 0 && kernelLacksESP(string(out)) {
			t.Skipf("this kernel cannot do ESP with AES-GCM (needs CONFIG_INET_ESP and CONFIG_CRYPTO_GCM): %s", strings.TrimSpace(string(out)))
		}
		if err != nil {
			t.Fatalf("h2: %v", err)
		}
	}
	if _, err := exec.LookPath(x.EncapSocket[0]); err != nil {
		t.Skipf("%s not installed: it holds the kernel's ESP-in-UDP socket", x.EncapSocket[0])
	}
	holder := exec.Command("ip", append([]string{"netns", "exec", h2.NS}, x.EncapSocket...)...)
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	waitUDPSocket(t, h2, esp.Port)

	esp1 := listenUDPIn(t, h1, netip.AddrPortFrom(h1.Addr, esp.Port))
	var in1 esp.Table
	if err := in1.Add(newSA(t, toH1)); err != nil {
		t.Fatal(err)
	}
	send12 := newSA(t, toH2)

	// Kernel -> esp: a UDP datagram to h1:4789 from a socket in h2 leaves
	// as ESP in UDP; h1 opens it to the exact datagram.
	plainSock := listenUDPIn(t, h2, netip.AddrPortFrom(h2.Addr, 45678))
	inner := vxlanPacket(42, "from the kernel")
	if _, err := plainSock.WriteToUDPAddrPort(inner, netip.AddrPortFrom(h1.Addr, esp.VXLANPort)); err != nil {
		t.Fatal(err)
	}
	kernelPkt, from, err := readUDP(esp1, 10*time.Second)
	if err != nil {
		t.Fatalf("h1 got no ESP from the kernel: %v", err)
	}
	if from != netip.AddrPortFrom(h2.Addr, esp.Port) {
		t.Errorf("ESP from %v, want %v:%d", from, h2.Addr, esp.Port)
	}
	captured := bytes.Clone(kernelPkt)
	plain, _, err := in1.Open(kernelPkt)
	if err != nil {
		t.Fatalf("open the kernel's packet: %v", err)
	}
	src, dst, payload, ok := esp.ParseUDP(plain)
	if !ok || src != 45678 || dst != esp.VXLANPort || !bytes.Equal(payload, inner) {
		t.Fatalf("kernel's datagram: %d->%d ok=%v %q, want 45678->4789 %q", src, dst, ok, payload, inner)
	}
	// The kernel's packet replayed, forged (a new sequence number, which
	// the ICV covers), truncated.
	forged := bytes.Clone(captured)
	forged[7] ^= 0x02
	for want, pkt := range map[error][]byte{esp.ErrReplay: captured, esp.ErrAuthFailed: forged, esp.ErrShort: captured[:20]} {
		if _, _, err := in1.Open(bytes.Clone(pkt)); !errors.Is(err, want) {
			t.Errorf("kernel packet mangled: %v, want %v", err, want)
		}
	}

	// esp -> kernel: h1 seals, h2's kernel decrypts and delivers to port 4789.
	vx2 := listenUDPIn(t, h2, netip.AddrPortFrom(h2.Addr, esp.VXLANPort))
	msg := vxlanPacket(42, "from the esp package")
	sealed := sealUDP(t, send12, 40404, msg)
	if _, err := esp1.WriteToUDPAddrPort(sealed, netip.AddrPortFrom(h2.Addr, esp.Port)); err != nil {
		t.Fatal(err)
	}
	got, from, err := readUDP(vx2, 10*time.Second)
	if err != nil {
		t.Fatalf("h2's port 4789 got nothing: the kernel did not decrypt: %v\n%s", err, xfrmStat(t, h2))
	}
	if !bytes.Equal(got, msg) || from != netip.AddrPortFrom(h1.Addr, 40404) {
		t.Fatalf("h2 got %q from %v, want %q from %v:40404", got, from, msg, h1.Addr)
	}
	// Replayed to the kernel: dropped (its replay window is 32).
	esp1.WriteToUDPAddrPort(sealed, netip.AddrPortFrom(h2.Addr, esp.Port))
	if got, _, err := readUDP(vx2, time.Second); err == nil {
		t.Errorf("the kernel accepted a replay: %q", got)
	}
	if !strings.Contains(xfrmStat(t, h2), "XfrmInStateSeqError") {
		t.Errorf("no replay counted by the kernel:\n%s", xfrmStat(t, h2))
	}
}

// scapyPeer is an ESP-in-UDP peer built on Scapy's IPsec module, an
// independent implementation of RFC 4303/4106/3948 (with the cryptography
// package's AES-GCM). It seals a UDP datagram to port 4789 with a random
// IV, sends it from port 4500, then receives one packet on port 4500,
// decrypts it and prints the inner UDP datagram in hex.
const scapyPeer = `
import socket, sys
from scapy.all import IP, UDP, Raw
from scapy.layers.ipsec import ESP, SecurityAssociation
local, remote, spi_out, key_out, spi_in, key_in, msg = sys.argv[1:]
def sa(spi, key):
    return SecurityAssociation(ESP, spi=int(spi, 0), crypt_algo="AES-GCM", crypt_key=bytes.fromhex(key),
                               auth_algo="NULL", nat_t_header=UDP(sport=4500, dport=4500))
out, inb = sa(spi_out, key_out), sa(spi_in, key_in)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((local, 4500))
s.settimeout(30)
sealed = bytes(out.encrypt(IP(src=local, dst=remote)/UDP(sport=45678, dport=4789)/Raw(bytes.fromhex(msg)), seq_num=7))
s.sendto(sealed[28:], (remote, 4500))  # after the outer IPv4 and UDP headers
data, _ = s.recvfrom(65535)
plain = inb.decrypt(IP(src=remote, dst=local)/UDP(sport=4500, dport=4500)/ESP(data))
print(bytes(plain[UDP]).hex())
`

// TestESPScapyPeer: an independent ESP implementation (Scapy) in another
// namespace seals a VXLAN datagram that the esp package opens to the exact
// bytes, and decrypts the esp package's sealed packet to the exact
// datagram, over a real veth underlay.
func TestESPScapyPeer(t *testing.T) {
	l := netlab.NewT(t, "vxesps", netlab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	const python = "/usr/bin/python3" // Debian's, where python3-scapy installs
	if out, err := exec.Command(python, "-c", "import scapy.layers.ipsec, cryptography").CombinedOutput(); err != nil {
		msg := "Scapy's IPsec module is missing: apt-get install python3-scapy: " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this check must run)")
		}
		t.Skip(msg)
	}
	toH1 := espConfig(t, 0x5ca90001, h2.Addr, h1.Addr)
	toH2 := espConfig(t, 0x5ca90002, h1.Addr, h2.Addr)
	var in1 esp.Table
	if err := in1.Add(newSA(t, toH1)); err != nil {
		t.Fatal(err)
	}
	send12 := newSA(t, toH2)
	c1 := listenUDPIn(t, h1, netip.AddrPortFrom(h1.Addr, esp.Port))

	fromScapy := vxlanPacket(42, "sealed by scapy")
	keyHex := func(c esp.Config) string { return fmt.Sprintf("%x%x", c.Key, c.Salt) }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	peer := exec.CommandContext(ctx, "ip", "netns", "exec", h2.NS, python, "-c", scapyPeer,
		h2.Addr.String(), h1.Addr.String(),
		fmt.Sprintf("%#x", toH1.SPI), keyHex(toH1), fmt.Sprintf("%#x", toH2.SPI), keyHex(toH2),
		fmt.Sprintf("%x", fromScapy))
	var stdout, stderr bytes.Buffer
	peer.Stdout, peer.Stderr = &stdout, &stderr
	if err := peer.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cancel()
			peer.Wait()
		}
	}()

	pkt, from, err := readUDP(c1, 30*time.Second)
	if err != nil {
		t.Fatalf("nothing from Scapy: %v\n%s", err, stderr.String())
	}
	plain, sa, err := in1.Open(pkt)
	if err != nil {
		t.Fatalf("open Scapy's packet %x: %v", pkt, err)
	}
	if sa.Src() != from.Addr() {
		t.Errorf("packet from %v, SA source %v", from, sa.Src())
	}
	src, dst, payload, ok := esp.ParseUDP(plain)
	if !ok || src != 45678 || dst != esp.VXLANPort || !bytes.Equal(payload, fromScapy) {
		t.Fatalf("Scapy's datagram: %d->%d ok=%v %q, want 45678->4789 %q", src, dst, ok, payload, fromScapy)
	}

	toScapy := vxlanPacket(42, "sealed by the esp package")
	sealed := sealUDP(t, send12, 40404, toScapy)
	if _, err := c1.WriteToUDPAddrPort(sealed, netip.AddrPortFrom(h2.Addr, esp.Port)); err != nil {
		t.Fatal(err)
	}
	waited = true
	if err := peer.Wait(); err != nil {
		t.Fatalf("Scapy peer: %v\n%s", err, stderr.String())
	}
	want := make([]byte, esp.UDPHeaderLen+len(toScapy))
	esp.PutUDP(want, 40404, esp.VXLANPort)
	copy(want[esp.UDPHeaderLen:], toScapy)
	if got := strings.TrimSpace(stdout.String()); got != fmt.Sprintf("%x", want) {
		t.Fatalf("Scapy decrypted %s, want %x", got, want)
	}
}

// kernelLacksESP reports whether ip's error says the kernel has no ESP or
// no AES-GCM.
func kernelLacksESP(out string) bool {
	for _, s := range []string{"algorithm not found", "Protocol not supported", "not supported"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// xfrmStat returns the nonzero lines of /proc/net/xfrm_stat in h.
func xfrmStat(t *testing.T, h *netlab.Host) string {
	out, _ := netlab.Exec(context.Background(), h.NS, "cat", "/proc/net/xfrm_stat")
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] != "0" {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// waitUDPSocket waits until a UDP socket is bound to port in h.
func waitUDPSocket(t *testing.T, h *netlab.Host, port int) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("a UDP socket on port %d in %s", port, h.Name), func() error {
		out, err := netlab.Exec(context.Background(), h.NS, "ss", "-Huln", fmt.Sprintf("sport = :%d", port))
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(out)) == "" {
			return errors.New("none yet")
		}
		return nil
	})
}

// startCapture runs tcpdump on interface dev of namespace ns, writing file,
// and returns a function that stops it after the packets are written.
// tcpdump runs in immediate mode: otherwise the kernel holds packets in a
// ring block for up to a second, and those are lost at the interrupt.
func startCapture(t *testing.T, ns, dev, file, filter string) (stop func()) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", dev, "-n", "-U", "--immediate-mode", "-s", "0", "-w", file, filter)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	listening := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				listening <- true
			}
		}
		close(listening)
	}()
	select {
	case ok := <-listening:
		if !ok {
			cmd.Wait()
			t.Fatal("tcpdump ended before listening")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("tcpdump did not start listening within 30 s")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		time.Sleep(200 * time.Millisecond) // let the last packets reach tcpdump
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}
	t.Cleanup(stop)
	return stop
}

// runTshark runs tshark with extra environment variables and returns its
// standard output; it skips without tshark, or fails under CI=true.
func runTshark(t *testing.T, env []string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		const msg = "tshark not installed: apt-get install tshark"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this check must run)")
		}
		t.Skip(msg)
	}
	cmd := exec.Command("tshark", args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

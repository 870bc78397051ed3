package esp

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// requireTshark skips the test without tshark, or fails it under CI=true.
func requireTshark(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		const msg = "tshark not installed: apt-get install tshark to cross-check ESP with Wireshark's dissector"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this check must run)")
		}
		t.Skip(msg)
	}
}

// innerFrame returns an Ethernet frame carrying IPv4/UDP with payload.
func innerFrame(t *testing.T, payload []byte) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 20, 0, 2}, DstIP: net.IP{10, 20, 0, 3}}
	udp := &layers.UDP{SrcPort: 5000, DstPort: 6000}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sealVXLAN seals UDP(49152 -> 4789) | VXLAN(vni) | frame with sa and
// returns the outer Ethernet/IPv4/UDP 4500 packet.
func sealVXLAN(t *testing.T, sa *SA, vni uint32, frame []byte) []byte {
	t.Helper()
	n := UDPHeaderLen + 8 + len(frame)
	buf := make([]byte, Headroom+n+MaxTailroom)
	inner := buf[Headroom : Headroom+n]
	PutUDP(inner, 49152, VXLANPort)
	vx := inner[UDPHeaderLen:]
	vx[0] = 0x08 // I flag (RFC 7348 section 5)
	vx[4], vx[5], vx[6] = byte(vni>>16), byte(vni>>8), byte(vni)
	copy(vx[8:], frame)
	pkt, err := sa.Seal(buf, n)
	if err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 1, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 1, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: sa.Src().AsSlice(), DstIP: sa.Dst().AsSlice()}
	udp := &layers.UDP{SrcPort: Port, DstPort: Port}
	udp.SetNetworkLayerForChecksum(ip)
	out := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(out, opts, eth, ip, udp, gopacket.Payload(pkt)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestTsharkDecrypts: Wireshark's ESP dissector, an independent
// implementation of RFC 4303/4106/3948, finds ESP in UDP and nothing else
// without the keys, and with the exported esp_sa file decrypts every packet
// to the VXLAN frame that was sealed.
func TestTsharkDecrypts(t *testing.T) {
	requireTshark(t)
	key := make([]byte, 32)
	rand.Read(key)
	sa, err := NewSA(Config{SPI: 0x0badcafe, Key: key, Salt: [4]byte{9, 8, 7, 6},
		Src: netip.MustParseAddr("10.77.0.1"), Dst: netip.MustParseAddr("10.77.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	capture := filepath.Join(dir, "esp.pcap")
	f, err := os.Create(capture)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	// Payload sizes 0..3 mod 4 exercise every padding length.
	// (Frames above Ethernet's 60-byte minimum, which gopacket pads to.)
	secrets := []string{"secret-0123456789-0", "secret-0123456789-01", "secret-0123456789-012", "secret-0123456789-0123"}
	for i, s := range secrets {
		pkt := sealVXLAN(t, sa, 42, innerFrame(t, []byte(s)))
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: len(pkt), Length: len(pkt)}
		if err := w.WritePacket(ci, pkt); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// Without the keys: ESP, no VXLAN, no payload bytes.
	plain := tshark(t, nil, "-r", capture, "-T", "fields", "-e", "frame.protocols", "-e", "esp.spi", "-e", "esp.sequence")
	for i, line := range strings.Split(strings.TrimSpace(plain), "\n") {
		if !strings.Contains(line, "udp:udpencap:esp") || strings.Contains(line, "vxlan") {
			t.Errorf("packet %d without keys: %q", i+1, line)
		}
		if want := "0x0badcafe\t" + string(rune('1'+i)); !strings.Contains(line, want) {
			t.Errorf("packet %d: %q lacks SPI and sequence %q", i+1, line, want)
		}
	}
	if raw, _ := os.ReadFile(capture); bytes.Contains(raw, []byte("secret")) {
		t.Error("the capture holds plaintext")
	}

	// With the exported esp_sa file in a Wireshark profile.
	conf := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Join(conf, "wireshark"), 0o755); err != nil {
		t.Fatal(err)
	}
	var sas bytes.Buffer
	if err := WriteWiresharkSAs(&sas, []*SA{sa}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "wireshark", "esp_sa"), sas.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_CONFIG_HOME=" + conf}
	fields := []string{"-r", capture, "-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
		"-T", "fields", "-e", "frame.protocols", "-e", "esp.pad_len", "-e", "esp.protocol", "-e", "vxlan.vni", "-e", "udp.payload",
		"-e", "esp.icv_good"}
	check := func(how, out string) {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(secrets) {
			t.Fatalf("%s: %d lines:\n%s", how, len(lines), out)
		}
		for i, line := range lines {
			f := strings.Split(line, "\t")
			if len(f) < 6 || !strings.Contains(f[0], "esp:udp:vxlan:eth:ethertype:ip:udp") || f[3] != "42" {
				t.Errorf("%s: packet %d not decrypted to VXLAN VNI 42: %q", how, i+1, line)
				continue
			}
			pad := PadLen(8 + 8 + len(innerFrame(t, []byte(secrets[i]))))
			if f[1] != string(rune('0'+pad)) || f[2] != "0x11" {
				t.Errorf("%s: packet %d: pad length %s (want %d), next header %s", how, i+1, f[1], pad, f[2])
			}
			if f[5] != "1" {
				t.Errorf("%s: packet %d: Wireshark's ICV check: good=%q", how, i+1, f[5])
			}
			if !strings.Contains(f[4], hexOf(secrets[i])) {
				t.Errorf("%s: packet %d: inner payload %s, want %x", how, i+1, f[4], secrets[i])
			}
		}
	}
	check("esp_sa file", tshark(t, env, fields...))
	line := strings.Split(strings.TrimSpace(sas.String()), "\n")[1]
	check("-o uat:esp_sa", tshark(t, []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "empty")},
		append([]string{"-o", "uat:esp_sa:" + line}, fields...)...))
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

// tshark runs tshark with extra environment variables and returns stdout.
func tshark(t *testing.T, env []string, args ...string) string {
	t.Helper()
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

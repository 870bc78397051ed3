package integration

import (
	"bytes"
	"context"
	be "encoding/binary"
	"encoding/hex"
	"fmt"
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

	"vxswitch/api"
	"vxswitch/esp"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// marker is what the endpoints send in their pings (ping -p repeats it in
// the payload); on the underlay it must show in the clear network's
// packets and never in the encrypted network's.
const marker = "SECRETMARK"

// udpDatagram is one UDP datagram seen on the underlay.
type udpDatagram struct {
	src, dst netip.AddrPort
	payload  []byte
}

// underlayCapture runs tcpdump on the lab's underlay bridge until stop is
// called, which returns the UDP datagrams it saw.
func underlayCapture(t *testing.T, c *lab.Cluster) (stop func() []udpDatagram, file string) {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tcpdump is not installed, and CI=true: install it")
		}
		t.Skip("tcpdump is not installed: install it to run this test")
	}
	file = filepath.Join(t.TempDir(), "underlay.pcap")
	stopCapture := startCapture(t, c.Net.Underlay, "br0", file, "udp")
	return func() []udpDatagram {
		stopCapture()
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatalf("read %s: %v", file, err)
		}
		var out []udpDatagram
		for {
			data, _, err := r.ReadPacketData()
			if err != nil {
				break
			}
			p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
			ip4, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if ip4 == nil || udp == nil {
				continue
			}
			src, _ := netip.AddrFromSlice(ip4.SrcIP.To4())
			dst, _ := netip.AddrFromSlice(ip4.DstIP.To4())
			out = append(out, udpDatagram{
				src:     netip.AddrPortFrom(src, uint16(udp.SrcPort)),
				dst:     netip.AddrPortFrom(dst, uint16(udp.DstPort)),
				payload: append([]byte(nil), udp.Payload...),
			})
		}
		return out
	}, file
}

// vxlanVNI returns the VNI of a VXLAN payload.
func vxlanVNI(b []byte) uint32 {
	if len(b) < 8 {
		return 0
	}
	return be.BigEndian.Uint32(b[4:8]) >> 8
}

func espStat(t *testing.T, a *lab.Agent, name string) uint64 {
	t.Helper()
	return stats(t, a).ESP[name]
}

// TestEncryptedNetwork runs an encrypted and a clear network side by side
// on one 3-host lab (keys rotated every 3 s) and checks what the issue
// promises: ESP on the wire for the one, VXLAN for the other, no inner
// payload in sight, pings and TCP across hosts, replays dropped, rotation
// under traffic without loss, and a removed host cut off.
func TestEncryptedNetwork(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3, AgentArgs: []string{"--key-rotation", "3s"}})
	h1, h2, h3 := c.Agents[0], c.Agents[1], c.Agents[2]
	c1, c2 := c.Endpoints[0], c.Endpoints[1]
	ctx := context.Background()

	var sec api.Network
	if err := h1.Client().Post(ctx, "/v1/networks", api.NetworkRequest{Name: "sec", Subnet: "10.40.0.0/24", Encrypted: true}, &sec); err != nil {
		t.Fatal(err)
	}
	var web api.Network
	if err := h1.Client().Get(ctx, "/v1/networks/web", &web); err != nil {
		t.Fatal(err)
	}
	var s []lab.Endpoint
	for i, a := range c.Agents {
		e, err := c.Attach(ctx, a, "sec", fmt.Sprintf("s%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		s = append(s, e)
	}
	s1, s2, s3 := s[0], s[1], s[2]

	t.Run("inspect and MTU", func(t *testing.T) {
		out, err := cli(t, h2, "network", "inspect", "sec")
		if err != nil || !strings.Contains(out, "encrypted:") || !strings.Contains(out, "yes") || !strings.Contains(out, "1408") {
			t.Fatalf("network inspect sec: %v\n%s", err, out)
		}
		if out := run(t, s1.NS, "ip", "-o", "link", "show", "eth0"); !strings.Contains(out, "mtu 1408") {
			t.Fatalf("eth0 of an encrypted network: %s, want mtu 1408 (1450 - ESP overhead)", out)
		}
	})

	// The first keys take a moment to reach every host.
	eventually(t, 30*time.Second, "first ping on the encrypted network", func() error {
		_, err := netlab.Exec(ctx, s1.NS, "ping", "-c", "1", "-W", "1", s2.IP.String())
		return err
	})

	var wire []udpDatagram
	t.Run("underlay shows ESP, not VXLAN or payload", func(t *testing.T) {
		stop, file := underlayCapture(t, c)
		pattern := fmt.Sprintf("%x", marker)
		run(t, s1.NS, "ping", "-c", "5", "-i", "0.2", "-s", "200", "-p", pattern, s2.IP.String())
		run(t, c1.NS, "ping", "-c", "5", "-i", "0.2", "-s", "200", "-p", pattern, c2.IP.String())
		wire = stop()
		espPkts, secVX, webVX, webMarked := 0, 0, 0, 0
		for _, d := range wire {
			switch {
			case d.dst.Port() == 4500:
				espPkts++
				if bytes.Contains(d.payload, []byte(marker)) {
					t.Fatalf("ESP datagram %v -> %v carries the marker in clear", d.src, d.dst)
				}
			case d.dst.Port() == 4789 && vxlanVNI(d.payload) == sec.VNI:
				secVX++
			case d.dst.Port() == 4789 && vxlanVNI(d.payload) == web.VNI:
				webVX++
				if bytes.Contains(d.payload, []byte(marker)) {
					webMarked++
				}
			}
			if d.dst.Port() != 4789 && bytes.Contains(d.payload, []byte(marker)) {
				t.Fatalf("marker seen in a datagram to %v", d.dst)
			}
		}
		t.Logf("underlay: %d ESP, %d VXLAN of sec, %d VXLAN of web (%d with the marker)", espPkts, secVX, webVX, webMarked)
		if espPkts < 10 || secVX != 0 || webMarked < 10 {
			t.Fatalf("underlay: %d ESP (want >= 10), %d VXLAN of the encrypted network (want 0), %d clear VXLAN with the marker (want >= 10)", espPkts, secVX, webMarked)
		}
		wiresharkDecrypts(t, file, sec.VNI, h1, h2)
	})

	t.Run("TCP across hosts", func(t *testing.T) {
		transfer(t, s1.NS, s3.NS, s3.IP, 20<<20)
	})

	t.Run("replayed ESP is dropped and counted", func(t *testing.T) {
		var replay [][]byte
		for _, d := range wire {
			if d.dst.Port() == 4500 && d.src.Addr() == h1.Host.Addr && d.dst.Addr() == h2.Host.Addr {
				replay = append(replay, d.payload)
			}
		}
		if len(replay) == 0 {
			t.Fatal("no ESP from host 1 to host 2 captured")
		}
		before := espStat(t, h2, "replay")
		opened := espStat(t, h2, "opened")
		err := netlab.Do(h1.Host.NSPath, func() error {
			conn, err := net.Dial("udp", netip.AddrPortFrom(h2.Host.Addr, 4500).String())
			if err != nil {
				return err
			}
			defer conn.Close()
			for _, p := range replay {
				if _, err := conn.Write(p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "replays counted", func() error {
			if got := espStat(t, h2, "replay") - before; got < uint64(len(replay)) {
				return fmt.Errorf("replay counter grew by %d, want %d", got, len(replay))
			}
			return nil
		})
		// Other traffic may open meanwhile; the replays themselves must not.
		if got := espStat(t, h2, "opened") - opened; got > 20 {
			t.Errorf("%d packets opened during the replay of %d", got, len(replay))
		}
	})

	t.Run("clear VXLAN of the encrypted network is dropped", func(t *testing.T) {
		// A member host leaving the encryption out: a broadcast frame of
		// the encrypted network as clear VXLAN to host 2's port 4789.
		pkt := make([]byte, 8+60)
		pkt[0] = 0x08
		be.BigEndian.PutUint32(pkt[4:], sec.VNI<<8)
		copy(pkt[8:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x99, 0x08, 0x06})
		before := espStat(t, h2, "clear_dropped")
		err := netlab.Do(h1.Host.NSPath, func() error {
			conn, err := net.Dial("udp", netip.AddrPortFrom(h2.Host.Addr, 4789).String())
			if err != nil {
				return err
			}
			defer conn.Close()
			for range 5 {
				if _, err := conn.Write(pkt); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "clear VXLAN of an encrypted network counted", func() error {
			if got := espStat(t, h2, "clear_dropped") - before; got != 5 {
				return fmt.Errorf("clear_dropped grew by %d, want 5", got)
			}
			return nil
		})
	})

	t.Run("rotation under traffic loses nothing", func(t *testing.T) {
		var before []api.ESPSA
		if err := h1.Client().Get(ctx, "/v1/esp/sa", &before); err != nil {
			t.Fatal(err)
		}
		// 15 s at 10 pings a second: about 5 rotations of each host.
		out := run(t, s1.NS, "ping", "-c", "150", "-i", "0.1", "-W", "2", s2.IP.String())
		if !strings.Contains(out, " 0% packet loss") {
			t.Fatalf("pings lost during key rotations:\n%s", out)
		}
		var after []api.ESPSA
		if err := h1.Client().Get(ctx, "/v1/esp/sa", &after); err != nil {
			t.Fatal(err)
		}
		// Every rotation of host 1 or 2 gives the pair a new SA; the old
		// ones stay for their 30 s overlap, so count the new ones.
		old := map[uint32]bool{}
		for _, sa := range before {
			old[sa.SPI] = true
		}
		fresh := 0
		for _, sa := range after {
			if sa.Direction == "out" && sa.Dst == h2.Host.Addr.String() && !old[sa.SPI] {
				fresh++
			}
		}
		if fresh < 3 {
			t.Fatalf("host 1 made %d new SAs to host 2 in 15 s of 3 s rotations, want at least 3", fresh)
		}
	})

	t.Run("removed host is cut off", func(t *testing.T) {
		var h3Keys []api.ESPSA
		if err := h3.Client().Get(ctx, "/v1/esp/sa", &h3Keys); err != nil || len(h3Keys) == 0 {
			t.Fatalf("SAs of host 3: %v (%d)", err, len(h3Keys))
		}
		if out, err := cli(t, h1, "members", "rm", h3.Host.Name); err != nil {
			t.Fatalf("members rm: %v\n%s", err, out)
		}
		eventually(t, 15*time.Second, "host 1 drops its SAs with host 3", func() error {
			var sas []api.ESPSA
			if err := h1.Client().Get(ctx, "/v1/esp/sa", &sas); err != nil {
				return err
			}
			for _, sa := range sas {
				if sa.Src == h3.Host.Addr.String() || sa.Dst == h3.Host.Addr.String() {
					return fmt.Errorf("SA %#x %s -> %s", sa.SPI, sa.Src, sa.Dst)
				}
			}
			return nil
		})
		stop, _ := underlayCapture(t, c)
		// The removed host's agent may still run and try.
		netlab.Exec(ctx, s3.NS, "ping", "-c", "3", "-i", "0.2", "-W", "1", s1.IP.String())
		ping(t, s1.NS, s2.IP.String(), 5)
		wire := stop()
		sent := 0
		for _, d := range wire {
			if d.dst.Port() != 4500 {
				continue
			}
			if d.dst.Addr() == h3.Host.Addr {
				t.Fatalf("a member still sends ESP to the removed host: %v -> %v", d.src, d.dst)
			}
			// No key the removed host held opens what the others send now,
			// whatever SPI it is tried under.
			for _, k := range h3Keys {
				if opens(t, k, d.payload) {
					t.Fatalf("a key of the removed host (SA %#x %s -> %s) opens %v -> %v", k.SPI, k.Src, k.Dst, d.src, d.dst)
				}
			}
			sent++
		}
		if sent == 0 {
			t.Fatal("no ESP between the remaining hosts captured")
		}
		t.Logf("%d ESP datagrams after the removal; none opens with any of the %d keys host 3 held", sent, len(h3Keys))
	})
}

// opens reports whether the ESP datagram pkt decrypts with the key and
// salt of k under pkt's own SPI.
func opens(t *testing.T, k api.ESPSA, pkt []byte) bool {
	t.Helper()
	key, err1 := hex.DecodeString(k.Key)
	salt, err2 := hex.DecodeString(k.Salt)
	if err1 != nil || err2 != nil || len(pkt) < 8 || len(salt) != esp.SaltLen {
		t.Fatalf("SA %#x: bad key or salt in the API", k.SPI)
	}
	cfg := esp.Config{SPI: be.BigEndian.Uint32(pkt), Key: key}
	copy(cfg.Salt[:], salt)
	sa, err := esp.NewSA(cfg)
	if err != nil {
		return false // SPI 0..255: not ESP
	}
	var tab esp.Table
	tab.Add(sa)
	_, _, err = tab.Open(append([]byte(nil), pkt...))
	return err == nil
}

// wiresharkDecrypts checks that tshark, given the SAs of the agents as
// 'vxswitch esp sa -o wireshark' writes them, decrypts the ESP in the
// capture file to VXLAN of network vni carrying the marker.
func wiresharkDecrypts(t *testing.T, file string, vni uint32, agents ...*lab.Agent) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed, and CI=true: install it")
		}
		t.Log("tshark is not installed: the Wireshark decryption is not checked")
		return
	}
	var sas strings.Builder
	for _, a := range agents {
		out, err := cli(t, a, "esp", "sa", "-o", "wireshark")
		if err != nil {
			t.Fatalf("esp sa -o wireshark on %s: %v\n%s", a.Host.Name, err, out)
		}
		sas.WriteString(out)
	}
	conf := t.TempDir()
	if err := os.MkdirAll(filepath.Join(conf, "wireshark"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "wireshark", "esp_sa"), []byte(sas.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", file, "-Y", "esp", "-o", "esp.enable_encryption_decode:TRUE",
		"-T", "fields", "-e", "frame.protocols", "-e", "vxlan.vni", "-e", "data.data", "-e", "udp.payload")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+conf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	decrypted, marked := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) >= 2 && strings.Contains(f[0], "esp:udp:vxlan") && f[1] == fmt.Sprint(vni) {
			decrypted++
			if strings.Contains(line, hex.EncodeToString([]byte(marker))) {
				marked++
			}
		}
	}
	t.Logf("tshark with the exported SAs: %d ESP packets decrypted to VXLAN VNI %d, %d with the marker", decrypted, vni, marked)
	if decrypted < 10 || marked < 5 {
		t.Fatalf("tshark decrypted %d ESP packets to VNI %d (%d with the marker), want >= 10 (>= 5):\n%s", decrypted, vni, marked, out)
	}
}

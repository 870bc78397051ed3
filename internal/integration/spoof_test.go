package integration

import (
	"context"
	endian "encoding/binary" // "binary" is the vxswitch executable here
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// Test-only EtherTypes (IEEE 802 local experimental).
const (
	etherTypeSpoof = 0x88b5 // frames an endpoint forges
	etherTypeProbe = 0x88b6 // frames a removed host keeps sending
)

// TestSpoof: an endpoint that forges another endpoint's MAC or address is
// stopped at its own host and counted there, and a host removed from the
// cluster has its VXLAN packets dropped within a second of the commit.
func TestSpoof(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3})
	h1, h2, h3 := c.Agents[0], c.Agents[1], c.Agents[2]
	c1, c2, c3 := c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]
	ping(t, c1.NS, c2.IP.String(), 2)
	ping(t, c1.NS, c3.IP.String(), 2)

	t.Run("forged frames from c1 reach nobody", func(t *testing.T) {
		fd := rawSocket(t, c1.NS, 0)
		mac1, mac2, mac3 := hw(t, c1.MAC), hw(t, c2.MAC), hw(t, c3.MAC)
		frames := []struct {
			name   string
			frame  []byte
			reason string
		}{
			{"c2's MAC as source", ether(bcast, mac2, etherTypeSpoof, []byte("spoofed mac")), "spoofed_mac"},
			{"IPv4 from c3's address", ether(mac2, mac1, 0x0800, ipv4UDP(c3.IP, c2.IP)), "spoofed_ip"},
			{"ARP reply claiming c2's address", ether(bcast, mac1, 0x0806, arpReply(mac1, c2.IP, mac3, c3.IP)), "spoofed_ip"},
		}
		want := map[string]uint64{}
		for _, f := range frames {
			want[f.reason]++
		}
		// Other traffic (an IPv6 router solicitation, say) may reach c2 or
		// c3 while the forged frames are out; a forged frame that got
		// through would show in every attempt.
		var moved error
		for attempt := 1; attempt <= 3; attempt++ {
			b1, b2, b3 := stats(t, h1), stats(t, h2), stats(t, h3)
			for _, f := range frames {
				if _, err := syscall.Write(fd, f.frame); err != nil {
					t.Fatalf("write %s: %v", f.name, err)
				}
			}
			eventually(t, 5*time.Second, "h1 counts the forged frames", func() error {
				d := stats(t, h1).Drops
				for r, n := range want {
					if d[r]-b1.Drops[r] < n {
						return fmt.Errorf("%s moved by %d, want %d", r, d[r]-b1.Drops[r], n)
					}
				}
				return nil
			})
			a1, a2, a3 := stats(t, h1), stats(t, h2), stats(t, h3)
			for r, n := range want {
				if got := a1.Drops[r] - b1.Drops[r]; got != n {
					t.Fatalf("h1's %s drops moved by %d, want exactly %d", r, got, n)
				}
			}
			moved = errors.Join(portTxMoved(b2, a2, c2.Name), portTxMoved(b3, a3, c3.Name))
			if moved == nil {
				break
			}
			t.Logf("attempt %d: %v", attempt, moved)
		}
		if moved != nil {
			t.Fatalf("forged frames reached other endpoints: %v", moved)
		}
		var es []api.FDBEntry
		if err := h1.Client().Get(context.Background(), "/v1/fdb?network=web", &es); err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.MAC == c2.MAC && e.Origin == "learned" {
				t.Errorf("h1 learned c2's MAC from a forged frame: %+v", e)
			}
		}
		ping(t, c1.NS, c2.IP.String(), 2)
		ping(t, c1.NS, c3.IP.String(), 2)
	})

	t.Run("a removed host's packets are dropped within a second", func(t *testing.T) {
		var nw api.Network
		if err := h1.Client().Get(context.Background(), "/v1/networks/web", &nw); err != nil {
			t.Fatal(err)
		}
		// c1 counts the probe frames delivered to it, and when the last
		// one it got was sent.
		rx := rawSocket(t, c1.NS, etherTypeProbe)
		tv := syscall.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := syscall.SetsockoptTimeval(rx, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var delivered int
		var lastSent time.Time
		stopRx := make(chan struct{})
		rxDone := make(chan struct{})
		go func() {
			defer close(rxDone)
			buf := make([]byte, 2048)
			for {
				select {
				case <-stopRx:
					return
				default:
				}
				n, err := syscall.Read(rx, buf)
				if err != nil || n < 14+8 || endian.BigEndian.Uint16(buf[12:14]) != etherTypeProbe {
					continue
				}
				mu.Lock()
				delivered++
				lastSent = time.Unix(0, int64(endian.BigEndian.Uint64(buf[14:22])))
				mu.Unlock()
			}
		}()
		defer func() { close(stopRx); <-rxDone }()

		// h3 sends VXLAN packets to h1 every millisecond from a plain UDP
		// socket in its namespace: a probe frame to c1 stamped with the
		// time it was sent.
		conn := dialVXLAN(t, h3, h1)
		probeSrc := net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 3}
		send := func() time.Time {
			now := time.Now()
			pkt := vxlanHeader(nw.VNI)
			stamp := endian.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))
			pkt = append(pkt, ether(hw(t, c1.MAC), probeSrc, etherTypeProbe, stamp)...)
			conn.Write(pkt)
			return now
		}
		for i := 0; ; i++ {
			send()
			mu.Lock()
			ok := delivered > 0
			mu.Unlock()
			if ok {
				break
			}
			if i == 5000 {
				t.Fatal("no probe from h3 reached c1 before the removal")
			}
			time.Sleep(time.Millisecond)
		}

		before := stats(t, h1).Drops["not_member"]
		var sentLate int
		stopTx := make(chan time.Time)
		txDone := make(chan int)
		go func() {
			var late time.Time
			n := 0
			for {
				select {
				case late = <-stopTx:
				default:
				}
				if !late.IsZero() && time.Since(late) > time.Second {
					txDone <- n
					return
				}
				if sent := send(); !late.IsZero() && sent.After(late) {
					n++
				}
				time.Sleep(time.Millisecond)
			}
		}()
		if out, err := cli(t, h1, "members", "rm", "h3"); err != nil {
			t.Fatalf("members rm h3: %v: %s", err, out)
		}
		committed := time.Now()
		// Keep sending for 2 s after the commit; what is sent in the
		// second second must all be dropped.
		time.Sleep(time.Second)
		stopTx <- committed.Add(time.Second)
		sentLate = <-txDone
		time.Sleep(200 * time.Millisecond) // let the last packets arrive

		mu.Lock()
		last, got := lastSent, delivered
		mu.Unlock()
		dropped := stats(t, h1).Drops["not_member"] - before
		t.Logf("%d probes delivered, the last sent %v after the commit; %d not_member drops, %d probes sent 1-2 s after the commit",
			got, last.Sub(committed).Round(time.Millisecond), dropped, sentLate)
		if sentLate == 0 {
			t.Fatal("no probes were sent 1-2 s after the commit")
		}
		if last.After(committed.Add(time.Second)) {
			t.Errorf("c1 got a probe sent %v after the commit, want none after 1 s", last.Sub(committed))
		}
		if dropped < uint64(sentLate) {
			t.Errorf("h1's not_member drops moved by %d, want at least the %d probes sent 1-2 s after the commit", dropped, sentLate)
		}
	})
}

// bcast is the Ethernet broadcast address.
var bcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// rawSocket opens an AF_PACKET socket bound to eth0 in netns ns for
// EtherType proto (0 means every protocol) and closes it when the test
// ends. It is created inside the namespace, so it stays there.
func rawSocket(t *testing.T, ns string, proto uint16) int {
	t.Helper()
	if proto == 0 {
		proto = syscall.ETH_P_ALL
	}
	fd := -1
	err := netlab.Do(netlab.NetNSDir+ns, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(proto)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}); err != nil {
			syscall.Close(fd)
			return fmt.Errorf("bind packet socket to eth0: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func hw(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ether builds an Ethernet frame, padded to the 60-byte minimum.
func ether(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	f := append(append(append([]byte(nil), dst...), src...), byte(etherType>>8), byte(etherType))
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// ipv4UDP builds an IPv4/UDP packet (port 9, discard) from src to dst with
// a valid header checksum and no UDP checksum.
func ipv4UDP(src, dst netip.Addr) []byte {
	p := []byte{0x45, 0, 0, 20 + 8 + 6, 0, 1, 0, 0, 64, 17, 0, 0}
	p = append(append(p, src.AsSlice()...), dst.AsSlice()...)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(endian.BigEndian.Uint16(p[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	endian.BigEndian.PutUint16(p[10:12], ^uint16(sum))
	return append(p, 0x30, 0x39, 0, 9, 0, 14, 0, 0, 's', 'p', 'o', 'o', 'f', '!')
}

// arpReply builds an ARP reply (IPv4 over Ethernet, RFC 826) saying that
// spa is at sha, addressed to tha/tpa.
func arpReply(sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	a := []byte{0, 1, 0x08, 0, 6, 4, 0, 2}
	a = append(append(a, sha...), spa.AsSlice()...)
	return append(append(a, tha...), tpa.AsSlice()...)
}

// portTxMoved reports an error when the TAP tx counter of port name moved
// between two stats of its host.
func portTxMoved(before, after api.Stats, name string) error {
	tx := func(s api.Stats) (uint64, bool) {
		for _, p := range s.Ports {
			if p.Name == name {
				return p.TxFrames, true
			}
		}
		return 0, false
	}
	b, ok1 := tx(before)
	a, ok2 := tx(after)
	switch {
	case !ok1 || !ok2:
		return fmt.Errorf("no stats row for port %s", name)
	case a != b:
		return fmt.Errorf("port %s got %d frames", name, a-b)
	}
	return nil
}

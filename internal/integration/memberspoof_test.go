package integration

import (
	"context"
	endian "encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
	"vxswitch/internal/netlab"
)

// TestMemberARPPoisoning: a member host (h3) sends h1's VTEP, from a plain
// UDP socket in its namespace, VXLAN packets whose inner frame is an ARP
// reply to c1 claiming c2's address for c3's MAC (one of h3's own
// endpoints). h1 drops each as spoofed_ip, c1's ARP entry for c2 keeps
// c2's MAC, and c1 still reaches c2 (issue 18, finding 4: only the inner
// source MAC was checked, and c1's ARP cache was poisoned).
func TestMemberARPPoisoning(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3})
	h1, h3 := c.Agents[0], c.Agents[2]
	c1, c2, c3 := c.Endpoints[0], c.Endpoints[1], c.Endpoints[2]
	ping(t, c1.NS, c2.IP.String(), 2) // c1 has an ARP entry for c2
	var nw api.Network
	if err := h1.Client().Get(context.Background(), "/v1/networks/web", &nw); err != nil {
		t.Fatal(err)
	}
	conn := dialVXLAN(t, h3, h1)
	mac1, mac3 := hw(t, c1.MAC), hw(t, c3.MAC)
	pkt := append(vxlanHeader(nw.VNI), ether(mac1, mac3, 0x0806, arpReply(mac3, c2.IP, mac1, c1.IP))...)

	// Linux ignores an ARP reply that would change an entry updated less
	// than locktime (1 s by default) ago; the attacker can simply wait.
	time.Sleep(1500 * time.Millisecond)
	const sent = 5
	before := stats(t, h1).Drops["spoofed_ip"]
	for range sent {
		if _, err := conn.Write(pkt); err != nil {
			t.Fatalf("send forged VXLAN packet: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // c1 has handled what reached it
	neigh := run(t, c1.NS, "ip", "neigh", "show", c2.IP.String(), "dev", "eth0")
	if strings.Contains(neigh, c3.MAC) || !strings.Contains(neigh, c2.MAC) {
		t.Errorf("c1's ARP entry for c2 (%s) is %q; want c2's MAC %s, not c3's %s", c2.IP, neigh, c2.MAC, c3.MAC)
	}
	eventually(t, 5*time.Second, "h1 counts the forged ARP replies", func() error {
		if got := stats(t, h1).Drops["spoofed_ip"] - before; got != sent {
			return fmt.Errorf("spoofed_ip moved by %d, want %d", got, sent)
		}
		return nil
	})
	ping(t, c1.NS, c2.IP.String(), 1)
}

// dialVXLAN returns a plain UDP socket in from's host namespace connected to
// to's VXLAN port, closed when the test ends: what a member host (or anyone
// on the underlay) can send without its agent.
func dialVXLAN(t *testing.T, from, to *lab.Agent) *net.UDPConn {
	t.Helper()
	var conn *net.UDPConn
	err := netlab.Do(from.Host.NSPath, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: to.Host.Addr.AsSlice(), Port: 4789})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// vxlanHeader returns a VXLAN header for vni with the I flag set (the VNI
// is valid, RFC 7348 section 5).
func vxlanHeader(vni uint32) []byte {
	h := make([]byte, 8)
	h[0] = 0x08
	endian.BigEndian.PutUint32(h[4:8], vni<<8)
	return h
}

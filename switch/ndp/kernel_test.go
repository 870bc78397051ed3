package ndp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"vxswitch/header"
	"vxswitch/internal/netlab"
	"vxswitch/tap"
)

// These tests put the answers in front of a real Linux IPv6 stack: a TAP
// in a namespace of the test's own, whose other end the test plays as the
// switch would.

// kernelTAP makes a namespace with a TAP eth0 at macA (MTU 1400, up, no
// address yet) and returns the namespace's name and the open TAP; both go
// when the test ends.
func kernelTAP(t *testing.T) (string, *tap.TAP) {
	t.Helper()
	netlab.RequireRoot(t)
	var b [3]byte
	rand.Read(b[:])
	ns := "vxndp" + hex.EncodeToString(b[:])
	path, err := netlab.AddNS(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netlab.DelNS(ns); err != nil {
			t.Errorf("delete netns: %v", err)
		}
	})
	dev, err := tap.Create(tap.Config{NetNS: path, Name: "eth0", MAC: net.HardwareAddr(macA[:]), MTU: 1400})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return ns, dev
}

// inNS runs a command in ns and fails the test if it fails.
func inNS(t *testing.T, ns string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := netlab.Exec(ctx, ns, args[0], args[1:]...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// readUntil reads frames from dev until match returns true for one, and
// returns it; after 10 s it closes dev and fails the test.
func readUntil(t *testing.T, dev *tap.TAP, what string, match func(frame []byte) bool) []byte {
	t.Helper()
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := dev.Read(buf)
			if err != nil {
				got <- nil
				return
			}
			if match(buf[:n]) {
				got <- buf[:n]
				return
			}
		}
	}()
	select {
	case f := <-got:
		if f == nil {
			t.Fatalf("%s: the TAP closed first", what)
		}
		return f
	case <-time.After(10 * time.Second):
		dev.Close()
		<-got
		t.Fatalf("%s: no such frame within 10 s", what)
		return nil
	}
}

// solicitationFor reports whether frame is a neighbour solicitation for
// target that ParseSolicitation accepts.
func solicitationFor(target netip.Addr) func([]byte) bool {
	return func(frame []byte) bool {
		eth := header.Ethernet(frame)
		if !eth.IsValid() || eth.Type() != header.EtherTypeIPv6 {
			return false
		}
		sol, ok := ParseSolicitation(eth.Payload(), eth.Source())
		return ok && sol.Target == target
	}
}

// answer writes into dev the frame the switch sends for the solicitation
// in frame when addrs says who owns what.
func answer(t *testing.T, dev *tap.TAP, frame []byte) {
	t.Helper()
	eth := header.Ethernet(frame)
	sol, _ := ParseSolicitation(eth.Payload(), eth.Source())
	mac, ok := Lookup(sol, resolver, macRes, addrs)
	if !ok {
		t.Fatalf("no answer for %+v", sol)
	}
	out := make([]byte, header.EthernetLen+AdvertisementLen)
	o := header.Ethernet(out)
	o.SetDestination(PutAdvertisement(out[header.EthernetLen:], sol, mac))
	o.SetSource(mac)
	o.SetOuterType(header.EtherTypeIPv6)
	if _, err := dev.Write(out); err != nil {
		t.Fatal(err)
	}
}

// TestKernelResolvesWithAnswer: the kernel of an endpoint that pings
// another endpoint's address takes the switch's advertisement and sends
// the echo request to the MAC it names.
func TestKernelResolvesWithAnswer(t *testing.T) {
	ns, dev := kernelTAP(t)
	inNS(t, ns, "ip", "-6", "addr", "add", ipA.String()+"/64", "dev", "eth0", "nodad")
	ping := exec.Command("ip", "netns", "exec", ns, "ping", "-6", "-c", "20", "-i", "0.5", "-W", "1", ipR.String())
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ping.Process.Kill(); ping.Wait() })

	answer(t, dev, readUntil(t, dev, "solicitation for "+ipR.String(), solicitationFor(ipR)))
	readUntil(t, dev, "echo request to "+macR.String(), func(frame []byte) bool {
		eth := header.Ethernet(frame)
		if !eth.IsValid() || eth.Destination() != macR || eth.Type() != header.EtherTypeIPv6 {
			return false
		}
		ip := header.IPv6(eth.Payload())
		return ip.IsValid() && ip.Destination() == ipR && ip.NextHeader() == header.ProtoICMPv6 &&
			header.ICMPv6(ip.Payload()).IsValid() && header.ICMPv6(ip.Payload()).Type() == header.ICMPv6EchoRequest
	})
	if out := inNS(t, ns, "ip", "-6", "neigh", "show", ipR.String(), "dev", "eth0"); !strings.Contains(out, macR.String()) {
		t.Errorf("neighbour cache %q, want %s at %s", out, ipR, macR)
	}
}

// TestKernelDADFails: an endpoint that adds another endpoint's address
// (with duplicate address detection) gets the switch's advertisement for
// its probe and marks the address dadfailed, as RFC 4862 section 5.4.5
// asks.
func TestKernelDADFails(t *testing.T) {
	ns, dev := kernelTAP(t)
	inNS(t, ns, "ip", "-6", "addr", "add", ipR.String()+"/64", "dev", "eth0")
	answer(t, dev, readUntil(t, dev, "DAD probe for "+ipR.String(), func(frame []byte) bool {
		if !solicitationFor(ipR)(frame) {
			return false
		}
		return header.IPv6(header.Ethernet(frame).Payload()).Source().IsUnspecified()
	}))
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := inNS(t, ns, "ip", "-6", "addr", "show", "dev", "eth0")
		if strings.Contains(out, ipR.String()) && strings.Contains(out, "dadfailed") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("address not dadfailed within 10 s:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

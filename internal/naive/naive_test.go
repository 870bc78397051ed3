package naive

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"vxswitch/internal/netlab"
)

func TestConfigErrors(t *testing.T) {
	good := Config{
		TAP: "nvx", Addr: netip.MustParsePrefix("10.98.0.1/24"), MTU: 1450,
		Listen: netip.MustParseAddrPort("10.77.0.1:4791"), Peer: netip.MustParseAddrPort("10.77.0.2:4791"), VNI: 998,
	}
	if err := good.validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no TAP", func(c *Config) { c.TAP = "" }, "no TAP name"},
		{"no address", func(c *Config) { c.Addr = netip.Prefix{} }, "IPv4 address with its prefix length"},
		{"IPv6 address", func(c *Config) { c.Addr = netip.MustParsePrefix("fd00::1/64") }, "IPv4 address"},
		{"MTU", func(c *Config) { c.MTU = 10 }, "minus 50"},
		{"no peer", func(c *Config) { c.Peer = netip.AddrPort{} }, "peer UDP address"},
		{"VNI", func(c *Config) { c.VNI = 1 << 24 }, "24 bits"},
	} {
		c := good
		tc.edit(&c)
		err := c.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestRelayTalksToKernelVXLAN runs the relay on one host and the kernel's
// vxlan device on the other: pings cross in both directions, a datagram
// that is not VXLAN is counted and dropped, and Close removes the TAP.
func TestRelayTalksToKernelVXLAN(t *testing.T) {
	lab := netlab.NewT(t, "vxnv", netlab.Options{Hosts: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h1, h2 := lab.Hosts[0], lab.Hosts[1]
	const vni, port = 998, 4791
	err := h2.KernelVTEP(netlab.VTEPOptions{Name: "kvx", VNI: vni, Port: port, Peers: []netip.Addr{h1.Addr}, Addr: netip.MustParsePrefix("10.98.0.2/24")})
	if err != nil {
		t.Fatal(err)
	}

	cfg := Config{
		TAP: "nvx", Addr: netip.MustParsePrefix("10.98.0.1/24"), MTU: h1.MTU - 50,
		Listen: netip.AddrPortFrom(h1.Addr, port), Peer: netip.AddrPortFrom(h2.Addr, port), VNI: vni,
	}
	var r *Relay
	if err := netlab.Do(h1.NSPath, func() (err error) { r, err = New(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- r.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	if out, err := netlab.Exec(ctx, h1.NS, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.98.0.2"); err != nil {
		t.Fatalf("relay to kernel: %v\n%s", err, out)
	}
	if out, err := netlab.Exec(ctx, h2.NS, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1400", "10.98.0.1"); err != nil {
		t.Fatalf("kernel to relay, 1400-byte pings: %v\n%s", err, out)
	}

	// A datagram that is not VXLAN, sent from h2 to the relay's port.
	err = netlab.Do(h2.NSPath, func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(cfg.Listen))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("not a VXLAN header"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); r.Dropped() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Dropped() = %d after a datagram that is not VXLAN, want 1", r.Dropped())
		}
	}

	stop()
	if err := <-done; err != nil {
		t.Errorf("Run after its context ended: %v, want nil", err)
	}
	done <- nil // for the deferred check
	if out, err := netlab.Exec(ctx, h1.NS, "ip", "link", "show", "nvx"); err == nil {
		t.Errorf("TAP nvx still exists after Run returned:\n%s", out)
	}
}

package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPrefix returns a fresh prefix for one test's namespaces.
func testPrefix(t *testing.T) string {
	t.Helper()
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "vxt" + hex.EncodeToString(b[:]) + "-"
}

// newLab builds a lab that is removed when the test ends.
func newLab(t *testing.T, opt Options) *Lab {
	t.Helper()
	return NewT(t, "vxt", opt)
}

// namespaces lists the namespace names starting with prefix.
func namespaces(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(NetNSDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func ping(ctx context.Context, ns string, dst netip.Addr) error {
	_, err := Exec(ctx, ns, "ping", "-c1", "-W1", dst.String())
	return err
}

func TestLabUnderlay(t *testing.T) {
	l := newLab(t, Options{Hosts: 2})
	ctx := context.Background()

	if got := len(namespaces(t, l.Prefix)); got != 3 {
		t.Fatalf("lab has %d namespaces, want 3 (ul, h1, h2)", got)
	}
	h1, h2 := l.Host("h1"), l.Host("h2")
	if h1 == nil || h2 == nil {
		t.Fatalf("hosts %v", l.Hosts)
	}
	if want := netip.MustParseAddr("10.77.0.2"); h2.Addr != want {
		t.Errorf("h2 address %s, want %s", h2.Addr, want)
	}
	if h1.NSPath != NetNSDir+l.Prefix+"h1" {
		t.Errorf("h1 path %q", h1.NSPath)
	}
	out, err := Exec(ctx, h1.NS, "ip", "-o", "link", "show", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "mtu 1500") || !strings.Contains(string(out), "UP") {
		t.Errorf("eth0 in h1: %s", out)
	}
	if err := ping(ctx, h1.NS, h2.Addr); err != nil {
		t.Fatalf("h1 -> h2 over the underlay: %v", err)
	}

	if err := l.Cut(h2); err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, h1.NS, h2.Addr); err == nil {
		t.Fatal("ping crossed a cut port")
	}
	if err := l.Heal(h2); err != nil {
		t.Fatal(err)
	}
	if err := ping(ctx, h1.NS, h2.Addr); err != nil {
		t.Fatalf("after Heal: %v", err)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left := namespaces(t, l.Prefix); len(left) != 0 {
		t.Fatalf("after Close: %v still exist", left)
	}
}

func TestNewFailureRemovesEverything(t *testing.T) {
	RequireRoot(t)
	prefix := testPrefix(t)
	t.Cleanup(func() { Cleanup(prefix) })
	// A namespace already named like host h2 makes New fail halfway,
	// after the underlay and h1 exist.
	if _, err := AddNS(prefix + "h2"); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Prefix: prefix, Hosts: 2}); err == nil {
		t.Fatal("New over an existing namespace: no error")
	}
	if left := namespaces(t, prefix); len(left) != 0 {
		t.Fatalf("failed New left %v behind", left)
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
		want string
	}{
		{"no prefix", Options{Hosts: 1}, "empty prefix"},
		{"bad prefix", Options{Prefix: "a b", Hosts: 1}, "may contain only"},
		{"no hosts", Options{Prefix: "x-"}, "at least 1"},
		{"link-local", Options{Prefix: "x-", Hosts: 1, Subnet: netip.MustParsePrefix("fe80::/64")}, "unique-local IPv6"},
		{"small ipv6 subnet", Options{Prefix: "x-", Hosts: 3, Subnet: netip.MustParsePrefix("fd77::/127")}, "room for 0 hosts"},
		{"small subnet", Options{Prefix: "x-", Hosts: 3, Subnet: netip.MustParsePrefix("10.0.0.0/30")}, "room for 2 hosts"},
		{"mtu", Options{Prefix: "x-", Hosts: 1, MTU: 100}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%+v) = %v, want error containing %q", tt.opt, err, tt.want)
			}
		})
	}
	if err := Cleanup(""); err == nil {
		t.Error("Cleanup(\"\") did not refuse")
	}
}

func TestCleanupAfterCrash(t *testing.T) {
	RequireRoot(t)
	prefix := testPrefix(t)
	t.Cleanup(func() { Cleanup(prefix) })
	// A lab whose owner never called Close, plus a stray endpoint namespace.
	if _, err := New(Options{Prefix: prefix, Hosts: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := AddNS(prefix + "ep"); err != nil {
		t.Fatal(err)
	}
	if got := len(namespaces(t, prefix)); got != 4 {
		t.Fatalf("%d namespaces, want 4", got)
	}
	// What an agent writes for an endpoint in a named namespace.
	conf := filepath.Join(EtcNetNSDir, prefix+"ep")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "resolv.conf"), []byte("nameserver 10.20.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Cleanup(prefix); err != nil {
		t.Fatal(err)
	}
	if left := namespaces(t, prefix); len(left) != 0 {
		t.Fatalf("after Cleanup: %v", left)
	}
	if _, err := os.Stat(conf); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Cleanup, %s: %v; want it removed", conf, err)
	}
	if err := DelNS(prefix + "ep"); err != nil {
		t.Errorf("DelNS of a gone namespace: %v", err)
	}
}

func TestLabUnderlayIPv6(t *testing.T) {
	l := newLab(t, Options{Hosts: 2, Subnet: netip.MustParsePrefix("fd77::/64")})
	ctx := context.Background()
	h1, h2 := l.Host("h1"), l.Host("h2")
	if want := netip.MustParseAddr("fd77::2"); h2.Addr != want {
		t.Errorf("h2 address %s, want %s", h2.Addr, want)
	}
	if !l.IPv6() || l.Overhead() != 70 {
		t.Errorf("IPv6() = %v, Overhead() = %d; want true, 70", l.IPv6(), l.Overhead())
	}
	// nodad: the address is usable at once, never tentative.
	out, err := Exec(ctx, h1.NS, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "fd77::1/64") || strings.Contains(string(out), "tentative") {
		t.Errorf("eth0 of h1: %s; want fd77::1/64, not tentative", out)
	}
	if err := ping(ctx, h1.NS, h2.Addr); err != nil {
		t.Fatalf("h1 -> h2 over the IPv6 underlay: %v", err)
	}
}

func TestKernelVTEP(t *testing.T) {
	for _, tt := range []struct {
		subnet string
		mtu    string
	}{
		{"10.77.0.0/24", "mtu 1450"},
		{"fd77::/64", "mtu 1430"},
	} {
		t.Run(tt.subnet, func(t *testing.T) { testKernelVTEP(t, netip.MustParsePrefix(tt.subnet), tt.mtu) })
	}
}

func testKernelVTEP(t *testing.T, subnet netip.Prefix, mtu string) {
	l := newLab(t, Options{Hosts: 2, Subnet: subnet})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	overlay := map[*Host]netip.Prefix{
		h1: netip.MustParsePrefix("192.168.42.1/24"),
		h2: netip.MustParsePrefix("192.168.42.2/24"),
	}
	for h, addr := range overlay {
		peer := h2.Addr
		if h == h2 {
			peer = h1.Addr
		}
		err := h.KernelVTEP(VTEPOptions{Name: "vx42", VNI: 42, Peers: []netip.Addr{peer}, Addr: addr, MAC: "02:00:00:00:42:0" + h.Name[1:]})
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
	}
	ctx := context.Background()
	out, err := Exec(ctx, h1.NS, "ip", "-d", "-o", "link", "show", "vx42")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{mtu, "vxlan id 42", "local " + h1.Addr.String(), "dstport 4789", "nolearning", "02:00:00:00:42:01"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("vx42 on h1 lacks %q: %s", want, out)
		}
	}
	if err := ping(ctx, h1.NS, overlay[h2].Addr()); err != nil {
		t.Fatalf("ping over the kernel overlay: %v", err)
	}

	if err := h1.KernelVTEP(VTEPOptions{VNI: 0}); err == nil {
		t.Error("VNI 0 accepted")
	}
	// A failing setup (bad MAC) must remove the device it created.
	if err := h1.KernelVTEP(VTEPOptions{Name: "vxbad", VNI: 7, MAC: "zz"}); err == nil {
		t.Fatal("bad MAC accepted")
	}
	if _, err := Exec(ctx, h1.NS, "ip", "link", "show", "vxbad"); err == nil {
		t.Error("vxbad left behind after a failed KernelVTEP")
	}
}

func TestDoSocketsStayInNamespace(t *testing.T) {
	l := newLab(t, Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]

	var ln net.Listener
	err := Do(h2.NSPath, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(h2.Addr.String(), "0"))
		return err
	})
	if err != nil {
		t.Fatalf("listen in h2: %v", err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()

	err = Do(h1.NSPath, func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		return c.Close()
	})
	if err != nil {
		t.Fatalf("dial from h1: %v", err)
	}
	if err := <-accepted; err != nil {
		t.Fatalf("accept: %v", err)
	}

	// The caller's namespace does not have h2's address, so the same
	// listen outside Do must fail: Do really switched namespaces.
	if l2, err := net.Listen("tcp", net.JoinHostPort(h2.Addr.String(), "0")); err == nil {
		l2.Close()
		t.Fatal("listen on h2's address worked outside Do")
	}
	if err := Do(NetNSDir+l.Prefix+"missing", func() error { return nil }); err == nil {
		t.Error("Do into a missing namespace: no error")
	}
}

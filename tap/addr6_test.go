package tap

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestCreateDualStack gives the TAP an IPv6 address beside the IPv4 one:
// it is there at once, without duplicate address detection (not
// tentative), and Open after Close keeps exactly one copy of it.
func TestCreateDualStack(t *testing.T) {
	_, path := newNS(t)
	addr6 := netip.MustParsePrefix("fd20::2/64")
	cfg := Config{NetNS: path, Name: "eth0", MAC: epMAC, MTU: 1400, Addr: epAddr, Addr6: addr6}
	tp, err := Create(cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { tp.Close() })

	check := func(when string) {
		t.Helper()
		h := handleIn(t, path)
		link, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := h.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range addrs {
			ip, _ := netip.AddrFromSlice(a.IP)
			bits, _ := a.Mask.Size()
			if ip != addr6.Addr() || bits != addr6.Bits() {
				continue
			}
			n++
			if a.Flags&unix.IFA_F_NODAD == 0 || a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
				t.Errorf("%s: %s flags %#x, want nodad and neither tentative nor dadfailed", when, addr6, a.Flags)
			}
		}
		if n != 1 {
			t.Errorf("%s: %d copies of %s in %v, want 1", when, n, addr6, addrs)
		}
		if v4, _ := h.AddrList(link, netlink.FAMILY_V4); !hasAddr(v4, epAddr) {
			t.Errorf("%s: IPv4 addresses %v, want %s", when, v4, epAddr)
		}
	}
	check("after Create")
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	tp, err = Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tp.Close() })
	check("after Open")
}

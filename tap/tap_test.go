package tap

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vxswitch/internal/netlab"
)

var (
	agentMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xfe} // the switch side
	epMAC    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02} // the endpoint's eth0
	epAddr   = netip.MustParsePrefix("10.9.0.2/24")
)

// arpRequest is "who has 10.9.0.2? tell 10.9.0.1 (02:00:00:00:00:fe)".
var arpRequest = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination: broadcast
	0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, // source: agentMAC
	0x08, 0x06, // EtherType ARP
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet, IPv4, lengths 6 and 4
	0x00, 0x01, // request
	0x02, 0x00, 0x00, 0x00, 0x00, 0xfe, // sender MAC
	10, 9, 0, 1, // sender IP
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC: unknown
	10, 9, 0, 2, // target IP
}

// isARPReply reports whether frame is the endpoint's answer to arpRequest.
func isARPReply(frame []byte) bool {
	return len(frame) >= 42 &&
		bytes.Equal(frame[0:6], agentMAC) &&
		frame[12] == 0x08 && frame[13] == 0x06 &&
		frame[20] == 0x00 && frame[21] == 0x02 &&
		bytes.Equal(frame[22:28], epMAC) &&
		bytes.Equal(frame[28:32], []byte{10, 9, 0, 2})
}

// newNS creates a namespace for one test and removes it when the test ends.
func newNS(t *testing.T) (name, path string) {
	t.Helper()
	netlab.RequireRoot(t)
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name = "vxt" + hex.EncodeToString(b[:]) + "-ep"
	path, err := netlab.AddNS(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netlab.DelNS(name); err != nil {
			t.Errorf("delete netns: %v", err)
		}
	})
	return name, path
}

// create makes the endpoint's TAP in the namespace at path; it is closed
// when the test ends (the namespace going away deletes the device).
func create(t *testing.T, path string) *TAP {
	t.Helper()
	tp, err := Create(Config{NetNS: path, Name: "eth0", MAC: epMAC, MTU: 1400, Addr: epAddr})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp
}

// handleIn returns a netlink handle inside the namespace at path, closed
// at the end of the test.
func handleIn(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close() // the handle's socket stays in the namespace
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// links returns the names of all links in the namespace at path.
func links(t *testing.T, path string) []string {
	t.Helper()
	h := handleIn(t, path)
	all, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range all {
		names = append(names, l.Attrs().Name)
	}
	return names
}

// readMatch reads frames from tp until one satisfies match. If none comes
// within a few seconds it closes tp (ending the read) and fails the test.
func readMatch(t *testing.T, tp *TAP, match func([]byte) bool) {
	t.Helper()
	found := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := tp.Read(buf)
			if err != nil {
				found <- err
				return
			}
			if match(buf[:n]) {
				found <- nil
				return
			}
		}
	}()
	select {
	case err := <-found:
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	case <-time.After(5 * time.Second):
		tp.Close()
		<-found
		t.Fatal("expected frame never arrived")
	}
}

// arpExchange asks the endpoint's kernel for its MAC through tp and waits
// for the answer: a frame went in and one came out.
func arpExchange(t *testing.T, tp *TAP) {
	t.Helper()
	if _, err := tp.Write(arpRequest); err != nil {
		t.Fatalf("write ARP request: %v", err)
	}
	readMatch(t, tp, isARPReply)
}

func TestCreateConfiguresDevice(t *testing.T) {
	_, path := newNS(t)
	tp := create(t, path)
	if tp.Name() != "eth0" || tp.NetNS() != path {
		t.Errorf("Name %q NetNS %q", tp.Name(), tp.NetNS())
	}

	h := handleIn(t, path)
	link, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 not in the namespace: %v", err)
	}
	a := link.Attrs()
	if link.Type() != "tuntap" {
		t.Errorf("type %q, want tuntap", link.Type())
	}
	if a.HardwareAddr.String() != epMAC.String() {
		t.Errorf("MAC %s, want %s", a.HardwareAddr, epMAC)
	}
	if a.MTU != 1400 {
		t.Errorf("MTU %d, want 1400", a.MTU)
	}
	if a.Flags&net.FlagUp == 0 {
		t.Error("eth0 is not up")
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !hasAddr(addrs, epAddr) {
		t.Errorf("addresses %v, want %s", addrs, epAddr)
	}
	for _, name := range links(t, path) {
		if strings.HasPrefix(name, "vxt") {
			t.Errorf("temporary name %s left in the namespace", name)
		}
	}

	arpExchange(t, tp)
}

func TestReopenAfterClose(t *testing.T) {
	_, path := newNS(t)
	tp := create(t, path)
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Read(make([]byte, 100)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}

	// The device persists without its file descriptor; Open finds it and
	// re-applies a changed MTU.
	tp2, err := Open(Config{NetNS: path, Name: "eth0", MAC: epMAC, MTU: 1300, Addr: epAddr})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tp2.Close() })
	arpExchange(t, tp2)

	out, err := netlab.Exec(t.Context(), path[len(netlab.NetNSDir):], "ip", "-o", "link", "show", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "mtu 1300") {
		t.Errorf("MTU not re-applied: %s", out)
	}

	// A second attachment while tp2 holds the device is refused.
	if tp3, err := Open(Config{NetNS: path, Name: "eth0"}); err == nil {
		tp3.Close()
		t.Fatal("second Open of a busy TAP succeeded")
	} else if !strings.Contains(err.Error(), "busy") {
		t.Errorf("second Open: %v, want a 'busy' error", err)
	}
}

func TestOpenErrors(t *testing.T) {
	name, path := newNS(t)
	if _, err := Open(Config{NetNS: path, Name: "eth0"}); err == nil || !strings.Contains(err.Error(), "no interface eth0") {
		t.Errorf("Open of a missing TAP: %v", err)
	}
	if _, err := netlab.Exec(t.Context(), name, "ip", "link", "add", "eth0", "type", "bridge"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{NetNS: path, Name: "eth0"}); err == nil || !strings.Contains(err.Error(), "not a TAP") {
		t.Errorf("Open of a bridge: %v", err)
	}
	if got := links(t, path); len(got) != 2 {
		t.Errorf("links after failed Opens: %v, want lo and eth0", got)
	}
}

func TestCreateExistingName(t *testing.T) {
	_, path := newNS(t)
	first := create(t, path)
	_, err := Create(Config{NetNS: path, Name: "eth0"})
	want := "interface eth0 already exists in netns " + path + ": choose another --ifname"
	if err == nil || err.Error() != want {
		t.Fatalf("Create over eth0: %v, want %q", err, want)
	}
	if got := links(t, path); len(got) != 2 {
		t.Errorf("links after the failed Create: %v, want lo and eth0", got)
	}
	arpExchange(t, first) // the first device is untouched
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	_, path := newNS(t)
	// The kernel refuses this MTU only after the device was created, moved
	// and renamed, so Create must undo all of it.
	_, err := Create(Config{NetNS: path, Name: "eth0", MTU: 1 << 20})
	if err == nil {
		t.Fatal("MTU 1048576 accepted")
	}
	if !strings.Contains(err.Error(), "set MTU") {
		t.Errorf("error %v, want one about the MTU", err)
	}
	if got := links(t, path); len(got) != 1 {
		t.Errorf("links after the failed Create: %v, want only lo", got)
	}
	for _, name := range links(t, "/proc/self/ns/net") {
		if strings.HasPrefix(name, "vxt") {
			t.Errorf("temporary device %s left in the caller's namespace", name)
		}
	}
}

func TestDelete(t *testing.T) {
	name, path := newNS(t)
	tp := create(t, path)
	tp.Close()
	if err := Delete(path, "eth0"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := links(t, path); len(got) != 1 {
		t.Errorf("links after Delete: %v, want only lo", got)
	}
	if _, err := Open(Config{NetNS: path, Name: "eth0"}); err == nil {
		t.Error("Open after Delete succeeded")
	}
	if err := Delete(path, "eth0"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := Delete(netlab.NetNSDir+name+"-missing", "eth0"); err != nil {
		t.Errorf("Delete in a missing netns: %v", err)
	}
	if _, err := netlab.Exec(t.Context(), name, "ip", "link", "add", "dum0", "type", "bridge"); err != nil {
		t.Fatal(err)
	}
	if err := Delete(path, "dum0"); err == nil || !strings.Contains(err.Error(), "not a TAP") {
		t.Errorf("Delete of a bridge: %v", err)
	}
}

func TestOwnNamespace(t *testing.T) {
	_, path := newNS(t)
	// NetNS "" means the caller's namespace: run the caller inside the
	// test's namespace so nothing touches the machine's own.
	err := netlab.Do(path, func() error {
		tp, err := Create(Config{Name: "tap7", MAC: epMAC, Addr: epAddr})
		if err != nil {
			return err
		}
		tp.Close()
		return Delete("", "tap7")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := links(t, path); len(got) != 1 {
		t.Errorf("links: %v, want only lo", got)
	}
}

func TestNamespaceDeletedMeansGone(t *testing.T) {
	name, path := newNS(t)
	tp := create(t, path)
	read := make(chan error, 1)
	go func() {
		_, err := tp.Read(make([]byte, 2048))
		for err == nil { // frames the endpoint sent before it went away
			_, err = tp.Read(make([]byte, 2048))
		}
		read <- err
	}()
	if err := netlab.DelNS(name); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if !errors.Is(err, ErrGone) {
			t.Fatalf("Read after the netns was deleted: %v, want ErrGone", err)
		}
	case <-time.After(5 * time.Second):
		tp.Close()
		<-read
		t.Fatal("Read did not return after the netns was deleted")
	}
	if _, err := tp.Write(arpRequest); !errors.Is(err, ErrGone) {
		t.Errorf("Write after the netns was deleted: %v, want ErrGone", err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	_, path := newNS(t)
	tp := create(t, path)
	// The reader signals after the ARP reply; its next Read then waits
	// for a frame that never comes, until Close.
	replied := make(chan struct{})
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		signalled := false
		for {
			n, err := tp.Read(buf)
			if err != nil {
				read <- err
				return
			}
			if isARPReply(buf[:n]) && !signalled {
				close(replied)
				signalled = true
			}
		}
	}()
	if _, err := tp.Write(arpRequest); err != nil {
		t.Fatal(err)
	}
	select {
	case <-replied:
	case err := <-read:
		t.Fatalf("read: %v", err)
	case <-time.After(5 * time.Second):
		tp.Close()
		t.Fatal("no ARP reply")
	}
	closeUnblocks(t, tp, read, "Read")
}

// closeUnblocks closes tp and checks that the reader blocked in what
// (Read, ReadVnet), which sends its error to read, ends with os.ErrClosed
// within 5 s.
func closeUnblocks(t *testing.T, tp *TAP, read <-chan error, what string) {
	t.Helper()
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("%s after Close: %v, want os.ErrClosed", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Close did not unblock %s", what)
	}
}

func TestResolveNetNS(t *testing.T) {
	name, path := newNS(t)
	tests := []struct {
		in, want, err string
	}{
		{in: name, want: path},
		{in: path, want: path},
		{in: "/proc/self/ns/net", want: "/proc/self/ns/net"},
		{in: "", err: "empty netns"},
		{in: "..", err: "invalid netns name"},
		{in: "vxt-no-such-ns", err: `netns "vxt-no-such-ns" not found: create it with 'ip netns add vxt-no-such-ns'`},
		{in: "/no/such/ns", err: `netns path "/no/such/ns" not found`},
	}
	for _, tt := range tests {
		got, err := ResolveNetNS(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ResolveNetNS(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ResolveNetNS(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", Config{}, "empty interface name"},
		{"long name", Config{Name: "eth0123456789012"}, "longer than 15"},
		{"slash", Config{Name: "a/b"}, "invalid interface name"},
		{"short MAC", Config{Name: "eth0", MAC: net.HardwareAddr{2, 0, 0}}, "6-byte"},
		{"multicast MAC", Config{Name: "eth0", MAC: net.HardwareAddr{1, 0, 0, 0, 0, 1}}, "multicast"},
		{"negative MTU", Config{Name: "eth0", MTU: -1}, "negative"},
		{"IPv6", Config{Name: "eth0", Addr: netip.MustParsePrefix("fd00::2/64")}, "not IPv4"},
		{"IPv4 as Addr6", Config{Name: "eth0", Addr6: netip.MustParsePrefix("10.0.0.2/24")}, "not IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Validation runs before anything touches the system.
			if _, err := Create(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Create: %v, want error containing %q", err, tt.want)
			}
			if _, err := Open(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckTUN(t *testing.T) {
	netlab.RequireRoot(t)
	if err := CheckTUN(); err != nil {
		t.Fatalf("CheckTUN as root: %v", err)
	}
}

// TestOpenRenamedByMAC: a TAP that a container runtime renamed (Docker
// moves "vxd..." into the container as eth0) is found again by its MAC;
// without a MAC, or with another one, Open reports it missing.
func TestOpenRenamedByMAC(t *testing.T) {
	ns, path := newNS(t)
	tp := create(t, path)
	tp.Close()
	if _, err := netlab.Exec(t.Context(), ns, "ip", "link", "set", "eth0", "name", "eth7"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{NetNS: path, Name: "eth0"}); err == nil || !strings.Contains(err.Error(), "no interface eth0") {
		t.Fatalf("Open without MAC of a renamed TAP: %v", err)
	}
	if _, err := Open(Config{NetNS: path, Name: "eth0", MAC: net.HardwareAddr{0x02, 9, 9, 9, 9, 9}}); err == nil {
		t.Fatal("Open with another MAC found a TAP")
	}
	tp2, err := Open(Config{NetNS: path, Name: "eth0", MAC: epMAC, Addr: epAddr})
	if err != nil {
		t.Fatalf("Open by MAC: %v", err)
	}
	t.Cleanup(func() { tp2.Close() })
	if tp2.Name() != "eth7" {
		t.Errorf("Name() = %q, want eth7", tp2.Name())
	}
	arpExchange(t, tp2)
}

// Package netlab builds small test networks out of Linux network namespaces:
// hosts joined by a veth/bridge underlay, plain namespaces for endpoints, and
// kernel VXLAN devices as standard peers. Integration tests and
// 'vxswitch lab' use it. Everything needs root.
//
// Every namespace a Lab creates is named with the lab's prefix, so
// Cleanup(prefix) removes all of it even after a crash. The package shells
// out to iproute2 ('ip', 'bridge') so each step reads like the command an
// operator would type.
package netlab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"vxswitch/nsrun"
	"vxswitch/vxlan"
)

// NetNSDir is where 'ip netns add NAME' keeps the namespace files.
const NetNSDir = "/var/run/netns/"

// EtcNetNSDir holds a directory per named namespace whose files 'ip netns
// exec NAME' bind-mounts over /etc (resolv.conf, for one).
const EtcNetNSDir = "/etc/netns"

// Options describes a lab. The zero value of each field except Prefix and
// Hosts selects the default.
type Options struct {
	// Prefix starts the name of every namespace of the lab, for example
	// "vxt1a2b-". It is required; keep it short and unique per lab.
	Prefix string
	// Hosts is the number of hosts, at least 1.
	Hosts int
	// Subnet is the underlay, IPv4 or IPv6 (like fd77::/64); host i
	// (1-based) gets Subnet.Addr()+i. The zero value means 10.77.0.0/24.
	// IPv6 addresses are added with nodad, so they work at once.
	Subnet netip.Prefix
	// MTU is the underlay MTU of every host's eth0; 0 means 1500.
	MTU int
}

// Lab is a set of hosts in namespaces, joined by the bridge br0 in the
// underlay namespace <Prefix>ul. Its fields are read-only after New. A Lab
// is safe for concurrent use; Close must run once, after the other calls.
type Lab struct {
	// Prefix starts the name of every namespace of the lab.
	Prefix string
	// Underlay is the name of the namespace holding the bridge br0.
	Underlay string
	// Subnet is the underlay subnet.
	Subnet netip.Prefix
	// MTU is the underlay MTU.
	MTU int
	// Hosts are the hosts, Hosts[0] being "h1".
	Hosts []*Host
}

// Host is one simulated machine: a namespace whose eth0 sits on the
// underlay. Its fields are read-only.
type Host struct {
	// Name is the short name, "h1", "h2", ...
	Name string
	// NS is the namespace name, <prefix>h<i>.
	NS string
	// NSPath is the namespace file, /var/run/netns/<NS>.
	NSPath string
	// Addr is the underlay address of eth0.
	Addr netip.Addr
	// MTU is the MTU of eth0.
	MTU int

	port string // veth end on br0, in the underlay namespace
}

// New builds the lab described by opt: the namespace <prefix>ul holding an
// up bridge br0, and for each host i a namespace <prefix>h<i> whose eth0
// (address Subnet.Addr()+i, MTU opt.MTU, up, lo up) is a veth pair with
// port v<i> on br0. On failure everything created is removed.
func New(opt Options) (*Lab, error) {
	if err := validPrefix(opt.Prefix); err != nil {
		return nil, err
	}
	if opt.Hosts < 1 {
		return nil, fmt.Errorf("netlab: %d hosts: a lab needs at least 1", opt.Hosts)
	}
	if !opt.Subnet.IsValid() {
		opt.Subnet = netip.MustParsePrefix("10.77.0.0/24")
	}
	opt.Subnet = opt.Subnet.Masked()
	if opt.Subnet.Addr().Is4In6() || opt.Subnet.Addr().IsLinkLocalUnicast() {
		return nil, fmt.Errorf("netlab: subnet %s: use a plain IPv4 or a unique-local IPv6 prefix, such as 10.77.0.0/24 or fd77::/64", opt.Subnet)
	}
	if free := 1<<min(30, opt.Subnet.Addr().BitLen()-opt.Subnet.Bits()) - 2; opt.Hosts > free {
		return nil, fmt.Errorf("netlab: subnet %s has room for %d hosts, not %d: use a shorter prefix", opt.Subnet, free, opt.Hosts)
	}
	if opt.MTU == 0 {
		opt.MTU = 1500
	}
	if opt.MTU < 1280 || opt.MTU > 65535 {
		return nil, fmt.Errorf("netlab: underlay MTU %d out of range: use 1280..65535", opt.MTU)
	}

	l := &Lab{Prefix: opt.Prefix, Underlay: opt.Prefix + "ul", Subnet: opt.Subnet, MTU: opt.MTU}
	if err := l.build(opt.Hosts); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// build creates the underlay and n hosts.
func (l *Lab) build(n int) error {
	if _, err := AddNS(l.Underlay); err != nil {
		return err
	}
	if err := ip("-n", l.Underlay, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if l.Subnet.Addr().Is6() {
		// Neighbour discovery uses multicast: a snooping bridge could
		// hold solicitations back until it heard MLD reports.
		if err := ip("-n", l.Underlay, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0"); err != nil {
			return err
		}
	}
	if err := ip("-n", l.Underlay, "link", "set", "br0", "up"); err != nil {
		return err
	}
	mtu := strconv.Itoa(l.MTU)
	bits := strconv.Itoa(l.Subnet.Bits())
	addr := l.Subnet.Addr()
	for i := 1; i <= n; i++ {
		addr = addr.Next()
		h := &Host{
			Name: "h" + strconv.Itoa(i),
			NS:   l.Prefix + "h" + strconv.Itoa(i),
			Addr: addr,
			MTU:  l.MTU,
			port: "v" + strconv.Itoa(i),
		}
		path, err := AddNS(h.NS)
		if err != nil {
			return err
		}
		h.NSPath = path
		l.Hosts = append(l.Hosts, h)
		// Both ends are created directly in their namespaces, so no name
		// is ever taken in the caller's namespace.
		if err := ip("link", "add", "eth0", "netns", h.NS, "mtu", mtu, "type", "veth",
			"peer", "name", h.port, "netns", l.Underlay, "mtu", mtu); err != nil {
			return err
		}
		if err := ip(addrAdd(h.NS, addr.String()+"/"+bits, "eth0")...); err != nil {
			return err
		}
		if err := ip("-n", h.NS, "link", "set", "eth0", "up"); err != nil {
			return err
		}
		if err := ip("-n", l.Underlay, "link", "set", h.port, "master", "br0", "up"); err != nil {
			return err
		}
	}
	return nil
}

// addrAdd returns the arguments of 'ip' that add prefix to dev in namespace
// ns; an IPv6 address gets nodad, so it is usable at once instead of after
// duplicate address detection (RFC 4862 section 5.4, about a second).
func addrAdd(ns, prefix, dev string) []string {
	args := []string{"-n", ns, "addr", "add", prefix, "dev", dev}
	if strings.Contains(prefix, ":") {
		args = append(args, "nodad")
	}
	return args
}

// IPv6 tells whether the lab's underlay is IPv6.
func (l *Lab) IPv6() bool { return l.Subnet.Addr().Is6() }

// Overhead is the VXLAN overhead on the lab's underlay: 70 bytes over IPv6,
// 50 over IPv4 (RFC 7348 section 5).
func (l *Lab) Overhead() int { return vxlan.Overhead(l.Subnet.Addr()) }

// Close removes every namespace whose name starts with the lab's prefix:
// the hosts, the underlay, and any namespace the caller added with AddNS
// under the same prefix.
func (l *Lab) Close() error {
	return Cleanup(l.Prefix)
}

// Cut takes h's port on the underlay bridge down: h can no longer reach
// any other host (a network partition).
func (l *Lab) Cut(h *Host) error {
	return l.setPort(h, "down")
}

// Heal brings h's port on the underlay bridge back up after Cut.
func (l *Lab) Heal(h *Host) error {
	return l.setPort(h, "up")
}

func (l *Lab) setPort(h *Host, state string) error {
	if !l.owns(h) {
		return fmt.Errorf("netlab: host %v is not part of lab %q", h, l.Prefix)
	}
	return ip("-n", l.Underlay, "link", "set", h.port, state)
}

func (l *Lab) owns(h *Host) bool {
	for _, x := range l.Hosts {
		if x == h {
			return true
		}
	}
	return false
}

// Host returns the host called name ("h1"), or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// VTEPOptions describes a kernel VXLAN device made by Host.KernelVTEP.
type VTEPOptions struct {
	// Name is the device name; "" means "vx0".
	Name string
	// VNI is the VXLAN network identifier, 1..16777215 (RFC 7348 section 5).
	VNI uint32
	// Port is the UDP destination port; 0 means 4789.
	Port int
	// Peers are the underlay addresses of the other VTEPs. Broadcast and
	// unknown unicast frames are copied to each (head-end replication).
	Peers []netip.Addr
	// Addr is an address with prefix length for the device; zero means none.
	Addr netip.Prefix
	// MAC is the device's MAC address; "" keeps the kernel's random one.
	MAC string
}

// KernelVTEP creates a Linux kernel vxlan device inside h's namespace:
// local address h.Addr (IPv4 or IPv6) over eth0, learning off, MTU h.MTU
// minus the VXLAN overhead of h.Addr's family (50 over IPv4, 70 over IPv6,
// RFC 7348 section 5), an all-zeros FDB entry per peer for flooding, then
// opt.MAC and opt.Addr, and up. On failure the device is removed.
func (h *Host) KernelVTEP(opt VTEPOptions) error {
	if opt.Name == "" {
		opt.Name = "vx0"
	}
	if opt.VNI < 1 || opt.VNI > 1<<24-1 {
		return fmt.Errorf("netlab: VNI %d out of range: use 1..16777215", opt.VNI)
	}
	if opt.Port == 0 {
		opt.Port = 4789
	}
	if opt.Port < 1 || opt.Port > 65535 {
		return fmt.Errorf("netlab: UDP port %d out of range: use 1..65535", opt.Port)
	}
	err := ip("-n", h.NS, "link", "add", opt.Name, "type", "vxlan",
		"id", strconv.FormatUint(uint64(opt.VNI), 10),
		"local", h.Addr.String(), "dev", "eth0",
		"dstport", strconv.Itoa(opt.Port), "nolearning")
	if err != nil {
		return err
	}
	if err := h.setupVTEP(opt); err != nil {
		return errors.Join(err, ip("-n", h.NS, "link", "del", opt.Name))
	}
	return nil
}

func (h *Host) setupVTEP(opt VTEPOptions) error {
	if err := ip("-n", h.NS, "link", "set", opt.Name, "mtu", strconv.Itoa(h.MTU-vxlan.Overhead(h.Addr))); err != nil {
		return err
	}
	if opt.MAC != "" {
		if err := ip("-n", h.NS, "link", "set", opt.Name, "address", opt.MAC); err != nil {
			return err
		}
	}
	for _, p := range opt.Peers {
		if err := run("bridge", "-n", h.NS, "fdb", "append", "00:00:00:00:00:00",
			"dev", opt.Name, "dst", p.String()); err != nil {
			return err
		}
	}
	if opt.Addr.IsValid() {
		if err := ip(addrAdd(h.NS, opt.Addr.String(), opt.Name)...); err != nil {
			return err
		}
	}
	return ip("-n", h.NS, "link", "set", opt.Name, "up")
}

// AddNS creates the namespace name with its loopback up and returns the
// path of its file. On failure the namespace is removed.
func AddNS(name string) (path string, err error) {
	if err := ip("netns", "add", name); err != nil {
		return "", err
	}
	if err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
		return "", errors.Join(err, DelNS(name))
	}
	return NetNSDir + name, nil
}

// DelNS removes the namespace name. It is not an error if it is already
// gone. Processes still inside keep the namespace alive, unnamed.
func DelNS(name string) error {
	err := ip("netns", "del", name)
	if err != nil {
		if _, serr := os.Stat(NetNSDir + name); errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
	}
	return err
}

// Cleanup removes every namespace whose name starts with prefix, ignoring
// ones that disappear meanwhile, and the per-namespace configuration
// directories /etc/netns/NAME of those names ('ip netns del' leaves them;
// agents write resolv.conf files there). prefix must not be empty.
func Cleanup(prefix string) error {
	if prefix == "" {
		return errors.New("netlab: cleanup with an empty prefix would remove every namespace: give the lab prefix")
	}
	entries, err := os.ReadDir(NetNSDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netlab: list namespaces: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			errs = append(errs, DelNS(e.Name()))
		}
	}
	confs, _ := os.ReadDir(EtcNetNSDir)
	for _, e := range confs {
		if strings.HasPrefix(e.Name(), prefix) {
			errs = append(errs, os.RemoveAll(filepath.Join(EtcNetNSDir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// Exec runs the command name with args inside the namespace ns
// ('ip netns exec') and returns its combined output. When the command fails
// the error includes that output.
func Exec(ctx context.Context, ns string, name string, args ...string) ([]byte, error) {
	argv := append([]string{"netns", "exec", ns, name}, args...)
	out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("netlab: in netns %s: %s: %w: %s", ns, strings.Join(append([]string{name}, args...), " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Do runs fn on a locked OS thread that has entered the namespace at nsPath,
// and returns fn's error. Sockets fn creates stay in that namespace after
// Do returns; goroutines fn starts run outside it. The thread is moved back
// afterwards; if that fails it is discarded rather than reused.
func Do(nsPath string, fn func() error) error {
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("netlab: open netns %s: %w", nsPath, err)
	}
	defer target.Close()
	if err := nsrun.In(target, fn); err != nil {
		return fmt.Errorf("netlab: in netns %s: %w", nsPath, err)
	}
	return nil
}

// RequireRoot skips the test when it cannot create namespaces and TAP
// devices (not root, or no /dev/net/tun). When the environment variable CI
// is "true" it fails instead, so the real proof always runs in CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	_, err := os.Stat("/dev/net/tun")
	if os.Geteuid() == 0 && err == nil {
		return
	}
	const msg = "needs root and /dev/net/tun: run as root (sudo go test ./tap/ ./internal/netlab/)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: this test must run)")
	}
	t.Skip(msg)
}

// NewT builds a lab of opt.Hosts hosts for test t under a fresh prefix that
// starts with stem (like "vxdec"), and removes it when the test ends, also
// when it fails. It calls RequireRoot first; opt.Prefix is ignored.
func NewT(t testing.TB, stem string, opt Options) *Lab {
	t.Helper()
	RequireRoot(t)
	opt.Prefix = fmt.Sprintf("%s%04x-", stem, rand.N(0x10000))
	t.Cleanup(func() {
		if err := Cleanup(opt.Prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	l, err := New(opt)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	return l
}

// validPrefix checks a lab prefix: it must leave room for "h<i>" and "ul"
// in a namespace name and contain only safe characters.
func validPrefix(p string) error {
	if p == "" {
		return errors.New("netlab: empty prefix: give a short unique one such as \"vxlab-\"")
	}
	if len(p) > 32 {
		return fmt.Errorf("netlab: prefix %q is longer than 32 bytes: choose a shorter one", p)
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("netlab: prefix %q may contain only letters, digits, '-', '_' and '.'", p)
		}
	}
	return nil
}

// ip runs an iproute2 'ip' command.
func ip(args ...string) error {
	return run("ip", args...)
}

// run runs a command and puts its output in the error when it fails.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

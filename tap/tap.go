package tap

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vxswitch/header"
	"vxswitch/nsrun"
)

// tunPath is the clone device every TAP is opened through.
const tunPath = "/dev/net/tun"

// ErrGone reports that the device behind a TAP no longer exists, usually
// because its network namespace was deleted (the container went away).
// Read and Write return errors that wrap it; test with errors.Is(err, ErrGone).
var ErrGone = errors.New("tap device gone")

// Config describes one TAP device as seen from inside its network namespace.
// The zero value is not usable: Name is required.
type Config struct {
	// NetNS is the path of the endpoint's network namespace file
	// (/var/run/netns/NAME or /proc/PID/ns/net); "" means the caller's own
	// namespace. ResolveNetNS turns a bare name into such a path.
	NetNS string
	// Name is the interface name inside NetNS, for example "eth0"
	// (at most 15 bytes, no '/', ':' or white space).
	Name string
	// MAC is set on the interface; nil keeps the address the kernel chose.
	MAC net.HardwareAddr
	// MTU is set on the interface; 0 keeps the kernel default (1500).
	MTU int
	// Addr is an IPv4 address with the subnet's prefix length, for example
	// 10.1.0.2/24; the zero value adds no address.
	Addr netip.Prefix
	// Addr6 is an IPv6 address with the subnet's prefix length, for
	// example fd20::2/64, added beside Addr on a dual-stack network; the
	// zero value adds none. It is added with IFA_F_NODAD: the address
	// comes from the cluster's IPAM, which gave it to no one else, so the
	// endpoint uses it at once instead of after a second of duplicate
	// address detection (the switch still answers such probes, for
	// addresses added by hand).
	Addr6 netip.Prefix
	// Offload opens the device with IFF_VNET_HDR and turns on checksum
	// and TCP segmentation offload (TUNSETOFFLOAD), so the endpoint hands
	// over TCP super-frames of up to 64 KiB and may leave checksums to be
	// completed (see Device). When the kernel refuses the offloads the
	// device is opened without them and TAP.Offload reports false. The zero
	// value (false) opens a plain device.
	Offload bool
	// GSOMaxSegs caps the number of segments in one super-frame the
	// endpoint hands over (the device's gso_max_segs), so that a
	// super-frame fits what the switch sends on in one piece; 0 keeps the
	// kernel default (65535). It matters only with Offload.
	GSOMaxSegs int
}

// TAP is an open TAP device (IFF_TAP|IFF_NO_PI): one read returns one
// Ethernet frame as the endpoint sent it, one write delivers one frame to
// the endpoint. It implements Device, with the offload path when opened with
// Config.Offload.
//
// Read and Write may run concurrently with each other and with Close; Close
// makes a blocked Read return an error wrapping os.ErrClosed. Closing the
// TAP leaves the persistent device in its namespace (see Delete).
type TAP struct {
	f      *os.File // non-blocking, served by the Go poller
	vnet   bool     // every read and write carries a VnetHdr
	name   string
	netns  string
	raw    rawIO       // ReadVnet and WriteVnet (tun.go)
	closed atomic.Bool // set by Close

	// On a vnet device, Read and Write go through these buffers to strip
	// or add the header; each is guarded by its mutex.
	rmu, wmu   sync.Mutex
	rbuf, wbuf []byte
}

var _ Device = (*TAP)(nil)

// Create makes a new persistent TAP device (TUNSETPERSIST) for cfg and
// returns it open. The device is created in the caller's namespace under a
// temporary unique name ("vxt" and 8 hex digits), moved into cfg.NetNS,
// renamed to cfg.Name, given cfg.MAC, cfg.MTU, cfg.Addr and cfg.Addr6, and set up.
//
// It fails if cfg.Name already exists in cfg.NetNS. On any failure nothing
// is left behind: the device is deleted and the file descriptor closed.
func Create(cfg Config) (*TAP, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	target, inside, err := openNSHandle(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	defer inside.Close()
	if _, err := inside.LinkByName(cfg.Name); err == nil {
		return nil, cfg.existsError()
	} else if !isLinkNotFound(err) {
		return nil, fmt.Errorf("tap: look up %s in netns %s: %w", cfg.Name, nsLabel(cfg.NetNS), err)
	}
	here, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("tap: netlink: %w", err)
	}
	defer here.Close()

	tmp, err := tempName()
	if err != nil {
		return nil, err
	}
	f, vnet, err := openTUN(tmp, cfg.Offload)
	if err != nil {
		return nil, fmt.Errorf("tap: create %s: %w", tmp, err)
	}

	// The device now exists as tmp in our namespace. Track where it is and
	// under which name, so a failure below can remove it.
	where, name := here, tmp
	fail := func(err error) (*TAP, error) {
		if link, lerr := where.LinkByName(name); lerr == nil {
			err = errors.Join(err, where.LinkDel(link))
		}
		f.Close()
		return nil, err
	}

	link, err := here.LinkByName(tmp)
	if err != nil {
		return fail(fmt.Errorf("tap: find new device %s: %w", tmp, err))
	}
	if cfg.NetNS != "" {
		if err := here.LinkSetNsFd(link, int(target)); err != nil {
			return fail(fmt.Errorf("tap: move %s into netns %s: %w", tmp, cfg.NetNS, err))
		}
		where = inside
		if link, err = inside.LinkByName(tmp); err != nil {
			return fail(fmt.Errorf("tap: find %s in netns %s: %w", tmp, cfg.NetNS, err))
		}
	}
	if err := inside.LinkSetName(link, cfg.Name); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return fail(cfg.existsError())
		}
		return fail(fmt.Errorf("tap: rename %s to %s in netns %s: %w", tmp, cfg.Name, nsLabel(cfg.NetNS), err))
	}
	name = cfg.Name
	if err := configure(inside, cfg); err != nil {
		return fail(err)
	}
	t, err := newTAP(f, vnet, cfg)
	if err != nil {
		return fail(err)
	}
	return t, nil
}

// Open re-attaches to the existing persistent TAP called cfg.Name inside
// cfg.NetNS, for example after an agent restart. It opens /dev/net/tun on a
// thread that has entered the namespace (TUNSETIFF looks the name up in the
// opener's namespace), then re-applies cfg.MAC, cfg.MTU, cfg.Addr and
// cfg.Addr6 where they differ and sets the link up. An address the
// interface has besides them is left alone.
//
// If there is no interface called cfg.Name but a TAP with cfg.MAC, Open
// opens that one: a container runtime such as Docker renames the TAP it
// moves into a container. TAP.Name then reports its name.
//
// It fails if there is no such TAP in cfg.NetNS, or if another process
// holds it open. On failure the device is left as it was.
func Open(cfg Config) (*TAP, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	target, inside, err := openNSHandle(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	defer inside.Close()
	link, err := inside.LinkByName(cfg.Name)
	if isLinkNotFound(err) && cfg.MAC != nil {
		// A container runtime (Docker) may have renamed the TAP it
		// moved into the namespace: find it by its MAC.
		if l, ok := tapByMAC(inside, cfg.MAC); ok {
			link, err, cfg.Name = l, nil, l.Attrs().Name
		}
	}
	if isLinkNotFound(err) {
		return nil, fmt.Errorf("tap: open: no interface %s in netns %s: create it first", cfg.Name, nsLabel(cfg.NetNS))
	}
	if err != nil {
		return nil, fmt.Errorf("tap: look up %s in netns %s: %w", cfg.Name, nsLabel(cfg.NetNS), err)
	}
	if link.Type() != "tuntap" {
		return nil, fmt.Errorf("tap: open: %s in netns %s is a %s device, not a TAP", cfg.Name, nsLabel(cfg.NetNS), link.Type())
	}

	var f *os.File
	var vnet bool
	open := func() error {
		var err error
		f, vnet, err = openTUN(cfg.Name, cfg.Offload)
		return err
	}
	if cfg.NetNS == "" {
		err = open()
	} else {
		err = nsrun.In(target, open)
	}
	if errors.Is(err, syscall.EBUSY) {
		return nil, fmt.Errorf("tap: open %s in netns %s: device busy: another process (a second agent?) holds it", cfg.Name, nsLabel(cfg.NetNS))
	}
	if err != nil {
		return nil, fmt.Errorf("tap: open %s in netns %s: %w", cfg.Name, nsLabel(cfg.NetNS), err)
	}
	if err := configure(inside, cfg); err != nil {
		f.Close()
		return nil, err
	}
	return newTAP(f, vnet, cfg)
}

// tapByMAC returns the TAP device with MAC mac among the links of h.
func tapByMAC(h *netlink.Handle, mac net.HardwareAddr) (netlink.Link, bool) {
	links, err := h.LinkList()
	if err != nil {
		return nil, false
	}
	for _, l := range links {
		if l.Type() == "tuntap" && l.Attrs().HardwareAddr.String() == mac.String() {
			return l, true
		}
	}
	return nil, false
}

// configure applies cfg.MAC, cfg.MTU, cfg.Addr and cfg.Addr6 to the link cfg.Name
// where they differ, through the netlink handle h of its namespace, and
// sets the link up.
func configure(h *netlink.Handle, cfg Config) error {
	link, err := h.LinkByName(cfg.Name)
	if err != nil {
		return fmt.Errorf("tap: look up %s in netns %s: %w", cfg.Name, nsLabel(cfg.NetNS), err)
	}
	attrs := link.Attrs()
	if cfg.MAC != nil && attrs.HardwareAddr.String() != cfg.MAC.String() {
		if err := h.LinkSetHardwareAddr(link, cfg.MAC); err != nil {
			return fmt.Errorf("tap: set MAC %s on %s: %w", cfg.MAC, cfg.Name, err)
		}
	}
	if cfg.MTU != 0 && attrs.MTU != cfg.MTU {
		if err := h.LinkSetMTU(link, cfg.MTU); err != nil {
			return fmt.Errorf("tap: set MTU %d on %s: %w", cfg.MTU, cfg.Name, err)
		}
	}
	if cfg.GSOMaxSegs != 0 && attrs.GSOMaxSegs != uint32(cfg.GSOMaxSegs) {
		if err := h.LinkSetGSOMaxSegs(link, cfg.GSOMaxSegs); err != nil {
			return fmt.Errorf("tap: set gso_max_segs %d on %s: %w", cfg.GSOMaxSegs, cfg.Name, err)
		}
	}
	if err := addAddr(h, link, cfg.Name, cfg.Addr, netlink.FAMILY_V4, 0); err != nil {
		return err
	}
	if err := addAddr(h, link, cfg.Name, cfg.Addr6, netlink.FAMILY_V6, unix.IFA_F_NODAD); err != nil {
		return err
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("tap: set %s up: %w", cfg.Name, err)
	}
	return nil
}

// addAddr adds p (of the address family family) with the address flags
// flags to link, called name, unless the link has it already or p is the
// zero value.
func addAddr(h *netlink.Handle, link netlink.Link, name string, p netip.Prefix, family, flags int) error {
	if !p.IsValid() {
		return nil
	}
	addrs, err := h.AddrList(link, family)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("tap: list addresses of %s: %w", name, err)
	}
	if hasAddr(addrs, p) {
		return nil
	}
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Flags: flags,
	}
	if err := h.AddrAdd(link, a); err != nil {
		return fmt.Errorf("tap: add address %s to %s: %w", p, name, err)
	}
	return nil
}

// hasAddr reports whether addrs contains p with the same prefix length.
func hasAddr(addrs []netlink.Addr, p netip.Prefix) bool {
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		bits, _ := a.Mask.Size()
		if ok && ip.Unmap() == p.Addr() && bits == p.Bits() {
			return true
		}
	}
	return false
}

// Delete removes the TAP called name from the namespace at netnsPath ("" is
// the caller's own namespace). Its endpoint loses the interface. It is not
// an error if the interface or the namespace is already gone; it is an
// error if name is some other kind of device.
func Delete(netnsPath, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	ns, err := openNS(netnsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tap: open netns %s: %w", nsLabel(netnsPath), err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("tap: netlink in netns %s: %w", nsLabel(netnsPath), err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tap: look up %s in netns %s: %w", name, nsLabel(netnsPath), err)
	}
	if link.Type() != "tuntap" {
		return fmt.Errorf("tap: delete: %s in netns %s is a %s device, not a TAP: not deleting it", name, nsLabel(netnsPath), link.Type())
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("tap: delete %s in netns %s: %w", name, nsLabel(netnsPath), err)
	}
	return nil
}

// CheckTUN reports, with a hint at the fix, why TAP devices cannot be used
// here: /dev/net/tun missing or not openable, or the process not root.
// It returns nil when Create should work.
func CheckTUN() error {
	if _, err := os.Stat(tunPath); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tap: %s is missing: load the tun module ('modprobe tun') or pass the device into the container", tunPath)
	}
	if os.Geteuid() != 0 {
		return errors.New("tap: not running as root: TAP devices and network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run with sudo")
	}
	// Opening the clone device creates nothing until TUNSETIFF.
	f, err := os.OpenFile(tunPath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("tap: cannot open %s: %w: check the device permissions and the container's device rules", tunPath, err)
	}
	return f.Close()
}

// Read copies the next frame the endpoint sent into frame and returns its
// length. A frame longer than frame is truncated. After Close it returns an
// error wrapping os.ErrClosed; once the device is gone, one wrapping ErrGone.
//
// On a device with offloads (Offload true) Read strips the vnet header and
// completes a checksum the endpoint left to the device, but a TCP
// super-frame is returned whole, longer than the MTU: callers that want
// the offloads use ReadVnet instead.
func (t *TAP) Read(frame []byte) (int, error) {
	if !t.vnet {
		n, err := t.f.Read(frame)
		if err != nil {
			return n, t.wrap("read", err)
		}
		return n, nil
	}
	t.rmu.Lock()
	defer t.rmu.Unlock()
	n, err := t.f.Read(t.rbuf)
	if err != nil {
		return 0, t.wrap("read", err)
	}
	if n < VnetHdrLen {
		return 0, fmt.Errorf("tap: read %s: %d bytes, shorter than the vnet header", t.name, n)
	}
	h := DecodeVnetHdr(t.rbuf)
	pkt := t.rbuf[VnetHdrLen:n]
	if h.Flags&VnetNeedsCsum != 0 {
		header.CompleteChecksum(pkt, int(h.CsumStart), int(h.CsumOffset))
	}
	return copy(frame, pkt), nil
}

// Write delivers one whole frame to the endpoint. Errors wrap os.ErrClosed
// after Close and ErrGone once the device is gone.
func (t *TAP) Write(frame []byte) (int, error) {
	if !t.vnet {
		n, err := t.f.Write(frame)
		if err != nil {
			return n, t.wrap("write", err)
		}
		return n, nil
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if len(frame) > len(t.wbuf)-VnetHdrLen {
		return 0, fmt.Errorf("tap: write %s: frame of %d bytes is longer than %d", t.name, len(frame), len(t.wbuf)-VnetHdrLen)
	}
	clear(t.wbuf[:VnetHdrLen])
	n := copy(t.wbuf[VnetHdrLen:], frame)
	if _, err := t.f.Write(t.wbuf[:VnetHdrLen+n]); err != nil {
		return 0, t.wrap("write", err)
	}
	return n, nil
}

// Offload reports whether the device was opened with IFF_VNET_HDR and
// offloads (Config.Offload, and the kernel agreed).
func (t *TAP) Offload() bool { return t.vnet }

// ReadVnet reads one packet with its vnet header into buf (see
// Device). It must only be called when Offload reports true. Errors are
// those of Read.
func (t *TAP) ReadVnet(buf []byte) (int, error) {
	return t.ReadVnetIdle(buf, nil)
}

// ReadVnetIdle is ReadVnet that calls idle (when not nil) each time it
// finds no packet waiting, just before it waits for one. A caller that
// collects work while packets keep coming, to do it together, does it in
// idle: then it costs no extra system call to learn that the device has
// run dry. idle runs on the calling goroutine, with the device's read lock
// held. It must only be called when Offload reports true.
func (t *TAP) ReadVnetIdle(buf []byte, idle func()) (int, error) {
	n, err := t.raw.read(buf, idle)
	if err != nil {
		return n, t.wrap("read", err)
	}
	return n, nil
}

// WriteVnet writes one packet that starts with its vnet header (see
// Device). It must only be called when Offload reports true. Errors are
// those of Write.
func (t *TAP) WriteVnet(buf []byte) (int, error) {
	n, err := t.raw.write(buf)
	if err != nil {
		return n, t.wrap("write", err)
	}
	return n, nil
}

// Name returns the interface name inside the endpoint's namespace.
func (t *TAP) Name() string { return t.name }

// NetNS returns the path of the namespace the device lives in ("" for the
// caller's own namespace), as given in Config.
func (t *TAP) NetNS() string { return t.netns }

// Close releases the file descriptor; the persistent device stays in its
// namespace (see Delete). A Read blocked in another goroutine returns an
// error wrapping os.ErrClosed.
func (t *TAP) Close() error {
	t.closed.Store(true)
	if err := t.f.Close(); err != nil {
		return fmt.Errorf("tap: close %s: %w", t.name, err)
	}
	return nil
}

// wrap adds the operation and device name to err and marks the errors that
// mean the device no longer exists with ErrGone. The kernel answers EBADFD
// once the device was unregistered (its namespace deleted); EIO and ENXIO
// are the answers of older kernels to the same situation.
func (t *TAP) wrap(op string, err error) error {
	if t.closed.Load() && !errors.Is(err, os.ErrClosed) {
		// The raw path reports a close as the poller's own error.
		err = fmt.Errorf("%w: %w", os.ErrClosed, err)
	}
	if errors.Is(err, syscall.EBADFD) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) {
		return fmt.Errorf("tap: %s %s: %w: %w", op, t.name, ErrGone, err)
	}
	return fmt.Errorf("tap: %s %s: %w", op, t.name, err)
}

// validate checks cfg and returns a one-line error naming the problem.
func (cfg Config) validate() error {
	if err := validName(cfg.Name); err != nil {
		return err
	}
	if cfg.MAC != nil {
		if len(cfg.MAC) != 6 {
			return fmt.Errorf("tap: MAC %s is not a 6-byte Ethernet address", cfg.MAC)
		}
		if cfg.MAC[0]&1 != 0 {
			return fmt.Errorf("tap: MAC %s is a multicast address: use a unicast one (first byte even)", cfg.MAC)
		}
	}
	if cfg.MTU < 0 {
		return fmt.Errorf("tap: MTU %d is negative: use 0 for the kernel default", cfg.MTU)
	}
	if cfg.GSOMaxSegs < 0 || cfg.GSOMaxSegs > 65535 {
		return fmt.Errorf("tap: GSOMaxSegs %d is out of range: use 1 to 65535, or 0 for the kernel default", cfg.GSOMaxSegs)
	}
	if cfg.Addr.IsValid() && !cfg.Addr.Addr().Is4() {
		return fmt.Errorf("tap: address %s is not IPv4 with a prefix length such as 10.1.0.2/24", cfg.Addr)
	}
	if cfg.Addr6.IsValid() && (!cfg.Addr6.Addr().Is6() || cfg.Addr6.Addr().Is4In6()) {
		return fmt.Errorf("tap: address %s is not IPv6 with a prefix length such as fd20::2/64", cfg.Addr6)
	}
	return nil
}

// existsError is the error for a cfg.Name already taken in cfg.NetNS.
func (cfg Config) existsError() error {
	return fmt.Errorf("interface %s already exists in netns %s: choose another --ifname", cfg.Name, nsLabel(cfg.NetNS))
}

// validName checks an interface name the way the kernel does.
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("tap: empty interface name: give one such as eth0")
	case len(name) > 15:
		return fmt.Errorf("tap: interface name %q is longer than 15 bytes: choose a shorter one", name)
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("tap: invalid interface name %q: use letters, digits, '-', '_' or '.'", name)
	}
	return nil
}

// tempName returns a fresh name for a device before it is moved and renamed.
func tempName() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("tap: random name: %w", err)
	}
	return "vxt" + hex.EncodeToString(b[:]), nil
}

// nsLabel names a namespace path in messages.
func nsLabel(path string) string {
	if path == "" {
		return "(own)"
	}
	return path
}

// isLinkNotFound reports whether err says the link does not exist.
func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

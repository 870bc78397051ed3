package tap

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tunOffloads are the offloads a TAP opened with Config.Offload accepts from
// its endpoint: checksum offload and TCP segmentation for IPv4 and IPv6.
const tunOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6

// vnetBuffer is the size of the buffers a vnet TAP uses for Read and Write:
// the largest frame plus its vnet header.
const vnetBuffer = VnetHdrLen + 65535

// openTUN attaches to (or creates) the persistent TAP called name in the
// calling thread's namespace and returns its non-blocking file, which the
// Go poller serves, so Close unblocks a pending Read. With offload it asks
// for IFF_VNET_HDR and the offloads of tunOffloads; if the kernel refuses
// the offloads, the device is attached again without them and vnet is
// false.
func openTUN(name string, offload bool) (f *os.File, vnet bool, err error) {
	if offload {
		f, err = attachTUN(name, true)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, errNoOffload) {
			return nil, false, err
		}
	}
	f, err = attachTUN(name, false)
	return f, false, err
}

// errNoOffload reports that TUNSETOFFLOAD failed.
var errNoOffload = errors.New("offloads refused")

// attachTUN opens /dev/net/tun and attaches it to the TAP name with
// TUNSETIFF (IFF_TAP|IFF_NO_PI, plus IFF_VNET_HDR and TUNSETOFFLOAD when
// vnet is set), then makes the device persistent.
func attachTUN(name string, vnet bool) (*os.File, error) {
	fd, err := unix.Open(tunPath, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", tunPath, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("interface name %q: %w", name, err)
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	if vnet {
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunOffloads); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("TUNSETOFFLOAD %s: %w: %w", name, errNoOffload, err)
		}
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETPERSIST %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), tunPath), nil
}

// newTAP wraps an attached file as the TAP of cfg. On failure it closes f.
func newTAP(f *os.File, vnet bool, cfg Config) (*TAP, error) {
	t := &TAP{f: f, vnet: vnet, name: cfg.Name, netns: cfg.NetNS}
	if vnet {
		t.rbuf = make([]byte, vnetBuffer)
		t.wbuf = make([]byte, vnetBuffer)
		if err := t.raw.init(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("tap: prepare %s: %w", cfg.Name, err)
		}
	}
	return t, nil
}

// rawIO does the reads and writes of the offload path (ReadVnet,
// WriteVnet) as raw system calls on the poller's file descriptor. A raw
// call does not tell the Go scheduler it is in a system call, so a write
// that runs the endpoint's whole receive path in the kernel does not make
// the runtime hand the goroutine's processor to another thread and wake
// it again: on two cores, those wake-ups cost more than the I/O. The
// descriptor is non-blocking, so a call never waits; when nothing is to be
// read, the goroutine parks in the poller as usual. Each direction has its
// own state, built once and reused under its mutex, so neither allocates.
type rawIO struct {
	rc syscall.RawConn

	rmu   sync.Mutex
	rbuf  []byte
	ridle func() // called by rfn before the poller waits; may be nil
	rn    int
	rerr  syscall.Errno
	rfn   func(fd uintptr) bool

	wmu  sync.Mutex
	wbuf []byte
	wn   int
	werr syscall.Errno
	wfn  func(fd uintptr) bool
}

// init prepares r for f.
func (r *rawIO) init(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	r.rc = rc
	r.rfn = func(fd uintptr) bool {
		for {
			n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				if r.ridle != nil {
					r.ridle()
				}
				return false
			}
			r.rn, r.rerr = int(n), e
			return true
		}
	}
	r.wfn = func(fd uintptr) bool {
		for {
			n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.wbuf[0])), uintptr(len(r.wbuf)))
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			r.wn, r.werr = int(n), e
			return true
		}
	}
	return nil
}

// read reads into b (at least one byte long), waiting for a packet when
// none is there. Each time it finds none, it calls idle (when not nil)
// before it waits. Waiting cannot miss a packet that arrives meanwhile: the
// poller clears its readiness before the first read, so a packet that
// comes after that read makes the wait return at once.
func (r *rawIO) read(b []byte, idle func()) (int, error) {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.rbuf, r.ridle = b, idle
	err := r.rc.Read(r.rfn)
	r.rbuf, r.ridle = nil, nil
	switch {
	case err != nil:
		return 0, err
	case r.rerr != 0:
		return 0, r.rerr
	}
	return r.rn, nil
}

// write writes b (at least one byte long).
func (r *rawIO) write(b []byte) (int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.wbuf = b
	err := r.rc.Write(r.wfn)
	r.wbuf = nil
	if err != nil {
		return 0, err
	}
	if r.werr != 0 {
		return 0, r.werr
	}
	return r.wn, nil
}

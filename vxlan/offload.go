package vxlan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Limits of one UDP GSO send (UDP_SEGMENT): the kernel refuses more than
// maxGSOSegments datagrams, and the whole payload must fit one IP packet's
// length field.
const (
	maxGSOSegments = 64
	maxGSOBytes    = 65507
	maxGSOMessages = 8 // messages per sendmmsg: 8*64 segments is plenty
)

// GRO and GSO: one read of ReadGRO may return several datagrams of one
// sender, coalesced by the kernel (UDP_GRO); one WriteGSO call sends
// several equal datagrams with a single system call (UDP_SEGMENT). Both are
// invisible on the wire: every datagram leaves and arrives as a standard
// VXLAN packet.

// offload is the per-socket state of ReadGRO and WriteGSO (and WriteTo).
// Each direction has one set of system call arguments, built once and
// reused under its mutex, so no call allocates. The calls are raw system
// calls on the poller's non-blocking descriptor: a raw call does not tell
// the Go scheduler it is in a system call, so a send that runs the whole
// path to the peer namespace in the kernel does not make the runtime hand
// the processor to another thread and wake it again, which on two cores
// costs more than the send. When the socket is not ready the goroutine
// parks in the poller as usual.
type offload struct {
	rc  syscall.RawConn
	v6  bool // the socket is AF_INET6
	gso bool // UDP_SEGMENT works; cleared on the first refusal

	rmu     sync.Mutex
	rmsg    unix.Msghdr
	riov    unix.Iovec
	rname   unix.RawSockaddrInet6 // large enough for either family
	roob    [64]byte
	rn      int
	rerr    syscall.Errno
	rfn     func(fd uintptr) bool
	groOnce sync.Once
	groErr  error

	wmu   sync.Mutex
	whdrs [maxGSOMessages]unix.Mmsghdr
	wiovs [maxGSOMessages]unix.Iovec
	woob  [maxGSOMessages][unix.SizeofCmsghdr + 8]byte
	wname unix.RawSockaddrInet6
	wcnt  int // messages to send
	wdone int // messages sent
	werr  syscall.Errno
	wfn   func(fd uintptr) bool
}

// init prepares o for the socket of uc and probes UDP_SEGMENT.
func (o *offload) init(uc *net.UDPConn) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	o.rc = rc
	var serr error
	err = rc.Control(func(fd uintptr) {
		var domain int
		domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		o.v6 = domain == unix.AF_INET6
		// Setting the socket-wide segment size to 0 changes nothing; it
		// only succeeds where the kernel knows UDP_SEGMENT.
		o.gso = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, 0) == nil
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	o.rmsg.Name = (*byte)(unsafe.Pointer(&o.rname))
	o.rmsg.Iov = &o.riov
	o.rmsg.Iovlen = 1
	o.rmsg.Control = &o.roob[0]
	o.rfn = o.recv
	for i := range o.whdrs {
		h := &o.whdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&o.wname))
		h.Iov = &o.wiovs[i]
		h.Iovlen = 1
		h.Control = &o.woob[i][0]
		c := (*unix.Cmsghdr)(unsafe.Pointer(&o.woob[i][0]))
		c.Level = unix.SOL_UDP
		c.Type = unix.UDP_SEGMENT
		c.SetLen(unix.CmsgLen(2))
	}
	o.wfn = o.send
	return nil
}

// EnableGRO turns on UDP GRO for the socket (the UDP_GRO option). From then
// on the kernel may hand over several datagrams of one sender in one read,
// so every read must go through ReadGRO, which reports the datagram size;
// ReadFrom must no longer be used. Calling it again is harmless. An error
// means the kernel has no UDP GRO; the socket is unchanged then.
func (c *Conn) EnableGRO() error {
	o := &c.off
	o.groOnce.Do(func() {
		var serr error
		err := o.rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1)
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			o.groErr = fmt.Errorf("vxlan: enable UDP GRO on %s: %w", c.laddr, err)
		}
	})
	return o.groErr
}

// ReadGRO reads into b what the kernel hands over in one receive: one
// datagram, or after EnableGRO possibly several consecutive datagrams from
// one sender, each seg bytes long but the last, which may be shorter. seg
// equals n for a single datagram. b should hold 65535 bytes; a longer
// delivery is truncated to whole segments. Closing and ECONNREFUSED are
// handled as by ReadFrom. Only one ReadGRO runs at a time (others wait); it
// does not allocate.
func (c *Conn) ReadGRO(b []byte) (n, seg int, src netip.AddrPort, err error) {
	o := &c.off
	o.rmu.Lock()
	defer o.rmu.Unlock()
	for {
		o.riov.Base = &b[0]
		o.riov.SetLen(len(b))
		o.rmsg.Namelen = unix.SizeofSockaddrInet6
		o.rmsg.SetControllen(len(o.roob))
		o.rmsg.Flags = 0
		if err := o.rc.Read(o.rfn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, 0, netip.AddrPort{}, net.ErrClosed
			}
			return 0, 0, netip.AddrPort{}, fmt.Errorf("vxlan: read from %s: %w", c.laddr, err)
		}
		switch o.rerr {
		case 0:
		case syscall.ECONNREFUSED:
			continue
		default:
			return 0, 0, netip.AddrPort{}, fmt.Errorf("vxlan: read from %s: %w", c.laddr, o.rerr)
		}
		n = o.rn
		seg = groSegment(o.roob[:o.rmsg.Controllen])
		if seg <= 0 || seg > n {
			seg = n
		}
		if o.rmsg.Flags&unix.MSG_TRUNC != 0 && seg > 0 {
			n -= n % seg // drop the cut-off datagram
		}
		return n, seg, sockaddrAddrPort(&o.rname), nil
	}
}

// recv is the read function handed to the poller: one recvmsg.
func (o *offload) recv(fd uintptr) bool {
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&o.rmsg)), 0)
	if e == unix.EAGAIN {
		return false
	}
	o.rn, o.rerr = int(r), e
	return true
}

// groSegment returns the segment size of a UDP_GRO control message in oob,
// or 0.
func groSegment(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):]))
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return 0
}

// sockaddrAddrPort converts a raw IPv4 or IPv6 socket address.
func sockaddrAddrPort(rsa *unix.RawSockaddrInet6) netip.AddrPort {
	switch rsa.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&rsa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(rsa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// SegmentsPerSend returns how many VXLAN datagrams carrying inner frames
// of frameLen bytes (Ethernet header included) one UDP GSO send takes: at
// most 64, and 65507 bytes in all. A TAP whose super-frames have no more
// segments than that (tap.Config.GSOMaxSegs) has each one leave in a single
// send and, on the far side, arrive in a single GRO read.
func SegmentsPerSend(frameLen int) int {
	if frameLen <= 0 {
		return maxGSOSegments
	}
	return max(1, min(maxGSOSegments, maxGSOBytes/(HeaderLen+frameLen)))
}

// GSO reports whether WriteGSO sends many datagrams per system call
// (UDP_SEGMENT); when false it still works, one datagram per call.
func (c *Conn) GSO() bool {
	c.off.wmu.Lock()
	defer c.off.wmu.Unlock()
	return c.off.gso
}

// WriteGSO sends pkt as consecutive UDP datagrams of seg bytes each (the
// last may be shorter) to dst, with as few system calls as UDP GSO allows
// (at most 64 datagrams and 65507 bytes per message, several messages per
// sendmmsg). Where the kernel refuses GSO, it sends datagram by datagram
// from then on. It may be called from several goroutines (they take turns)
// and does not allocate.
func (c *Conn) WriteGSO(pkt []byte, seg int, dst netip.AddrPort) error {
	if seg <= 0 || len(pkt) == 0 {
		return fmt.Errorf("vxlan: send to %s: empty packet or segment size %d", dst, seg)
	}
	o := &c.off
	if !o.v6 && !dst.Addr().Unmap().Is4() {
		return fmt.Errorf("vxlan: send to %s: an IPv6 destination on an IPv4 socket", dst)
	}
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.setDest(dst)
	useGSO := o.gso && len(pkt) > seg
	for len(pkt) > 0 {
		rest := o.fill(pkt, seg, useGSO)
		if err := o.sendAll(); err != nil {
			if useGSO && (errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EIO)) {
				// GSO refused for this socket or path: from now on one
				// datagram per message, starting with what is not sent.
				o.gso, useGSO = false, false
				pkt = pkt[o.sentBytes():]
				continue
			}
			return fmt.Errorf("vxlan: send to %s: %w", dst, err)
		}
		pkt = rest
	}
	return nil
}

// fill prepares as many messages of pkt as one sendmmsg takes: with gso,
// each holds up to 64 datagrams of seg bytes and a UDP_SEGMENT control
// message; without, each is one datagram. It returns what is left.
func (o *offload) fill(pkt []byte, seg int, gso bool) []byte {
	per := seg
	if gso {
		per = min(maxGSOSegments, maxGSOBytes/seg) * seg // bytes per message
	}
	o.wcnt, o.wdone = 0, 0
	for o.wcnt < maxGSOMessages && len(pkt) > 0 {
		m := pkt[:min(per, len(pkt))]
		pkt = pkt[len(m):]
		i := o.wcnt
		o.wiovs[i].Base = &m[0]
		o.wiovs[i].SetLen(len(m))
		h := &o.whdrs[i].Hdr
		h.Namelen = o.namelen()
		if gso {
			h.SetControllen(unix.CmsgSpace(2))
			binary.NativeEndian.PutUint16(o.woob[i][unix.CmsgLen(0):], uint16(seg))
		} else {
			h.SetControllen(0)
		}
		o.wcnt++
	}
	return pkt
}

// sentBytes is the payload of the messages sendAll got out.
func (o *offload) sentBytes() int {
	n := 0
	for i := range o.wdone {
		n += int(o.wiovs[i].Len)
	}
	return n
}

// sendAll sends messages wdone..wcnt, waiting for buffer space as needed.
// A pending ECONNREFUSED is retried once.
func (o *offload) sendAll() error {
	refused := false
	for o.wdone < o.wcnt {
		o.werr = 0
		if err := o.rc.Write(o.wfn); err != nil {
			return err
		}
		if o.werr == syscall.ECONNREFUSED && !refused {
			refused = true
			continue
		}
		if o.werr != 0 {
			return o.werr
		}
	}
	return nil
}

// send is the write function handed to the poller: one sendmmsg.
func (o *offload) send(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&o.whdrs[o.wdone])), uintptr(o.wcnt-o.wdone), 0, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	if e != 0 {
		o.werr = e
		return true
	}
	o.wdone += int(r)
	return true
}

// setDest stores dst as the destination of every message.
func (o *offload) setDest(dst netip.AddrPort) {
	o.wname = unix.RawSockaddrInet6{}
	port := (*[2]byte)(unsafe.Pointer(&o.wname.Port))
	binary.BigEndian.PutUint16(port[:], dst.Port())
	if o.v6 {
		o.wname.Family = unix.AF_INET6
		o.wname.Addr = dst.Addr().As16()
		return
	}
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&o.wname))
	sa.Family = unix.AF_INET
	sa.Addr = dst.Addr().Unmap().As4()
}

// namelen is the length of the socket address in wname.
func (o *offload) namelen() uint32 {
	if o.v6 {
		return unix.SizeofSockaddrInet6
	}
	return unix.SizeofSockaddrInet4
}

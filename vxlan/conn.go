package vxlan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// socketBuffer is the receive and send buffer size requested for the
// underlay socket. The kernel caps it at net.core.rmem_max / wmem_max.
const socketBuffer = 4 << 20

// Conn is the underlay UDP socket of one host: it receives VXLAN packets from
// other VTEPs and sends encapsulated frames to them.
//
// Create a Conn with Listen; the zero value is not usable. ReadFrom, WriteTo
// and Close may be called from different goroutines at the same time.
type Conn struct {
	uc    *net.UDPConn
	laddr netip.AddrPort
	off   offload // state of ReadGRO and WriteGSO (offload.go)
}

// Listen opens a UDP socket bound to laddr (for example 10.0.0.1:4789; port
// 0 picks a free port) with receive and send buffers of a few megabytes.
func Listen(laddr netip.AddrPort) (*Conn, error) {
	if !laddr.Addr().IsValid() {
		return nil, fmt.Errorf("vxlan: listen: address %q is not valid: give an IP address such as 10.0.0.1:%d", laddr, Port)
	}
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(laddr))
	if err != nil {
		return nil, fmt.Errorf("vxlan: listen on %s: %w", laddr, err)
	}
	if err := uc.SetReadBuffer(socketBuffer); err != nil {
		uc.Close()
		return nil, fmt.Errorf("vxlan: set receive buffer on %s: %w", laddr, err)
	}
	if err := uc.SetWriteBuffer(socketBuffer); err != nil {
		uc.Close()
		return nil, fmt.Errorf("vxlan: set send buffer on %s: %w", laddr, err)
	}
	local := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	c := &Conn{uc: uc, laddr: local}
	if err := c.off.init(uc); err != nil {
		uc.Close()
		return nil, fmt.Errorf("vxlan: prepare batched I/O on %s: %w", laddr, err)
	}
	return c, nil
}

// ReadFrom reads one UDP payload into b and returns its length and sender.
// After Close it returns an error that is net.ErrClosed. An ECONNREFUSED
// left by an ICMP port-unreachable for an earlier send (a peer that is not up
// yet) is not an error of this read: ReadFrom simply reads again.
func (c *Conn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	for {
		n, src, err := c.uc.ReadFromUDPAddrPort(b)
		if err == nil {
			return n, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), nil
		}
		switch {
		case errors.Is(err, net.ErrClosed):
			return 0, netip.AddrPort{}, net.ErrClosed
		case errors.Is(err, syscall.ECONNREFUSED):
			continue
		default:
			return 0, netip.AddrPort{}, fmt.Errorf("vxlan: read from %s: %w", c.laddr, err)
		}
	}
}

// WriteTo sends b as one UDP datagram to dst. A pending ECONNREFUSED from an
// earlier send is reported by the kernel instead of sending; WriteTo then
// tries once more, so one unreachable peer does not cost a frame to another.
// It goes the way of WriteGSO (raw sendmmsg, no allocation) and takes turns
// with it.
func (c *Conn) WriteTo(b []byte, dst netip.AddrPort) error {
	if len(b) > 0 {
		return c.WriteGSO(b, len(b), dst)
	}
	_, err := c.uc.WriteToUDPAddrPort(b, dst)
	if errors.Is(err, syscall.ECONNREFUSED) {
		_, err = c.uc.WriteToUDPAddrPort(b, dst)
	}
	if err != nil {
		return fmt.Errorf("vxlan: send to %s: %w", dst, err)
	}
	return nil
}

// LocalAddr returns the address the socket is bound to, with the port the
// kernel chose when Listen was given port 0.
func (c *Conn) LocalAddr() netip.AddrPort { return c.laddr }

// Close closes the socket. A ReadFrom blocked in another goroutine returns
// net.ErrClosed.
func (c *Conn) Close() error {
	if err := c.uc.Close(); err != nil {
		return fmt.Errorf("vxlan: close %s: %w", c.laddr, err)
	}
	return nil
}

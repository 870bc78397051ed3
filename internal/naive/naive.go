// Package naive is the naive userspace VXLAN relay that `vxswitch lab bench`
// measures beside vxswitch and the kernel's vxlan device: the loop anyone
// writes first. One goroutine per direction moves one frame per system call
// between a plain TAP device (no offloads) and a UDP socket, both served by
// Go's poller, to and from a single peer. It learns no addresses and has no
// control plane; it is a yardstick, not a switch.
//
// It speaks standard VXLAN (RFC 7348 section 5): every frame the TAP hands
// over leaves as one datagram with the 8-byte header and the relay's VNI,
// and every datagram that carries that VNI is written to the TAP.
package naive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"

	"vxswitch/tap"
	"vxswitch/vxlan"
)

// Config describes one relay. Every field is required.
type Config struct {
	TAP    string         // name of the TAP device it creates in its network namespace
	Addr   netip.Prefix   // address of the TAP, with the subnet's prefix length
	MTU    int            // MTU of the TAP: the underlay's minus vxlan.OverheadIPv4
	Listen netip.AddrPort // local UDP address
	Peer   netip.AddrPort // UDP address of the relay on the other host
	VNI    uint32         // VXLAN network identifier, 24 bits
}

func (c Config) validate() error {
	switch {
	case c.TAP == "":
		return errors.New("naive: no TAP name: give one, like nvx")
	case !c.Addr.IsValid() || !c.Addr.Addr().Is4():
		return fmt.Errorf("naive: TAP address %q: give an IPv4 address with its prefix length, like 10.98.0.1/24", c.Addr)
	case c.MTU < 68 || c.MTU > 65535:
		return fmt.Errorf("naive: MTU %d: use 68..65535 (the underlay's MTU minus %d)", c.MTU, vxlan.OverheadIPv4)
	case !c.Listen.IsValid() || !c.Peer.IsValid():
		return errors.New("naive: the local and the peer UDP address are both required, like 10.77.0.1:4791")
	case c.VNI >= 1<<24:
		return fmt.Errorf("naive: VNI %d does not fit in 24 bits", c.VNI)
	}
	return nil
}

// Relay is one running relay, made by New. Run moves frames until its
// context ends; Close may be called from any goroutine, also during Run.
type Relay struct {
	cfg  Config
	dev  *tap.TAP
	conn *net.UDPConn
	nl   *netlink.Handle // of the namespace New ran in, to delete the TAP there

	dropped atomic.Uint64 // datagrams that were not VXLAN with cfg.VNI

	closeOnce sync.Once
	closeErr  error
}

// New creates the TAP device and the UDP socket in the caller's network
// namespace. On failure nothing is left behind.
func New(cfg Config) (*Relay, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("naive: netlink: %w", err)
	}
	dev, err := tap.Create(tap.Config{Name: cfg.TAP, Addr: cfg.Addr, MTU: cfg.MTU})
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("naive: %w", err)
	}
	r := &Relay{cfg: cfg, dev: dev, nl: nl}
	r.conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(cfg.Listen))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("naive: listen: %w", err), r.Close())
	}
	return r, nil
}

// Run relays in both directions until ctx ends or a read or write fails. It
// closes the relay before it returns, and returns the failure, if any, with
// the error of Close (normally nil).
func (r *Relay) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- r.toPeer() }()
	go func() { errc <- r.fromPeer() }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cerr := r.Close()
	<-errc
	if err == nil {
		<-errc
	}
	if ctx.Err() != nil {
		return cerr
	}
	return errors.Join(err, cerr)
}

// toPeer reads one frame from the TAP and sends it in one datagram, frame
// after frame.
func (r *Relay) toPeer() error {
	buf := make([]byte, vxlan.HeaderLen+r.cfg.MTU+14+4) // Ethernet header and one 802.1Q tag
	for {
		n, err := r.dev.Read(buf[vxlan.HeaderLen:])
		if err != nil {
			return fmt.Errorf("naive: read %s: %w", r.cfg.TAP, err)
		}
		vxlan.Encode(buf, r.cfg.VNI)
		if _, err := r.conn.WriteToUDPAddrPort(buf[:vxlan.HeaderLen+n], r.cfg.Peer); err != nil {
			return fmt.Errorf("naive: send to %s: %w", r.cfg.Peer, err)
		}
	}
}

// fromPeer receives one datagram and writes its frame to the TAP, datagram
// after datagram; one that is not VXLAN with the relay's VNI is counted and
// dropped.
func (r *Relay) fromPeer() error {
	buf := make([]byte, 65535)
	for {
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return fmt.Errorf("naive: receive: %w", err)
		}
		vni, frame, err := vxlan.Decode(buf[:n])
		if err != nil || vni != r.cfg.VNI {
			r.dropped.Add(1)
			continue
		}
		if _, err := r.dev.Write(frame); err != nil {
			return fmt.Errorf("naive: write %s: %w", r.cfg.TAP, err)
		}
	}
}

// Dropped returns the number of datagrams dropped because they were not
// VXLAN with the relay's VNI.
func (r *Relay) Dropped() uint64 { return r.dropped.Load() }

// Close stops the relay and deletes its TAP device. It is safe to call more
// than once; later calls return the first call's error.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		if r.conn != nil {
			errs = append(errs, r.conn.Close())
		}
		errs = append(errs, r.dev.Close())
		if link, err := r.nl.LinkByName(r.cfg.TAP); err != nil {
			errs = append(errs, fmt.Errorf("naive: find %s to delete it: %w", r.cfg.TAP, err))
		} else if err := r.nl.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("naive: delete %s: %w", r.cfg.TAP, err))
		}
		r.nl.Close()
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"vxswitch/api"
	"vxswitch/header"
	"vxswitch/vxlan"
)

// Path MTU probing between agents.
//
// Every agent answers probes on UDP at its API port. To measure the path to
// a peer, an agent sends probes of chosen IP sizes with the DF bit set and
// the kernel's cached path MTU ignored (IP_PMTUDISC_PROBE), and binary
// searches for the largest size that is acknowledged. A probe lost on the
// way is exactly what a too-big VXLAN packet would suffer, silently.
//
// Wire format (big endian): magic "VXPM" (4), kind (1: 1 probe, 2 ack),
// reserved (1), size (2, the probe's IP packet size), id (4), padding.

const (
	pmtuMagic    = "VXPM"
	pmtuHdrLen   = 12
	pmtuProbe    = 1
	pmtuAck      = 2
	pmtuMinSize4 = 576               // RFC 791: every IPv4 host accepts this
	pmtuMinSize6 = header.IPv6MinMTU // RFC 8200 section 5: every IPv6 link carries this
	// pmtuWait is how long one probe waits for its ack.
	pmtuWait = 250 * time.Millisecond
)

// prober owns the probe socket. Safe for concurrent use.
type prober struct {
	conn   *net.UDPConn
	v6     bool // the socket is IPv6: 40-byte IP header, minimum 1280
	nextID atomic.Uint32
	mu     sync.Mutex
	wait   map[uint32]chan struct{}
}

// newProber listens on addr for probes and acks.
func newProber(addr netip.AddrPort) (*prober, error) {
	v6 := addr.Addr().Is6() && !addr.Addr().Is4In6()
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("agent: listen for path MTU probes on %s: %w", addr, err)
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		raw.Control(func(fd uintptr) {
			if v6 {
				// IPv6 routers never fragment; this also stops the
				// sender from fragmenting and ignores the cached path MTU.
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE)
				if err == nil {
					err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1)
				}
				return
			}
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		})
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: set DF on the probe socket: %w", err)
	}
	return &prober{conn: conn, v6: v6, wait: map[uint32]chan struct{}{}}, nil
}

// serve answers probes and hands acks to the waiting probe until the socket
// is closed.
func (p *prober) serve() {
	buf := make([]byte, 65536)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors reported on the socket: not fatal
		}
		if n < pmtuHdrLen || string(buf[:4]) != pmtuMagic {
			continue
		}
		id := binary.BigEndian.Uint32(buf[8:12])
		switch buf[4] {
		case pmtuProbe:
			buf[4] = pmtuAck
			p.conn.WriteToUDPAddrPort(buf[:pmtuHdrLen], from)
		case pmtuAck:
			p.mu.Lock()
			if ch, ok := p.wait[id]; ok {
				close(ch)
				delete(p.wait, id)
			}
			p.mu.Unlock()
		}
	}
}

// try sends one probe of IP size size to dst and reports whether an ack came
// back in time. A size above the local interface MTU fails at once.
func (p *prober) try(ctx context.Context, dst netip.AddrPort, size int) bool {
	id := p.nextID.Add(1)
	ch := make(chan struct{})
	p.mu.Lock()
	p.wait[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.wait, id)
		p.mu.Unlock()
	}()
	msg := make([]byte, size-p.ipUDPLen()) // minus the IP and UDP headers
	copy(msg, pmtuMagic)
	msg[4] = pmtuProbe
	binary.BigEndian.PutUint16(msg[6:8], uint16(size))
	binary.BigEndian.PutUint32(msg[8:12], id)
	if _, err := p.conn.WriteToUDPAddrPort(msg, dst); err != nil {
		if errors.Is(err, syscall.EMSGSIZE) {
			return false
		}
		// ECONNREFUSED from an earlier probe's ICMP: send once more.
		if _, err := p.conn.WriteToUDPAddrPort(msg, dst); err != nil {
			return false
		}
	}
	select {
	case <-ch:
		return true
	case <-time.After(pmtuWait):
		return false
	case <-ctx.Done():
		return false
	}
}

// measure finds the largest IP packet size up to max that reaches dst and
// comes back acknowledged. Each size is tried twice before it counts as
// lost. It returns 0 when not even the minimum size gets through.
func (p *prober) measure(ctx context.Context, dst netip.AddrPort, max int) int {
	ok := func(size int) bool { return p.try(ctx, dst, size) || p.try(ctx, dst, size) }
	if ok(max) {
		return max
	}
	minSize := pmtuMinSize4
	if p.v6 {
		minSize = pmtuMinSize6
	}
	if !ok(minSize) {
		return 0
	}
	lo, hi := minSize, max // lo passes, hi fails
	for hi-lo > 1 && ctx.Err() == nil {
		mid := (lo + hi) / 2
		if ok(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

func (p *prober) close() { p.conn.Close() }

// ipUDPLen is the IP and UDP header length of a probe: IPv4 20 or IPv6 40,
// plus UDP 8.
func (p *prober) ipUDPLen() int {
	if p.v6 {
		return header.IPv6Len + header.UDPLen
	}
	return header.IPv4MinLen + header.UDPLen
}

// mtuReport measures the path MTU to every other host (in parallel) and
// explains the numbers. network limits the networks listed ("" = all).
func (a *Agent) mtuReport(ctx context.Context, network string) (api.MTUReport, error) {
	st := a.store.State()
	r := api.MTUReport{
		Host: a.cfg.Name, UnderlayMTU: a.underlayMTU, Source: a.mtuSource,
		Family: vxlan.Family(a.cfg.Advertise), Overhead: a.overhead(), EndpointMTU: a.underlayMTU - a.overhead(),
		Networks: []api.NetworkMTU{}, Peers: []api.PeerMTU{},
	}
	if _, ok := st.Networks[network]; network != "" && !ok {
		return r, notFound("no network named %q: see 'vxswitch network ls'", network)
	}
	for _, n := range st.Networks {
		if network == "" || n.Name == network {
			r.Networks = append(r.Networks, api.NetworkMTU{Name: n.Name, Asked: n.MTU, EndpointMTU: a.endpointMTU(n), DualStack: n.Subnet6.IsValid(), IPv6Only: !n.Subnet.IsValid()})
		}
	}
	sort.Slice(r.Networks, func(i, j int) bool { return r.Networks[i].Name < r.Networks[j].Name })
	for _, h := range st.Hosts {
		if h.Name != a.cfg.Name {
			r.Peers = append(r.Peers, api.PeerMTU{Host: h.Name, VTEP: h.VTEP})
		}
	}
	sort.Slice(r.Peers, func(i, j int) bool { return r.Peers[i].Host < r.Peers[j].Host })
	var wg sync.WaitGroup
	for i := range r.Peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &r.Peers[i]
			p.PathMTU = a.prober.measure(ctx, netip.AddrPortFrom(p.VTEP, uint16(a.cfg.APIPort)), a.underlayMTU)
			switch {
			case p.PathMTU == 0:
				p.Warning = fmt.Sprintf("no probe reached %s: is its agent running and the underlay up?", p.Host)
			case p.PathMTU < a.underlayMTU:
				p.Warning = fmt.Sprintf("path to %s carries %d, less than the %d this host assumes: inner packets above %d to %s are lost; set --underlay-mtu %d on every host, or fix the underlay",
					p.Host, p.PathMTU, a.underlayMTU, p.PathMTU-a.overhead(), p.Host, p.PathMTU)
			}
		}()
	}
	wg.Wait()
	return r, nil
}

func (a *Agent) handleMTU(w http.ResponseWriter, r *http.Request) {
	rep, err := a.mtuReport(r.Context(), r.URL.Query().Get("network"))
	reply(w, rep, err)
}

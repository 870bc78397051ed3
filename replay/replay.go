// Package replay runs the real forwarding engine of vxswitch over a capture
// and writes every frame it emits to another capture: the machinery of
// `vxswitch replay` and of the golden tests in testdata/replay.
//
// The switch is the one the agent runs (vswitch.New), with in-memory
// devices with offloads (taptest.NewOffload, as the agent opens its TAPs
// with tap.Config.Offload) as ports, an in-memory underlay with GRO
// (vxlantest) that records what it is given, the view the agent builds
// from a fixed replicated state (stateview.Build) and the in-band resolver
// with that state's names and no upstream servers. The packets go through
// the production loops: each port's goroutine reads its device with vnet
// headers and batches its sends, and ServeUnderlay reads the underlay with
// GRO. Every input packet is handed over alone, and the next one only
// after the switch has finished with it (taptest and vxlantest WaitIdle),
// so the output depends on the input and the state only: same input, same
// bytes.
//
// Input: a pcapng file whose interface names say where each packet enters.
// An interface named after an endpoint of this host (a TAP port) carries
// inner Ethernet frames the endpoint sends; an interface named "underlay"
// carries whole outer Ethernet/IPv4/UDP/VXLAN (or IPv6 instead of IPv4)
// packets arriving at this host. A plain pcap file (tcpdump -w) has no
// interface names: all its packets are underlay packets. Underlay packets that this host's VXLAN
// socket would never receive (not IP/UDP, another UDP port, another
// destination address, fragments) are counted in Result.Ignored and
// skipped.
//
// Output: a pcapng file with one interface per port (named after the
// endpoint, sorted by name) and a last one named "underlay". Frames written
// into a port are recorded as they are; packets sent to the underlay get
// outer headers synthesized the way this host's socket would send them (see
// capture.OuterHeaders), so Wireshark and tshark dissect VXLAN on port 4789 with no
// options. Each output packet has the timestamp of the input packet that
// caused it; those of one input packet come port frames first (in port
// order), then underlay packets in the order they were sent.
package replay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/gopacket"

	vxcapture "vxswitch/capture"
	"vxswitch/raftstore"
	"vxswitch/resolver"
	"vxswitch/stateview"
	vswitch "vxswitch/switch"
	"vxswitch/tap/taptest"
	"vxswitch/vxlan"
	"vxswitch/vxlan/vxlantest"
)

// UnderlayName is the capture interface name of the underlay, in input and
// output files.
const UnderlayName = "underlay"

// DefaultUnderlayMTU is the underlay MTU assumed when Options.UnderlayMTU
// is 0. Endpoint MTUs derive from it as on a real host (minus the 50 bytes
// of VXLAN overhead, lowered further by a network's own MTU).
const DefaultUnderlayMTU = 1500

// Options configure Run. State is required (see StateFile.Check); the other
// zero fields take the defaults in their comments.
type Options struct {
	// State is the replicated state and the host whose switch runs.
	State StateFile
	// UnderlayMTU is this host's underlay MTU; 0 means DefaultUnderlayMTU.
	UnderlayMTU int
	// VXLANPort is the UDP port of VXLAN on every host; 0 means 4789.
	VXLANPort uint16
}

// Result tells what a replay did.
type Result struct {
	// Packets counts the input packets read.
	Packets int
	// Emitted counts the packets written to the output.
	Emitted int
	// Ignored counts, by reason, the input underlay packets the host's
	// VXLAN socket would not have received: "not_ip_udp", "fragment",
	// "other_port", "other_host", "truncated". nil when none were.
	Ignored map[string]int
	// Stats are the switch's counters after the last packet.
	Stats vswitch.Stats
}

// Run replays the capture read from in through a switch set up from opt and
// writes what it emits as pcapng to out. It stops at the first packet it
// cannot replay (an unknown capture interface, a link type other than
// Ethernet) with an error naming the packet.
func Run(out io.Writer, in io.Reader, opt Options) (Result, error) {
	if err := opt.State.Check(); err != nil {
		return Result{}, err
	}
	if opt.UnderlayMTU == 0 {
		opt.UnderlayMTU = DefaultUnderlayMTU
	}
	if opt.VXLANPort == 0 {
		opt.VXLANPort = vxlan.Port
	}
	src, err := vxcapture.OpenReader(in)
	if err != nil {
		return Result{}, fmt.Errorf("replay: %w", err)
	}
	h, err := newHost(opt)
	if err != nil {
		return Result{}, err
	}
	defer h.close()
	dst, err := newOutput(out, h)
	if err != nil {
		return Result{}, err
	}

	var res Result
	for {
		pkt, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("replay: read packet %d: %w", res.Packets+1, err)
		}
		res.Packets++
		where, err := ingress(src, pkt, h)
		if err != nil {
			return res, fmt.Errorf("replay: packet %d: %w", res.Packets, err)
		}
		h.clock.set(pkt.Info.Timestamp)
		if where == UnderlayName {
			reason, err := h.fromUnderlay(pkt.Data)
			if err != nil {
				return res, fmt.Errorf("replay: packet %d: %w", res.Packets, err)
			}
			if reason != "" {
				if res.Ignored == nil {
					res.Ignored = map[string]int{}
				}
				res.Ignored[reason]++
			}
		} else if err := h.fromPort(where, pkt.Data); err != nil {
			return res, fmt.Errorf("replay: packet %d: %w", res.Packets, err)
		}
		n, err := dst.emit(h, pkt.Info.Timestamp)
		res.Emitted += n
		if err != nil {
			return res, err
		}
	}
	if err := dst.flush(); err != nil {
		return res, err
	}
	res.Stats = h.sw.Stats()
	return res, h.close()
}

// host is the switch of the replayed host and what surrounds it.
type host struct {
	self     raftstore.Host
	port     uint16 // VXLAN UDP port
	sw       *vswitch.Switch
	underlay *vxlantest.Conn // in-memory, with the batching of *vxlan.Conn
	served   chan error      // ServeUnderlay's result, once it returns
	clock    *clock
	ports    []hostPort // sorted by name
}

// idleTimeout bounds the wait for the switch to finish with one input
// packet; it only passes when the switch is stuck.
const idleTimeout = time.Minute

// hostPort is one local port: an endpoint of this host and its in-memory
// TAP with offloads.
type hostPort struct {
	ep  raftstore.Endpoint
	vni uint32
	dev *taptest.Device
}

// maxFrame is the longest frame a TAP delivers.
const maxFrame = 65535

// newHost builds the switch exactly as the agent does from opt.State, with
// a port for every endpoint the state places on this host.
func newHost(opt Options) (*host, error) {
	st, self := opt.State.State, opt.State.Self
	h := &host{
		self:     st.Hosts[self],
		port:     opt.VXLANPort,
		underlay: vxlantest.New(),
		clock:    &clock{},
	}
	quiet := slog.New(slog.DiscardHandler)
	dns := resolver.New(resolver.Config{Upstreams: []netip.AddrPort{}, Logger: quiet})
	dns.SetTable(stateview.Names(st))
	h.sw = vswitch.New(vswitch.Config{
		Underlay: h.underlay, Port: opt.VXLANPort, Now: h.clock.now, Logger: quiet, DNS: dns,
	})
	mtu := func(n raftstore.Network) int {
		m := opt.UnderlayMTU - vxlan.Overhead(h.self.VTEP)
		if n.MTU > 0 && n.MTU < m {
			m = n.MTU
		}
		return m
	}
	h.sw.SetView(stateview.Build(st, self, mtu))
	for _, ep := range st.HostEndpoints(self) {
		n, ok := st.Networks[ep.Network]
		if !ok {
			continue // the agent does not attach it either
		}
		mac, err := vswitch.ParseMAC(ep.MAC)
		if err != nil {
			h.sw.Close()
			return nil, fmt.Errorf("replay: state: endpoint %s: %w", ep.Name, err)
		}
		dev := taptest.NewOffload(ep.Name)
		if err := h.sw.AddPort(ep.Name, n.VNI, mac, dev); err != nil {
			h.sw.Close()
			return nil, fmt.Errorf("replay: state: %w", err)
		}
		h.ports = append(h.ports, hostPort{ep: ep, vni: n.VNI, dev: dev})
	}
	h.served = make(chan error, 1)
	go func() { h.served <- h.sw.ServeUnderlay(h.underlay) }()
	return h, nil
}

// close stops the switch and the underlay loop and returns the loop's
// error. Closing twice is not an error.
func (h *host) close() error {
	h.sw.Close()
	h.underlay.Close()
	if h.served == nil {
		return nil
	}
	err := <-h.served
	h.served = nil
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// fromPort hands frame to the port called name as its endpoint would send
// it (with a vnet header asking for nothing, as a TAP with offloads reads a
// frame without TSO) and waits until the port's goroutine has finished
// with it.
func (h *host) fromPort(name string, frame []byte) error {
	if len(frame) > maxFrame {
		return fmt.Errorf("frame of %d bytes into port %q is longer than the %d a TAP delivers", len(frame), name, maxFrame)
	}
	dev := h.ports[h.portFor(name)].dev
	dev.InjectFrame(frame)
	if !dev.WaitIdle(idleTimeout) {
		return fmt.Errorf("port %q: the switch did not finish with the frame within %v", name, idleTimeout)
	}
	return nil
}

// fromUnderlay hands the UDP payload of the outer packet data to the switch
// as the host's socket would (one datagram per receive) and waits until
// ServeUnderlay has finished with it, or returns why the socket would
// never have received it.
func (h *host) fromUnderlay(data []byte) (ignored string, err error) {
	payload, src, dst, reason := parseOuter(data)
	switch {
	case reason != "":
		return reason, nil
	case dst.Port() != h.port:
		return "other_port", nil
	case dst.Addr() != h.self.VTEP:
		return "other_host", nil
	}
	h.underlay.Deliver(src, payload)
	if !h.underlay.WaitIdle(idleTimeout) {
		return "", fmt.Errorf("the switch did not finish with the underlay packet within %v", idleTimeout)
	}
	return "", nil
}

// portFor returns the index in h.ports of the port called name, or -1.
func (h *host) portFor(name string) int {
	return slices.IndexFunc(h.ports, func(p hostPort) bool { return p.ep.Name == name })
}

// clock is the switch's clock: the timestamp of the packet being replayed,
// so that learning and aging follow the capture's time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// captureInfo is the record of one output packet.
func captureInfo(ts time.Time, iface, n int) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: ts, CaptureLength: n, Length: n, InterfaceIndex: iface}
}

// Package vswitch is the forwarding engine of vxswitch: a learning Ethernet
// switch per VXLAN network (VNI) whose ports are local TAP devices and remote
// VTEPs reached over the underlay UDP socket (RFC 7348).
//
// The control plane describes the world with an immutable View (member hosts,
// networks, flood lists, remote MACs) and swaps it in with SetView; the data
// path reads it through an atomic pointer and never waits for the control
// plane. Broadcast, multicast and unknown-unicast frames from a local port go
// to the other local ports of the network and once to every VTEP in the
// network's flood list (head-end replication, RFC 7348 section 4.2). Frames
// from the underlay are only ever delivered to local ports (split horizon).
// Problems are counted by reason (see Stats), never logged per frame.
//
// The answers the switch makes itself live in packages beside it, so the
// data path reads without them: switch/arp (ARP for known addresses, and
// the gratuitous ARP of a moved address), switch/ndp (the same for IPv6:
// neighbour solicitations, duplicate address detection, unsolicited
// advertisements), switch/dnsanswer (DNS over UDP and TCP and ping at the
// resolver's addresses) and switch/pmtu (ICMP
// fragmentation needed, ICMPv6 packet too big, IPv4 fragmentation, MSS
// clamping). This package decides when to call them (answerLocally in
// answer.go, oversize in mtu.go) and writes what they make into the ports.
//
// The data path has one line per direction, each carrying one per-frame
// struct: a frame from a port is a portFrame (forward.go: fromPort, admit,
// forward), a packet from the underlay an underlayPacket (underlay.go:
// fromUnderlay, decap). The batch of a port with offloads and the record
// an observer asked for travel inside that struct (offload.go, observe.go).
package vswitch

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"vxswitch/switch/arp"
	"vxswitch/switch/dnsanswer"
	"vxswitch/tap"
	"vxswitch/vxlan"
)

// Underlay sends VXLAN packets to other VTEPs: the send half of the
// contract between the switch and the underlay socket. *vxlan.Conn
// satisfies it; vxlan/vxlantest has a fake that records what is sent.
//
// WriteTo sends one datagram. WriteGSO sends pkt as datagrams of seg bytes
// back to back (the last possibly shorter), all to dst: the segments of a
// TCP super-frame read from a port with offloads, or frames that queued up
// on one, leave with one call; an underlay that cannot send them with one
// system call sends them one by one. Both may be called from several
// goroutines at once and must not keep pkt after they return.
//
// Encryption of the underlay (ESP) goes between the switch and the socket:
// a wrapper around the sockets that implements Underlay and UnderlayReader,
// handed to Config.Underlay and ServeUnderlay, seals each datagram with
// package esp on the way out (WriteTo, and WriteGSO segment by segment:
// equal sizes seal to equal sizes, so a run stays one GSO send) and opens
// it on the way in; the VNI of each VXLAN header tells whether its network
// is encrypted. The forwarding code does not change.
type Underlay interface {
	WriteTo(pkt []byte, dst netip.AddrPort) error
	WriteGSO(pkt []byte, seg int, dst netip.AddrPort) error
}

// UnderlayReader is the receive half of the contract: what ServeUnderlay
// reads from. *vxlan.Conn satisfies it.
//
// ReadFrom reads one datagram. EnableGRO turns on receiving many datagrams
// of one sender per read (UDP GRO); an error means the reader cannot, and
// ServeUnderlay then uses ReadFrom only. ReadGRO reads what one receive
// hands over: n bytes of datagrams of seg bytes each (the last may be
// shorter) from src. Reads end with an error wrapping net.ErrClosed or
// os.ErrClosed once the reader is closed.
type UnderlayReader interface {
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	EnableGRO() error
	ReadGRO(b []byte) (n, seg int, src netip.AddrPort, err error)
}

// Config configures a Switch. The zero value is usable: no underlay (frames
// for remote VTEPs are dropped as no_port) and the defaults below.
type Config struct {
	// Underlay sends encapsulated frames; nil means local switching only.
	Underlay Underlay
	// Port is the UDP destination port of VTEPs; 0 means vxlan.Port (4789).
	Port uint16
	// AgeTime is how long a learned MAC stays without being seen again;
	// 0 means 300 seconds.
	AgeTime time.Duration
	// LearnCap is the maximum number of MACs learned per TAP port (besides
	// the port's own MAC); 0 means 64.
	LearnCap int
	// WireCap is the maximum number of MACs learned from external VTEPs per
	// network; 0 means 4096.
	WireCap int
	// Now is the clock used for learning and aging; nil means time.Now.
	Now func() time.Time
	// Logger receives port lifecycle messages (never per-frame ones); nil
	// means slog.Default().
	Logger *slog.Logger
	// DNS answers DNS queries that endpoints send to their network's
	// Resolver address, on UDP port 53 and over TCP to port 53 (dnstcp.go;
	// a handler that also has ServeDNSTCP answers those untruncated). nil
	// means UDP queries are dropped and counted as "no_dns", and TCP ones
	// are reset.
	DNS DNSHandler
	// PortStopped, when not nil, is called when the goroutine of a port
	// stops reading because its device failed (never after RemovePort or
	// Close), with the port's name, its device and the error; the agent
	// detaches an endpoint whose TAP reports tap.ErrGone. It is called
	// from that goroutine, once per port, and must not block: RemovePort
	// of the port waits for the goroutine to exit.
	PortStopped func(name string, dev tap.Device, err error)
	// NoClampMSS turns MSS clamping off. The zero value (false) means the
	// MSS option of TCP SYN and SYN-ACK segments is lowered to fit the
	// network MTU in both directions (mss.go).
	NoClampMSS bool
}

// DNSHandler answers DNS queries that endpoints send to their network's
// resolver address: see dnsanswer.Handler, and dnsanswer.TCPHandler for
// queries over TCP.
type DNSHandler = dnsanswer.Handler

// Defaults applied by New for zero Config fields.
const (
	DefaultAgeTime  = 300 * time.Second
	DefaultLearnCap = 64
	DefaultWireCap  = 4096
)

// Switch is the forwarding engine of one host.
//
// Create it with New; the zero value is not usable. All methods may be called
// from any goroutine at the same time. Call Close when done to stop the port
// goroutines.
type Switch struct {
	underlay Underlay
	udpPort  uint16
	learnCap int
	wireCap  int
	now      func() time.Time
	log      *slog.Logger
	dns      DNSHandler
	clampMSS bool

	portStopped func(name string, dev tap.Device, err error) // Config.PortStopped

	ipID atomic.Uint32 // IPv4 identification of packets the switch makes

	observer atomic.Pointer[observerBox] // nil = nobody observes (observe.go)
	frameID  atomic.Uint64               // last Event.ID handed out

	view  atomic.Pointer[View]      // immutable; nil = no networks
	ports atomic.Pointer[portTable] // immutable, copied on write under mu

	viewMu  sync.Mutex // serialises SetView
	lastMAC arp.Memory // MAC each address last had; under viewMu (arp.go)
	mu      sync.Mutex // serialises AddPort, RemovePort and Close
	closed  bool

	local learnTable // MACs learned on TAP ports; owner = the port
	wire  learnTable // MACs learned from external VTEPs; owner = the VNI

	stats counters

	tcpConns dnsanswer.Responder // DNS-over-TCP connections to resolvers (dnstcp.go)
}

// ErrClosed is returned by AddPort after Close.
var ErrClosed = errors.New("vswitch: switch is closed")

// New returns a Switch with no ports and no view (no networks).
func New(cfg Config) *Switch {
	s := &Switch{
		underlay: cfg.Underlay,
		udpPort:  cfg.Port,
		learnCap: cfg.LearnCap,
		wireCap:  cfg.WireCap,
		now:      cfg.Now,
		log:      cfg.Logger,
		dns:      cfg.DNS,
		clampMSS: !cfg.NoClampMSS,

		portStopped: cfg.PortStopped,
	}
	if s.udpPort == 0 {
		s.udpPort = vxlan.Port
	}
	if s.learnCap == 0 {
		s.learnCap = DefaultLearnCap
	}
	if s.wireCap == 0 {
		s.wireCap = DefaultWireCap
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	age := cfg.AgeTime
	if age == 0 {
		age = DefaultAgeTime
	}
	s.local.age = age
	s.wire.age = age
	s.ports.Store(&portTable{})
	s.tcpConns.Now = s.now
	s.tcpConns.NextID = func() uint16 { return uint16(s.ipID.Add(1)) }
	return s
}

// SetView makes v the view of the data path with one atomic pointer swap.
// v and everything it points to must not be modified afterwards. A nil v
// means no networks. For every endpoint address whose MAC differs from the
// one it last had in a view (a moved MAC, or a reused address), it then
// writes a gratuitous ARP (an unsolicited neighbour advertisement for an
// IPv6 address) into the local ports of that network (see announceChanges
// in arp.go); it visits only the addresses that differ from the view it
// replaces, so a view made from the last one by a few changes
// (stateview.Update) costs what changed. Calls to SetView are serialised.
func (s *Switch) SetView(v *View) {
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	last := s.view.Swap(v)
	s.announceChanges(last, v)
}

// network returns the network of vni in view v, or nil.
func (v *View) network(vni uint32) *Network {
	if v == nil {
		return nil
	}
	return v.Networks[vni]
}

// Close removes all ports (closing their devices and waiting for their
// goroutines) and makes later AddPort calls fail. Closing twice is not an
// error. It returns the first error from closing a device.
func (s *Switch) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	var first error
	for _, name := range s.ports.Load().names() {
		if err := s.RemovePort(name); err != nil && first == nil {
			first = err
		}
	}
	return first
}

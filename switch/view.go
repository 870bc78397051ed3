package vswitch

import "net/netip"

// View is what the forwarding engine knows from the replicated state: the
// member hosts and, per VNI, where to flood and where remote MACs live.
//
// A View is immutable once passed to Switch.SetView: the data path reads it
// without locks from many goroutines, so neither the View nor anything it
// points to may be changed afterwards; build a new View instead. A nil View,
// or a zero View, means no networks: every frame is dropped as unknown_vni.
type View struct {
	// Self is this host's VTEP address. Flood entries equal to Self are skipped.
	Self netip.Addr
	// Hosts maps the VTEP address of every member host of the cluster to its
	// host name; VXLAN packets from these addresses are accepted for every VNI.
	Hosts map[netip.Addr]string
	// Networks maps a VNI to its network.
	Networks map[uint32]*Network
}

// Network is one virtual Ethernet segment, identified by its VXLAN VNI.
// Like View it is immutable once part of a View passed to SetView.
type Network struct {
	// VNI is the 24-bit VXLAN Network Identifier (RFC 7348 section 5).
	VNI uint32
	// Name is the network's name, for people (FDB output).
	Name string
	// MTU is the endpoint MTU (inner IP MTU). A frame read from a TAP that
	// is longer than MTU+14 bytes (+4 with an 802.1Q tag) is never forwarded
	// as is: see Switch.oversize (mtu.go) for what happens to it. TCP SYNs
	// get their MSS option clamped to fit it (mss.go). 0 means no limit.
	MTU int
	// Flood is the head-end replication list: the VTEPs of the other hosts
	// that have endpoints in this network, plus its external VTEPs. Each
	// broadcast, multicast or unknown-unicast frame from a local port is
	// sent once to every entry, so it must not hold duplicates.
	Flood []netip.Addr
	// External holds the external VTEPs (for example kernel vxlan devices) of
	// this network. They are accepted as sources for this VNI only, and they
	// are the only place source MACs are learned from the wire.
	External map[netip.Addr]bool
	// Remote maps a MAC to the VTEP of the host where it lives.
	Remote map[MAC]netip.Addr
	// Resolver is the network's resolver address (the first usable address
	// of its subnet). The switch answers ARP for it, DNS queries to it (UDP
	// port 53, through Config.DNS) and ICMP echo requests to it, and never
	// forwards frames sent to it. The zero Addr means no resolver.
	Resolver netip.Addr
	// ResolverMAC is the MAC address the switch answers ARP for Resolver
	// with, and the source MAC of the frames it sends on the resolver's
	// behalf. Frames to this MAC are never forwarded. Zero means none.
	ResolverMAC MAC
	// Subnet is the network's IPv4 subnet. A frame from an endpoint or a
	// member host may use an address inside it as its source only if IPAM
	// assigned that address to an endpoint (Addrs): an address IPAM has not
	// handed out is one it will hand to someone else. The zero Prefix
	// turns the check off.
	Subnet netip.Prefix
	// Addrs maps the IPv4 address of every endpoint of the network, on any
	// host, to its MAC, and on a dual-stack network its IPv6 address too.
	// ARP requests for these addresses are answered by the
	// local switch instead of being flooded (arp.go), and when an address's
	// MAC changes from one View to the next SetView sends a gratuitous ARP
	// into the local ports. nil means no ARP suppression.
	Addrs map[netip.Addr]MAC
	// Subnet6 is the IPv6 subnet of a dual-stack network, zero for an
	// IPv4-only one.
	Subnet6 netip.Prefix
	// Resolver6 is the resolver's IPv6 address on a dual-stack network
	// (the first of Subnet6), answered at ResolverMAC like Resolver; zero
	// for none.
	Resolver6 netip.Addr
}

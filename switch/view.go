package vswitch

import (
	"iter"
	"net/netip"

	"vxswitch/pmap"
)

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
	// Remote maps a MAC to the VTEP of the host where it lives. It is a
	// persistent map, so the next View's network can be made from this one
	// with one change in O(log n), sharing the rest.
	Remote MACTable
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
	// into the local ports. The zero AddrTable means no ARP suppression.
	Addrs AddrTable
	// Subnet6 is the IPv6 subnet of a dual-stack network, zero for an
	// IPv4-only one.
	Subnet6 netip.Prefix
	// Resolver6 is the resolver's IPv6 address on a dual-stack network
	// (the first of Subnet6), answered at ResolverMAC like Resolver; zero
	// for none.
	Resolver6 netip.Addr
}

// AddrTable maps the addresses of a network's endpoints to their MACs and
// knows which MACs are endpoint MACs (the guard refuses them as sources
// from anyone else). It is persistent: With and Without return a new table
// that shares all but O(log n) of its memory with the old one, which stays
// valid, so the control plane can make the table of the next View per
// change while the data path reads this one. Lookups do not allocate.
//
// The zero value is an empty table. A table is never modified once made
// (except by Set while it is being built), so any number of goroutines may
// read it.
type AddrTable struct {
	byIP pmap.Map[netip.Addr, MAC]
	macs pmap.Map[uint64, int] // how many addresses of byIP have each MAC (macKey)
}

// AddrsOf returns the table of the addresses in m.
func AddrsOf(m map[netip.Addr]MAC) AddrTable {
	var t AddrTable
	for ip, mac := range m {
		t.Set(ip, mac)
	}
	return t
}

// Get returns the MAC of address ip.
func (t AddrTable) Get(ip netip.Addr) (MAC, bool) { return t.byIP.Get(ip) }

// HasMAC reports whether some address of the table is at m.
func (t AddrTable) HasMAC(m MAC) bool { return t.macs.Has(macKey(m)) }

// Len returns the number of addresses.
func (t AddrTable) Len() int { return t.byIP.Len() }

// All yields every address and its MAC once, in no particular order.
func (t AddrTable) All() iter.Seq2[netip.Addr, MAC] { return t.byIP.All() }

// With returns t with ip at mac.
func (t AddrTable) With(ip netip.Addr, mac MAC) AddrTable {
	if old, ok := t.byIP.Get(ip); ok {
		if old == mac {
			return t
		}
		t = t.Without(ip)
	}
	c, _ := t.macs.Get(macKey(mac))
	return AddrTable{byIP: t.byIP.With(ip, mac), macs: t.macs.With(macKey(mac), c+1)}
}

// Without returns t without ip.
func (t AddrTable) Without(ip netip.Addr) AddrTable {
	mac, ok := t.byIP.Get(ip)
	if !ok {
		return t
	}
	k := macKey(mac)
	var macs pmap.Map[uint64, int]
	if c, _ := t.macs.Get(k); c > 1 {
		macs = t.macs.With(k, c-1)
	} else {
		macs = t.macs.Without(k)
	}
	return AddrTable{byIP: t.byIP.Without(ip), macs: macs}
}

// Set sets ip to mac in t itself. Only for a table being built that no
// one else holds yet (no copy of it was made or read): it changes the
// memory every copy shares.
func (t *AddrTable) Set(ip netip.Addr, mac MAC) {
	if old, ok := t.byIP.Get(ip); ok {
		if old == mac {
			return
		}
		*t = t.Without(ip)
	}
	c, _ := t.macs.Get(macKey(mac))
	t.byIP.Set(ip, mac)
	t.macs.Set(macKey(mac), c+1)
}

// Diff calls change for every address whose MAC differs between t and o
// (old is nil for an address only in o, new nil for one only in t). The
// parts the two tables share are skipped, so comparing two versions a few
// changes apart costs O(log n) per change.
func (t AddrTable) Diff(o AddrTable, change func(ip netip.Addr, old, new *MAC)) {
	t.byIP.Diff(o.byIP, func(a, b MAC) bool { return a == b }, change)
}

// Same reports whether t and o are the same version of a table (one made
// from the other without a change, or both empty).
func (t AddrTable) Same(o AddrTable) bool { return t.byIP.Same(o.byIP) }

// Trim drops the spare room Set leaves in t's memory. Like Set, only for a
// table no one else holds yet.
func (t *AddrTable) Trim() {
	t.byIP.Trim()
	t.macs.Trim()
}

// MACTable maps MACs to the VTEP addresses of the hosts where they live.
// Like AddrTable it is persistent (With and Without make a new version in
// O(log n) that shares the rest), its lookups do not allocate, and its zero
// value is empty. Any number of goroutines may read a table.
type MACTable struct {
	m pmap.Map[uint64, netip.Addr] // by macKey
}

// macKey is m as a number: pmap hashes a uint64 key in about 5 ns, a
// [6]byte one in about 15.
func macKey(m MAC) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

// keyMAC is the MAC of macKey k.
func keyMAC(k uint64) MAC {
	return MAC{byte(k >> 40), byte(k >> 32), byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)}
}

// Get returns the VTEP of m.
func (t MACTable) Get(m MAC) (netip.Addr, bool) { return t.m.Get(macKey(m)) }

// Has reports whether m is in t.
func (t MACTable) Has(m MAC) bool { return t.m.Has(macKey(m)) }

// Len returns the number of MACs.
func (t MACTable) Len() int { return t.m.Len() }

// All yields every MAC and its VTEP once, in no particular order.
func (t MACTable) All() iter.Seq2[MAC, netip.Addr] {
	return func(yield func(MAC, netip.Addr) bool) {
		for k, vtep := range t.m.All() {
			if !yield(keyMAC(k), vtep) {
				return
			}
		}
	}
}

// With returns t with m at vtep.
func (t MACTable) With(m MAC, vtep netip.Addr) MACTable {
	return MACTable{t.m.With(macKey(m), vtep)}
}

// Without returns t without m.
func (t MACTable) Without(m MAC) MACTable { return MACTable{t.m.Without(macKey(m))} }

// Set sets m to vtep in t itself: like AddrTable.Set, only for a table
// being built that no one else holds yet.
func (t *MACTable) Set(m MAC, vtep netip.Addr) { t.m.Set(macKey(m), vtep) }

// Trim drops the spare room Set leaves; like Set, only while building.
func (t *MACTable) Trim() { t.m.Trim() }

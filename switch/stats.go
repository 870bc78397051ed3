package vswitch

import (
	"sync/atomic"

	"vxswitch/switch/dnsanswer"
)

// Stats is a snapshot of the switch's counters, returned by Switch.Stats.
// All counts are totals since New. The zero value means nothing happened.
type Stats struct {
	// RxFrames and RxBytes count frames read from TAP ports.
	RxFrames, RxBytes uint64
	// TxFrames and TxBytes count frames written to TAP ports (from other
	// local ports or from the underlay).
	TxFrames, TxBytes uint64
	// EncapFrames counts VXLAN packets sent to the underlay.
	EncapFrames uint64
	// DecapFrames counts VXLAN packets from the underlay that passed the
	// header, VNI, member and inner source MAC checks.
	DecapFrames uint64
	// FloodCopies counts the copies made by flooding broadcast, multicast and
	// unknown-unicast frames, one per port or VTEP the frame was sent to.
	FloodCopies uint64
	// LocalSwitched counts frames written from one local TAP port to another.
	LocalSwitched uint64
	// Drops counts dropped frames and refused learning by reason; only
	// reasons with a non-zero count are present. The reasons are "short",
	// "bad_flags", "reserved_bits", "unknown_vni", "not_member", "oversize",
	// "no_port", "runt_inner", "learn_cap", "write_error", "no_dns" (a DNS
	// query while Config.DNS is nil) and "to_resolver" (a frame for the
	// resolver that the switch does not answer, such as an IPv4 fragment) and
	// "bad_offload" (a frame from a port with offloads whose vnet header
	// asks for something the switch cannot do), and the anti-spoofing
	// reasons "bad_src_mac", "spoofed_mac", "spoofed_ip", "flood_limit",
	// "stacked_vlan", "mac_taken", "unassigned_ip" and "router_advert"
	// (guard.go).
	Drops map[string]uint64
	// CsumCompleted counts inner TCP/UDP checksums completed on frames from
	// the underlay that carried only a partial (pseudo-header) checksum.
	CsumCompleted uint64
	// ARPSuppressed counts ARP requests from TAP ports answered by the
	// switch itself (known endpoint or resolver address).
	ARPSuppressed uint64
	// ARPFlooded counts broadcast ARP requests from TAP ports that the
	// switch could not answer and flooded.
	ARPFlooded uint64
	// GARPSent counts gratuitous ARPs written into TAP ports because an
	// address's MAC changed between two views.
	GARPSent uint64
	// DNSQueries counts DNS queries passed to Config.DNS.
	DNSQueries uint64
	// DNSTCPConns counts TCP connections to the resolver's port 53 that the
	// switch accepted (SYN answered with a SYN-ACK, dnstcp.go).
	DNSTCPConns uint64
	// DNSTCPQueries counts the DNS queries received over TCP; each also
	// counts in DNSQueries.
	DNSTCPQueries uint64
	// DNSTCPResets counts RSTs sent for TCP segments to the resolver that
	// belong to no known connection or go to a port other than 53 (or
	// arrive while Config.DNS is nil), including DNSTCPRefused ones.
	DNSTCPResets uint64
	// DNSTCPRefused counts SYNs to the resolver answered with a RST because
	// the connection table of the network was full (256 connections).
	DNSTCPRefused uint64
	// DNSTCPAborted counts connections reset because their unsent answers
	// would have passed the per-connection or the total bound (a client
	// that does not read; dnstcp.go).
	DNSTCPAborted uint64
	// DNSTCPDupAcks counts TCP segments to the resolver answered with a
	// duplicate ACK only: out of order, retransmitted, or unacceptable.
	DNSTCPDupAcks uint64
	// DNSTCPClosed counts connections forgotten after our FIN was
	// acknowledged or the client sent a RST.
	DNSTCPClosed uint64
	// DNSTCPExpired counts connections forgotten after 30 s without a
	// segment from the client or an answer.
	DNSTCPExpired uint64
	// EchoReplies counts ICMP echo replies sent for the resolver address
	// (ICMPv6 ones for its IPv6 address included).
	EchoReplies uint64
	// NDPAnswered counts IPv6 neighbour solicitations from TAP ports
	// answered by the switch itself (known endpoint or resolver address).
	NDPAnswered uint64
	// NDPDADAnswered counts duplicate address detection probes (a
	// solicitation from the unspecified address) for an address another
	// endpoint or the resolver owns, answered by the switch so that the
	// prober's address fails.
	NDPDADAnswered uint64
	// NDPFlooded counts multicast neighbour solicitations from TAP ports
	// that the switch could not answer and flooded.
	NDPFlooded uint64
	// UNASent counts unsolicited neighbour advertisements written into TAP
	// ports because an IPv6 address's MAC changed between two views.
	UNASent uint64
	// ICMPFragNeeded counts ICMP "fragmentation needed" messages sent back
	// for oversize IPv4 packets with DF set (RFC 1191).
	ICMPFragNeeded uint64
	// ICMPv6TooBig counts ICMPv6 "packet too big" messages sent back for
	// oversize IPv6 packets (RFC 4443 section 3.2).
	ICMPv6TooBig uint64
	// Fragmented counts oversize IPv4 packets without DF that the switch
	// split into fragments (RFC 791); each fragment is then forwarded.
	Fragmented uint64
	// MSSClamped counts TCP SYN and SYN-ACK segments whose MSS option was
	// lowered to fit the network MTU.
	MSSClamped uint64
	// TSOFrames counts TCP super-frames read from ports with offloads and
	// cut into segments; each segment also counts in RxFrames.
	TSOFrames uint64
	// GROFrames counts super-frames written to ports with offloads, each
	// joined from several TCP segments that came from the underlay; each
	// segment also counts in TxFrames.
	GROFrames uint64
}

// dropReason indexes counters.drops.
type dropReason int

const (
	dropShort dropReason = iota
	dropBadFlags
	dropReserved
	dropUnknownVNI
	dropNotMember
	dropOversize
	dropNoPort
	dropRuntInner
	dropLearnCap
	dropWriteError
	dropNoDNS
	dropToResolver
	dropBadOffload
	dropBadSrcMAC
	dropSpoofedMAC
	dropSpoofedIP
	dropFloodLimit
	dropStackedVLAN
	dropMACTaken
	dropUnassignedIP
	dropRouterAdvert
	numDropReasons
)

// dropNames are the reason strings of Stats.Drops, indexed by dropReason.
var dropNames = [numDropReasons]string{
	dropShort:        "short",
	dropBadFlags:     "bad_flags",
	dropReserved:     "reserved_bits",
	dropUnknownVNI:   "unknown_vni",
	dropNotMember:    "not_member",
	dropOversize:     "oversize",
	dropNoPort:       "no_port",
	dropRuntInner:    "runt_inner",
	dropLearnCap:     "learn_cap",
	dropWriteError:   "write_error",
	dropNoDNS:        "no_dns",
	dropToResolver:   "to_resolver",
	dropBadOffload:   "bad_offload",
	dropBadSrcMAC:    "bad_src_mac",
	dropSpoofedMAC:   "spoofed_mac",
	dropSpoofedIP:    "spoofed_ip",
	dropFloodLimit:   "flood_limit",
	dropStackedVLAN:  "stacked_vlan",
	dropMACTaken:     "mac_taken",
	dropUnassignedIP: "unassigned_ip",
	dropRouterAdvert: "router_advert",
}

// counters are the live counters; every field is updated atomically from
// the data path and read by snapshot.
type counters struct {
	rxFrames, rxBytes atomic.Uint64
	txFrames, txBytes atomic.Uint64
	encap, decap      atomic.Uint64
	floodCopies       atomic.Uint64
	localSwitched     atomic.Uint64
	csumCompleted     atomic.Uint64
	arpSuppressed     atomic.Uint64
	arpFlooded        atomic.Uint64
	garpSent          atomic.Uint64
	ndpAnswered       atomic.Uint64
	ndpDAD            atomic.Uint64
	ndpFlooded        atomic.Uint64
	unaSent           atomic.Uint64
	dnsQueries        atomic.Uint64
	echoReplies       atomic.Uint64
	icmpFragNeeded    atomic.Uint64
	icmpv6TooBig      atomic.Uint64
	fragmented        atomic.Uint64
	mssClamped        atomic.Uint64
	tsoFrames         atomic.Uint64
	groFrames         atomic.Uint64
	drops             [numDropReasons]atomic.Uint64
}

func (c *counters) drop(r dropReason) { c.drops[r].Add(1) }

func (c *counters) snapshot(tcp *dnsanswer.Counters) Stats {
	s := Stats{
		RxFrames:      c.rxFrames.Load(),
		RxBytes:       c.rxBytes.Load(),
		TxFrames:      c.txFrames.Load(),
		TxBytes:       c.txBytes.Load(),
		EncapFrames:   c.encap.Load(),
		DecapFrames:   c.decap.Load(),
		FloodCopies:   c.floodCopies.Load(),
		LocalSwitched: c.localSwitched.Load(),
		CsumCompleted: c.csumCompleted.Load(),
		ARPSuppressed: c.arpSuppressed.Load(),
		ARPFlooded:    c.arpFlooded.Load(),
		GARPSent:      c.garpSent.Load(),
		NDPAnswered:   c.ndpAnswered.Load(),
		NDPFlooded:    c.ndpFlooded.Load(),
		UNASent:       c.unaSent.Load(),
		DNSQueries:    c.dnsQueries.Load(),
		EchoReplies:   c.echoReplies.Load(),
		DNSTCPConns:   tcp.Conns.Load(),
		DNSTCPQueries: tcp.Queries.Load(),
		DNSTCPResets:  tcp.Resets.Load(),
		DNSTCPRefused: tcp.Refused.Load(),
		DNSTCPAborted: tcp.Aborted.Load(),
		DNSTCPDupAcks: tcp.DupAcks.Load(),
		DNSTCPClosed:  tcp.Closed.Load(),
		DNSTCPExpired: tcp.Expired.Load(),

		NDPDADAnswered: c.ndpDAD.Load(),
		ICMPFragNeeded: c.icmpFragNeeded.Load(),
		ICMPv6TooBig:   c.icmpv6TooBig.Load(),
		Fragmented:     c.fragmented.Load(),
		MSSClamped:     c.mssClamped.Load(),
		TSOFrames:      c.tsoFrames.Load(),
		GROFrames:      c.groFrames.Load(),
		Drops:          make(map[string]uint64),
	}
	for i := range c.drops {
		if n := c.drops[i].Load(); n != 0 {
			s.Drops[dropNames[i]] = n
		}
	}
	return s
}

// Stats returns a snapshot of the counters. It may be called from any
// goroutine at any time.
func (s *Switch) Stats() Stats { return s.stats.snapshot(&s.tcpConns.Stats) }

// PortStats is a snapshot of the counters of one port, returned by
// Switch.PortStats. Unlike Stats, which counts frames as the switch
// handles them (each segment of a super-frame), it counts what the
// port's device carried: one frame per read or write, a TSO super-frame
// or a coalesced one included, bytes without the vnet header. All counts
// are totals since AddPort.
type PortStats struct {
	// Name and VNI are the port's, as given to AddPort; Network is the
	// name of that network in the current view, "" when it has none.
	Name    string
	VNI     uint32
	Network string
	// RxFrames and RxBytes count what the endpoint sent: reads from the
	// device.
	RxFrames, RxBytes uint64
	// TxFrames and TxBytes count what the switch wrote into the device.
	TxFrames, TxBytes uint64
}

// PortStats returns the counters of every port, sorted by name. It may be
// called from any goroutine at any time.
func (s *Switch) PortStats() []PortStats {
	t, v := s.ports.Load(), s.view.Load()
	out := make([]PortStats, 0, len(t.byName))
	for _, name := range t.names() {
		p := t.byName[name]
		ps := PortStats{
			Name: p.name, VNI: p.vni,
			RxFrames: p.count.rxFrames.Load(), RxBytes: p.count.rxBytes.Load(),
			TxFrames: p.count.txFrames.Load(), TxBytes: p.count.txBytes.Load(),
		}
		if nw := v.network(p.vni); nw != nil {
			ps.Network = nw.Name
		}
		out = append(out, ps)
	}
	return out
}

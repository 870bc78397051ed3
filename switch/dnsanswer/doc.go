// Package dnsanswer makes the switch's answers to what endpoints send to
// their network's resolver address: DNS over UDP (RFC 1035 section 4.2.1)
// and over TCP (RFC 7766, a minimal TCP responder, tcp.go), and ICMP echo
// replies, so that `ping RESOLVER` works. The DNS messages themselves come
// from a Handler (the agent's resolver); this package only carries them.
//
// It knows nothing of ports, views or the switch's counters: the switch
// (package vswitch, switch/dns.go) hands it the packet and plain values
// (the resolver address, the network MTU, the Ethernet header of the
// answer) and gets frames back, through an Appender result or a Writer.
//
// IPv6 goes into the same functions: an IPv6 resolver address makes
// AppendUDP, AppendEchoReply (ICMPv6 echo, RFC 4443 section 4) and the TCP
// responder build IPv6 headers instead of IPv4 ones; the switch's
// answerLocally (switch/answer.go) sends IPv6 packets to the resolver
// address to toResolver (switch/dns.go) as it does IPv4 ones.
package dnsanswer

import "net/netip"

// Port is the UDP and TCP port of DNS (RFC 1035 section 4.2).
const Port = 53

// TTL is the TTL of the IPv4 packets this package makes.
const TTL = 64

// Handler answers DNS queries that endpoints send to their network's
// resolver address.
//
// ServeDNS is called on the data path of the querying port, so it must not
// block for long. It calls reply at most once, either before returning or
// later from another goroutine; query is a copy the handler may keep. The
// switch wraps the answer in UDP, IPv4 and Ethernet headers and writes it
// into the port the query came from, if that port still exists then. src is
// the querier's address and UDP port; vni is its network.
type Handler interface {
	ServeDNS(vni uint32, src netip.AddrPort, query []byte, reply func(answer []byte))
}

// TCPHandler is the optional interface of a Handler that answers queries
// received over TCP differently from UDP ones: without truncating the
// answer to a UDP size (at most 65535 bytes, RFC 7766 section 8). When the
// handler implements it, the switch calls ServeDNSTCP for queries over TCP,
// else ServeDNS.
//
// ServeDNSTCP follows the rules of ServeDNS (must not block for long, query
// is the handler's copy), with one more: it calls reply exactly once, with
// nil when the query gets no answer (not a query at all), so that the
// switch knows when every answer of a connection has been sent. query is
// the message without its 2-byte length prefix, and so is the answer.
type TCPHandler interface {
	ServeDNSTCP(vni uint32, src netip.AddrPort, query []byte, reply func(answer []byte))
}

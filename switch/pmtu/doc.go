// Package pmtu is the switch's MTU work: what happens to a frame from an
// endpoint that is longer than its network's MTU, and the MSS clamp that
// keeps TCP from sending such frames at all.
//
//   - IPv4 with DF set: AppendFragNeeded builds the ICMP "fragmentation
//     needed" message with the next-hop MTU (RFC 792, RFC 1191 section 4).
//   - IPv4 without DF: FragmentIPv4 splits the packet as a router would
//     (RFC 791 section 3.2).
//   - IPv6: AppendPacketTooBig builds the ICMPv6 "packet too big" message
//     (RFC 4443 section 3.2); it sits beside AppendFragNeeded in icmp.go,
//     and the IPv6 work of the switch adds its cases there.
//   - ClampMSS lowers the MSS option of TCP SYNs to fit the MTU (mss.go).
//
// The functions take the IP packet or frame and plain values (the MTU, the
// address to answer from) and write into buffers the caller gives; they
// know nothing of ports, views or counters, and none of them keeps its
// arguments. The switch (package vswitch, switch/mtu.go) decides when to
// call them and writes what they make into the port.
package pmtu

import "vxswitch/header"

// DefaultTTL is the TTL (IPv4) or hop limit (IPv6) of the messages this
// package makes.
const DefaultTTL = 64

// Header sizes used by MSS clamping: what an MTU leaves for a TCP segment's
// payload (RFC 9293 section 3.7.1).
const (
	IPv4TCPHeaders = header.IPv4MinLen + header.TCPMinLen // IPv4 + TCP headers without options
	IPv6TCPHeaders = header.IPv6Len + header.TCPMinLen    // IPv6 + TCP headers without options
)

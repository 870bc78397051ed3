// Package header holds the packet formats vxswitch reads and writes: typed
// byte-slice views with accessors for Ethernet (with 802.1Q), ARP, IPv4,
// IPv6, UDP, TCP, ICMPv4 and ICMPv6 with NDP, the MAC address value type,
// and the one Internet checksum (RFC 1071) with the pseudo-headers of both
// IP versions.
//
// A view such as IPv4 is a []byte naming the first byte of a header. Its
// accessors read and write the bytes in place, never copy them and never
// allocate. They assume the slice is long enough for what they touch, and
// panic otherwise, so a caller checks the view first: every view has an
// IsValid method (and a minimum length constant) that says when its
// accessors are safe. Views have no locking: the caller owns the bytes.
//
// The package is a leaf: it imports only the standard library, so the
// switch, the TAP code, capture, replay and the decoder can all share it.
// Builders (IPv4.Encode, IPv6.Encode, ARP.Encode, the neighbor
// discovery and Packet Too Big encoders of ICMPv6) write a whole header or
// message into a caller's buffer, also without allocating. A new format
// (ESP) is added here as one more view, next to its RFC diagram.
package header

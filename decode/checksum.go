package decode

import (
	"encoding/binary"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// The Internet checksum (RFC 1071) is the one's complement of the one's
// complement sum of 16-bit words. A receiver sums the covered bytes
// including the checksum field; the result folds to 0xffff when they are
// intact.

// sum adds b as big-endian 16-bit words to acc (an odd last byte is padded
// with zero) without folding.
func sum(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold folds the carries of a 32-bit sum into 16 bits.
func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// pseudoSum is the sum of the pseudo-header that TCP, UDP and ICMPv6
// checksums also cover: source and destination address, protocol and
// length (RFC 9293 section 3.1, RFC 768, RFC 8200 section 8.1).
func pseudoSum(src, dst net.IP, proto layers.IPProtocol, length int) uint32 {
	acc := sum(src, 0)
	acc = sum(dst, acc)
	acc += uint32(proto)
	acc += uint32(length>>16) + uint32(length&0xffff)
	return acc
}

// verdict words a checksum check.
func verdict(ok bool) string {
	if ok {
		return "verifies"
	}
	return "WRONG: does not verify"
}

// verdictBytes checks a checksum that covers exactly b, as ICMPv4's does;
// nil b means the covered bytes are not known.
func verdictBytes(b []byte) string {
	if b == nil {
		return "not verified: no IP header right in front"
	}
	return verdict(fold(sum(b, 0)) == 0xffff)
}

// transportVerdict checks the checksum field of a TCP, UDP or ICMPv6
// header; seg is the whole segment and ip the IP layer in front of it. A
// field equal to the folded pseudo-header sum is the mark of checksum
// offload: the sender's kernel left the rest for the network card, and the
// capture saw the packet before the card.
func (p *printer) transportVerdict(ip gopacket.Layer, proto layers.IPProtocol, seg []byte, field uint16) string {
	src, dst := addrs(ip)
	if src == nil || seg == nil {
		return "not verified: no IP header right in front"
	}
	if transportOK(src, dst, proto, seg) {
		return "verifies"
	}
	if field == fold(pseudoSum(src, dst, proto, len(seg))) {
		return "partial checksum (offload): only the pseudo-header sum; the sender's NIC completes it after the capture point"
	}
	return "WRONG: does not verify"
}

// addrs returns the source and destination address of an IPv4 or IPv6
// layer in their wire length, or nils.
func addrs(ip gopacket.Layer) (src, dst net.IP) {
	switch ip := ip.(type) {
	case *layers.IPv4:
		return ip.SrcIP.To4(), ip.DstIP.To4()
	case *layers.IPv6:
		return ip.SrcIP.To16(), ip.DstIP.To16()
	}
	return nil, nil
}

// transportOK reports whether the checksum of seg, a TCP, UDP or ICMPv6
// segment between src and dst, verifies.
func transportOK(src, dst net.IP, proto layers.IPProtocol, seg []byte) bool {
	return fold(sum(seg, pseudoSum(src, dst, proto, len(seg)))) == 0xffff
}

// lcoVerifies reports whether the outer UDP checksum of a VXLAN datagram
// (dgram, behind ip) verifies once the inner TCP or UDP checksum, left
// partial by offload, is completed. Linux computes outer checksums that way
// ("local checksum offload", Documentation/networking/checksum-offloads.rst
// in the kernel): the sum of a correct inner segment is known in advance.
func lcoVerifies(ip gopacket.Layer, dgram []byte) bool {
	outerSrc, outerDst := addrs(ip)
	if outerSrc == nil || len(dgram) < 8+8 {
		return false
	}
	fixed := append([]byte(nil), dgram...)
	// NoCopy: the layers' byte slices alias fixed, so writes land there.
	inner := gopacket.NewPacket(fixed[16:], layers.LayerTypeEthernet, gopacket.NoCopy)
	net := inner.NetworkLayer()
	if net == nil || inner.TransportLayer() == nil {
		return false
	}
	src, dst := addrs(net)
	seg := net.LayerPayload()
	var proto layers.IPProtocol
	var at int // offset of the checksum field in seg
	switch inner.TransportLayer().(type) {
	case *layers.TCP:
		proto, at = layers.IPProtocolTCP, 16
	case *layers.UDP:
		proto, at = layers.IPProtocolUDP, 6
	default:
		return false
	}
	if src == nil || len(seg) < at+2 {
		return false
	}
	binary.BigEndian.PutUint16(seg[at:], 0)
	c := ^fold(sum(seg, pseudoSum(src, dst, proto, len(seg))))
	if c == 0 && proto == layers.IPProtocolUDP {
		c = 0xffff // zero means "no checksum" in UDP (RFC 768)
	}
	binary.BigEndian.PutUint16(seg[at:], c)
	return transportOK(outerSrc, outerDst, layers.IPProtocolUDP, fixed)
}

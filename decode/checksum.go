package decode

import (
	"encoding/binary"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/header"
)

// The Internet checksum (RFC 1071) is the one's complement of the one's
// complement sum of 16-bit words. A receiver sums the covered bytes
// including the checksum field; the result folds to 0xffff when they are
// intact. header.Sum computes the sum and header.PseudoSum the sum of the
// pseudo-header that TCP, UDP and ICMPv6 checksums also cover (RFC 9293
// section 3.1, RFC 768, RFC 8200 section 8.1).

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
	return verdict(header.Sum(b, 0) == 0xffff)
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
	if field == header.PseudoSum(src, dst, uint8(proto), uint32(len(seg))) {
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
	return header.Sum(seg, header.PseudoSum(src, dst, uint8(proto), uint32(len(seg)))) == 0xffff
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
	c := ^header.Sum(seg, header.PseudoSum(src, dst, uint8(proto), uint32(len(seg))))
	if c == 0 && proto == layers.IPProtocolUDP {
		c = 0xffff // zero means "no checksum" in UDP (RFC 768)
	}
	binary.BigEndian.PutUint16(seg[at:], c)
	return transportOK(outerSrc, outerDst, layers.IPProtocolUDP, fixed)
}

package decode

import (
	"fmt"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/vxlan"
)

// vxlanHeader explains the 8-byte VXLAN header at the start of b (a UDP
// payload at byte off of the packet), the overhead arithmetic, and then the
// inner Ethernet frame after it. outer are the headers in front of it, ip
// the outer IP layer.
//
// The header, RFC 7348 section 5:
//
//	byte 0     flags: R R R R I R R R (I = 0x08)
//	bytes 1-3  reserved
//	bytes 4-6  VNI, 24 bits
//	byte 7     reserved
func (p *printer) vxlanHeader(b []byte, off int, outer []headerLen, ip gopacket.Layer) {
	if len(b) < vxlan.HeaderLen {
		p.heading("VXLAN", off, len(b))
		p.note("WARNING: only %d bytes: a VXLAN header is %d bytes, so this is not a valid VXLAN packet", len(b), vxlan.HeaderLen)
		return
	}
	h := vxlan.Header(b)
	flags := h.Flags()
	p.heading("VXLAN", off, vxlan.HeaderLen)
	p.field("header", "% x", b[:vxlan.HeaderLen])
	p.field("byte 0", "flags 0x%02x = %04b %04b", flags, flags>>4, flags&0x0f)
	p.field("", "              RRRR IRRR   (bit names, most significant first)")
	if flags&vxlan.FlagI != 0 {
		p.field("", "I bit (0x08) is set: the VNI field is valid")
	} else {
		p.field("", "I bit (0x08) is clear: the VNI field is NOT valid")
	}
	p.field("bytes 1-3", "reserved %02x %02x %02x (24 bits)", b[1], b[2], b[3])
	p.field("bytes 4-6", "VNI %d (0x%06x), 24 bits: one of 16777216 segments", h.VNI(), h.VNI())
	p.field("byte 7", "reserved %02x (8 bits)", b[7])
	p.reservedBits(b)
	if flags&vxlan.FlagI == 0 {
		p.note("WARNING: I flag clear: RFC 7348 section 5 says it MUST be set for a valid VNI;")
		p.note("         vxswitch drops such packets (drop reason \"bad_flags\")")
	}

	inner := b[vxlan.HeaderLen:]
	outer = append(outer, headerLen{"VXLAN", vxlan.HeaderLen})
	p.overhead(outer, ip, len(inner))

	start := off + vxlan.HeaderLen
	label := fmt.Sprintf("inner frame, VNI %d", h.VNI())
	p.marks = append(p.marks, mark{start, label})
	if p.marks[0].label == "packet" {
		p.marks[0].label = "outer headers"
	}
	if len(inner) == 0 {
		p.printf("  %s: empty\n", label)
		return
	}
	p.printf("  %s: bytes %d-%d (%d)\n", label, start, start+len(inner)-1, len(inner))
	p.frame(inner, start, layers.LayerTypeEthernet)
}

// reservedBits checks the bits RFC 7348 section 5 reserves: the seven flag
// bits other than I, bytes 1-3 and byte 7.
func (p *printer) reservedBits(b []byte) {
	var set []string
	if r := b[0] &^ vxlan.FlagI; r != 0 {
		set = append(set, fmt.Sprintf("flag bits 0x%02x", r))
	}
	if b[1]|b[2]|b[3] != 0 {
		set = append(set, fmt.Sprintf("bytes 1-3 = %02x %02x %02x", b[1], b[2], b[3]))
	}
	if b[7] != 0 {
		set = append(set, fmt.Sprintf("byte 7 = %02x", b[7]))
	}
	if len(set) == 0 {
		p.note("reserved bits must be zero (RFC 7348 section 5): they are")
		return
	}
	p.note("reserved bits must be zero (RFC 7348 section 5)")
	p.note("WARNING: reserved bits set: %s", strings.Join(set, ", "))
	p.note("         senders must send zero and receivers ignore them; vxswitch is stricter and")
	p.note("         drops such packets (drop reason \"reserved_bits\")")
	if b[0]&0x80 != 0 {
		p.note("         (0x80 is the G bit of the Group Policy extension, draft-smith-vxlan-group-policy)")
	}
}

// overhead explains how many bytes the encapsulation adds and what that
// means for the MTU of the inner network.
func (p *printer) overhead(outer []headerLen, ip gopacket.Layer, inner int) {
	var parts []string
	total := 0
	for _, h := range outer {
		parts = append(parts, fmt.Sprintf("%s %d", h.name, h.n))
		total += h.n
	}
	p.printf("  overhead: outer %s = %d bytes around a %d-byte inner frame\n", strings.Join(parts, " + "), total, inner)
	if ip == nil {
		return
	}
	// The underlay MTU limits the outer IP packet: outer IP + UDP + VXLAN +
	// inner Ethernet 14 + inner IP packet. The outer Ethernet header is not
	// part of the MTU but the inner one is, so the sum is the same 50 (70).
	ipLen := len(ip.LayerContents())
	limit := ipLen + 8 + vxlan.HeaderLen + 14
	p.note("the underlay MTU limits the outer IP packet: %s %d + UDP 8 + VXLAN 8 + inner Ethernet 14 + inner IP packet,", ip.LayerType(), ipLen)
	p.note("so an inner IP packet of at most underlay MTU - %d fits: %d on a 1500 underlay", limit, 1500-limit)
	switch ip := ip.(type) {
	case *layers.IPv4:
		p.note("here: outer IPv4 total length %d = %d + inner frame %d", ip.Length, ipLen+8+vxlan.HeaderLen, inner)
	case *layers.IPv6:
		p.note("here: outer IPv6 payload length %d = UDP 8 + VXLAN 8 + inner frame %d", ip.Length, inner)
	}
}

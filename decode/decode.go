// Package decode explains captured packets to a person learning
// encapsulation: it reads a pcap or pcapng capture and prints, for every
// packet, each layer with its byte offsets and fields, the VXLAN header bit
// by bit (RFC 7348 section 5), the overhead arithmetic, and the inner frame.
//
// gopacket's layers do the parsing; this package only explains what they
// found. It is meant for people, not for the data path: it allocates freely.
package decode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	vxcapture "vxswitch/capture"
	"vxswitch/vxlan"
)

// Options changes what Write prints. The zero value prints every layer of
// every packet, without hex dumps, and treats UDP port 4789 as VXLAN.
type Options struct {
	// Hex adds a hex dump (offset, 16 bytes, ASCII, like xxd) of each
	// packet, split where the outer headers end and the inner frame starts.
	Hex bool
	// VXLANPort is one more UDP port whose payload is decoded as VXLAN, for
	// VTEPs configured with another port (Linux used 8472 before IANA
	// assigned 4789). Port 4789 is always VXLAN. 0 means no extra port.
	VXLANPort uint16
}

// Write reads a pcap or pcapng capture from r (told apart by the magic
// number of the file) and writes the explanation of every packet to w. It
// returns the first error reading the capture or writing to w; packets that
// do not parse are explained as far as they go and are not errors.
func Write(w io.Writer, r io.Reader, opt Options) error {
	src, err := vxcapture.OpenReader(r)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	out := bufio.NewWriter(w)
	for n := 1; ; n++ {
		pkt, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("decode: read packet %d: %w", n, err)
		}
		p := &printer{w: out, opt: opt}
		p.packet(n, pkt.Data, pkt.Info, pkt.LinkType)
		// Flush per packet so that 'tcpdump -w - | vxswitch decode -'
		// shows each packet as it arrives.
		if err := out.Flush(); err != nil {
			return fmt.Errorf("decode: write: %w", err)
		}
	}
	return out.Flush()
}

// printer explains one packet.
type printer struct {
	w   *bufio.Writer
	opt Options
	// marks are the offsets where the hex dump starts a new region (outer
	// headers, inner frame), in increasing order.
	marks []mark
}

// mark starts a hex dump region at byte off of the packet.
type mark struct {
	off   int
	label string
}

// printf writes one formatted line piece; write errors surface at Flush.
func (p *printer) printf(format string, args ...any) {
	fmt.Fprintf(p.w, format, args...)
}

// field prints one "name  value" line of a layer.
func (p *printer) field(name, format string, args ...any) {
	p.printf("      %-12s %s\n", name, fmt.Sprintf(format, args...))
}

// note prints an explanatory line under a layer's fields.
func (p *printer) note(format string, args ...any) {
	p.printf("      %s\n", fmt.Sprintf(format, args...))
}

// packet explains packet number n.
func (p *printer) packet(n int, data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) {
	p.printf("packet %d  %s  captured %d of %d bytes", n, stamp(ci.Timestamp), ci.CaptureLength, ci.Length)
	if ci.CaptureLength < ci.Length {
		p.printf(" (cut short by the capture's snap length)")
	}
	p.printf("\n")
	p.marks = []mark{{0, "packet"}}
	p.frame(data, 0, lt)
	if p.opt.Hex {
		p.hex(data)
	}
	p.printf("\n")
}

// stamp formats a capture timestamp in UTC, with microseconds unless the
// capture has finer ones.
func stamp(t time.Time) string {
	if t.Nanosecond()%1000 == 0 {
		return t.UTC().Format("2006-01-02 15:04:05.000000 UTC")
	}
	return t.UTC().Format("2006-01-02 15:04:05.000000000 UTC")
}

// headerLen is one outer header counted in the overhead arithmetic.
type headerLen struct {
	name string
	n    int
}

// frame explains the layers in data, which sits at byte base of the packet
// and starts with a layer of type first. When it meets VXLAN it hands the
// UDP payload to vxlanHeader and stops: the inner frame is explained there.
func (p *printer) frame(data []byte, base int, first gopacket.Decoder) {
	pkt := gopacket.NewPacket(data, first, gopacket.NoCopy)
	var outer []headerLen   // the headers seen so far, for the overhead line
	var prev gopacket.Layer // the layer before the current one
	var ip gopacket.Layer   // the last IPv4 or IPv6 layer, for checksums
	var segment []byte      // the bytes after ip: what a transport checksum covers
	off := 0                // offset of the current layer in data
	for _, l := range pkt.Layers() {
		n := len(l.LayerContents())
		if prev == ip && ip != nil {
			segment = ip.LayerPayload()
		} else {
			segment = nil
		}
		p.heading(l.LayerType().String(), base+off, n)
		switch l := l.(type) {
		case *layers.Ethernet:
			p.ethernet(l)
		case *layers.Dot1Q:
			p.dot1q(l)
		case *layers.ARP:
			p.arp(l)
		case *layers.IPv4:
			p.ipv4(l)
			ip = l
		case *layers.IPv6:
			p.ipv6(l)
			ip = l
		case *layers.ICMPv4:
			p.icmpv4(l, segment)
		case *layers.ICMPv6:
			p.icmpv6(l, ip, segment)
		case *layers.TCP:
			p.tcp(l, ip, segment)
		case *layers.UDP:
			vx := p.isVXLAN(l)
			p.udp(l, ip, segment, vx)
			if vx {
				outer = append(outer, headerLen{"UDP", n})
				start := off + n
				p.vxlanHeader(data[start:start+len(l.Payload)], base+start, outer, ip)
				return
			}
			if isESP(uint16(l.SrcPort), uint16(l.DstPort)) {
				start := off + n
				p.espInUDP(data[start:start+len(l.Payload)], base+start)
				return
			}
		case *layers.VXLAN:
			// Only reached when VXLAN is not under UDP, which gopacket
			// never decodes; kept so that nothing is silently skipped.
			p.note("VNI %d", l.VNI)
		case *layers.DNS:
			p.dns(l)
		case *gopacket.Payload:
			p.payload(l.Payload())
			if _, ok := prev.(*layers.ARP); ok {
				p.note("padding after the ARP message: Ethernet frames are at least 60 bytes (without the FCS)")
			}
		case *gopacket.DecodeFailure:
			p.note("could not decode these bytes: %v", l.Error())
		default:
			p.note("(no explanation for this layer type; %d header bytes)", n)
		}
		outer = append(outer, headerLen{l.LayerType().String(), n})
		prev = l
		off += n
	}
	if off < len(data) {
		p.heading("trailer", base+off, len(data)-off)
		p.note("bytes after the last layer: Ethernet pads frames to 60 bytes (64 with the FCS, which captures omit)")
	}
}

// heading starts a layer: its name and byte range within the packet.
func (p *printer) heading(name string, off, n int) {
	if n == 0 {
		p.printf("  %s  (no bytes, at offset %d)\n", name, off)
		return
	}
	p.printf("  %s  bytes %d-%d (%d)\n", name, off, off+n-1, n)
}

// isVXLAN reports whether u carries VXLAN: destination (or, as gopacket
// also accepts, source) port 4789 or the extra port of the options.
func (p *printer) isVXLAN(u *layers.UDP) bool {
	for _, port := range []layers.UDPPort{u.DstPort, u.SrcPort} {
		if port == vxlan.Port || (p.opt.VXLANPort != 0 && uint16(port) == p.opt.VXLANPort) {
			return true
		}
	}
	return false
}

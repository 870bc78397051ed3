package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	vxcapture "vxswitch/capture"
)

// Magic numbers at the start of capture files, read big endian.
const (
	magicPcapng      = 0x0a0d0d0a
	magicPcap        = 0xa1b2c3d4
	magicPcapSwapped = 0xd4c3b2a1
	magicPcapNano    = 0xa1b23c4d
	magicPcapNanoSw  = 0x4d3cb2a1
)

// capture reads packets from a pcap or pcapng file.
type capture struct {
	pcap *pcapgo.Reader
	ng   *pcapgo.NgReader
}

// openCapture looks at the magic number and opens the matching reader.
func openCapture(r io.Reader) (*capture, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4)
	if err != nil {
		return nil, errors.New("replay: input is too short for a capture file: give a pcapng file (or a pcap file of underlay packets)")
	}
	switch binary.BigEndian.Uint32(head) {
	case magicPcapng:
		rd, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("replay: read pcapng header: %w", err)
		}
		return &capture{ng: rd}, nil
	case magicPcap, magicPcapSwapped, magicPcapNano, magicPcapNanoSw:
		rd, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("replay: read pcap header: %w", err)
		}
		if rd.LinkType() != layers.LinkTypeEthernet {
			return nil, fmt.Errorf("replay: the pcap file's link type is %v: only Ethernet captures can be replayed (capture on an Ethernet interface, not 'any')", rd.LinkType())
		}
		return &capture{pcap: rd}, nil
	default:
		return nil, errors.New("replay: input is not a pcap or pcapng file: give a capture written by tcpdump -w, tshark -w or vxswitch replay")
	}
}

// ReadPacketData returns the next packet, or io.EOF after the last one.
func (c *capture) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if c.ng != nil {
		return c.ng.ReadPacketData()
	}
	return c.pcap.ReadPacketData()
}

// ingress returns where the packet described by ci enters host h: the name
// of a port, or UnderlayName.
func (c *capture) ingress(ci gopacket.CaptureInfo, h *host) (string, error) {
	if c.ng == nil {
		return UnderlayName, nil
	}
	intf, err := c.ng.Interface(ci.InterfaceIndex)
	if err != nil {
		return "", fmt.Errorf("capture interface %d: %w", ci.InterfaceIndex, err)
	}
	if intf.LinkType != layers.LinkTypeEthernet {
		return "", fmt.Errorf("capture interface %q has link type %v: only Ethernet frames can be replayed", intf.Name, intf.LinkType)
	}
	if intf.Name == UnderlayName || h.portFor(intf.Name) >= 0 {
		return intf.Name, nil
	}
	var names []string
	for _, p := range h.ports {
		names = append(names, p.ep.Name)
	}
	return "", fmt.Errorf("capture interface %q is neither %q nor an endpoint of host %s (%s): name each interface after the endpoint whose frames it holds, or %q",
		intf.Name, UnderlayName, h.self.Name, strings.Join(names, ", "), UnderlayName)
}

// Outer header facts.
const (
	ethLen        = 14
	ipv4Len       = 20
	udpLen        = 8
	etherTypeIPv4 = 0x0800
	etherTypeVLAN = 0x8100
	protoUDP      = 17
)

// parseOuter finds the UDP payload of an outer Ethernet/IPv4/UDP packet (one
// 802.1Q tag allowed) and its addresses. reason is non-empty when a UDP
// socket would not receive the packet as is.
func parseOuter(data []byte) (payload []byte, src, dst netip.AddrPort, reason string) {
	if len(data) < ethLen {
		return nil, src, dst, "truncated"
	}
	off, etherType := ethLen, binary.BigEndian.Uint16(data[12:14])
	if etherType == etherTypeVLAN && len(data) >= ethLen+4 {
		off, etherType = ethLen+4, binary.BigEndian.Uint16(data[16:18])
	}
	if etherType != etherTypeIPv4 {
		return nil, src, dst, "not_ipv4_udp"
	}
	ip := data[off:]
	if len(ip) < ipv4Len {
		return nil, src, dst, "truncated"
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	switch {
	case ip[0]>>4 != 4 || ihl < ipv4Len || ip[9] != protoUDP:
		return nil, src, dst, "not_ipv4_udp"
	case total < ihl+udpLen || total > len(ip):
		return nil, src, dst, "truncated"
	case binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0: // MF or an offset
		return nil, src, dst, "fragment"
	}
	udp := ip[ihl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < udpLen || ulen > len(udp) {
		return nil, src, dst, "truncated"
	}
	src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(udp[0:2]))
	dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(udp[2:4]))
	return udp[udpLen:ulen], src, dst, ""
}

// output writes the emitted packets as pcapng: interface i is port i of the
// host, the last one the underlay.
type output struct {
	w        *pcapgo.NgWriter
	underlay int // interface index of the underlay
}

// newOutput writes the section header and one interface per port of h and
// one for the underlay. Nothing in it depends on the machine or the time,
// so equal replays give equal files.
func newOutput(w io.Writer, h *host) (*output, error) {
	var intfs []pcapgo.NgInterface
	for _, p := range h.ports {
		intfs = append(intfs, pcapgo.NgInterface{
			Name:                p.ep.Name,
			Description:         fmt.Sprintf("TAP port of endpoint %s (network %s, VNI %d, %s, %s) on host %s", p.ep.Name, p.ep.Network, p.vni, p.ep.IP, p.ep.MAC, h.self.Name),
			LinkType:            layers.LinkTypeEthernet,
			TimestampResolution: 9,
		})
	}
	intfs = append(intfs, pcapgo.NgInterface{
		Name:                UnderlayName,
		Description:         fmt.Sprintf("underlay of host %s: VXLAN from VTEP %s, UDP port %d", h.self.Name, h.self.VTEP, h.port),
		LinkType:            layers.LinkTypeEthernet,
		TimestampResolution: 9,
	})
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "vxswitch replay"}}
	ng, err := pcapgo.NewNgWriterInterface(w, intfs[0], opts)
	if err != nil {
		return nil, fmt.Errorf("replay: write pcapng header: %w", err)
	}
	for _, intf := range intfs[1:] {
		if _, err := ng.AddInterface(intf); err != nil {
			return nil, fmt.Errorf("replay: write pcapng interface: %w", err)
		}
	}
	return &output{w: ng, underlay: len(intfs) - 1}, nil
}

// emit writes what the switch of h emitted since the last call, with
// timestamp ts, and returns how many packets it wrote.
func (o *output) emit(h *host, ts time.Time) (int, error) {
	n := 0
	for i, p := range h.ports {
		for {
			// Every write happened before the replayed packet's call
			// returned, so a zero wait only collects, never races.
			f, ok := p.dev.Next(0)
			if !ok {
				break
			}
			if err := o.w.WritePacket(captureInfo(ts, i, len(f)), f); err != nil {
				return n, fmt.Errorf("replay: write packet: %w", err)
			}
			n++
		}
	}
	from := netip.AddrPortFrom(h.self.VTEP, h.port)
	for _, s := range h.underlay.take() {
		pkt := append(vxcapture.OuterHeaders(from, s.dst, s.payload), s.payload...)
		if err := o.w.WritePacket(captureInfo(ts, o.underlay, len(pkt)), pkt); err != nil {
			return n, fmt.Errorf("replay: write packet: %w", err)
		}
		n++
	}
	return n, nil
}

// flush writes out what the pcapng writer buffers.
func (o *output) flush() error {
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("replay: write output: %w", err)
	}
	return nil
}

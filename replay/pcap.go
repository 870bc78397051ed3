package replay

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	vxcapture "vxswitch/capture"
	"vxswitch/header"
	"vxswitch/tap"
)

// ingress returns where packet p, read from src, enters host h: the name
// of a port, or UnderlayName. Every packet of a pcap file is an underlay
// packet; a pcapng packet enters where its capture interface's name says.
func ingress(src *vxcapture.Reader, p vxcapture.Packet, h *host) (string, error) {
	if !src.Pcapng() {
		if p.LinkType != layers.LinkTypeEthernet {
			return "", fmt.Errorf("the pcap file's link type is %v: only Ethernet captures can be replayed (capture on an Ethernet interface, not 'any')", p.LinkType)
		}
		return UnderlayName, nil
	}
	if p.LinkType != layers.LinkTypeEthernet {
		return "", fmt.Errorf("capture interface %q has link type %v: only Ethernet frames can be replayed (capture on an Ethernet interface, not 'any')", p.Interface, p.LinkType)
	}
	if p.Interface == UnderlayName || h.portFor(p.Interface) >= 0 {
		return p.Interface, nil
	}
	var names []string
	for _, port := range h.ports {
		names = append(names, port.ep.Name)
	}
	return "", fmt.Errorf("capture interface %q is neither %q nor an endpoint of host %s (%s): name each interface after the endpoint whose frames it holds, or %q",
		p.Interface, UnderlayName, h.self.Name, strings.Join(names, ", "), UnderlayName)
}

// parseOuter finds the UDP payload of an outer Ethernet/IPv4/UDP or
// Ethernet/IPv6/UDP packet (one 802.1Q tag allowed; IPv6 extension headers
// are stepped over) and its addresses. reason is non-empty when a UDP
// socket would not receive the packet as is: "truncated", "not_ip_udp",
// "fragment".
func parseOuter(data []byte) (payload []byte, src, dst netip.AddrPort, reason string) {
	eth := header.Ethernet(data)
	if len(eth) < header.EthernetLen {
		return nil, src, dst, "truncated"
	}
	// A tagged frame too short for its tag is not IP.
	if !eth.IsValid() {
		return nil, src, dst, "not_ip_udp"
	}
	var dgram []byte
	var srcIP, dstIP netip.Addr
	switch eth.Type() {
	case header.EtherTypeIPv4:
		ip := header.IPv4(eth.Payload())
		if len(ip) < header.IPv4MinLen {
			return nil, src, dst, "truncated"
		}
		total := int(ip.TotalLength())
		switch {
		case ip.Version() != 4 || ip.HeaderLen() < header.IPv4MinLen || ip.Protocol() != header.ProtoUDP:
			return nil, src, dst, "not_ip_udp"
		case total < ip.HeaderLen()+header.UDPLen || total > len(ip):
			return nil, src, dst, "truncated"
		case ip.IsFragment():
			return nil, src, dst, "fragment"
		}
		dgram, srcIP, dstIP = ip.Payload(), ip.Source(), ip.Destination()
	case header.EtherTypeIPv6:
		ip := header.IPv6(eth.Payload())
		switch {
		case len(ip) < header.IPv6Len:
			return nil, src, dst, "truncated"
		case !ip.IsHeaderValid():
			return nil, src, dst, "not_ip_udp"
		case !ip.IsValid():
			return nil, src, dst, "truncated"
		}
		// A Fragment header right after the fixed header, the place
		// Linux puts it: the socket gets the reassembled datagram, not
		// this packet. (A first fragment behind other extension headers
		// ends as "truncated": its UDP length is more than it holds.)
		if ip.NextHeader() == header.ProtoFragment {
			return nil, src, dst, "fragment"
		}
		proto, off, ok := ip.UpperLayer()
		switch {
		case !ok:
			return nil, src, dst, "truncated"
		case proto == header.ProtoFragment:
			return nil, src, dst, "fragment"
		case proto != header.ProtoUDP:
			return nil, src, dst, "not_ip_udp"
		}
		dgram, srcIP, dstIP = ip[off:header.IPv6Len+int(ip.PayloadLength())], ip.Source(), ip.Destination()
	default:
		return nil, src, dst, "not_ip_udp"
	}
	udp := header.UDP(dgram)
	if !udp.IsValid() {
		return nil, src, dst, "truncated"
	}
	src = netip.AddrPortFrom(srcIP, udp.SrcPort())
	dst = netip.AddrPortFrom(dstIP, udp.DstPort())
	return udp.Payload(), src, dst, ""
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
			// Every write happened before WaitIdle returned for the
			// replayed packet, so a zero wait only collects, never races.
			pkt, ok := p.dev.Next(0)
			if !ok {
				break
			}
			f := frameOf(pkt)
			if err := o.w.WritePacket(captureInfo(ts, i, len(f)), f); err != nil {
				return n, fmt.Errorf("replay: write packet: %w", err)
			}
			n++
		}
	}
	from := netip.AddrPortFrom(h.self.VTEP, h.port)
	for _, s := range h.underlay.Take() {
		pkt := append(vxcapture.OuterHeaders(from, s.Addr, s.Pkt), s.Pkt...)
		if err := o.w.WritePacket(captureInfo(ts, o.underlay, len(pkt)), pkt); err != nil {
			return n, fmt.Errorf("replay: write packet: %w", err)
		}
		n++
	}
	return n, nil
}

// frameOf returns the frame in pkt, a packet written to a port with
// offloads, as the endpoint receives it: without the vnet header, with the
// checksum completed when the header leaves it to the device. A coalesced
// super-frame (GSO) stays whole, as a capture on the TAP shows it; replay
// hands the underlay one datagram per receive, so none is made.
func frameOf(pkt []byte) []byte {
	h := tap.DecodeVnetHdr(pkt)
	f := pkt[tap.VnetHdrLen:]
	if h.Flags&tap.VnetNeedsCsum != 0 {
		header.CompleteChecksum(f, int(h.CsumStart), int(h.CsumOffset))
	}
	return f
}

// flush writes out what the pcapng writer buffers.
func (o *output) flush() error {
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("replay: write output: %w", err)
	}
	return nil
}

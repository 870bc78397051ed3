package decode

import (
	"fmt"
	"net"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"vxswitch/header"
	"vxswitch/vxlan"
)

// ethernet explains an Ethernet II header: 6 bytes destination, 6 bytes
// source, 2 bytes EtherType.
func (p *printer) ethernet(e *layers.Ethernet) {
	p.field("dst", "%s%s", e.DstMAC, macKind(e.DstMAC))
	p.field("src", "%s", e.SrcMAC)
	p.field("type", "0x%04x (%s)", uint16(e.EthernetType), e.EthernetType)
}

// macKind names the special destination addresses.
func macKind(m net.HardwareAddr) string {
	switch {
	case len(m) != 6:
		return ""
	case m.String() == "ff:ff:ff:ff:ff:ff":
		return " (broadcast: every port of the segment)"
	case m[0]&1 != 0:
		return " (multicast: the low bit of the first byte is set)"
	}
	return ""
}

// dot1q explains an 802.1Q VLAN tag.
func (p *printer) dot1q(d *layers.Dot1Q) {
	p.field("priority", "%d", d.Priority)
	p.field("VLAN", "%d", d.VLANIdentifier)
	p.field("type", "0x%04x (%s)", uint16(d.Type), d.Type)
}

// arp explains an ARP packet (RFC 826).
func (p *printer) arp(a *layers.ARP) {
	op := map[uint16]string{layers.ARPRequest: "request", layers.ARPReply: "reply"}[a.Operation]
	p.field("operation", "%d (%s)", a.Operation, op)
	p.field("sender", "%s %s", net.HardwareAddr(a.SourceHwAddress), net.IP(a.SourceProtAddress))
	p.field("target", "%s %s", net.HardwareAddr(a.DstHwAddress), net.IP(a.DstProtAddress))
	switch a.Operation {
	case layers.ARPRequest:
		p.note("who has %s? tell %s", net.IP(a.DstProtAddress), net.IP(a.SourceProtAddress))
	case layers.ARPReply:
		p.note("%s is at %s", net.IP(a.SourceProtAddress), net.HardwareAddr(a.SourceHwAddress))
	}
}

// ipv4 explains an IPv4 header (RFC 791).
func (p *printer) ipv4(ip *layers.IPv4) {
	p.field("version", "%d", ip.Version)
	p.field("IHL", "%d (x 4 = %d header bytes)", ip.IHL, int(ip.IHL)*4)
	p.field("TOS", "0x%02x (DSCP %d, ECN %d)", ip.TOS, ip.TOS>>2, ip.TOS&3)
	p.field("total length", "%d (header + payload)", ip.Length)
	p.field("ID", "0x%04x", ip.Id)
	var flags []string
	if ip.Flags&layers.IPv4DontFragment != 0 {
		flags = append(flags, "DF (don't fragment)")
	}
	if ip.Flags&layers.IPv4MoreFragments != 0 {
		flags = append(flags, "MF (more fragments)")
	}
	if len(flags) == 0 {
		flags = append(flags, "none")
	}
	p.field("flags", "%s", strings.Join(flags, ", "))
	p.field("frag offset", "%d (x 8 = byte %d)", ip.FragOffset, int(ip.FragOffset)*8)
	p.field("TTL", "%d", ip.TTL)
	p.field("protocol", "%d (%s)", uint8(ip.Protocol), ip.Protocol)
	p.field("checksum", "0x%04x (%s)", ip.Checksum, verdict(header.Sum(ip.Contents, 0) == 0xffff))
	p.field("src", "%s", ip.SrcIP)
	p.field("dst", "%s", ip.DstIP)
}

// ipv6 explains the fixed IPv6 header (RFC 8200).
func (p *printer) ipv6(ip *layers.IPv6) {
	p.field("version", "%d", ip.Version)
	p.field("traffic cls", "0x%02x", ip.TrafficClass)
	p.field("flow label", "0x%05x", ip.FlowLabel)
	p.field("payload len", "%d (after this 40-byte header)", ip.Length)
	p.field("next header", "%d (%s)", uint8(ip.NextHeader), ip.NextHeader)
	p.field("hop limit", "%d", ip.HopLimit)
	p.field("src", "%s", ip.SrcIP)
	p.field("dst", "%s", ip.DstIP)
}

// icmpv4 explains an ICMP header (RFC 792); msg is the whole ICMP message,
// nil when it is not known.
func (p *printer) icmpv4(c *layers.ICMPv4, msg []byte) {
	p.field("type/code", "%d/%d (%s)", c.TypeCode.Type(), c.TypeCode.Code(), c.TypeCode)
	p.field("checksum", "0x%04x (%s)", c.Checksum, verdictBytes(msg))
	switch c.TypeCode.Type() {
	case layers.ICMPv4TypeEchoRequest, layers.ICMPv4TypeEchoReply:
		p.field("id", "%d (0x%04x)", c.Id, c.Id)
		p.field("seq", "%d", c.Seq)
	}
}

// icmpv6 explains an ICMPv6 header (RFC 4443).
func (p *printer) icmpv6(c *layers.ICMPv6, ip gopacket.Layer, msg []byte) {
	p.field("type/code", "%d/%d (%s)", c.TypeCode.Type(), c.TypeCode.Code(), c.TypeCode)
	p.field("checksum", "0x%04x (%s)", c.Checksum, p.transportVerdict(ip, layers.IPProtocolICMPv6, msg, c.Checksum))
}

// tcp explains a TCP header (RFC 9293); seg is the whole segment.
func (p *printer) tcp(t *layers.TCP, ip gopacket.Layer, seg []byte) {
	p.field("ports", "%d -> %d", uint16(t.SrcPort), uint16(t.DstPort))
	p.field("seq", "%d", t.Seq)
	p.field("ack", "%d", t.Ack)
	p.field("data offset", "%d (x 4 = %d header bytes)", t.DataOffset, int(t.DataOffset)*4)
	p.field("flags", "%s", tcpFlags(t))
	p.field("window", "%d", t.Window)
	p.field("checksum", "0x%04x (%s)", t.Checksum, p.transportVerdict(ip, layers.IPProtocolTCP, seg, t.Checksum))
	if len(t.Options) > 0 {
		var opts []string
		for _, o := range t.Options {
			opts = append(opts, o.OptionType.String())
		}
		p.field("options", "%s", strings.Join(opts, ", "))
	}
}

// tcpFlags lists the set TCP flags by name.
func tcpFlags(t *layers.TCP) string {
	var f []string
	for _, x := range []struct {
		set  bool
		name string
	}{
		{t.CWR, "CWR"}, {t.ECE, "ECE"}, {t.URG, "URG"}, {t.ACK, "ACK"},
		{t.PSH, "PSH"}, {t.RST, "RST"}, {t.SYN, "SYN"}, {t.FIN, "FIN"},
	} {
		if x.set {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return "none"
	}
	return strings.Join(f, " ")
}

// udp explains a UDP header (RFC 768); dgram is the whole datagram and vx
// tells whether its payload is VXLAN.
func (p *printer) udp(u *layers.UDP, ip gopacket.Layer, dgram []byte, vx bool) {
	p.field("ports", "%d -> %d%s", uint16(u.SrcPort), uint16(u.DstPort), portName(u))
	p.field("length", "%d (header 8 + payload %d)", u.Length, int(u.Length)-8)
	v6 := ip != nil && ip.LayerType() == layers.LayerTypeIPv6
	switch {
	case u.Checksum == 0 && !v6:
		p.field("checksum", "0x0000 (none: zero means the sender did not compute one, allowed over IPv4)")
	case u.Checksum == 0:
		p.field("checksum", "0x0000 (none: over IPv6 only tunnels may do that, RFC 6935)")
	default:
		v := p.transportVerdict(ip, layers.IPProtocolUDP, dgram, u.Checksum)
		if vx && strings.HasPrefix(v, "WRONG") && lcoVerifies(ip, dgram) {
			v = "verifies once the inner checksum is completed: the sender computed it\n" +
				"                   in advance for a partial inner checksum (Linux local checksum offload)"
		}
		p.field("checksum", "0x%04x (%s)", u.Checksum, v)
	}
	if !vx {
		return
	}
	p.note("VXLAN: the destination port says so; the source port is a hash of the inner flow,")
	p.note("so routers spreading traffic over equal paths keep one flow on one path (RFC 7348 section 5)")
	switch {
	case u.Checksum == 0:
		p.note("RFC 7348 section 5: the UDP checksum SHOULD be sent as zero, as here")
	case v6:
		p.note("over IPv6 the UDP checksum is normally required (RFC 8200 section 8.1)")
	default:
		p.note("RFC 7348 section 5: the UDP checksum SHOULD be sent as zero; this sender computes one")
		p.note("(Linux: 'ip link add ... type vxlan ... udpcsum'), so receivers check it")
	}
}

// portName names the well-known port of a UDP datagram.
func portName(u *layers.UDP) string {
	for _, port := range []layers.UDPPort{u.DstPort, u.SrcPort} {
		switch port {
		case vxlan.Port:
			return " (VXLAN)"
		case 53:
			return " (DNS)"
		case 67, 68:
			return " (DHCP)"
		}
	}
	return ""
}

// dns summarises a DNS message (RFC 1035).
func (p *printer) dns(d *layers.DNS) {
	kind := "query"
	if d.QR {
		kind = "response"
	}
	p.field("message", "%s, id 0x%04x, opcode %s, rcode %s", kind, d.ID, d.OpCode, d.ResponseCode)
	for _, q := range d.Questions {
		p.field("question", "%s %s", name(q.Name), q.Type)
	}
	for _, a := range d.Answers {
		p.field("answer", "%s %s ttl %d %s", name(a.Name), a.Type, a.TTL, rdata(a))
	}
	if n := len(d.Authorities) + len(d.Additionals); n > 0 {
		p.field("more", "%d authority and %d additional records", len(d.Authorities), len(d.Additionals))
	}
}

// name prints a DNS name, "." for the root.
func name(b []byte) string {
	if len(b) == 0 {
		return "."
	}
	return string(b)
}

// rdata prints the data of the common record types.
func rdata(a layers.DNSResourceRecord) string {
	switch a.Type {
	case layers.DNSTypeA, layers.DNSTypeAAAA:
		return a.IP.String()
	case layers.DNSTypeCNAME:
		return name(a.CNAME)
	case layers.DNSTypePTR:
		return name(a.PTR)
	}
	return fmt.Sprintf("(%d bytes)", len(a.Data))
}

// payload describes bytes no layer claims: text is shown quoted, other
// bytes in hex, at most 32 of them.
func (p *printer) payload(b []byte) {
	const max = 32
	preview, more := b, ""
	if len(b) > max {
		preview, more = b[:max], " ..."
	}
	if isText(preview) {
		p.field("data", "%q%s", preview, more)
	} else {
		p.field("data", "% x%s", preview, more)
	}
}

// isText reports whether b is printable ASCII with ordinary line breaks.
func isText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c >= 0x7f) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

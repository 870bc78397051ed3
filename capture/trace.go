package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"vxswitch/header"
	vswitch "vxswitch/switch"
)

// VTEP is a VTEP a traced frame was sent to, with the name of its host ("" when
// it is not a member host, such as an external VTEP).
type VTEP struct {
	Addr netip.Addr `json:"addr"`
	Host string     `json:"host,omitempty"`
}

// Line is one frame of a trace: where it came in, what it is, and what the
// switch did with it. Its JSON form is the output of 'vxswitch trace -o
// json'; String is the text form.
type Line struct {
	ID        uint64    `json:"id"`
	Time      time.Time `json:"time"`
	Network   string    `json:"network,omitempty"`
	VNI       uint32    `json:"vni"`
	Ingress   string    `json:"ingress"`        // port name, "underlay" or "switch" (a frame the switch made)
	From      string    `json:"from,omitempty"` // outer source of a packet from the underlay
	Src       string    `json:"src,omitempty"`  // inner source MAC
	Dst       string    `json:"dst,omitempty"`  // inner destination MAC
	EtherType string    `json:"ethertype,omitempty"`
	Summary   string    `json:"summary,omitempty"` // the inner packet, tcpdump style
	Lookup    string    `json:"lookup,omitempty"`
	Action    string    `json:"action"`
	Reason    string    `json:"reason,omitempty"`
	Ports     []string  `json:"ports,omitempty"`
	VTEPs     []VTEP    `json:"vteps,omitempty"`
	Outer     string    `json:"outer,omitempty"`   // outer header of encapsulated frames
	Answers   uint64    `json:"answers,omitempty"` // for a frame the switch made: the ID of the frame it answers
}

// NewLine describes ev; names names the VTEP hosts (nil: none).
func NewLine(ev *vswitch.Event, names Names) Line {
	l := Line{
		ID: ev.ID, Time: ev.Time, Network: ev.Network, VNI: ev.VNI, Ingress: ev.Ingress(),
		Lookup: ev.Lookup, Action: ev.Action, Reason: ev.Reason, Ports: ev.Ports, Answers: ev.Answers,
	}
	made := ev.Action == vswitch.ActionGenerated
	if ev.Port == "" && !made {
		l.From = names.vtep(ev.From.Addr().Unmap())
	}
	for _, a := range ev.VTEPs {
		l.VTEPs = append(l.VTEPs, VTEP{Addr: a, Host: names.name(a)})
	}
	if f := header.Ethernet(ev.Frame); len(f) >= header.EthernetLen {
		l.Dst = f.Destination().String()
		l.Src = f.Source().String()
		// A tagged frame too short for its tag is shown with the TPID.
		et, off := f.OuterType(), header.EthernetLen
		if f.IsValid() {
			et, off = f.Type(), f.HeaderLen()
		}
		l.EtherType = etherTypeName(et)
		l.Summary = summary(et, f[off:])
	}
	switch {
	case made:
	case ev.Port == "":
		l.Outer = fmt.Sprintf("%s > %s vni %d", addrPort(ev.From), ev.Self, ev.VNI)
	case len(ev.VTEPs) == 1:
		l.Outer = fmt.Sprintf("%s > %s vni %d", ev.Self, netip.AddrPortFrom(ev.VTEPs[0], ev.Self.Port()), ev.VNI)
	case len(ev.VTEPs) > 1:
		l.Outer = fmt.Sprintf("%s > %d vteps vni %d", ev.Self, len(ev.VTEPs), ev.VNI)
	}
	return l
}

// addrPort prints a with an IPv4-mapped address unmapped.
func addrPort(a netip.AddrPort) string {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()).String()
}

// String returns the text form of l, one line without a newline:
//
//	15:04:05.000000 #17 web c1 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 10.20.0.2 > 10.20.0.3 ICMP echo request id 7 seq 1 | lookup raft | vtep to 10.77.0.2 (h2) | outer 10.77.0.1:4789 > 10.77.0.2:4789 vni 100
func (l Line) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d %s %s", l.Time.Format("15:04:05.000000"), l.ID, orDash(l.Network), l.Ingress)
	if l.From != "" {
		fmt.Fprintf(&b, " from %s", l.From)
	}
	if l.Src != "" {
		fmt.Fprintf(&b, " %s > %s %s", l.Src, l.Dst, l.EtherType)
	}
	if l.Summary != "" {
		fmt.Fprintf(&b, " %s", l.Summary)
	}
	if l.Lookup != "" {
		fmt.Fprintf(&b, " | lookup %s", l.Lookup)
	}
	fmt.Fprintf(&b, " | %s", l.Action)
	if l.Answers != 0 {
		fmt.Fprintf(&b, " answering #%d", l.Answers)
	}
	if l.Reason != "" {
		fmt.Fprintf(&b, " %s", l.Reason)
	}
	to := slices.Clone(l.Ports)
	for _, v := range l.VTEPs {
		to = append(to, Names(func(netip.Addr) string { return v.Host }).vtep(v.Addr))
	}
	if len(to) > 0 {
		fmt.Fprintf(&b, " to %s", strings.Join(to, ", "))
	}
	if l.Outer != "" {
		fmt.Fprintf(&b, " | outer %s", l.Outer)
	}
	return b.String()
}

// orDash returns s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// etherTypeName names the common EtherTypes, else prints the number.
func etherTypeName(et uint16) string {
	switch et {
	case header.EtherTypeIPv4:
		return "IPv4"
	case header.EtherTypeARP:
		return "ARP"
	case header.EtherTypeIPv6:
		return "IPv6"
	}
	return fmt.Sprintf("0x%04x", et)
}

// summary describes the network-layer packet p of EtherType et in a few
// words: ARP who-has/is-at, ICMP echo id and seq, TCP ports and flags, UDP
// ports, a DNS question. It returns "" for what it does not know, and never
// reads beyond p.
func summary(et uint16, p []byte) string {
	switch et {
	case header.EtherTypeARP:
		return arpSummary(header.ARP(p))
	case header.EtherTypeIPv4:
		return ipv4Summary(header.IPv4(p))
	case header.EtherTypeIPv6:
		return ipv6Summary(header.IPv6(p))
	}
	return ""
}

// arpSummary describes an Ethernet/IPv4 ARP packet (RFC 826).
func arpSummary(a header.ARP) string {
	if len(a) < header.ARPLen || !a.HasIPv4Sizes() {
		return ""
	}
	switch a.Op() {
	case header.ARPRequest:
		return fmt.Sprintf("ARP who-has %s tell %s", a.TargetIP(), a.SenderIP())
	case header.ARPReply:
		return fmt.Sprintf("ARP %s is-at %s", a.SenderIP(), a.SenderMAC())
	}
	return ""
}

// ipv6Summary describes an IPv6 packet by its fixed header, and an ICMPv6
// message right behind it by type and code.
func ipv6Summary(ip header.IPv6) string {
	if !ip.IsHeaderValid() {
		return ""
	}
	src, dst := ip.Source(), ip.Destination()
	// Type and Code are the first two bytes: enough to name the message.
	if icmp := header.ICMPv6(ip[header.IPv6Len:]); ip.NextHeader() == header.ProtoICMPv6 && len(icmp) >= 2 {
		return fmt.Sprintf("%s > %s ICMPv6 type %d code %d", src, dst, icmp.Type(), icmp.Code())
	}
	return fmt.Sprintf("%s > %s next header %d", src, dst, ip.NextHeader())
}

// ipv4Summary describes an IPv4 packet and its ICMP, TCP or UDP header.
func ipv4Summary(ip header.IPv4) string {
	if !ip.IsHeaderValid() {
		return ""
	}
	src, dst := ip.Source(), ip.Destination()
	l4 := ip[ip.HeaderLen():]
	if ip.IsValid() {
		l4 = ip.Payload() // without Ethernet padding
	}
	if ip.FragmentOffset() != 0 {
		return fmt.Sprintf("%s > %s fragment", src, dst)
	}
	switch ip.Protocol() {
	case header.ProtoICMP:
		m := header.ICMPv4(l4)
		if !m.IsValid() {
			break
		}
		switch m.Type() {
		case header.ICMPv4EchoRequest:
			return fmt.Sprintf("%s > %s ICMP echo request id %d seq %d", src, dst, m.ID(), m.Seq())
		case header.ICMPv4EchoReply:
			return fmt.Sprintf("%s > %s ICMP echo reply id %d seq %d", src, dst, m.ID(), m.Seq())
		}
		return fmt.Sprintf("%s > %s ICMP type %d code %d", src, dst, m.Type(), m.Code())
	case header.ProtoTCP:
		t := header.TCP(l4)
		if len(t) < header.TCPMinLen { // the fixed fields suffice: no options are read
			break
		}
		return fmt.Sprintf("TCP %s > %s [%s]", netip.AddrPortFrom(src, t.SrcPort()),
			netip.AddrPortFrom(dst, t.DstPort()), tcpFlags(t.Flags()))
	case header.ProtoUDP:
		u := header.UDP(l4)
		if len(u) < header.UDPLen { // the ports suffice: Length is not checked
			break
		}
		sp, dp := u.SrcPort(), u.DstPort()
		s := fmt.Sprintf("UDP %s > %s", netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp))
		if sp == 53 || dp == 53 {
			if q := dnsSummary(u[header.UDPLen:]); q != "" {
				s += " " + q
			}
		}
		return s
	}
	return fmt.Sprintf("%s > %s proto %d", src, dst, ip.Protocol())
}

// tcpFlags prints TCP flags the way tcpdump does: S, F, R, P, U and "."
// for ACK.
func tcpFlags(f byte) string {
	var b strings.Builder
	for _, x := range []struct {
		bit byte
		c   byte
	}{{0x02, 'S'}, {0x01, 'F'}, {0x04, 'R'}, {0x08, 'P'}, {0x20, 'U'}, {0x10, '.'}} {
		if f&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// dnsSummary describes the question of a DNS message (RFC 1035 section
// 4.1): "DNS query A web.example." or "DNS response A web.example.".
func dnsSummary(m []byte) string {
	if len(m) < 12 || binary.BigEndian.Uint16(m[4:6]) == 0 {
		return ""
	}
	kind := "query"
	if m[2]&0x80 != 0 {
		kind = "response"
	}
	var name strings.Builder
	i := 12
	for {
		if i >= len(m) {
			return ""
		}
		n := int(m[i])
		i++
		if n == 0 {
			break
		}
		if n > 63 || i+n > len(m) { // compression never starts a question
			return ""
		}
		writeLabel(&name, m[i:i+n])
		name.WriteByte('.')
		i += n
	}
	if name.Len() == 0 {
		name.WriteByte('.')
	}
	qtype := ""
	if i+2 <= len(m) {
		switch t := binary.BigEndian.Uint16(m[i : i+2]); t {
		case 1:
			qtype = "A "
		case 28:
			qtype = "AAAA "
		default:
			qtype = fmt.Sprintf("type%d ", t)
		}
	}
	return fmt.Sprintf("DNS %s %s%s", kind, qtype, name.String())
}

// writeLabel writes one DNS label in presentation format (RFC 1035 section
// 5.1, as dig prints it): a byte that is not printable ASCII, and '.' or
// '\\' inside a label, become \DDD or \. and \\. A name from a packet
// therefore never carries a terminal control sequence into a trace.
func writeLabel(b *strings.Builder, label []byte) {
	for _, c := range label {
		switch {
		case c == '.' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x21 || c > 0x7e:
			fmt.Fprintf(b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
}

package capture

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"vxswitch/header"
	vswitch "vxswitch/switch"
)

// icmpEcho is an Ethernet frame with an ICMP echo request from
// 10.20.0.2 to 10.20.0.3, id 0x1234, seq 1.
var icmpEcho = []byte{
	0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet
	0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, // IPv4, checksum not checked here
	10, 20, 0, 2, 10, 20, 0, 3,
	8, 0, 0, 0, 0x12, 0x34, 0, 1, // ICMP echo request
}

var (
	h1 = netip.MustParseAddrPort("10.77.0.1:4789")
	h2 = netip.MustParseAddrPort("10.77.0.2:4789")
)

func names(a netip.Addr) string {
	return map[netip.Addr]string{h1.Addr(): "h1", h2.Addr(): "h2"}[a]
}

// epbComments parses the pcapng stream b block by block and returns the
// opt_comment of every Enhanced Packet Block ("" when it has none).
func epbComments(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d bytes left, not a block", len(b))
		}
		typ, n := binary.LittleEndian.Uint32(b[0:4]), int(binary.LittleEndian.Uint32(b[4:8]))
		if n < 12 || n > len(b) || binary.LittleEndian.Uint32(b[n-4:n]) != uint32(n) {
			t.Fatalf("block of type %d has a bad length %d", typ, n)
		}
		if typ == blockEPB {
			capLen := int(binary.LittleEndian.Uint32(b[20:24]))
			opts := b[28+pad4(capLen) : n-4]
			comment := ""
			for len(opts) >= 4 {
				code, l := binary.LittleEndian.Uint16(opts[0:2]), int(binary.LittleEndian.Uint16(opts[2:4]))
				if code == optEndOfOpt {
					break
				}
				if code == optComment {
					comment = string(opts[4 : 4+l])
				}
				opts = opts[4+pad4(l):]
			}
			out = append(out, comment)
		}
		b = b[n:]
	}
	return out
}

func TestWriterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "test", "the underlay")
	if err != nil {
		t.Fatal(err)
	}
	c1, err := w.Interface("c1", "port c1")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := w.Interface("c1", ""); again != c1 || c1 != 1 {
		t.Fatalf("interface c1 = %d, again %d; want 1 both times", c1, again)
	}
	ts := time.Unix(1700000000, 123456789)
	odd := icmpEcho[:41] // not a multiple of 4: padding
	if err := w.WritePacket(c1, ts, odd, "frame 1 vni 100 in c1: dropped: x"); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(0, ts, icmpEcho, ""); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(5, ts, icmpEcho, ""); err == nil {
		t.Error("writing on interface 5 of 2 did not fail")
	}

	r, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	var intfs []int
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !ci.Timestamp.Equal(ts) {
			t.Errorf("timestamp %v, want %v", ci.Timestamp, ts)
		}
		got = append(got, data)
		intfs = append(intfs, ci.InterfaceIndex)
	}
	if len(got) != 2 || !bytes.Equal(got[0], odd) || !bytes.Equal(got[1], icmpEcho) || intfs[0] != 1 || intfs[1] != 0 {
		t.Fatalf("read back %d packets on %v, want the 2 written on [1 0]", len(got), intfs)
	}
	if r.NInterfaces() != 2 {
		t.Fatalf("%d interfaces, want 2", r.NInterfaces())
	}
	for i, want := range []string{UnderlayName, "c1"} {
		intf, _ := r.Interface(i)
		if intf.Name != want || intf.LinkType != layers.LinkTypeEthernet {
			t.Errorf("interface %d = %q %v, want %q Ethernet", i, intf.Name, intf.LinkType, want)
		}
	}
	comments := epbComments(t, buf.Bytes())
	if len(comments) != 2 || comments[0] != "frame 1 vni 100 in c1: dropped: x" || comments[1] != "" {
		t.Errorf("comments %q, want the first only", comments)
	}

	// A stream cut in the middle of a block copies up to the cut.
	var out bytes.Buffer
	full := buf.Bytes()
	if err := CopyBlocks(&out, bytes.NewReader(full[:len(full)-3])); err != io.ErrUnexpectedEOF {
		t.Errorf("CopyBlocks of a cut stream: %v, want io.ErrUnexpectedEOF", err)
	}
	if c := epbComments(t, out.Bytes()); len(c) != 1 {
		t.Errorf("CopyBlocks kept %d packets of a cut stream, want 1", len(c))
	}
}

func TestOuterPacket(t *testing.T) {
	pkt := OuterPacket(h1, h2, 100, icmpEcho)
	p := gopacket.NewPacket(pkt, layers.LayerTypeEthernet, gopacket.Default)
	vx, _ := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	if vx == nil || !vx.ValidIDFlag || vx.VNI != 100 {
		t.Fatalf("no VXLAN layer with VNI 100: %v", p)
	}
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip.SrcIP.String() != "10.77.0.1" || ip.DstIP.String() != "10.77.0.2" || ip.Flags != layers.IPv4DontFragment {
		t.Errorf("outer IPv4 %v > %v flags %v", ip.SrcIP, ip.DstIP, ip.Flags)
	}
	if IPv4Checksum(pkt[header.EthernetLen:header.EthernetLen+header.IPv4MinLen]) != 0 {
		t.Error("outer IPv4 header checksum is not valid")
	}
	udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp.SrcPort != 4789 || udp.DstPort != 4789 || udp.Checksum != 0 || int(udp.Length) != len(pkt)-header.EthernetLen-header.IPv4MinLen {
		t.Errorf("outer UDP %d > %d checksum %#x length %d", udp.SrcPort, udp.DstPort, udp.Checksum, udp.Length)
	}
	inner := p.Layers()[len(p.Layers())-1]
	if icmp, ok := inner.(*layers.ICMPv4); !ok || icmp.Id != 0x1234 {
		t.Errorf("inner layer %T, want the ICMP echo", inner)
	}
}

func TestOuterPacketIPv6(t *testing.T) {
	src, dst := netip.MustParseAddrPort("[fd77::1]:4789"), netip.MustParseAddrPort("[fd77::2]:4789")
	pkt := OuterPacket(src, dst, 100, icmpEcho)
	if len(pkt) != OuterLenIPv6+8+len(icmpEcho) {
		t.Fatalf("packet of %d bytes, want %d", len(pkt), OuterLenIPv6+8+len(icmpEcho))
	}
	p := gopacket.NewPacket(pkt, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth.EthernetType != layers.EthernetTypeIPv6 || eth.SrcMAC.String() != "02:00:00:00:00:01" || eth.DstMAC.String() != "02:00:00:00:00:02" {
		t.Errorf("outer Ethernet %v > %v type %v", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
	}
	ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if !ok {
		t.Fatalf("no outer IPv6 layer: %v", p)
	}
	if ip.SrcIP.String() != "fd77::1" || ip.DstIP.String() != "fd77::2" || ip.HopLimit != 64 || ip.NextHeader != layers.IPProtocolUDP ||
		int(ip.Length) != len(pkt)-OuterLenIPv6+header.UDPLen {
		t.Errorf("outer IPv6 %v > %v hop limit %d next %v length %d", ip.SrcIP, ip.DstIP, ip.HopLimit, ip.NextHeader, ip.Length)
	}
	udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp.SrcPort != 4789 || udp.DstPort != 4789 || udp.Checksum == 0 {
		t.Errorf("outer UDP %d > %d checksum %#x: IPv6 needs a UDP checksum", udp.SrcPort, udp.DstPort, udp.Checksum)
	}
	// The oracle: gopacket computes the same checksum from the pseudo-header.
	u := header.UDP(pkt[header.EthernetLen+header.IPv6Len:])
	if !u.VerifyChecksum(header.IPv6(pkt[header.EthernetLen:]).PseudoSum(header.ProtoUDP, len(u))) {
		t.Error("outer UDP checksum does not verify")
	}
	check := *udp
	check.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &check, gopacket.Payload(udp.Payload)); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint16(buf.Bytes()[6:8]); got != udp.Checksum {
		t.Errorf("UDP checksum %#x, gopacket computes %#x", udp.Checksum, got)
	}
	vx, _ := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	if vx == nil || vx.VNI != 100 {
		t.Fatalf("no VXLAN layer with VNI 100: %v", p)
	}
	if _, ok := p.Layers()[len(p.Layers())-1].(*layers.ICMPv4); !ok {
		t.Errorf("inner layer %T, want the ICMP echo", p.Layers()[len(p.Layers())-1])
	}
}

func TestRecorderIPv6Underlay(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := netip.MustParseAddrPort("[fd77::1]:4789"), netip.MustParseAddrPort("[fd77::2]:4789")
	rec := &Recorder{W: w, Filter: Filter{Underlay: true}}
	out := &vswitch.Event{ID: 1, VNI: 100, Network: "web", Port: "c1", Self: s1, Frame: icmpEcho,
		Action: vswitch.ActionVTEP, VTEPs: []netip.Addr{s2.Addr()}}
	in := &vswitch.Event{ID: 2, VNI: 100, Network: "web", Self: s1, From: s2, Frame: icmpEcho,
		Payload: OuterPacket(s2, s1, 100, icmpEcho)[OuterLenIPv6:], Action: vswitch.ActionLocal, Ports: []string{"c1"}}
	for _, ev := range []*vswitch.Event{out, in} {
		if n, err := rec.Record(ev, -1); n != 1 || err != nil {
			t.Fatalf("Record of event %d wrote %d records (%v), want the outer packet", ev.ID, n, err)
		}
	}
	r, err := pcapgo.NewNgReader(&buf, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][2]string{{"fd77::1", "fd77::2"}, {"fd77::2", "fd77::1"}} {
		data, _, err := r.ReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !ok || ip.SrcIP.String() != want[0] || ip.DstIP.String() != want[1] || p.Layer(layers.LayerTypeVXLAN) == nil {
			t.Errorf("underlay record %v, want IPv6 %s > %s carrying VXLAN", p, want[0], want[1])
		}
	}
}

func TestRecorder(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	rec := &Recorder{W: w, Names: names}
	ev := &vswitch.Event{ID: 17, VNI: 100, Network: "web", Port: "c1", Self: h1, Frame: icmpEcho,
		Lookup: "raft", Action: vswitch.ActionVTEP, VTEPs: []netip.Addr{h2.Addr()}}
	if n, err := rec.Record(ev, -1); n != 2 || err != nil {
		t.Fatalf("Record wrote %d records (%v), want 2", n, err)
	}
	rec.Filter = Filter{Network: "db"}
	if n, _ := rec.Record(ev, -1); n != 0 {
		t.Errorf("filtered Record wrote %d records", n)
	}
	want := "frame 17 vni 100 in c1: unicast to vtep 10.77.0.2 (h2)"
	if c := epbComments(t, buf.Bytes()); len(c) != 2 || c[0] != want || c[1] != want {
		t.Errorf("comments %q, want %q twice", c, want)
	}

	// A frame the switch made: one record, on the port it went to, and
	// none in an underlay-only capture.
	made := &vswitch.Event{ID: 18, VNI: 100, Network: "web", Self: h1, Frame: icmpEcho,
		Action: vswitch.ActionGenerated, Ports: []string{"c1"}, Answers: 17}
	rec.Filter = Filter{}
	if n, err := rec.Record(made, -1); n != 1 || err != nil {
		t.Fatalf("Record of a made frame wrote %d records (%v), want 1", n, err)
	}
	rec.Filter = Filter{Underlay: true}
	if n, _ := rec.Record(made, -1); n != 0 {
		t.Errorf("an underlay capture recorded %d made frames", n)
	}
	wantMade := "frame 18 vni 100 in switch: made by the switch, to c1, answering frame 17"
	if c := epbComments(t, buf.Bytes()); len(c) != 3 || c[2] != wantMade {
		t.Errorf("comments %q, want the third %q", c, wantMade)
	}
}

func TestTraceLine(t *testing.T) {
	arpReq := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
		0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 0x01, 10, 20, 0, 2,
		0, 0, 0, 0, 0, 0, 10, 20, 0, 3,
	}
	tcpSyn := []byte{
		0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00,
		0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 20, 0, 3, 10, 20, 0, 2,
		0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
	}
	dnsQuery := []byte{
		0x02, 0, 0, 0, 0, 0x09, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00,
		0x45, 0, 0, 49, 0, 0, 0, 0, 64, 17, 0, 0, 10, 20, 0, 2, 10, 20, 0, 1,
		0xc3, 0x50, 0, 53, 0, 29, 0, 0,
		0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', 'p', 'i', 0, 0, 1, 0, 1,
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	tests := []struct {
		name string
		ev   vswitch.Event
		want string
	}{{
		name: "ping to a remote host",
		ev: vswitch.Event{ID: 17, Time: ts, VNI: 100, Network: "web", Port: "c1", Self: h1, Frame: icmpEcho,
			Lookup: "raft", Action: vswitch.ActionVTEP, VTEPs: []netip.Addr{h2.Addr()}},
		want: "03:04:05.000006 #17 web c1 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 10.20.0.2 > 10.20.0.3 ICMP echo request id 4660 seq 1" +
			" | lookup raft | vtep to 10.77.0.2 (h2) | outer 10.77.0.1:4789 > 10.77.0.2:4789 vni 100",
	}, {
		name: "ARP answered",
		ev: vswitch.Event{ID: 1, Time: ts, VNI: 100, Network: "web", Port: "c1", Self: h1, Frame: arpReq,
			Action: vswitch.ActionARP, Ports: []string{"c1"}},
		want: "03:04:05.000006 #1 web c1 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff ARP ARP who-has 10.20.0.3 tell 10.20.0.2 | arp-answered to c1",
	}, {
		name: "SYN-ACK from the underlay",
		ev: vswitch.Event{ID: 2, Time: ts, VNI: 100, Network: "web", From: h2, Self: h1, Frame: tcpSyn,
			Lookup: "local", Action: vswitch.ActionLocal, Ports: []string{"c1"}},
		want: "03:04:05.000006 #2 web underlay from 10.77.0.2 (h2) 02:00:00:00:00:02 > 02:00:00:00:00:01 IPv4 TCP 10.20.0.3:40000 > 10.20.0.2:80 [S.]" +
			" | lookup local | local to c1 | outer 10.77.0.2:4789 > 10.77.0.1:4789 vni 100",
	}, {
		name: "DNS query",
		ev: vswitch.Event{ID: 3, Time: ts, VNI: 100, Network: "web", Port: "c1", Self: h1, Frame: dnsQuery,
			Action: vswitch.ActionDNS},
		want: "03:04:05.000006 #3 web c1 02:00:00:00:00:01 > 02:00:00:00:00:09 IPv4 UDP 10.20.0.2:50000 > 10.20.0.1:53 DNS query A api. | dns-answered",
	}, {
		name: "DNS answer made by the switch",
		ev: vswitch.Event{ID: 5, Time: ts, VNI: 100, Network: "web", Self: h1, Frame: dnsQuery,
			Action: vswitch.ActionGenerated, Ports: []string{"c1"}, Answers: 3},
		want: "03:04:05.000006 #5 web switch 02:00:00:00:00:01 > 02:00:00:00:00:09 IPv4 UDP 10.20.0.2:50000 > 10.20.0.1:53 DNS query A api. | generated answering #3 to c1",
	}, {
		name: "ping over an IPv6 underlay",
		ev: vswitch.Event{ID: 6, Time: ts, VNI: 100, Network: "web", Port: "c1", Self: netip.MustParseAddrPort("[fd77::1]:4789"), Frame: icmpEcho,
			Lookup: "raft", Action: vswitch.ActionVTEP, VTEPs: []netip.Addr{netip.MustParseAddr("fd77::2")}},
		want: "03:04:05.000006 #6 web c1 02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 10.20.0.2 > 10.20.0.3 ICMP echo request id 4660 seq 1" +
			" | lookup raft | vtep to fd77::2 | outer [fd77::1]:4789 > [fd77::2]:4789 vni 100",
	}, {
		name: "from an IPv6 underlay",
		ev: vswitch.Event{ID: 7, Time: ts, VNI: 100, Network: "web", From: netip.MustParseAddrPort("[fd77::2]:4789"), Self: netip.MustParseAddrPort("[fd77::1]:4789"), Frame: tcpSyn,
			Lookup: "local", Action: vswitch.ActionLocal, Ports: []string{"c1"}},
		want: "03:04:05.000006 #7 web underlay from fd77::2 02:00:00:00:00:02 > 02:00:00:00:00:01 IPv4 TCP 10.20.0.3:40000 > 10.20.0.2:80 [S.]" +
			" | lookup local | local to c1 | outer [fd77::2]:4789 > [fd77::1]:4789 vni 100",
	}, {
		name: "dropped",
		ev:   vswitch.Event{ID: 4, Time: ts, From: netip.MustParseAddrPort("10.9.9.9:4789"), Self: h1, Action: vswitch.ActionDropped, Reason: "bad_flags"},
		want: "03:04:05.000006 #4 - underlay from 10.9.9.9 | dropped bad_flags | outer 10.9.9.9:4789 > 10.77.0.1:4789 vni 0",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewLine(&tt.ev, names).String()
			if got != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Error("line contains a newline")
			}
		})
	}
}

// TestDNSNamesEscaped: a query name with control bytes (an escape sequence
// that would drive the terminal), a dot or a backslash inside a label is
// printed in presentation format, never raw.
func TestDNSNamesEscaped(t *testing.T) {
	msg := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0} // query, 1 question
	label := []byte("a\x1b[2Jb.c\\d")
	msg = append(msg, byte(len(label)))
	msg = append(msg, label...)
	msg = append(msg, 3, 'w', 'e', 'b', 0, 0, 1, 0, 1)
	got := dnsSummary(msg)
	want := `DNS query A a\027[2Jb\.c\\d.web.`
	if got != want {
		t.Fatalf("dnsSummary = %q, want %q", got, want)
	}
	for _, c := range got {
		if c < 0x20 || c == 0x7f {
			t.Fatalf("summary %q holds control character %#x", got, c)
		}
	}
}

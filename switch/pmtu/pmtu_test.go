package pmtu

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"vxswitch/header"
)

var (
	src4 = netip.MustParseAddr("10.100.0.10")
	dst4 = netip.MustParseAddr("10.100.0.20")
	src6 = netip.MustParseAddr("fd00::a")
	dst6 = netip.MustParseAddr("fd00::20")
)

// synFrame builds an Ethernet/IP/TCP frame (IPv6 when v6) with the given
// TCP flags and options and valid checksums, through header views.
func synFrame(v6 bool, flags uint8, opts []byte) []byte {
	tlen := header.TCPMinLen + len(opts)
	ipLen := header.IPv4MinLen
	if v6 {
		ipLen = header.IPv6Len
	}
	f := make([]byte, header.EthernetLen+ipLen+tlen)
	eth := header.Ethernet(f)
	eth.SetOuterType(header.EtherTypeIPv4)
	tcp := header.TCP(f[header.EthernetLen+ipLen:])
	tcp.SetSrcPort(40000)
	tcp.SetDstPort(80)
	tcp.SetHeaderLen(tlen)
	tcp.SetFlags(flags)
	tcp.SetWindow(64240)
	copy(tcp.Options(), opts)
	if v6 {
		eth.SetOuterType(header.EtherTypeIPv6)
		ip := header.IPv6(eth.Payload())
		ip.SetVersionClassFlow(0, 0)
		ip.SetPayloadLength(uint16(tlen))
		ip.SetNextHeader(header.ProtoTCP)
		ip.SetHopLimit(64)
		ip.SetSource(src6)
		ip.SetDestination(dst6)
		tcp.SetChecksum(tcp.ComputeChecksum(ip.PseudoSum(header.ProtoTCP, tlen)))
		return f
	}
	ip := header.IPv4(eth.Payload())
	ip.Encode(uint16(ipLen+tlen), 1, 0, 64, header.ProtoTCP, src4, dst4)
	tcp.SetChecksum(tcp.ComputeChecksum(ip.PseudoSum(header.ProtoTCP, tlen)))
	return f
}

// mssOpt is an MSS option of value v; nop a no-operation option.
func mssOpt(v uint16) []byte { return []byte{header.TCPOptionMSS, 4, byte(v >> 8), byte(v)} }

var nop = []byte{1}

func TestClampMSS(t *testing.T) {
	tests := []struct {
		name    string
		frame   []byte
		mtu     int
		want    uint16
		clamped bool
	}{
		{"IPv4 SYN", synFrame(false, header.TCPFlagSYN, mssOpt(1460)), 1450, 1410, true},
		{"IPv6 SYN-ACK, odd offset", synFrame(true, header.TCPFlagSYN|header.TCPFlagACK, append(nop, append(mssOpt(9000), 0, 0, 0)...)), 1500, 1440, true},
		{"already small", synFrame(false, header.TCPFlagSYN, mssOpt(1200)), 1450, 1200, false},
		{"not SYN", synFrame(false, header.TCPFlagACK, mssOpt(1460)), 1450, 1460, false},
		{"no limit", synFrame(false, header.TCPFlagSYN, mssOpt(1460)), 0, 1460, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := bytes.Clone(tt.frame)
			if got := ClampMSS(f, tt.mtu); got != tt.clamped {
				t.Fatalf("ClampMSS = %v, want %v", got, tt.clamped)
			}
			tcp := header.TCP(tcpOf(f))
			if mss, _ := tcp.MSS(); mss != tt.want {
				t.Errorf("MSS %d, want %d", mss, tt.want)
			}
			if !tt.clamped && !bytes.Equal(f, tt.frame) {
				t.Error("frame changed although nothing was clamped")
			}
			if refSum(f) != refSum(tt.frame) {
				t.Error("checksum not updated right")
			}
		})
	}
	noMSS := synFrame(false, header.TCPFlagSYN, nil)
	frag := synFrame(false, header.TCPFlagSYN, mssOpt(1460))
	frag[header.EthernetLen+6] |= 0x20 // more fragments
	badOpt := synFrame(false, header.TCPFlagSYN, []byte{8, 40, 0, 0})
	for name, f := range map[string][]byte{"no MSS option": noMSS, "fragment": frag, "bad option length": badOpt} {
		if ClampMSS(bytes.Clone(f), 1450) {
			t.Errorf("%s: clamped", name)
		}
	}
}

// tcpOf returns the TCP segment of an IPv4 or IPv6 frame.
func tcpOf(f []byte) []byte {
	eth := header.Ethernet(f)
	if eth.Type() == header.EtherTypeIPv6 {
		return header.IPv6(eth.Payload()).Payload()
	}
	return header.IPv4(eth.Payload()).Payload()
}

// refSum is the one's complement sum of b (header.Sum, a full sum that
// does not share code with the incremental update ClampMSS makes), folded
// so that 0 and 0xffff are the same number.
func refSum(b []byte) uint16 {
	if sum := header.Sum(b, 0); sum != 0xffff {
		return sum
	}
	return 0
}

func FuzzClampMSS(f *testing.F) {
	f.Add(synFrame(false, header.TCPFlagSYN, mssOpt(1460)), 1450)
	f.Add(synFrame(true, header.TCPFlagSYN|header.TCPFlagACK, append(nop, append(mssOpt(9000), 0, 0, 0)...)), 1500)
	f.Fuzz(func(t *testing.T, frame []byte, mtu int) {
		before := bytes.Clone(frame)
		if !ClampMSS(frame, mtu) {
			if !bytes.Equal(frame, before) {
				t.Fatal("frame changed without reporting it")
			}
			return
		}
		if ClampMSS(frame, mtu) {
			t.Fatal("clamped twice")
		}
		// The TCP segment starts at an even offset of the frame, so a right
		// incremental update (RFC 1624) leaves the one's complement sum of
		// the whole frame as it was.
		if refSum(frame) != refSum(before) {
			t.Fatalf("sum %#04x, was %#04x: checksum not updated right", refSum(frame), refSum(before))
		}
	})
}

func TestFragmentIPv4Options(t *testing.T) {
	// Header with a security option (type 130, copied) and a record route
	// option (type 7, not copied), 28 bytes; 80 bytes of payload; MF set
	// already (this is a fragment being split again) at offset 8 units.
	hdr := []byte{
		0x47, 0, 0, 108, 0xab, 0xcd, 0x20, 0x08, 64, header.ProtoUDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		130, 4, 0xaa, 0xbb, // security: copied
		7, 3, 4, 0, // record route: not copied, then end of list
	}
	ip := append(hdr, bytes.Repeat([]byte{1, 2, 3, 4, 5}, 16)...)
	header.IPv4(ip[:28]).UpdateChecksum()
	var frags [][]byte
	if !FragmentIPv4(make([]byte, 14+68), make([]byte, 14), ip, 68, func(f []byte) { frags = append(frags, bytes.Clone(f[14:])) }) {
		t.Fatal("FragmentIPv4 refused")
	}
	tests := []struct {
		hlen, plen int
		flags      uint16
	}{
		{28, 40, 0x2000 | 8},     // first: every option, (68-28)&^7 = 40 bytes
		{24, 40, 0x2000 | 8 + 5}, // later: the security option only, padded to 24
	}
	if len(frags) != len(tests) {
		t.Fatalf("got %d fragments, want %d", len(frags), len(tests))
	}
	for i, tt := range tests {
		f := frags[i]
		if hl := int(f[0]&0x0f) * 4; hl != tt.hlen || len(f) != tt.hlen+tt.plen || int(binary.BigEndian.Uint16(f[2:4])) != len(f) {
			t.Errorf("fragment %d: header %d total %d len %d, want %d + %d", i, hl, binary.BigEndian.Uint16(f[2:4]), len(f), tt.hlen, tt.plen)
		}
		if fl := binary.BigEndian.Uint16(f[6:8]); fl != tt.flags {
			t.Errorf("fragment %d: flags/offset %#04x, want %#04x", i, fl, tt.flags)
		}
		if refSum(f[:tt.hlen]) != 0 {
			t.Errorf("fragment %d: bad header checksum", i)
		}
	}
	if !bytes.Equal(frags[1][20:24], []byte{130, 4, 0xaa, 0xbb}) {
		t.Errorf("later fragment options % x, want the security option", frags[1][20:24])
	}
	if !bytes.Equal(append(frags[0][28:], frags[1][24:]...), ip[28:]) {
		t.Error("fragment payloads do not add up to the original")
	}
	if FragmentIPv4(make([]byte, 14+67), make([]byte, 14), ip, 67, func([]byte) { t.Error("emitted below the minimum MTU") }) {
		t.Error("FragmentIPv4 accepted an MTU below 68")
	}
}

func TestICMPRefusals(t *testing.T) {
	syn := synFrame(false, header.TCPFlagSYN, mssOpt(1460))
	ip := header.IPv4(header.Ethernet(syn).Payload())
	out, ok := AppendFragNeeded([]byte{0xee}, ip, 1400, netip.Addr{})
	if !ok || out[0] != 0xee || len(out) != 1+20+8+20+8 {
		t.Fatalf("AppendFragNeeded = %d bytes, %v", len(out), ok)
	}
	m := header.IPv4(out[1:])
	if m.Source() != dst4 || m.Destination() != src4 || header.ICMPv4(m.Payload()).Type() != header.ICMPv4Unreachable {
		t.Errorf("message % x", out[1:])
	}
	icmpErr := bytes.Clone(out[1:]) // an ICMP error is never answered
	if _, ok := AppendFragNeeded(nil, icmpErr, 1400, netip.Addr{}); ok {
		t.Error("answered an ICMP error")
	}
	v6 := synFrame(true, header.TCPFlagSYN, mssOpt(1460))
	out, ok = AppendPacketTooBig(nil, header.Ethernet(v6).Payload(), 1400)
	if !ok || header.IPv6(out).Source() != dst6 || header.ICMPv6(header.IPv6(out).Payload()).Type() != header.ICMPv6PacketTooBig {
		t.Fatalf("AppendPacketTooBig = % x, %v", out, ok)
	}
	if _, ok := AppendPacketTooBig(nil, out, 1400); ok {
		t.Error("answered an ICMPv6 error")
	}
}

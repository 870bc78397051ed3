package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/miekg/dns"

	vxcapture "vxswitch/capture"
	"vxswitch/header"
	"vxswitch/stateview"
	vswitch "vxswitch/switch"
)

var update = flag.Bool("update", false, "rewrite the input and golden pcapng files in testdata/replay")

// dir holds the input captures (NAME.in.pcapng) and golden outputs
// (NAME.out.pcapng).
const dir = "../testdata/replay"

// The world of DefaultState, as the test builds frames in it.
var (
	macA  = mac("02:00:00:00:01:0a") // endpoint a on h1 (this host)
	macB  = mac("02:00:00:00:01:0b") // endpoint b on h1
	macC  = mac("02:00:00:00:01:0c") // endpoint c on h2
	macR  = stateview.ResolverMAC("web")
	bcast = vswitch.BroadcastMAC

	ipA        = netip.MustParseAddr("10.100.0.10")
	ipB        = netip.MustParseAddr("10.100.0.11")
	ipC        = netip.MustParseAddr("10.100.0.20")
	ipResolver = netip.MustParseAddr("10.100.0.1")
	ipUnknown  = netip.MustParseAddr("10.100.0.99")

	vtep1    = netip.MustParseAddr("10.0.0.1")
	vtep2    = netip.MustParseAddr("10.0.0.2")
	stranger = netip.MustParseAddr("10.9.9.9")
)

func mac(s string) vswitch.MAC {
	m, err := vswitch.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// inPacket is one packet of an input capture: where it enters and its bytes.
type inPacket struct {
	iface string // "a", "b" or UnderlayName
	data  []byte
}

// The interfaces of every input capture the test writes.
var inputIfaces = []string{"a", "b", UnderlayName}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		in   func(t *testing.T) []inPacket
		// out summarizes each emitted packet (see summarize), in order.
		out []string
		// stats are the switch's counters afterwards; Drops nil = none.
		stats vswitch.Stats
	}{{
		name: "arp-remote",
		in: func(t *testing.T) []inPacket {
			return []inPacket{{"a", arpRequest(t, macA, ipA, ipC)}}
		},
		out: []string{"a: arp reply 10.100.0.20 is-at 02:00:00:00:01:0c to 02:00:00:00:01:0a"},
		// The request is padded to the Ethernet minimum of 60; the reply is not.
		stats: vswitch.Stats{RxFrames: 1, RxBytes: 60, TxFrames: 1, TxBytes: 42, ARPSuppressed: 1},
	}, {
		name: "flood-broadcast",
		in: func(t *testing.T) []inPacket {
			return []inPacket{{"a", arpRequest(t, macA, ipA, ipUnknown)}}
		},
		out: []string{
			"b: arp who-has 10.100.0.99 tell 10.100.0.10",
			"underlay: 10.0.0.1:4789 > 10.0.0.2:4789 vni 100: arp who-has 10.100.0.99 tell 10.100.0.10",
			"underlay: 10.0.0.1:4789 > 10.0.0.3:4789 vni 100: arp who-has 10.100.0.99 tell 10.100.0.10",
		},
		stats: vswitch.Stats{RxFrames: 1, RxBytes: 60, TxFrames: 1, TxBytes: 60, EncapFrames: 2, FloodCopies: 3, ARPFlooded: 1},
	}, {
		name: "unicast-remote",
		in: func(t *testing.T) []inPacket {
			return []inPacket{{"a", echo(t, macC, macA, ipA, ipC, layers.ICMPv4TypeEchoRequest, 56)}}
		},
		out:   []string{"underlay: 10.0.0.1:4789 > 10.0.0.2:4789 vni 100: icmp echo-request 10.100.0.10 > 10.100.0.20"},
		stats: vswitch.Stats{RxFrames: 1, RxBytes: 98, EncapFrames: 1},
	}, {
		name: "unicast-local",
		in: func(t *testing.T) []inPacket {
			return []inPacket{{"a", echo(t, macB, macA, ipA, ipB, layers.ICMPv4TypeEchoRequest, 56)}}
		},
		out:   []string{"b: icmp echo-request 10.100.0.10 > 10.100.0.11"},
		stats: vswitch.Stats{RxFrames: 1, RxBytes: 98, TxFrames: 1, TxBytes: 98, LocalSwitched: 1},
	}, {
		name:  "underlay-to-local",
		in:    replyFrom(vtep2, vxlanHeader(0x08, 100, 0)),
		out:   []string{"a: icmp echo-reply 10.100.0.20 > 10.100.0.10"},
		stats: vswitch.Stats{TxFrames: 1, TxBytes: 98, DecapFrames: 1},
	}, {
		name:  "unknown-vni",
		in:    replyFrom(vtep2, vxlanHeader(0x08, 999, 0)),
		stats: vswitch.Stats{Drops: map[string]uint64{"unknown_vni": 1}},
	}, {
		name:  "not-member",
		in:    replyFrom(stranger, vxlanHeader(0x08, 100, 0)),
		stats: vswitch.Stats{Drops: map[string]uint64{"not_member": 1}},
	}, {
		name:  "bad-flags",
		in:    replyFrom(vtep2, vxlanHeader(0x00, 100, 0)),
		stats: vswitch.Stats{Drops: map[string]uint64{"bad_flags": 1}},
	}, {
		name:  "reserved-bits",
		in:    replyFrom(vtep2, vxlanHeader(0x08, 100, 0x01)),
		stats: vswitch.Stats{Drops: map[string]uint64{"reserved_bits": 1}},
	}, {
		name: "oversize-df",
		in: func(t *testing.T) []inPacket {
			// 1500 bytes of IPv4 with DF set; the endpoint MTU is 1450.
			return []inPacket{{"a", echo(t, macC, macA, ipA, ipC, layers.ICMPv4TypeEchoRequest, 1500-28)}}
		},
		// From the resolver address, the network's "router"; it quotes the
		// IP header and 8 bytes: 14 + 20 + 8 + 20 + 8 = 70 bytes.
		out:   []string{"a: icmp frag-needed mtu 1450 10.100.0.1 > 10.100.0.10"},
		stats: vswitch.Stats{RxFrames: 1, RxBytes: 1514, TxFrames: 1, TxBytes: 70, ICMPFragNeeded: 1},
	}, {
		name: "dns-query",
		in: func(t *testing.T) []inPacket {
			return []inPacket{{"a", dnsQuery(t, "c.web.", 0x1234)}}
		},
		out:   []string{"a: dns answer id 0x1234 c.web. A 10.100.0.20"},
		stats: vswitch.Stats{RxFrames: 1, RxBytes: 65, TxFrames: 1, TxBytes: 81, DNSQueries: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inPath := filepath.Join(dir, tt.name+".in.pcapng")
			outPath := filepath.Join(dir, tt.name+".out.pcapng")
			in := writeInput(t, tt.in(t))
			if *update {
				writeFile(t, inPath, in)
			} else if stored := readFile(t, inPath); !bytes.Equal(stored, in) {
				t.Fatalf("%s differs from the input this test builds: run go test ./replay/ -update", inPath)
			}

			var out bytes.Buffer
			res, err := Run(&out, bytes.NewReader(in), Options{State: DefaultState()})
			if err != nil {
				t.Fatal(err)
			}
			got := summarizeAll(t, out.Bytes())
			if !reflect.DeepEqual(got, tt.out) {
				t.Errorf("emitted:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.out, "\n  "))
			}
			if res.Packets != 1 || res.Emitted != len(tt.out) || res.Ignored != nil {
				t.Errorf("result: %d packets, %d emitted, ignored %v; want 1, %d, none", res.Packets, res.Emitted, res.Ignored, len(tt.out))
			}
			want := tt.stats
			if want.Drops == nil {
				want.Drops = map[string]uint64{}
			}
			if !reflect.DeepEqual(res.Stats, want) {
				t.Errorf("stats:\n got %+v\nwant %+v", res.Stats, want)
			}

			if *update {
				writeFile(t, outPath, out.Bytes())
				return
			}
			golden := readFile(t, outPath)
			if !bytes.Equal(out.Bytes(), golden) {
				t.Errorf("output differs from %s (run go test ./replay/ -update if the change is meant):\n%s", outPath, diffPackets(t, golden, out.Bytes()))
			}
		})
	}
}

// TestGoldenIPv6Underlay replays a capture made in an IPv6-underlay lab
// ('vxswitch lab up --ipv6-underlay', then 'vxswitch capture --network web
// -c 6 -w ipv6-underlay.in.pcapng' on h1 while c1 pinged c2 and c2 asked
// ARP for an unused address; the state file is that lab's) as host h1.
// The echo request from c1 leaves with outer IPv6 headers to h2; the two
// ARP requests flooded by h2 arrive over UDP/IPv6 and reach c1. The
// capture also holds h1's own outgoing packet (other_host: the socket of
// h1 never receives it) and the ARP copies h1 wrote to c1, which a replay
// takes as frames from c1 and the guard drops (spoofed_mac: c2's MAC).
func TestGoldenIPv6Underlay(t *testing.T) {
	inPath := filepath.Join(dir, "ipv6-underlay.in.pcapng")
	outPath := filepath.Join(dir, "ipv6-underlay.out.pcapng")
	f, err := os.Open(filepath.Join(dir, "ipv6-underlay.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := ReadState(f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Run(&out, bytes.NewReader(readFile(t, inPath)), Options{State: st})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"underlay: [fd77::1]:4789 > [fd77::2]:4789 vni 100: icmp echo-request 10.20.0.2 > 10.20.0.3",
		"c1: arp who-has 10.20.0.99 tell 10.20.0.3",
		"c1: arp who-has 10.20.0.99 tell 10.20.0.3",
	}
	if got := summarizeAll(t, out.Bytes()); !reflect.DeepEqual(got, want) {
		t.Errorf("emitted:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if res.Packets != 6 || res.Emitted != 3 || !reflect.DeepEqual(res.Ignored, map[string]int{"other_host": 1}) {
		t.Errorf("result: %d packets, %d emitted, ignored %v; want 6, 3, other_host 1", res.Packets, res.Emitted, res.Ignored)
	}
	if res.Stats.EncapFrames != 1 || res.Stats.DecapFrames != 2 || res.Stats.Drops["spoofed_mac"] != 2 {
		t.Errorf("stats %+v: want 1 encapsulated, 2 decapsulated, 2 spoofed_mac drops", res.Stats)
	}
	if *update {
		writeFile(t, outPath, out.Bytes())
		return
	}
	if golden := readFile(t, outPath); !bytes.Equal(out.Bytes(), golden) {
		t.Errorf("output differs from %s (run go test ./replay/ -update if the change is meant):\n%s", outPath, diffPackets(t, golden, out.Bytes()))
	}
}

// tshark reads the IPv6-underlay capture and its replay as VXLAN over
// UDP/IPv6 with good UDP checksums and the network's VNI.
func TestTsharkReadsIPv6Underlay(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		const msg = "tshark not installed: apt-get install tshark to cross-check the replay output"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this check must run)")
		}
		t.Skip(msg)
	}
	for _, file := range []string{"ipv6-underlay.in.pcapng", "ipv6-underlay.out.pcapng"} {
		path := filepath.Join(dir, file)
		cmd := exec.Command("tshark", "-r", path, "-o", "udp.check_checksum:TRUE", "-Y", "vxlan",
			"-T", "fields", "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "udp.checksum.status", "-e", "vxlan.vni")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", path, err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) == 0 || lines[0] == "" {
			t.Fatalf("%s: tshark found no VXLAN", file)
		}
		for _, l := range lines {
			f := strings.Fields(l)
			// Good checksum is status 1.
			if len(f) != 4 || !strings.HasPrefix(f[0], "fd77::") || !strings.HasPrefix(f[1], "fd77::") || f[2] != "1" || f[3] != "100" {
				t.Errorf("%s: tshark fields %q, want fd77:: > fd77::, checksum good (1), VNI 100", file, f)
			}
		}
	}
}

// TestGoldenIPv6Overlay replays a capture made in a dual-stack lab
// ('vxswitch lab up --hosts 2 --subnet 10.20.0.0/24 --subnet fd20::/64',
// then 'vxswitch capture --network web -c 10 -w ipv6-overlay.in.pcapng'
// on h1 while c1, its neighbour cache flushed, pinged fd20::3 twice; the
// state file is that lab's) as host h1. c1's neighbour solicitation for
// c2 is answered at the first hop from the state (the advertisement goes
// back to c1, nothing crosses the underlay); both echo requests leave to
// h2 and both replies arrive from it and reach c1. The capture also holds
// h1's own outgoing packets (other_host) and the frames h1 wrote to c1
// (the advertisement and the replies), which a replay takes as frames
// from c1 and the guard drops (spoofed_mac: c2's MAC).
func TestGoldenIPv6Overlay(t *testing.T) {
	inPath := filepath.Join(dir, "ipv6-overlay.in.pcapng")
	outPath := filepath.Join(dir, "ipv6-overlay.out.pcapng")
	f, err := os.Open(filepath.Join(dir, "ipv6-overlay.state.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := ReadState(f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Run(&out, bytes.NewReader(readFile(t, inPath)), Options{State: st})
	if err != nil {
		t.Fatal(err)
	}
	request := "underlay: 10.77.0.1:4789 > 10.77.0.2:4789 vni 100: icmp6 EchoRequest fd20::2 > fd20::3"
	reply := "c1: icmp6 EchoReply fd20::3 > fd20::2"
	want := []string{"c1: icmp6 NeighborAdvertisement fd20::3 > fd20::2", request, reply, request, reply}
	if got := summarizeAll(t, out.Bytes()); !reflect.DeepEqual(got, want) {
		t.Errorf("emitted:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if res.Packets != 10 || res.Emitted != 5 || !reflect.DeepEqual(res.Ignored, map[string]int{"other_host": 2}) {
		t.Errorf("result: %d packets, %d emitted, ignored %v; want 10, 5, other_host 2", res.Packets, res.Emitted, res.Ignored)
	}
	if s := res.Stats; s.NDPAnswered != 1 || s.NDPFlooded != 0 || s.EncapFrames != 2 || s.DecapFrames != 2 || !reflect.DeepEqual(s.Drops, map[string]uint64{"spoofed_mac": 3}) {
		t.Errorf("stats %+v: want 1 NDP answer, none flooded, 2 encapsulated, 2 decapsulated, 3 spoofed_mac drops", s)
	}
	if *update {
		writeFile(t, outPath, out.Bytes())
		return
	}
	if golden := readFile(t, outPath); !bytes.Equal(out.Bytes(), golden) {
		t.Errorf("output differs from %s (run go test ./replay/ -update if the change is meant):\n%s", outPath, diffPackets(t, golden, out.Bytes()))
	}
}

// tshark reads the inner IPv6 of the dual-stack capture and its replay:
// the neighbour solicitation and advertisement for fd20::3 (with c1's
// and c2's MAC in their link-layer address options) and the echoes, every ICMPv6 checksum good,
// the echoes inside VXLAN with the network's VNI on the underlay.
func TestTsharkReadsIPv6Overlay(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		const msg = "tshark not installed: apt-get install tshark to cross-check the replay output"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this check must run)")
		}
		t.Skip(msg)
	}
	for file, want := range map[string]string{
		"ipv6-overlay.in.pcapng": "135 fd20::3 02:69:bf:7b:3d:33 1 -|136 fd20::3 02:eb:29:a1:a4:1d 1 -|128 - - 1 -|128 - - 1 100|129 - - 1 100|129 - - 1 -|" +
			"128 - - 1 -|128 - - 1 100|129 - - 1 100|129 - - 1 -",
		"ipv6-overlay.out.pcapng": "136 fd20::3 02:eb:29:a1:a4:1d 1 -|128 - - 1 100|129 - - 1 -|128 - - 1 100|129 - - 1 -",
	} {
		path := filepath.Join(dir, file)
		cmd := exec.Command("tshark", "-r", path, "-Y", "icmpv6", "-T", "fields", "-E", "occurrence=l",
			"-e", "icmpv6.type", "-e", "icmpv6.nd.ns.target_address", "-e", "icmpv6.nd.na.target_address", "-e", "icmpv6.opt.linkaddr", "-e", "icmpv6.checksum.status", "-e", "vxlan.vni")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", path, err)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			f := strings.Split(l, "\t")
			if len(f) != 6 {
				t.Fatalf("%s: tshark line %q", file, l)
			}
			target := f[1] + f[2]
			row := []string{f[0], target, f[3], f[4], f[5]}
			for i, v := range row {
				if v == "" {
					row[i] = "-"
				}
			}
			got = append(got, strings.Join(row, " "))
		}
		if strings.Join(got, "|") != want {
			t.Errorf("%s: tshark reads\n  %s\nwant\n  %s", file, strings.Join(got, "\n  "), strings.ReplaceAll(want, "|", "\n  "))
		}
	}
}

// A replay of the same input twice gives the same bytes, and the state
// survives a JSON round trip (the --state path).
func TestDeterministicAndStateFile(t *testing.T) {
	in := writeInput(t, []inPacket{
		{"a", arpRequest(t, macA, ipA, ipUnknown)},
		{"a", echo(t, macC, macA, ipA, ipC, layers.ICMPv4TypeEchoRequest, 56)},
		{UnderlayName, outer(t, vtep2, vtep1, 4789, vxlanHeader(0x08, 100, 0), echo(t, macA, macC, ipC, ipA, layers.ICMPv4TypeEchoReply, 56))},
	})
	var first bytes.Buffer
	if _, err := Run(&first, bytes.NewReader(in), Options{State: DefaultState()}); err != nil {
		t.Fatal(err)
	}
	js := mustJSON(t, DefaultState())
	st, err := ReadState(strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		var again bytes.Buffer
		if _, err := Run(&again, bytes.NewReader(in), Options{State: st}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), again.Bytes()) {
			t.Fatalf("replay %d differs from the first:\n%s", i+2, diffPackets(t, first.Bytes(), again.Bytes()))
		}
	}
}

// A plain pcap file holds underlay packets only; packets the host's socket
// would not receive are counted, not replayed.
func TestPlainPcapIsUnderlay(t *testing.T) {
	inner := echo(t, macA, macC, ipC, ipA, layers.ICMPv4TypeEchoReply, 56)
	var in bytes.Buffer
	w := pcapgo.NewWriter(&in)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{
		outer(t, vtep2, vtep1, 4789, vxlanHeader(0x08, 100, 0), inner),
		outer(t, vtep2, vtep1, 8472, vxlanHeader(0x08, 100, 0), inner),                           // another port
		outer(t, vtep2, netip.MustParseAddr("10.0.0.3"), 4789, vxlanHeader(0x08, 100, 0), inner), // another host
		inner, // not UDP at all
	} {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1_700_000_000, 0), CaptureLength: len(p), Length: len(p)}, p); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	res, err := Run(&out, &in, Options{State: DefaultState()})
	if err != nil {
		t.Fatal(err)
	}
	wantIgnored := map[string]int{"other_port": 1, "other_host": 1, "not_ip_udp": 1}
	if res.Packets != 4 || res.Emitted != 1 || !reflect.DeepEqual(res.Ignored, wantIgnored) {
		t.Errorf("result %+v, want 4 packets, 1 emitted, ignored %v", res, wantIgnored)
	}
	if got := summarizeAll(t, out.Bytes()); !reflect.DeepEqual(got, []string{"a: icmp echo-reply 10.100.0.20 > 10.100.0.10"}) {
		t.Errorf("emitted %q", got)
	}
}

func TestBadInput(t *testing.T) {
	bad := writeInputIfaces(t, []string{"eth7"}, []inPacket{{"eth7", arpRequest(t, macA, ipA, ipC)}})
	noSelf := DefaultState()
	noSelf.Self = "h9"
	// A pcap file of Linux cooked frames (tcpdump -i any) with one packet.
	var sll bytes.Buffer
	pw := pcapgo.NewWriter(&sll)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeLinuxSLL); err != nil {
		t.Fatal(err)
	}
	if err := pw.WritePacket(gopacket.CaptureInfo{CaptureLength: 16, Length: 16}, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	// A pcapng file whose second interface holds raw IP packets: its
	// packet must be refused, not skipped.
	var mixed bytes.Buffer
	nw, err := pcapgo.NewNgWriterInterface(&mixed, pcapgo.NgInterface{Name: "a", LinkType: layers.LinkTypeEthernet}, pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nw.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw}); err != nil {
		t.Fatal(err)
	}
	if err := nw.WritePacket(gopacket.CaptureInfo{CaptureLength: 20, Length: 20, InterfaceIndex: 1}, make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	if err := nw.Flush(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		opt  Options
		want string
	}{
		{"unknown interface", bad, Options{State: DefaultState()}, `capture interface "eth7" is neither "underlay" nor an endpoint of host h1 (a, b)`},
		{"not a capture", []byte("hello, world"), Options{State: DefaultState()}, "not a pcap or pcapng file"},
		{"empty", nil, Options{State: DefaultState()}, "replay: capture: empty input: give a pcap or pcapng file"},
		{"pcap not Ethernet", sll.Bytes(), Options{State: DefaultState()}, "replay: packet 1: the pcap file's link type is Linux SLL: only Ethernet captures can be replayed"},
		{"pcapng interface not Ethernet", mixed.Bytes(), Options{State: DefaultState()}, `replay: packet 1: capture interface "tun0" has link type Raw: only Ethernet frames can be replayed`},
		{"self not in state", bad, Options{State: noSelf}, `self "h9" is not one of the state's hosts (h1, h2, h3)`},
		{"no state", bad, Options{}, `no "state" object`},
	}
	for _, tt := range tests {
		_, err := Run(io.Discard, bytes.NewReader(tt.in), tt.opt)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := ReadState(strings.NewReader(`{"self": "h1", "stat": {}}`)); err == nil || !strings.Contains(err.Error(), `unknown field "stat"`) {
		t.Errorf("misspelt field: error %v", err)
	}
}

// tshark, an independent dissector, finds VXLAN with the state's VNI and
// the inner ICMP in the golden output, with no decode-as options.
func TestTsharkReadsOutput(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		const msg = "tshark not installed: apt-get install tshark to cross-check the replay output"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this check must run)")
		}
		t.Skip(msg)
	}
	file := filepath.Join(dir, "unicast-remote.out.pcapng")
	cmd := exec.Command("tshark", "-r", file, "-o", "ip.check_checksum:TRUE",
		"-T", "fields", "-e", "frame.interface_name", "-e", "vxlan.vni", "-e", "icmp.type", "-e", "ip.checksum.status")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	// One packet: interface underlay, VNI 100, inner ICMP echo request
	// (type 8), outer and inner IPv4 header checksums good (1).
	got := strings.Fields(string(out))
	if want := []string{"underlay", "100", "8", "1,1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tshark fields = %q, want %q", got, want)
	}
}

// writeInput writes packets as a pcapng capture with the interfaces
// inputIfaces, one millisecond apart from a fixed time.
func writeInput(t *testing.T, packets []inPacket) []byte {
	return writeInputIfaces(t, inputIfaces, packets)
}

func writeInputIfaces(t *testing.T, ifaces []string, packets []inPacket) []byte {
	t.Helper()
	var buf bytes.Buffer
	intf := func(name string) pcapgo.NgInterface {
		return pcapgo.NgInterface{Name: name, LinkType: layers.LinkTypeEthernet, TimestampResolution: 9}
	}
	w, err := pcapgo.NewNgWriterInterface(&buf, intf(ifaces[0]), pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "vxswitch replay test"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ifaces[1:] {
		if _, err := w.AddInterface(intf(name)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Unix(1_700_000_000, 0).UTC()
	for i, p := range packets {
		idx := -1
		for j, name := range ifaces {
			if name == p.iface {
				idx = j
			}
		}
		if idx < 0 {
			t.Fatalf("packet %d: no interface %q", i, p.iface)
		}
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(p.data), Length: len(p.data), InterfaceIndex: idx}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// serialize builds a packet from gopacket layers with lengths and checksums.
func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

func ethernet(dst, src vswitch.MAC, et layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{DstMAC: net.HardwareAddr(dst[:]), SrcMAC: net.HardwareAddr(src[:]), EthernetType: et}
}

func ipv4(src, dst netip.Addr, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x4242, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
}

// arpRequest is a broadcast "who has target? tell srcIP" from srcMAC.
func arpRequest(t *testing.T, srcMAC vswitch.MAC, srcIP, target netip.Addr) []byte {
	return serialize(t, ethernet(bcast, srcMAC, layers.EthernetTypeARP), &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: srcMAC[:], SourceProtAddress: srcIP.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: target.AsSlice(),
	})
}

// echo is an ICMP echo request or reply with n bytes of payload, DF set.
func echo(t *testing.T, dstMAC, srcMAC vswitch.MAC, src, dst netip.Addr, typ uint8, n int) []byte {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i)
	}
	return serialize(t, ethernet(dstMAC, srcMAC, layers.EthernetTypeIPv4), ipv4(src, dst, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: 7, Seq: 1}, gopacket.Payload(payload))
}

// dnsQuery is an A query for name from endpoint a to the resolver.
func dnsQuery(t *testing.T, name string, id uint16) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.Id = id
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	ip := ipv4(ipA, ipResolver, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ethernet(macR, macA, layers.EthernetTypeIPv4), ip, udp, gopacket.Payload(q))
}

// vxlanHeader is an 8-byte VXLAN header with the given flags byte, VNI and
// first reserved byte.
// replyFrom returns the input of a case that is C's echo reply to A,
// arriving at vtep1 from src with the VXLAN header hdr.
func replyFrom(src netip.Addr, hdr []byte) func(t *testing.T) []inPacket {
	return func(t *testing.T) []inPacket {
		inner := echo(t, macA, macC, ipC, ipA, layers.ICMPv4TypeEchoReply, 56)
		return []inPacket{{UnderlayName, outer(t, src, vtep1, 4789, hdr, inner)}}
	}
}

func vxlanHeader(flags uint8, vni uint32, reserved uint8) []byte {
	return []byte{flags, reserved, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
}

// outer wraps hdr and inner in Ethernet/IPv4/UDP from src:4789 to dst:port,
// as a peer's kernel would send them (UDP checksum computed).
func outer(t *testing.T, src, dst netip.Addr, port uint16, hdr, inner []byte) []byte {
	ip := ipv4(src, dst, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 4789, DstPort: layers.UDPPort(port)}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ethernet(vswitch.MAC(vxcapture.VTEPMAC(dst)), vswitch.MAC(vxcapture.VTEPMAC(src)), layers.EthernetTypeIPv4), ip, udp,
		gopacket.Payload(append(bytes.Clone(hdr), inner...)))
}

// outPacket is one packet of an output capture.
type outPacket struct {
	iface string
	data  []byte
}

func readOutput(t *testing.T, b []byte) []outPacket {
	t.Helper()
	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var out []outPacket
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		intf, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, outPacket{intf.Name, data})
	}
}

// summarizeAll summarizes every packet of the output capture b.
func summarizeAll(t *testing.T, b []byte) []string {
	var out []string
	for _, p := range readOutput(t, b) {
		out = append(out, p.iface+": "+summarize(t, p))
	}
	return out
}

// summarize describes one output packet in a line: for the underlay the
// outer addresses and VNI (checking the outer headers on the way), then the
// inner frame.
func summarize(t *testing.T, p outPacket) string {
	t.Helper()
	frame := p.data
	prefix := ""
	if p.iface == UnderlayName {
		payload, src, dst, reason := parseOuter(frame)
		if reason != "" {
			t.Fatalf("underlay packet is not IP/UDP: %s", reason)
		}
		if src.Addr().Is4() {
			ip := frame[header.EthernetLen : header.EthernetLen+header.IPv4MinLen]
			if vxcapture.IPv4Checksum(ip) != 0 {
				t.Errorf("outer IPv4 header checksum does not verify: % x", ip)
			}
			if udp := header.UDP(frame[header.EthernetLen+header.IPv4MinLen:]); udp.Checksum() != 0 {
				t.Errorf("outer UDP checksum %#04x, want 0", udp.Checksum())
			}
		} else {
			// IPv6 requires the UDP checksum (RFC 8200 section 8.1).
			ip := header.IPv6(frame[header.EthernetLen:])
			udp := header.UDP(ip.Payload())
			if udp.Checksum() == 0 || !udp.VerifyChecksum(ip.PseudoSum(header.ProtoUDP, len(udp))) {
				t.Errorf("outer UDP checksum %#04x over IPv6 does not verify", udp.Checksum())
			}
		}
		vni, inner, err := decodeVXLAN(payload)
		if err != nil {
			t.Fatalf("underlay packet: %v", err)
		}
		prefix = fmt.Sprintf("%s > %s vni %d: ", src, dst, vni)
		frame = inner
	}
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("cannot decode the emitted frame: %v\n% x", el.Error(), frame)
	}
	if arp, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		if arp.Operation == layers.ARPRequest {
			return prefix + fmt.Sprintf("arp who-has %s tell %s", net.IP(arp.DstProtAddress), net.IP(arp.SourceProtAddress))
		}
		return prefix + fmt.Sprintf("arp reply %s is-at %s to %s", net.IP(arp.SourceProtAddress), net.HardwareAddr(arp.SourceHwAddress), net.HardwareAddr(arp.DstHwAddress))
	}
	if ip6, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		if icmp, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
			return prefix + fmt.Sprintf("icmp6 %s %s > %s", icmp.TypeCode, ip6.SrcIP, ip6.DstIP)
		}
		return prefix + "ipv6 other"
	}
	ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		return prefix + "other"
	}
	if icmp, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		switch icmp.TypeCode.Type() {
		case layers.ICMPv4TypeEchoRequest:
			return prefix + fmt.Sprintf("icmp echo-request %s > %s", ip.SrcIP, ip.DstIP)
		case layers.ICMPv4TypeEchoReply:
			return prefix + fmt.Sprintf("icmp echo-reply %s > %s", ip.SrcIP, ip.DstIP)
		case layers.ICMPv4TypeDestinationUnreachable:
			// RFC 1191: the next-hop MTU is the low 16 bits of the unused word.
			return prefix + fmt.Sprintf("icmp frag-needed mtu %d %s > %s", icmp.Seq, ip.SrcIP, ip.DstIP)
		}
	}
	if dnsLayer, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && dnsLayer.SrcPort == 53 {
		m := new(dns.Msg)
		if err := m.Unpack(dnsLayer.Payload); err != nil {
			t.Fatalf("DNS answer: %v", err)
		}
		var answers []string
		for _, rr := range m.Answer {
			if a, ok := rr.(*dns.A); ok {
				answers = append(answers, fmt.Sprintf("%s A %s", a.Hdr.Name, a.A))
			}
		}
		return prefix + fmt.Sprintf("dns answer id %#x %s", m.Id, strings.Join(answers, ", "))
	}
	return prefix + fmt.Sprintf("ipv4 %s > %s proto %d", ip.SrcIP, ip.DstIP, ip.Protocol)
}

// decodeVXLAN splits a VXLAN payload into VNI and inner frame, requiring
// the flags RFC 7348 requires.
func decodeVXLAN(b []byte) (uint32, []byte, error) {
	if len(b) < 8 || b[0] != 0x08 || b[1]|b[2]|b[3]|b[7] != 0 {
		return 0, nil, fmt.Errorf("bad VXLAN header % x", b[:min(8, len(b))])
	}
	return uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6]), b[8:], nil
}

// diffPackets tells how two output captures differ, packet by packet.
func diffPackets(t *testing.T, want, got []byte) string {
	w, g := readOutput(t, want), readOutput(t, got)
	var sb strings.Builder
	for i := range max(len(w), len(g)) {
		switch {
		case i >= len(w):
			fmt.Fprintf(&sb, "packet %d: extra on %s: % x\n", i+1, g[i].iface, g[i].data)
		case i >= len(g):
			fmt.Fprintf(&sb, "packet %d: missing on %s: % x\n", i+1, w[i].iface, w[i].data)
		case w[i].iface != g[i].iface || !bytes.Equal(w[i].data, g[i].data):
			fmt.Fprintf(&sb, "packet %d:\n got %s % x\nwant %s % x\n", i+1, g[i].iface, g[i].data, w[i].iface, w[i].data)
		}
	}
	if sb.Len() == 0 {
		return "same packets; the file headers differ"
	}
	return sb.String()
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./replay/ -update to create it)", err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

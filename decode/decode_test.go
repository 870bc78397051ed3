package decode

import (
	"bytes"
	"encoding/binary"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"vxswitch/header"
)

var update = flag.Bool("update", false, "rewrite testdata/decode/crafted.pcap and the .golden files")

// dir holds the input captures and the expected texts.
const dir = "../testdata/decode"

// goldens lists every capture with the options its golden text uses.
var goldens = []struct {
	file string
	opt  Options
}{
	{"kernel-vxlan.pcap", Options{}},
	{"kernel-vxlan.pcapng", Options{Hex: true}},
	{"crafted.pcap", Options{Hex: true, VXLANPort: 8472}},
}

func TestGolden(t *testing.T) {
	if *update {
		writeCrafted(t, filepath.Join(dir, "crafted.pcap"))
	}
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			got := decodeFile(t, g.file, g.opt)
			golden := filepath.Join(dir, g.file+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run 'go test ./decode/ -update' to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decode of %s differs from %s (run 'go test ./decode/ -update' if the change is intended):\n%s",
					g.file, golden, firstDiff(string(got), string(want)))
			}
		})
	}
}

// decodeFile runs Write on a testdata capture.
func decodeFile(t *testing.T, name string, opt Options) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	if err := Write(&out, f, opt); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return out.Bytes()
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n got:  " + gl + "\n want: " + wl
		}
	}
	return "(no line differs)"
}

// The same packets read from pcap and from pcapng must explain the same.
func TestPcapAndPcapngAgree(t *testing.T) {
	a := decodeFile(t, "kernel-vxlan.pcap", Options{})
	b := decodeFile(t, "kernel-vxlan.pcapng", Options{})
	if !bytes.Equal(a, b) {
		t.Errorf("pcap and pcapng decode differently:\n%s", firstDiff(string(b), string(a)))
	}
}

// The kernel capture shows what the kernel's vxlan device does.
func TestKernelCapture(t *testing.T) {
	out := string(decodeFile(t, "kernel-vxlan.pcap", Options{}))
	for _, want := range []string{
		"VNI 4242 (0x001092)",
		"I bit (0x08) is set",
		"reserved bits must be zero (RFC 7348 section 5): they are\n",
		"outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8 = 50 bytes around a 42-byte inner frame", // ARP
		"an inner IP packet of at most underlay MTU - 50 fits: 1450 on a 1500 underlay",
		"who has 10.42.0.2? tell 10.42.0.1",
		"type/code    8/0 (EchoRequest)",
		"flags        SYN\n",
		"partial checksum (offload)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("decode of the kernel capture lacks %q", want)
		}
	}
	if strings.Contains(out, "WARNING") || strings.Contains(out, "WRONG") {
		t.Errorf("the kernel capture decodes with warnings:\n%s", out)
	}
}

// The crafted capture shows every warning.
func TestCraftedCapture(t *testing.T) {
	tests := []struct {
		opt  Options
		want []string
		not  []string
	}{
		{
			opt: Options{VXLANPort: 8472},
			want: []string{
				"WARNING: reserved bits set: flag bits 0x84, bytes 1-3 = 00 01 00, byte 7 = 7f",
				"(0x80 is the G bit of the Group Policy extension",
				"I bit (0x08) is clear: the VNI field is NOT valid",
				"WARNING: I flag clear",
				"outer Ethernet 14 + IPv6 40 + UDP 8 + VXLAN 8 = 70 bytes",
				"underlay MTU - 70 fits: 1430 on a 1500 underlay",
				"question     db.web A",
				"VNI 11259375 (0xabcdef)",
				"partial checksum (offload)",
				"frame, VNI 300",
			},
		},
		{
			// Without the extra port, 8472 is plain UDP.
			opt:  Options{},
			want: []string{"VNI 100 (0x000064)"},
			not:  []string{"VNI 300"},
		},
	}
	for _, tt := range tests {
		out := string(decodeFile(t, "crafted.pcap", tt.opt))
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%+v: output lacks %q", tt.opt, w)
			}
		}
		for _, w := range tt.not {
			if strings.Contains(out, w) {
				t.Errorf("%+v: output has %q", tt.opt, w)
			}
		}
	}
}

// tshark, an independent dissector, must find the VNIs decode prints.
func TestTsharkAgrees(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		const msg = "tshark not installed: apt-get install tshark to cross-check the decoder"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: this check must run)")
		}
		t.Skip(msg)
	}
	vniLine := regexp.MustCompile(`(?m)^      bytes 4-6    VNI (\d+) `)
	for _, file := range []string{"kernel-vxlan.pcap", "kernel-vxlan.pcapng"} {
		var ours []string
		for _, m := range vniLine.FindAllStringSubmatch(string(decodeFile(t, file, Options{})), -1) {
			ours = append(ours, m[1])
		}
		out, err := exec.Command("tshark", "-r", filepath.Join(dir, file), "-T", "fields", "-e", "vxlan.vni").Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", file, err)
		}
		theirs := strings.Fields(string(out))
		if len(ours) == 0 || !slices.Equal(ours, theirs) {
			t.Errorf("%s: decode found VNIs %v, tshark %v", file, ours, theirs)
		}
	}
}

func TestChecksums(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"IPv4 header", []byte{
			0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
		}, true},
		{"IPv4 header, one bit flipped", []byte{
			0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc6,
		}, false},
		{"odd length", []byte{0xff, 0x00, 0x00}, false},
		{"odd length, last byte is the high half", []byte{0x00, 0xff, 0xff}, true},
	}
	for _, tt := range tests {
		if got := header.Sum(tt.b, 0) == 0xffff; got != tt.ok {
			t.Errorf("%s: verifies = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestTransportVerdict(t *testing.T) {
	ip := &layers.IPv4{SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
	// A UDP datagram 1000 -> 2000, length 9, payload "x".
	seg := []byte{0x03, 0xe8, 0x07, 0xd0, 0x00, 0x09, 0x00, 0x00, 'x'}
	pseudo := header.PseudoSum(net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, header.ProtoUDP, uint32(len(seg)))
	full := ^header.Sum(seg, pseudo)
	tests := []struct {
		name  string
		field uint16
		want  string
	}{
		{"complete", full, "verifies"},
		{"partial", pseudo, "partial checksum (offload)"},
		{"wrong", full ^ 1, "WRONG"},
	}
	p := &printer{}
	for _, tt := range tests {
		b := slices.Clone(seg)
		binary.BigEndian.PutUint16(b[6:], tt.field)
		if got := p.transportVerdict(ip, layers.IPProtocolUDP, b, tt.field); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: %q, want %q...", tt.name, got, tt.want)
		}
	}
	if got := p.transportVerdict(nil, layers.IPProtocolUDP, seg, 0); !strings.HasPrefix(got, "not verified") {
		t.Errorf("without IP: %q", got)
	}
}

// The outer UDP checksum of a real kernel packet (packet 5 of the kernel
// capture, a TCP SYN) verifies only with the inner checksum completed.
func TestLocalChecksumOffload(t *testing.T) {
	f, err := os.Open(filepath.Join(dir, "kernel-vxlan.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var pkt []byte
	for range 5 {
		if pkt, _, err = r.ReadPacketData(); err != nil {
			t.Fatal(err)
		}
	}
	ip := gopacket.NewPacket(pkt, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4)
	if ip == nil {
		t.Fatal("packet 5 has no IPv4 layer")
	}
	dgram := pkt[14+20:]
	if transportOK(net.IP{10, 77, 0, 1}, net.IP{10, 77, 0, 2}, layers.IPProtocolUDP, dgram) {
		t.Fatal("outer checksum verifies as captured: packet 5 is not the offload case this test needs")
	}
	tests := []struct {
		name string
		flip int // byte of dgram to change, -1 for none
		want bool
	}{
		{"as captured", -1, true},
		{"inner TTL changed", 8 + 8 + 14 + 8, false},
		{"VNI changed", 8 + 6, false},
	}
	for _, tt := range tests {
		b := slices.Clone(dgram)
		if tt.flip >= 0 {
			b[tt.flip] ^= 0x40
		}
		if got := lcoVerifies(ip, b); got != tt.want {
			t.Errorf("%s: lcoVerifies = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty input"},
		{"short", []byte{0xa1, 0xb2}, "too short"},
		{"text", []byte("hello world\n"), "not a pcap or pcapng file (starts with 0x68656c6c)"},
		{"pcap header cut", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0}, "read pcap header"},
	}
	for _, tt := range tests {
		err := Write(&bytes.Buffer{}, bytes.NewReader(tt.in), Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// FuzzWrite feeds arbitrary bytes as one Ethernet packet of a pcap file:
// the decoder must explain anything without panicking or failing.
func FuzzWrite(f *testing.F) {
	for _, p := range craftedPackets(f) {
		f.Add(p)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var file bytes.Buffer
		w := pcapgo.NewWriter(&file)
		if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(0, 0), CaptureLength: len(pkt), Length: len(pkt)}, pkt); err != nil {
			t.Fatal(err)
		}
		if err := Write(&bytes.Buffer{}, &file, Options{Hex: true, VXLANPort: 8472}); err != nil {
			t.Fatal(err)
		}
	})
}

// A capture of an IPv6-underlay lab ('vxswitch capture' on h1, shared with
// the replay tests) explains the outer IPv6 header and the 70-byte
// overhead, with the UDP checksum IPv6 requires verified.
func TestIPv6UnderlayCapture(t *testing.T) {
	f, err := os.Open("../testdata/replay/ipv6-underlay.in.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	if err := Write(&b, f, Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"type         0x86dd (IPv6)",
		"IPv6  bytes 14-53 (40)",
		"next header  17 (UDP)",
		"src          fd77::1",
		"dst          fd77::2",
		"(verifies)",
		"over IPv6 the UDP checksum is normally required (RFC 8200 section 8.1)",
		"outer Ethernet 14 + IPv6 40 + UDP 8 + VXLAN 8 = 70 bytes around a 142-byte inner frame",
		"an inner IP packet of at most underlay MTU - 70 fits: 1430 on a 1500 underlay",
		"VNI 100 (0x000064)",
		"type/code    8/0 (EchoRequest)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("decode of the IPv6-underlay capture lacks %q", want)
		}
	}
	if strings.Contains(out, "WARNING") || strings.Contains(out, "WRONG") {
		t.Errorf("the IPv6-underlay capture decodes with warnings:\n%s", out)
	}
}

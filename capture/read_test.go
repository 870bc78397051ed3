package capture

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// Capture files as bytes, block by block.
var (
	// pcap, little endian, microseconds, snap length 65535, Ethernet.
	pcapHeaderLE = []byte{
		0xd4, 0xc3, 0xb2, 0xa1, // magic
		0x02, 0x00, 0x04, 0x00, // version 2.4
		0x00, 0x00, 0x00, 0x00, // time zone
		0x00, 0x00, 0x00, 0x00, // timestamp accuracy
		0xff, 0xff, 0x00, 0x00, // snap length
		0x01, 0x00, 0x00, 0x00, // link type 1, Ethernet
	}
	// A record at 1700000000 s + 5 us, 4 bytes captured of 60.
	pcapRecordLE = []byte{
		0x00, 0xf1, 0x53, 0x65, // seconds
		0x05, 0x00, 0x00, 0x00, // microseconds
		0x04, 0x00, 0x00, 0x00, // captured length
		0x3c, 0x00, 0x00, 0x00, // original length
		0xde, 0xad, 0xbe, 0xef,
	}
	// pcap, big endian, nanoseconds, snap length 65535, raw IP.
	pcapHeaderBENano = []byte{
		0xa1, 0xb2, 0x3c, 0x4d, // magic
		0x00, 0x02, 0x00, 0x04, // version 2.4
		0x00, 0x00, 0x00, 0x00, // time zone
		0x00, 0x00, 0x00, 0x00, // timestamp accuracy
		0x00, 0x00, 0xff, 0xff, // snap length
		0x00, 0x00, 0x00, 0x65, // link type 101, raw IP
	}
	// A record at 1700000000 s + 7 ns, 2 bytes.
	pcapRecordBENano = []byte{
		0x65, 0x53, 0xf1, 0x00, // seconds
		0x00, 0x00, 0x00, 0x07, // nanoseconds
		0x00, 0x00, 0x00, 0x02, // captured length
		0x00, 0x00, 0x00, 0x02, // original length
		0x45, 0x00,
	}
	// pcapng section header block, little endian, no options.
	ngSection = []byte{
		0x0a, 0x0d, 0x0d, 0x0a, // block type
		0x1c, 0x00, 0x00, 0x00, // block length 28
		0x4d, 0x3c, 0x2b, 0x1a, // byte-order magic
		0x01, 0x00, 0x00, 0x00, // version 1.0
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length unknown
		0x1c, 0x00, 0x00, 0x00, // block length again
	}
	// Interface 0: Ethernet, named "eth0", microsecond timestamps.
	ngIfaceEth0 = []byte{
		0x01, 0x00, 0x00, 0x00, // block type: interface description
		0x20, 0x00, 0x00, 0x00, // block length 32
		0x01, 0x00, 0x00, 0x00, // link type 1, Ethernet; reserved
		0x00, 0x00, 0x04, 0x00, // snap length 262144
		0x02, 0x00, 0x04, 0x00, 'e', 't', 'h', '0', // if_name
		0x00, 0x00, 0x00, 0x00, // end of options
		0x20, 0x00, 0x00, 0x00, // block length again
	}
	// Interface 1: raw IP, named "tun0".
	ngIfaceTun0 = []byte{
		0x01, 0x00, 0x00, 0x00,
		0x20, 0x00, 0x00, 0x00,
		0x65, 0x00, 0x00, 0x00, // link type 101, raw IP; reserved
		0x00, 0x00, 0x04, 0x00,
		0x02, 0x00, 0x04, 0x00, 't', 'u', 'n', '0',
		0x00, 0x00, 0x00, 0x00,
		0x20, 0x00, 0x00, 0x00,
	}
	// An enhanced packet block on interface 1 at 1700000000 s + 5 us,
	// 4 bytes captured of 60.
	ngPacketTun0 = []byte{
		0x06, 0x00, 0x00, 0x00, // block type: enhanced packet
		0x24, 0x00, 0x00, 0x00, // block length 36
		0x01, 0x00, 0x00, 0x00, // interface 1
		0x24, 0x0a, 0x06, 0x00, // timestamp, high 32 bits
		0x05, 0x40, 0x1e, 0x18, // timestamp, low 32 bits
		0x04, 0x00, 0x00, 0x00, // captured length
		0x3c, 0x00, 0x00, 0x00, // original length
		0x45, 0x00, 0x00, 0x3c,
		0x24, 0x00, 0x00, 0x00, // block length again
	}
)

// readPacket is what a test expects of one packet.
type readPacket struct {
	data       []byte
	ts         time.Time
	capLen     int
	length     int
	linkType   layers.LinkType
	iface      string
	ifaceIndex int
}

func TestOpenReader(t *testing.T) {
	ts := time.Unix(1_700_000_000, 5_000).UTC()
	tests := []struct {
		name    string
		in      []byte
		pcapng  bool
		want    []readPacket
		openErr string // part of OpenReader's error, "" when it must succeed
		readErr bool   // ReadPacket fails after the packets of want
	}{
		{
			name: "pcap",
			in:   slices.Concat(pcapHeaderLE, pcapRecordLE),
			want: []readPacket{{[]byte{0xde, 0xad, 0xbe, 0xef}, ts, 4, 60, layers.LinkTypeEthernet, "", 0}},
		},
		{
			name: "pcap big endian nanoseconds",
			in:   slices.Concat(pcapHeaderBENano, pcapRecordBENano),
			want: []readPacket{{[]byte{0x45, 0x00}, time.Unix(1_700_000_000, 7).UTC(), 2, 2, layers.LinkTypeRaw, "", 0}},
		},
		{
			name: "pcap without packets",
			in:   pcapHeaderLE,
		},
		{
			name:    "pcap record cut short",
			in:      slices.Concat(pcapHeaderLE, pcapRecordLE[:18]),
			readErr: true,
		},
		{
			// The packet is on the second interface, whose link type
			// differs from the first: it is read, with its own.
			name:   "pcapng",
			in:     slices.Concat(ngSection, ngIfaceEth0, ngIfaceTun0, ngPacketTun0),
			pcapng: true,
			want:   []readPacket{{[]byte{0x45, 0x00, 0x00, 0x3c}, ts, 4, 60, layers.LinkTypeRaw, "tun0", 1}},
		},
		{
			// gopacket v1.1.19 ends a pcapng file cut inside a block
			// with a plain io.EOF, as if the file were whole: the
			// packets before the cut are all read.
			name:   "pcapng packet cut short",
			in:     slices.Concat(ngSection, ngIfaceEth0, ngIfaceTun0, ngPacketTun0, ngPacketTun0[:30]),
			pcapng: true,
			want:   []readPacket{{[]byte{0x45, 0x00, 0x00, 0x3c}, ts, 4, 60, layers.LinkTypeRaw, "tun0", 1}},
		},
		{name: "empty", in: nil, openErr: "capture: empty input: give a pcap or pcapng file"},
		{name: "short", in: []byte{0xa1, 0xb2}, openErr: "capture: input is 2 bytes, too short for a capture file header"},
		{name: "garbage", in: []byte("hello world\n"), openErr: "capture: not a pcap or pcapng file (starts with 0x68656c6c): give a capture written by"},
		{name: "pcap header cut", in: pcapHeaderLE[:10], openErr: "capture: read pcap header"},
		{name: "pcapng header cut", in: ngSection[:20], openErr: "capture: read pcapng header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := OpenReader(bytes.NewReader(tt.in))
			if tt.openErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.openErr) {
					t.Fatalf("OpenReader: error %v, want one containing %q", err, tt.openErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenReader: %v", err)
			}
			if r.Pcapng() != tt.pcapng {
				t.Errorf("Pcapng() = %v, want %v", r.Pcapng(), tt.pcapng)
			}
			for i, w := range tt.want {
				p, err := r.ReadPacket()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				got := readPacket{p.Data, p.Info.Timestamp, p.Info.CaptureLength, p.Info.Length, p.LinkType, p.Interface, p.Info.InterfaceIndex}
				if !bytes.Equal(got.data, w.data) || !got.ts.Equal(w.ts) || got.capLen != w.capLen || got.length != w.length ||
					got.linkType != w.linkType || got.iface != w.iface || got.ifaceIndex != w.ifaceIndex {
					t.Errorf("packet %d = %+v, want %+v", i, got, w)
				}
			}
			_, err = r.ReadPacket()
			switch {
			case tt.readErr && (err == nil || errors.Is(err, io.EOF)):
				t.Errorf("after the packets: error %v, want one for a damaged file", err)
			case !tt.readErr && !errors.Is(err, io.EOF):
				t.Errorf("after the packets: error %v, want io.EOF", err)
			}
		})
	}
}

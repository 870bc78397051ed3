package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Magic numbers at the start of a capture file, read as big endian.
const (
	magicPcap        = 0xa1b2c3d4 // pcap, microsecond timestamps
	magicPcapSwapped = 0xd4c3b2a1 // the same, written on a little-endian machine
	magicPcapNano    = 0xa1b23c4d // pcap, nanosecond timestamps
	magicPcapNanoSw  = 0x4d3cb2a1 // the same, written on a little-endian machine
	magicPcapng      = 0x0a0d0d0a // pcapng section header block, either byte order
)

// Packet is one packet read from a capture file. The zero value is an
// empty packet with an unknown link type.
type Packet struct {
	// Data holds the captured bytes, starting with the link-layer header
	// named by LinkType. It is a new slice for every packet: the caller
	// may keep it.
	Data []byte
	// Info holds the timestamp, the captured and original lengths and, in
	// pcapng, the index of the capture interface.
	Info gopacket.CaptureInfo
	// LinkType is the link layer Data starts with: the file's in pcap, the
	// capture interface's in pcapng (where interfaces may differ).
	LinkType layers.LinkType
	// Interface is the name of the capture interface in pcapng (its
	// if_name option). It is "" in pcap, which has no interfaces, and for a
	// pcapng interface that has no name.
	Interface string
}

// Reader reads the packets of a pcap or pcapng file; OpenReader tells the
// two formats apart by the magic number at the start of the file. The zero
// value is not usable: call OpenReader. A Reader is not safe for concurrent
// use.
type Reader struct {
	pcap *pcapgo.Reader   // set for a pcap file
	ng   *pcapgo.NgReader // set for a pcapng file
}

// OpenReader reads the file header of the pcap or pcapng file in r and
// returns a Reader for its packets. Its errors say what is wrong with the
// input and what to give instead.
func OpenReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(4)
	if len(head) == 0 {
		return nil, fmt.Errorf("capture: empty input: give a pcap or pcapng file (tcpdump -w FILE writes one)")
	}
	if err != nil {
		return nil, fmt.Errorf("capture: input is %d bytes, too short for a capture file header: give a whole pcap or pcapng file", len(head))
	}
	switch magic := binary.BigEndian.Uint32(head); magic {
	case magicPcap, magicPcapSwapped, magicPcapNano, magicPcapNanoSw:
		rd, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("capture: read pcap header: %w: the file is cut short or damaged", err)
		}
		return &Reader{pcap: rd}, nil
	case magicPcapng:
		// Mixed link types: every packet is read and carries the link
		// type of its own interface, instead of gopacket's default of
		// silently skipping packets whose interface differs from the
		// first one.
		rd, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("capture: read pcapng header: %w: the file is cut short or damaged", err)
		}
		return &Reader{ng: rd}, nil
	default:
		return nil, fmt.Errorf("capture: not a pcap or pcapng file (starts with 0x%08x): give a capture written by tcpdump -w, tshark -w, dumpcap or vxswitch capture", magic)
	}
}

// Pcapng reports whether the file is pcapng, whose packets each name their
// capture interface, rather than pcap, whose packets share one link type
// and have no interface.
func (r *Reader) Pcapng() bool {
	return r.ng != nil
}

// ReadPacket returns the next packet, or io.EOF after the last one. Other
// errors mean the file is damaged or cut short; a pcapng file cut inside a
// block, though, ends with io.EOF like a whole one (gopacket v1.1.19 does
// not tell the two apart).
func (r *Reader) ReadPacket() (Packet, error) {
	if r.pcap != nil {
		data, ci, err := r.pcap.ReadPacketData()
		if err != nil {
			return Packet{}, err
		}
		return Packet{Data: data, Info: ci, LinkType: r.pcap.LinkType()}, nil
	}
	data, ci, err := r.ng.ReadPacketData()
	if err != nil {
		return Packet{}, err
	}
	// The NgReader has just checked that the packet's interface exists.
	intf, err := r.ng.Interface(ci.InterfaceIndex)
	if err != nil {
		return Packet{}, fmt.Errorf("capture: packet on interface %d: %w", ci.InterfaceIndex, err)
	}
	return Packet{Data: data, Info: ci, LinkType: intf.LinkType, Interface: intf.Name}, nil
}

package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// pcapng block and option codes used here (draft-ietf-opsawg-pcapng,
// sections 4.3 and 3.5).
const (
	blockEPB      = 6 // Enhanced Packet Block
	optEndOfOpt   = 0
	optComment    = 1
	epbFixedLen   = 28 // type, length, interface, ts high, ts low, caplen, len
	blockTrailing = 4  // the repeated block length
)

// UnderlayName is the name of the capture interface that holds the packets
// of the underlay (outer Ethernet/IPv4/UDP/VXLAN).
const UnderlayName = "underlay"

// Writer writes a pcapng stream whose packets may carry a comment.
//
// google/gopacket v1.1.19's pcapgo.NgWriter writes the section header and
// the interface descriptions but has no per-packet options, so Writer lets
// it write those blocks and writes each Enhanced Packet Block itself, with
// an opt_comment option. Both use little-endian byte order and nanosecond
// timestamps. Every block reaches the underlying writer in one Write call.
// A Writer is not safe for concurrent use; the zero value is not usable.
type Writer struct {
	w      io.Writer
	ng     *pcapgo.NgWriter
	byName map[string]int
	buf    []byte
}

// NewWriter writes the section header (naming application) and the
// interface "underlay", with index 0, to w.
func NewWriter(w io.Writer, application, underlayDescription string) (*Writer, error) {
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: application}}
	ng, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name: UnderlayName, Description: underlayDescription,
		LinkType: layers.LinkTypeEthernet, TimestampResolution: 9,
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("capture: write pcapng section header: %w", err)
	}
	if err := ng.Flush(); err != nil {
		return nil, fmt.Errorf("capture: write pcapng section header: %w", err)
	}
	return &Writer{w: w, ng: ng, byName: map[string]int{UnderlayName: 0}}, nil
}

// Interface returns the index of the Ethernet interface called name,
// writing its description block first if it is new.
func (w *Writer) Interface(name, description string) (int, error) {
	if i, ok := w.byName[name]; ok {
		return i, nil
	}
	i, err := w.ng.AddInterface(pcapgo.NgInterface{
		Name: name, Description: description,
		LinkType: layers.LinkTypeEthernet, TimestampResolution: 9,
	})
	if err == nil {
		err = w.ng.Flush()
	}
	if err != nil {
		return 0, fmt.Errorf("capture: write pcapng interface %q: %w", name, err)
	}
	w.byName[name] = i
	return i, nil
}

// WritePacket writes data as captured on interface intf at ts, with
// comment as its opt_comment option unless comment is empty.
func (w *Writer) WritePacket(intf int, ts time.Time, data []byte, comment string) error {
	if intf < 0 || intf >= len(w.byName) {
		return fmt.Errorf("capture: write packet: no interface %d", intf)
	}
	optLen := 0
	if comment != "" {
		if len(comment) > 0xffff {
			return errors.New("capture: write packet: comment longer than 65535 bytes")
		}
		optLen = 4 + pad4(len(comment)) + 4 // the comment, then opt_endofopt
	}
	total := epbFixedLen + pad4(len(data)) + optLen + blockTrailing
	b := w.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, blockEPB)
	b = binary.LittleEndian.AppendUint32(b, uint32(total))
	b = binary.LittleEndian.AppendUint32(b, uint32(intf))
	ns := uint64(ts.UnixNano())
	b = binary.LittleEndian.AppendUint32(b, uint32(ns>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ns))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = appendPadded(b, data)
	if comment != "" {
		b = binary.LittleEndian.AppendUint16(b, optComment)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(comment)))
		b = appendPadded(b, []byte(comment))
		b = binary.LittleEndian.AppendUint32(b, optEndOfOpt) // code 0, length 0
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(total))
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("capture: write packet: %w", err)
	}
	return nil
}

// pad4 returns n rounded up to a multiple of 4 (pcapng aligns every field
// to 32 bits).
func pad4(n int) int { return (n + 3) &^ 3 }

// appendPadded appends v and zero bytes up to a multiple of 4.
func appendPadded(b, v []byte) []byte {
	b = append(b, v...)
	for range pad4(len(v)) - len(v) {
		b = append(b, 0)
	}
	return b
}

// CopyBlocks copies the pcapng stream r to w one whole block at a time, so
// that when r ends early (the capture was interrupted) w still holds a
// well-formed file. It returns nil when r ends at a block boundary; a
// stream cut inside a block returns io.ErrUnexpectedEOF after the whole
// blocks before it were written. Only little-endian streams (as Writer
// makes) are understood.
func CopyBlocks(w io.Writer, r io.Reader) error {
	var head [8]byte
	var block []byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		n := int(binary.LittleEndian.Uint32(head[4:8]))
		if n < 12 || n%4 != 0 || n > 1<<26 {
			return fmt.Errorf("capture: pcapng block of %d bytes: not a little-endian pcapng stream", n)
		}
		if cap(block) < n {
			block = make([]byte, n)
		}
		block = block[:n]
		copy(block, head[:])
		if _, err := io.ReadFull(r, block[8:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if _, err := w.Write(block); err != nil {
			return fmt.Errorf("capture: write: %w", err)
		}
	}
}

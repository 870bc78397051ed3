package header

import "encoding/binary"

// TCP header values (RFC 9293 section 3.1).
const (
	// TCPMinLen is the length of a TCP header without options.
	TCPMinLen = 20

	// Flags in byte 13 (RFC 9293 section 3.1, RFC 3168 for ECE and CWR).
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80

	// Option kinds (RFC 9293 section 3.2).
	TCPOptionEnd = 0 // end of option list
	TCPOptionNOP = 1 // no-operation
	TCPOptionMSS = 2 // maximum segment size, length 4
)

// TCP is a TCP header (RFC 9293 section 3.1) viewed in place over the
// start of a segment:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The fixed-field accessors assume TCPMinLen bytes; Options, Payload and
// the option lookups assume IsValid. Each panics on a shorter slice. A nil
// TCP is not valid. The view has no locking: the caller owns the bytes.
type TCP []byte

// IsValid reports whether t holds a whole TCP header: TCPMinLen bytes, and
// a data offset of at least TCPMinLen that fits in t.
func (t TCP) IsValid() bool {
	if len(t) < TCPMinLen {
		return false
	}
	n := t.HeaderLen()
	return n >= TCPMinLen && n <= len(t)
}

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[0:2]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[2:4]) }

// Seq returns the sequence number.
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t[4:8]) }

// Ack returns the acknowledgment number.
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t[8:12]) }

// HeaderLen returns the header length in bytes: the data offset times 4.
func (t TCP) HeaderLen() int { return int(t[12]>>4) * 4 }

// Reserved returns the four reserved bits between the data offset and the
// flags (the low half of byte 12, RFC 9293 section 3.1); a sender sets
// them to zero.
func (t TCP) Reserved() uint8 { return t[12] & 0x0f }

// Flags returns the flags byte (TCPFlagFIN ... TCPFlagCWR).
func (t TCP) Flags() uint8 { return t[13] }

// Window returns the window.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[14:16]) }

// Checksum returns the Checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[16:18]) }

// UrgentPointer returns the urgent pointer.
func (t TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(t[18:20]) }

// Options returns the options between the fixed header and HeaderLen.
func (t TCP) Options() []byte { return t[TCPMinLen:t.HeaderLen()] }

// Payload returns the data after the header: the rest of t.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }

// SetSrcPort stores the source port.
func (t TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(t[0:2], p) }

// SetDstPort stores the destination port.
func (t TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(t[2:4], p) }

// SetSeq stores the sequence number.
func (t TCP) SetSeq(n uint32) { binary.BigEndian.PutUint32(t[4:8], n) }

// SetAck stores the acknowledgment number.
func (t TCP) SetAck(n uint32) { binary.BigEndian.PutUint32(t[8:12], n) }

// SetHeaderLen stores n/4 as the data offset and leaves the low four bits
// of byte 12 alone. n is a multiple of 4 from TCPMinLen to 60.
func (t TCP) SetHeaderLen(n int) { t[12] = uint8(n/4)<<4 | t[12]&0x0f }

// SetFlags stores the flags byte.
func (t TCP) SetFlags(f uint8) { t[13] = f }

// SetWindow stores the window.
func (t TCP) SetWindow(w uint16) { binary.BigEndian.PutUint16(t[14:16], w) }

// SetChecksum stores the Checksum field.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[16:18], c) }

// SetUrgentPointer stores the urgent pointer.
func (t TCP) SetUrgentPointer(p uint16) { binary.BigEndian.PutUint16(t[18:20], p) }

// ComputeChecksum returns the checksum t should carry when t is the whole
// segment and pseudo its pseudo-header sum (IPv4.PseudoSum or
// IPv6.PseudoSum with ProtoTCP and len(t)): the complement of the sum,
// the checksum field counted as zero. It does not change t.
func (t TCP) ComputeChecksum(pseudo uint16) uint16 {
	return ^Sum(t[18:], Sum(t[0:16], pseudo))
}

// VerifyChecksum reports whether the checksum of t, the whole segment with
// pseudo-header sum pseudo, is correct.
func (t TCP) VerifyChecksum(pseudo uint16) bool { return Sum(t, pseudo) == 0xffff }

// OptionOffset returns the offset in t of the first option of the given
// kind whose length byte is want, or ok false. It walks the options (RFC
// 9293 section 3.2): End of Option List stops the walk, No-Operation is one
// byte, every other option has a length byte of at least 2 that must fit
// in the header; a malformed option ends the walk with ok false. An option
// of the right kind but another length is stepped over. It assumes
// IsValid and never allocates.
func (t TCP) OptionOffset(kind, want uint8) (off int, ok bool) {
	opts := t.Options()
	for i := 0; i < len(opts); {
		switch opts[i] {
		case TCPOptionEnd:
			return 0, false
		case TCPOptionNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return 0, false
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return 0, false
		}
		if opts[i] == kind && opts[i+1] == want {
			return TCPMinLen + i, true
		}
		i += n
	}
	return 0, false
}

// MSSOffset returns the offset in t of the 2-byte value of the Maximum
// Segment Size option (kind 2, length 4; RFC 9293 section 3.7.1), or ok
// false when there is no well-formed one. It assumes IsValid.
func (t TCP) MSSOffset() (off int, ok bool) {
	at, ok := t.OptionOffset(TCPOptionMSS, 4)
	if !ok {
		return 0, false
	}
	return at + 2, true
}

// MSS returns the value of the Maximum Segment Size option, or ok false
// when there is none. It assumes IsValid.
func (t TCP) MSS() (mss uint16, ok bool) {
	at, ok := t.MSSOffset()
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint16(t[at:]), true
}

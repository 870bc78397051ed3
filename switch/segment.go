package vswitch

import (
	"vxswitch/header"
	"vxswitch/tap"
)

// tcpHeaders describes the headers of an Ethernet frame that carries TCP
// over IPv4 or IPv6: the offset of the IP header (l3), of the TCP header
// (l4) and of the payload (end).
type tcpHeaders struct {
	v6          bool
	l3, l4, end int
}

// parseTCP finds the headers of a TCP frame: Ethernet (one 802.1Q tag at
// most), IPv4 that is not a fragment or IPv6 without extension headers, and
// TCP. It does not look at lengths in the IP header, so it also works on a
// TSO super-frame. ok is false for anything else.
func parseTCP(frame []byte) (h tcpHeaders, ok bool) {
	eth := header.Ethernet(frame)
	if !eth.IsValid() {
		return h, false
	}
	h.l3 = eth.HeaderLen()
	switch eth.Type() {
	case header.EtherTypeIPv4:
		ip := header.IPv4(frame[h.l3:])
		if !ip.IsHeaderValid() || ip.Protocol() != header.ProtoTCP || ip.IsFragment() {
			return h, false
		}
		h.l4 = h.l3 + ip.HeaderLen()
	case header.EtherTypeIPv6:
		ip := header.IPv6(frame[h.l3:])
		if !ip.IsHeaderValid() || ip.NextHeader() != header.ProtoTCP {
			return h, false
		}
		h.v6 = true
		h.l4 = h.l3 + header.IPv6Len
	default:
		return h, false
	}
	tcp := header.TCP(frame[h.l4:])
	if !tcp.IsValid() {
		return h, false
	}
	h.end = h.l4 + tcp.HeaderLen()
	return h, true
}

// tcpPseudoSum returns the folded, not complemented, sum of the TCP
// pseudo-header (RFC 9293 section 3.1, RFC 8200 section 8.1) of the frame
// whose headers are h, for a TCP segment of tcpLen bytes.
func tcpPseudoSum(frame []byte, h tcpHeaders, tcpLen int) uint16 {
	if h.v6 {
		return header.IPv6(frame[h.l3:]).PseudoSum(header.ProtoTCP, tcpLen)
	}
	return header.IPv4(frame[h.l3:]).PseudoSum(header.ProtoTCP, tcpLen)
}

// setIPLength stores the length of an IP packet of total bytes (IP header
// included) in the IP header of frame, and for IPv4 redoes the header
// checksum.
func setIPLength(frame []byte, h tcpHeaders, total int) {
	if h.v6 {
		header.IPv6(frame[h.l3:]).SetPayloadLength(uint16(total - header.IPv6Len))
		return
	}
	ip := header.IPv4(frame[h.l3:h.l4])
	ip.SetTotalLength(uint16(total))
	ip.UpdateChecksum()
}

// segmentTCP cuts the TCP super-frame (a TSO frame read from a TAP) into
// frames of at most mss payload bytes, as the NIC would (RFC 9293 section
// 3.8.6.2.1 on segment sizes): each gets the headers of the original with
// its own IP length (and IPv4 identification +1 per segment, header
// checksum redone), its own sequence number and a complete TCP checksum;
// FIN and PSH stay only on the last segment, CWR only on the first.
//
// Segment i is written to dst[i*stride+pre:], so pre bytes of headroom
// precede every frame and the frames lie stride bytes apart; with pre the
// VXLAN header length, dst then holds back-to-back VXLAN datagrams of
// stride bytes (the last may be shorter), ready for one UDP GSO send.
// It returns stride and the number of segments; count is 0, and dst is
// untouched, when the frame is not TCP, mss is 0 or dst is too small.
func segmentTCP(dst, frame []byte, mss, pre int) (stride, count int) {
	h, ok := parseTCP(frame)
	if !ok || mss <= 0 {
		return 0, 0
	}
	payload := frame[h.end:]
	if len(payload) == 0 {
		return 0, 0
	}
	count = (len(payload) + mss - 1) / mss
	stride = pre + h.end + mss
	if (count-1)*stride+pre+h.end+len(payload)-(count-1)*mss > len(dst) {
		return 0, 0
	}
	first := header.TCP(frame[h.l4:])
	id, seq, flags := header.IPv4(frame[h.l3:]).ID(), first.Seq(), first.Flags()
	for i := range count {
		chunk := payload[i*mss : min((i+1)*mss, len(payload))]
		f := dst[i*stride+pre : i*stride+pre+h.end+len(chunk)]
		copy(f, frame[:h.end])
		copy(f[h.end:], chunk)
		if !h.v6 {
			header.IPv4(f[h.l3:]).SetID(id + uint16(i))
		}
		setIPLength(f, h, len(f)-h.l3)
		tcp := header.TCP(f[h.l4:])
		tcp.SetSeq(seq + uint32(i*mss))
		fl := flags
		if i != count-1 {
			fl &^= header.TCPFlagFIN | header.TCPFlagPSH
		}
		if i != 0 {
			fl &^= header.TCPFlagCWR
		}
		tcp.SetFlags(fl)
		tcp.SetChecksum(tcp.ComputeChecksum(tcpPseudoSum(f, h, len(tcp))))
	}
	return stride, count
}

// tcpRun is a coalescing run: consecutive TCP segments of one flow, in
// order, arriving from the underlay for one local port, joined in place in
// a receive buffer into one super-frame that is written to the port with a
// vnet header asking for segmentation (the reverse of segmentTCP, the way
// Linux GRO joins segments).
//
// The run's frame is buf[start:end]; its headers are those of the first
// segment, and the payload of every later segment is moved to follow the
// previous one. VnetHdrLen bytes in front of start must be free for the
// vnet header. The zero value is an empty run.
type tcpRun struct {
	q          *port
	start, end int
	h          tcpHeaders
	mss        int    // payload length of the first segment
	next       uint32 // sequence number the next segment must have
	flags      byte   // TCP flags of the first segment, without PSH
	psh        bool   // some segment had PSH: the run is closed
	full       bool   // every segment so far had mss bytes
	n          int    // number of segments
}

// maxRunIP is the largest IP packet a run may grow to: IP length fields are
// 16 bits.
const maxRunIP = 65535

// startRun makes frame, at buf[at:], the first segment of r for port q.
// It reports false, leaving r empty, when frame cannot be coalesced: not
// TCP, no payload, lengths that disagree with the frame, or flags other
// than ACK and PSH.
func (r *tcpRun) startRun(q *port, buf []byte, at int, frame []byte) bool {
	h, ok := parseTCP(frame)
	if !ok || !ipLengthMatches(frame, h) {
		return false
	}
	tcp := header.TCP(frame[h.l4:])
	flags := tcp.Flags()
	if flags&^header.TCPFlagPSH != header.TCPFlagACK || len(frame) == h.end {
		return false
	}
	*r = tcpRun{
		q: q, start: at, end: at + len(frame), h: h,
		mss:   len(frame) - h.end,
		next:  tcp.Seq() + uint32(len(frame)-h.end),
		flags: flags &^ header.TCPFlagPSH,
		psh:   flags&header.TCPFlagPSH != 0,
		full:  true,
		n:     1,
	}
	return true
}

// ipLengthMatches reports whether the IP length of frame says the packet
// ends where the frame ends (no Ethernet padding, nothing cut off).
func ipLengthMatches(frame []byte, h tcpHeaders) bool {
	if h.v6 {
		return header.IPv6Len+int(header.IPv6(frame[h.l3:]).PayloadLength()) == len(frame)-h.l3
	}
	return int(header.IPv4(frame[h.l3:]).TotalLength()) == len(frame)-h.l3
}

// tryAppend joins frame (a later segment in the same buffer, at or after
// r.end) to the run and reports whether it did. It joins only the next
// segment in sequence of the same flow: identical Ethernet, IP and TCP
// headers except IP identification, lengths and checksums, sequence number
// and PSH; no more payload than the first segment, and only while every
// earlier one was full and none had PSH.
func (r *tcpRun) tryAppend(buf []byte, frame []byte) bool {
	if r.n == 0 || r.psh || !r.full || len(frame) <= r.h.end {
		return false
	}
	h := r.h
	first := buf[r.start : r.start+h.end]
	p := len(frame) - h.end
	if p > r.mss || r.end-r.start-h.l3+p > maxRunIP || !ipLengthMatches(frame, h) {
		return false
	}
	if string(frame[:h.l3]) != string(first[:h.l3]) { // Ethernet header, tag
		return false
	}
	if !sameIPHeader(frame[h.l3:h.l4], first[h.l3:h.l4], h.v6) {
		return false
	}
	tcp, ftcp := header.TCP(frame[h.l4:h.end]), header.TCP(first[h.l4:h.end])
	if tcp.HeaderLen() != ftcp.HeaderLen() || tcp.SrcPort() != ftcp.SrcPort() || tcp.DstPort() != ftcp.DstPort() ||
		tcp.Ack() != ftcp.Ack() || tcp.Reserved() != ftcp.Reserved() || string(tcp.Options()) != string(ftcp.Options()) {
		return false
	}
	if tcp.Flags()&^header.TCPFlagPSH != r.flags || tcp.Seq() != r.next {
		return false
	}
	r.psh = tcp.Flags()&header.TCPFlagPSH != 0
	r.next += uint32(p)
	r.n++
	r.full = p == r.mss
	// The payload moves down to follow the run; it may overwrite this
	// segment's own headers, which are not looked at again.
	r.end += copy(buf[r.end:], frame[h.end:])
	return true
}

// finish turns the run into one packet for a vnet TAP and returns it: the
// vnet header at buf[r.start-VnetHdrLen:r.start], then the frame. A run of
// one segment goes as a plain frame (a zero header); a longer one gets its
// IP length redone, PSH if any segment had it, the TCP checksum field set
// to the pseudo-header sum and a header asking the kernel to segment at
// mss and complete the checksum (NEEDS_CSUM, GSO TCPv4 or TCPv6).
func (r *tcpRun) finish(buf []byte) []byte {
	pkt := buf[r.start-tap.VnetHdrLen : r.end]
	if r.n == 1 {
		tap.VnetHdr{}.Encode(pkt)
		return pkt
	}
	frame := pkt[tap.VnetHdrLen:]
	h := r.h
	setIPLength(frame, h, len(frame)-h.l3)
	tcp := header.TCP(frame[h.l4:])
	if r.psh {
		tcp.SetFlags(tcp.Flags() | header.TCPFlagPSH)
	}
	tcp.SetChecksum(tcpPseudoSum(frame, h, len(tcp)))
	gso := uint8(tap.VnetGSOTCPv4)
	if h.v6 {
		gso = tap.VnetGSOTCPv6
	}
	tap.VnetHdr{
		Flags:      tap.VnetNeedsCsum,
		GSOType:    gso,
		HdrLen:     uint16(h.end),
		GSOSize:    uint16(r.mss),
		CsumStart:  uint16(h.l4),
		CsumOffset: 16,
	}.Encode(pkt)
	return pkt
}

// sameIPHeader reports whether the IP headers ip and fip (IPv6 when v6) of
// two TCP segments are the same but for the fields that differ between
// segments of one flow: identification, lengths and checksum.
func sameIPHeader(ip, fip []byte, v6 bool) bool {
	if v6 {
		a, b := header.IPv6(ip), header.IPv6(fip)
		return a.Version() == b.Version() && a.TrafficClass() == b.TrafficClass() && a.FlowLabel() == b.FlowLabel() &&
			a.NextHeader() == b.NextHeader() && a.HopLimit() == b.HopLimit() &&
			a.Source() == b.Source() && a.Destination() == b.Destination()
	}
	a, b := header.IPv4(ip), header.IPv4(fip)
	return a.Version() == b.Version() && a.HeaderLen() == b.HeaderLen() && a.TOS() == b.TOS() &&
		a.FlagsFragment() == b.FlagsFragment() && a.TTL() == b.TTL() && a.Protocol() == b.Protocol() &&
		a.Source() == b.Source() && a.Destination() == b.Destination() && string(a.Options()) == string(b.Options())
}

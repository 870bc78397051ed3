package decode

import (
	"encoding/binary"

	"vxswitch/esp"
)

// isESP reports whether a UDP datagram with these ports is ESP in UDP
// (RFC 3948: port 4500 both ways, as the encrypted networks of vxswitch
// send it).
func isESP(src, dst uint16) bool { return dst == esp.Port || src == esp.Port }

// espInUDP explains the payload b of a UDP datagram on port 4500 (at byte
// off of the packet): a NAT keepalive, an IKE packet (non-ESP marker), or
// an ESP packet of an encrypted network, whose header, IV and ICV it
// names (RFC 4303 section 2, RFC 4106 section 3) and whose encrypted part
// it cannot read without the SA's key.
func (p *printer) espInUDP(b []byte, off int) {
	switch {
	case len(b) == 1 && b[0] == 0xff:
		p.heading("NAT keepalive", off, 1)
		p.note("one byte 0xff on port 4500: a NAT keepalive (RFC 3948 section 2.2), not ESP")
		return
	case len(b) >= 4 && binary.BigEndian.Uint32(b) == 0:
		p.heading("IKE (non-ESP marker)", off, len(b))
		p.note("four zero bytes on port 4500 mark IKE, not ESP (RFC 3948 section 2.2)")
		return
	case len(b) < esp.Headroom+esp.TrailerLen+esp.ICVLen:
		p.heading("ESP", off, len(b))
		p.note("WARNING: only %d bytes: ESP header, IV, trailer and ICV take %d; vxswitch drops it (\"short\")", len(b), esp.Headroom+esp.TrailerLen+esp.ICVLen)
		return
	}
	p.heading("ESP", off, esp.HeaderLen)
	p.field("bytes 0-3", "SPI 0x%08x: picks the SA (key) at the receiver", binary.BigEndian.Uint32(b))
	p.field("bytes 4-7", "sequence number %d: the receiver's replay window drops a repeat", binary.BigEndian.Uint32(b[4:]))
	p.heading("IV", off+esp.HeaderLen, esp.IVLen)
	p.field("", "% x: the 64-bit sequence number, the explicit part of the AES-GCM nonce (RFC 4106 section 3)", b[esp.HeaderLen:esp.Headroom])
	enc := len(b) - esp.Headroom - esp.ICVLen
	p.heading("encrypted", off+esp.Headroom, enc)
	p.note("AES-GCM ciphertext: inner UDP header (to port 4789), VXLAN header, inner Ethernet frame,")
	p.note("then padding 0-3, pad length and next header 17; only the SA's key opens it")
	p.note("(vxswitch esp sa -o wireshark gives Wireshark the keys)")
	if enc%4 != 0 {
		p.note("WARNING: %d bytes is not a multiple of 4 (RFC 4303 section 2.4); vxswitch drops it (\"bad_length\")", enc)
	}
	p.heading("ICV", off+esp.Headroom+enc, esp.ICVLen)
	p.note("the 16-byte GCM tag over the ESP header and the ciphertext: a changed bit fails it (\"auth_failed\")")
	inner := enc - esp.TrailerLen
	p.note("overhead: outer UDP 8 + ESP 8 + IV 8 + padding 0-3 + trailer 2 + ICV 16 = %d-%d bytes more than the", esp.Overhead(inner), esp.Overhead(inner-3))
	p.note("same frame as clear VXLAN, around a VXLAN datagram of %d-%d bytes (its UDP header included)", inner-3, inner)
}

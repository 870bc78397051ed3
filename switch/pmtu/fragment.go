package pmtu

import "vxswitch/header"

// FragmentIPv4 splits the IPv4 packet ip into fragments of at most mtu
// bytes as RFC 791 section 3.2 describes: every fragment but the last
// carries a multiple of 8 payload bytes and MF; offsets count in 8-byte
// units from the original packet's own offset (a fragment can be split
// again, and keeps MF if it had it); the first fragment keeps all options,
// later ones only those with the copied flag; each header gets its own
// length and checksum. For each fragment it writes l2 followed by the
// fragment into dst (len(l2)+mtu bytes at least) and calls emit with that
// frame, which emit must not keep. It returns false, emitting nothing, when
// mtu is too small for even one 8-byte piece.
func FragmentIPv4(dst, l2 []byte, ip header.IPv4, mtu int, emit func(frame []byte)) bool {
	ihl := ip.HeaderLen()
	first := ip[:ihl]
	later := append(ip[:header.IPv4MinLen:header.IPv4MinLen], copiedOptions(ip.Options())...)
	if mtu < header.IPv4MinMTU || (mtu-ihl)&^7 <= 0 || len(dst) < len(l2)+mtu {
		return false
	}
	flags := ip.FlagsFragment()
	base := int(flags & header.IPv4OffsetMask)
	moreAfter := flags&header.IPv4FlagMF != 0
	payload := ip[ihl:]
	for pos := 0; pos < len(payload); {
		hdr := later
		if pos == 0 {
			hdr = first
		}
		size := min((mtu-len(hdr))&^7, len(payload)-pos)
		last := pos+size == len(payload)
		n := copy(dst, l2)
		h := header.IPv4(dst[n : n+len(hdr)])
		copy(h, hdr)
		h.SetHeaderLen(len(hdr))
		h.SetTotalLength(uint16(len(hdr) + size))
		fl := flags&^(header.IPv4FlagMF|header.IPv4OffsetMask) | uint16(base+pos/8)
		if !last || moreAfter {
			fl |= header.IPv4FlagMF
		}
		h.SetFlagsFragment(fl)
		h.UpdateChecksum()
		n += len(hdr)
		n += copy(dst[n:], payload[pos:pos+size])
		emit(dst[:n])
		pos += size
	}
	return true
}

// IPv4 option types with a meaning of their own for the option walk (RFC
// 791 section 3.1).
const (
	optEnd = 0 // end of option list
	optNOP = 1 // no operation
)

// copiedOptions returns the IPv4 options in opts whose copied flag is set
// (those every fragment must carry, RFC 791 section 3.1), padded with
// end-of-list bytes to a multiple of 4.
func copiedOptions(opts []byte) []byte {
	var out []byte
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == optEnd {
			break
		}
		if t == optNOP {
			i++
			continue
		}
		if i+1 >= len(opts) {
			break
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			break
		}
		if t&header.IPv4OptionCopied != 0 {
			out = append(out, opts[i:i+n]...)
		}
		i += n
	}
	for len(out)%4 != 0 {
		out = append(out, optEnd)
	}
	return out
}

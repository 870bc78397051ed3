package decode

import "strings"

// hex dumps data like 'xxd': the offset, 16 bytes in groups of two, and
// the bytes as ASCII (a dot when not printable). Each region of p.marks
// (outer headers, inner frame) starts on a new line under its own title,
// so the boundary between them is visible.
func (p *printer) hex(data []byte) {
	p.printf("  hex dump:\n")
	for i, m := range p.marks {
		end := len(data)
		if i+1 < len(p.marks) {
			end = p.marks[i+1].off
		}
		if m.off >= end {
			continue
		}
		p.printf("  -- %s: bytes %d-%d --\n", m.label, m.off, end-1)
		for off := m.off; off < end; off += 16 {
			p.hexLine(off, data[off:min(off+16, end)])
		}
	}
}

// hexLine prints up to 16 bytes that start at offset off.
func (p *printer) hexLine(off int, b []byte) {
	var hex, text strings.Builder
	for i := 0; i < 16; i++ {
		if i > 0 && i%2 == 0 {
			hex.WriteByte(' ')
		}
		if i >= len(b) {
			hex.WriteString("  ")
			continue
		}
		hex.WriteString(hexByte(b[i]))
		if b[i] >= 0x20 && b[i] < 0x7f {
			text.WriteByte(b[i])
		} else {
			text.WriteByte('.')
		}
	}
	p.printf("  %08x: %s  %s\n", off, hex.String(), text.String())
}

// hexByte is b as two lower-case hex digits.
func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0x0f]})
}

package tap

import "encoding/binary"

// VnetHdrLen is the length of the virtio-net header (struct virtio_net_hdr,
// virtio 1.x specification section 5.1.6) that starts every read from and
// every write to a TAP opened with Config.Offload (Device.ReadVnetIdle and
// Device.WriteVnet).
const VnetHdrLen = 10

// Values of VnetHdr.Flags and VnetHdr.GSOType (virtio 1.x section 5.1.6).
const (
	// VnetNeedsCsum says the transport checksum is not complete: the field
	// at CsumStart+CsumOffset holds the folded, not complemented,
	// pseudo-header sum, and the one's complement sum from CsumStart to
	// the end must still be added and complemented.
	VnetNeedsCsum = 1
	// VnetGSONone marks a single frame.
	VnetGSONone = 0
	// VnetGSOTCPv4 marks an IPv4 TCP super-frame to be cut into GSOSize
	// byte segments (TSO).
	VnetGSOTCPv4 = 1
	// VnetGSOTCPv6 is VnetGSOTCPv4 for IPv6.
	VnetGSOTCPv6 = 4
	// VnetGSOECN is a bit of GSOType: the super-frame has CWR set in its
	// TCP header. It is masked off by DecodeVnetHdr.
	VnetGSOECN = 0x80
)

// VnetHdr is the virtio-net header the kernel puts in front of each frame
// on a TAP with IFF_VNET_HDR. Its fields are little endian on the wire (x86
// and arm64, the only byte order this package supports). The zero value is
// the header of a plain frame: no checksum to complete, no segmentation.
//
// CsumStart counts from the start of the Ethernet header. HdrLen is a hint
// from the sender; callers compute header lengths themselves.
type VnetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// DecodeVnetHdr reads a header from b[:VnetHdrLen], without the ECN bit of
// GSOType. It panics if b is shorter than VnetHdrLen. It never allocates.
func DecodeVnetHdr(b []byte) VnetHdr {
	_ = b[VnetHdrLen-1]
	return VnetHdr{
		Flags:      b[0],
		GSOType:    b[1] &^ VnetGSOECN,
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

// Encode writes h into b[:VnetHdrLen]. It panics if b is shorter than
// VnetHdrLen. It never allocates.
func (h VnetHdr) Encode(b []byte) {
	_ = b[VnetHdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
}

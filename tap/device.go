// Package tap opens the Linux TAP devices that connect endpoints to the switch.
//
// A TAP is created by the agent, moved into the endpoint's network namespace
// and renamed there; the agent keeps the file descriptor. Devices are
// persistent (TUNSETPERSIST), so an agent restart finds them again with Open.
package tap

import "errors"

// Device is one Ethernet port of the switch: the contract between the
// switch and a TAP (or a fake of one, tap/taptest).
//
// Read blocks until one whole Ethernet frame (no preamble, no FCS) is copied
// into frame and returns its length. Write sends one whole frame. Read and
// Write may be called from different goroutines at the same time; Close
// makes a blocked Read return an error.
//
// The offload path is part of the contract. Offload reports whether the
// device moves frames together with their virtio-net header (VnetHdr), so
// it can hand over and accept TCP super-frames (TSO and GRO) and frames
// whose checksum is still to be completed. When it reports true the switch
// reads with ReadVnetIdle and writes with WriteVnet, or with Write for a
// plain frame (which the device sends behind a zero vnet header); when
// false, it uses only Read and Write, and a device without offloads may
// fail ReadVnetIdle and WriteVnet with ErrNoOffload.
//
// ReadVnetIdle blocks until one packet arrives and copies it into buf: the
// header in buf[:VnetHdrLen], the frame (up to 64 KiB for a super-frame)
// after it; it returns the total length. Each time it finds no packet
// waiting, before it waits, it calls idle (when not nil): the switch sends
// what it collected from the packets read so far there, so learning that
// the device ran dry costs no system call of its own. WriteVnet sends one
// packet laid out the same way. Both follow the concurrency and Close rules
// of Read and Write.
type Device interface {
	Read(frame []byte) (int, error)
	Write(frame []byte) (int, error)
	Name() string
	Close() error

	Offload() bool
	ReadVnetIdle(buf []byte, idle func()) (int, error)
	WriteVnet(buf []byte) (int, error)
}

// ErrNoOffload is what the offload methods of a device without offloads
// return (tap/taptest's does).
var ErrNoOffload = errors.New("tap: the device has no offloads: use Read and Write")

// Package tap opens the Linux TAP devices that connect endpoints to the switch.
//
// A TAP is created by the agent, moved into the endpoint's network namespace
// and renamed there; the agent keeps the file descriptor. Devices are
// persistent (TUNSETPERSIST), so an agent restart finds them again with Open.
package tap

// Device is one Ethernet port of the switch.
//
// Read blocks until one whole Ethernet frame (no preamble, no FCS) is copied
// into frame and returns its length. Write sends one whole frame. Read and
// Write may be called from different goroutines at the same time; Close
// makes a blocked Read return an error.
type Device interface {
	Read(frame []byte) (int, error)
	Write(frame []byte) (int, error)
	Name() string
	Close() error
}

package vswitch

import (
	"fmt"

	"vxswitch/vxlan"
)

// InjectFromPort runs the ingress path of the port called name for frame
// synchronously, in the calling goroutine, exactly as the port's own
// goroutine does after reading frame from its device: when it returns,
// every frame the switch wrote because of it (into ports or to the
// underlay) has been written. It exists for replaying captures
// (package replay) and for tests; the port's device is not read. frame is
// copied, so the caller may reuse it. It fails when there is no such port
// or frame is longer than a TAP can deliver (65535 bytes). It may be called
// from any goroutine.
func (s *Switch) InjectFromPort(name string, frame []byte) error {
	p := s.ports.Load().byName[name]
	if p == nil {
		return fmt.Errorf("vswitch: inject into port %q: no such port", name)
	}
	if len(frame) > maxFrame {
		return fmt.Errorf("vswitch: inject into port %q: frame of %d bytes is longer than the %d a TAP delivers", name, len(frame), maxFrame)
	}
	buf := make([]byte, vxlan.HeaderLen+len(frame))
	copy(buf[vxlan.HeaderLen:], frame)
	s.fromPort(&portFrame{p: p, buf: buf, n: len(frame)})
	return nil
}

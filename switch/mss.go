package vswitch

import "vxswitch/switch/pmtu"

// clamp lowers the MSS of a TCP SYN in frame to fit the MTU of nw
// (pmtu.ClampMSS), unless clamping is turned off, and counts it. It does
// not allocate.
func (s *Switch) clamp(frame []byte, nw *Network) {
	if s.clampMSS && pmtu.ClampMSS(frame, nw.MTU) {
		s.stats.mssClamped.Add(1)
	}
}

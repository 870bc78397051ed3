package agent

import (
	"vxswitch/api"
	vswitch "vxswitch/switch"
)

// apiPortStats turns the switch's per-port counters (Switch.PortStats:
// what each TAP carried, one frame per read or write, bytes without the
// vnet header) into the API's form, in the same order (by name).
func apiPortStats(ports []vswitch.PortStats) []api.PortStats {
	out := make([]api.PortStats, 0, len(ports))
	for _, p := range ports {
		out = append(out, api.PortStats{
			Name: p.Name, Network: p.Network,
			RxFrames: p.RxFrames, RxBytes: p.RxBytes,
			TxFrames: p.TxFrames, TxBytes: p.TxBytes,
		})
	}
	return out
}

// portStats returns the counters of every local port, sorted by name. It
// reads the switch only, so a scrape never waits for the agent's lock.
func (a *Agent) portStats() []api.PortStats { return apiPortStats(a.sw.PortStats()) }

package integration

import (
	"testing"

	"vxswitch/internal/lab"
)

// TestLeaderKilledDuringAttaches attaches 200 endpoints concurrently through
// the two followers and kills the leader with SIGKILL part-way: every
// acknowledged attach must survive, and no address may be given twice.
func TestLeaderKilledDuringAttaches(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 3, Network: "big", Subnet: "10.40.0.0/22", NoEndpoints: true})
	acked, failover := attachStorm(t, c, "big", "a", 200)
	checkAllocations(t, c, acked, 200)
	t.Logf("failover (SIGKILL of the leader to a new leader seen by a follower): %v", failover)
}

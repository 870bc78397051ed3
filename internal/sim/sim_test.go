package sim

import (
	"context"
	"testing"
	"time"

	"vxswitch/raftstore"
)

// TestSimSmall runs 50 hosts through a short churn and checks that every
// host converges to the same state, that no address is held twice, and
// that every figure is produced and sane.
func TestSimSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 50-host simulation for a few seconds")
	}
	res, err := Run(context.Background(), Options{
		Hosts: 50, Voters: 3, Endpoints: 200, Networks: 4, Churn: 40, Duration: 2 * time.Second,
		OwnState: 10, // 40 hosts share the ledger's states; the 10 others must agree
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.OwnStateHosts != 10 || res.SharedStateHosts != 40 || res.LedgerMismatches != 0 {
		t.Errorf("own %d shared %d mismatches %d, want 10, 40, 0", res.OwnStateHosts, res.SharedStateHosts, res.LedgerMismatches)
	}
	if !res.Converged || res.LaggingHosts != 0 || res.NotVisible != 0 {
		t.Errorf("not converged: converged=%v lagging=%d not_visible=%d", res.Converged, res.LaggingHosts, res.NotVisible)
	}
	if res.DuplicateAddresses != 0 {
		t.Errorf("%d duplicate addresses", res.DuplicateAddresses)
	}
	if res.FloodForeign != 0 {
		t.Errorf("%d replication entries point at hosts without the network", res.FloodForeign)
	}
	// 40 writes a second for 2 s: 80 at most; fewer when this machine is
	// busy (the ticker drops ticks), as under the race detector.
	if res.Writes < 10 || res.Writes > 80 || res.WritesFailed != 0 || res.WritesRejected != 0 {
		t.Errorf("writes=%d failed=%d rejected=%d, want 10..80, 0, 0", res.Writes, res.WritesFailed, res.WritesRejected)
	}
	if res.FinalEndpoints < 190 || res.FinalEndpoints > 210 {
		t.Errorf("final endpoints %d, want about 200 (attach and detach alternate)", res.FinalEndpoints)
	}
	positive := map[string]float64{
		"commit_p50_ms": res.CommitP50MS, "commit_p99_ms": res.CommitP99MS,
		"visible_p50_ms": res.VisibleP50MS, "visible_p99_ms": res.VisibleP99MS,
		"snapshot_ms": res.SnapshotMS, "restore_ms": res.RestoreMS,
		"apply_cpu_us": res.ApplyCPUMicros, "view_cpu_us": res.ViewCPUMicros,
		"state_bytes_per_host": float64(res.StateBytesPerHost), "snapshot_bytes": float64(res.SnapshotBytes),
		"cpu_cores": res.CPUCores, "flood_mean": res.FloodMean,
	}
	for name, v := range positive {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if res.CommitP50MS > res.CommitP99MS || res.VisibleP50MS > res.VisibleP99MS || res.VisibleP99MS > res.VisibleMaxMS {
		t.Errorf("quantiles out of order: commit %v/%v visible %v/%v/%v", res.CommitP50MS, res.CommitP99MS, res.VisibleP50MS, res.VisibleP99MS, res.VisibleMaxMS)
	}
	// Endpoint n is on host n mod 50 in network n mod 4: a network has
	// endpoints on the 25 hosts of its parity only, so no replication list
	// is longer than 25 (24 on the hosts that have the network).
	if res.FloodMax > 25 {
		t.Errorf("flood_max %d, want <= 25: flooding reaches hosts without the network", res.FloodMax)
	}
	// A state of 200 endpoints is a few hundred kilobytes, not megabytes.
	if res.StateBytesPerHost > 10<<20 {
		t.Errorf("state_bytes_per_host %d, want < 10 MiB", res.StateBytesPerHost)
	}
}

// TestSeedPlacement checks the seeded state: every host, network and
// endpoint is there, each endpoint where attachCommand put it, with an
// address of its network's subnet.
func TestSeedPlacement(t *testing.T) {
	o := Options{Hosts: 7, Endpoints: 30, Networks: 3}
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	fsm, index, err := seed(o)
	if err != nil {
		t.Fatal(err)
	}
	st := fsm.State()
	if len(st.Hosts) != 7 || len(st.Networks) != 3 || st.Endpoints.Len() != 30 || index != 40 {
		t.Fatalf("hosts %d networks %d endpoints %d index %d, want 7 3 30 40", len(st.Hosts), len(st.Networks), st.Endpoints.Len(), index)
	}
	for name, e := range st.Endpoints.All() {
		n := st.Networks[e.Network]
		if !n.Subnet.Contains(e.IP) || e.IP == n.Resolver {
			t.Errorf("%s: address %s is not an endpoint address of %s", name, e.IP, n.Subnet)
		}
	}
	if d := duplicates(st); d != 0 {
		t.Errorf("%d duplicates", d)
	}
}

// TestOptionsRejected checks that impossible options are refused with the
// flag named.
func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{
		{Hosts: 3, Voters: 5},
		{Hosts: -1},
		{Churn: -2},
		{Networks: 5000},
		{Hosts: 10, Voters: 5, OwnState: 3},
		{Hosts: 10, OwnState: 11},
		{GCPercent: -5},
	} {
		if err := o.setDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := Options{Hosts: 2}
	if err := o.setDefaults(); err != nil || o.Voters != 2 || o.OwnState != 2 {
		t.Errorf("2 hosts: voters %d, own state %d, err %v; want 2 voters (min of hosts and %d), both on their own", o.Voters, o.OwnState, err, raftstore.DefaultVoters)
	}
	o = Options{Hosts: 1000, Voters: 5}
	if err := o.setDefaults(); err != nil || o.OwnState != DefaultOwnState {
		t.Errorf("1000 hosts: own state %d, err %v; want %d", o.OwnState, err, DefaultOwnState)
	}
	o = Options{Hosts: 1000, OwnState: -1}
	if err := o.setDefaults(); err != nil || o.OwnState != 1000 {
		t.Errorf("--own-state -1: own state %d, err %v; want every host", o.OwnState, err)
	}
}

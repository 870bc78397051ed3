package sim

import (
	"bytes"
	"io"
	"runtime"
	"sync/atomic"
	"testing"

	"vxswitch/raftstore"
	"vxswitch/resolver"
	"vxswitch/stateview"
)

// BenchmarkViewRefresh measures what a host does after each state change
// (name table, view, SetView) at 1,000 endpoints.
func BenchmarkViewRefresh(b *testing.B) {
	o := Options{Hosts: 100, Endpoints: 1000, Networks: 1}
	if err := o.setDefaults(); err != nil {
		b.Fatal(err)
	}
	fsm, _, err := seed(o)
	if err != nil {
		b.Fatal(err)
	}
	st := fsm.State()
	sw := newSwitch()
	var names atomic.Pointer[resolver.Table]
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			refreshView(st, "h0001", &stateview.Builder{}, nil, sw, &names)
		}
	})
	b.Run("names", func(b *testing.B) {
		for b.Loop() {
			stateview.Names(st)
		}
	})
	b.Run("view", func(b *testing.B) {
		for b.Loop() {
			stateview.Build(st, "h0001", endpointMTU)
		}
	})
	b.Run("setview", func(b *testing.B) {
		v := stateview.Build(st, "h0001", endpointMTU)
		for b.Loop() {
			sw.SetView(v)
		}
	})
}

// BenchmarkHostMemory reports what one host holds at 100,000 endpoints in
// one network, part by part, as measureHost measures the whole: the live
// heap after restoring the seed's snapshot as the simulated hosts start
// from it (state-bytes: the state, its indexes, the FSM's history), then after building the name table (names-bytes), the view
// (view-bytes) and making it live on a switch (setview-bytes). Run it with
// -benchtime=1x: each part is measured once.
func BenchmarkHostMemory(b *testing.B) {
	o := Options{Hosts: 5, Endpoints: 100_000, Networks: 1}
	if err := o.setDefaults(); err != nil {
		b.Fatal(err)
	}
	snap, err := seedSnapshot(o)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		h0 := settledHeap()
		host := raftstore.NewFSM()
		if err := host.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			b.Fatal(err)
		}
		h1 := liveHeap()
		var views stateview.Builder
		names := views.Names(host.State())
		h2 := liveHeap()
		view := views.View(host.State(), hostName(o.Hosts-1), endpointMTU)
		h3 := liveHeap()
		sw := newSwitch()
		sw.SetView(view)
		h4 := liveHeap()
		b.ReportMetric(float64(h1-h0), "state-bytes")
		b.ReportMetric(float64(h2-h1), "names-bytes")
		b.ReportMetric(float64(h3-h2), "view-bytes")
		b.ReportMetric(float64(h4-h3), "setview-bytes")
		runtime.KeepAlive(host)
		runtime.KeepAlive(names)
		runtime.KeepAlive(sw)
	}
	runtime.KeepAlive(snap)
}

// seedSnapshot returns the snapshot of the seed of o; the seeding FSM is
// garbage once it returns.
func seedSnapshot(o Options) ([]byte, error) {
	fsm, _, err := seed(o)
	if err != nil {
		return nil, err
	}
	snap, _, err := snapshotOf(fsm)
	if err != nil {
		return nil, err
	}
	return withoutHistory(snap)
}

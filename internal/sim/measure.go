package sim

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"vxswitch/raftstore"
	"vxswitch/resolver"
	"vxswitch/stateview"
)

// costBudget bounds the CPU time spent measuring the cost of one command.
const costBudget = 2 * time.Second

// measureHost restores the final snapshot on a new host while nothing else
// runs and measures it: the heap its state, name table and view take, how
// long the restore takes, and the CPU one attach or detach and one view
// rebuild cost. Commands it applies use raft indexes from index on.
func measureHost(res *Result, snap []byte, index uint64, o Options) error {
	before := settledHeap()

	start := time.Now()
	fsm := raftstore.NewFSM()
	if err := fsm.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		return fmt.Errorf("sim: restore the final snapshot: %w", err)
	}
	sw := newSwitch()
	var names atomic.Pointer[resolver.Table]
	var views stateview.Builder
	self := hostName(o.Hosts - 1)
	view := refreshView(fsm.State(), self, &views, nil, sw, &names)
	res.RestoreMS = ms(time.Since(start))

	after := liveHeap()
	if after > before {
		res.StateBytesPerHost = after - before
	}
	runtime.KeepAlive(fsm)
	runtime.KeepAlive(sw)
	runtime.KeepAlive(view)
	runtime.KeepAlive(snap) // live in before: it must be in after too

	// One attach and one detach of a new endpoint at a time, so the state
	// keeps its size; after each, the host's view refresh (name table and
	// view, rebuilt for the changed network) as the agent does it.
	var applyCPU, viewCPU time.Duration
	n := 0
	for ; n < 2000 && (n < 10 || applyCPU+viewCPU < 2*costBudget); n += 2 {
		attach := attachCommand(1<<30+n, o.Hosts, o.Networks)
		for i, cmd := range []raftstore.Command{attach, detachCommand(attach.Endpoint.Name, 1<<30+n)} {
			cpu0 := processCPU()
			if err := applyDirect(fsm, index+uint64(n+i), cmd); err != nil {
				return err
			}
			cpu1 := processCPU()
			refreshView(fsm.State(), self, &views, nil, sw, &names)
			applyCPU += cpu1 - cpu0
			viewCPU += processCPU() - cpu1
		}
	}
	res.ApplyCPUMicros = micros(applyCPU / time.Duration(n))
	res.ViewCPUMicros = micros(viewCPU / time.Duration(n))
	res.CostSamples = n
	return nil
}

// liveHeap collects garbage and returns the bytes of live heap objects
// the collection marked.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// settledHeap returns the live heap once it stops shrinking: the stopped
// cluster's goroutines let go of their memory only as they exit, and
// memory freed after this reading would be subtracted from the host's.
func settledHeap() uint64 {
	h := liveHeap()
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		next := liveHeap()
		if next+next/100 >= h { // less than 1% freed since the last reading
			return next
		}
		h = next
	}
	return h
}

// micros returns d in microseconds with one decimal.
func micros(d time.Duration) float64 { return float64(d.Nanoseconds()/100) / 10 }

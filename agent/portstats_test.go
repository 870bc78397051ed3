package agent

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"vxswitch/api"
)

func TestPortStats(t *testing.T) {
	m := newMetrics()
	a, b := &portCounters{}, &portCounters{}
	m.addPort("c2", "db", b)
	m.addPort("c1", "web", a)
	m.addPort("gone", "web", &portCounters{})
	m.removePort("gone")
	var wg sync.WaitGroup
	for range 4 { // counted from several goroutines, as ports are
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.read(100)
			a.wrote(60)
		}()
	}
	wg.Wait()
	b.wrote(70)
	m.observeApply(time.Millisecond) // never fails, with or without Prometheus

	want := []api.PortStats{
		{Name: "c1", Network: "web", RxFrames: 4, RxBytes: 400, TxFrames: 4, TxBytes: 240},
		{Name: "c2", Network: "db", TxFrames: 1, TxBytes: 70},
	}
	if got := m.portStats(); !reflect.DeepEqual(got, want) {
		t.Errorf("portStats = %+v, want %+v", got, want)
	}
}

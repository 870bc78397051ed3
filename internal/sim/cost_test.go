package sim

import (
	"sync/atomic"
	"testing"

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
			refreshView(st, "h0001", &stateview.Builder{}, sw, &names)
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

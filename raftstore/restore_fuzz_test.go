package raftstore

import (
	"bytes"
	"io"
	"testing"
)

// FuzzRestore feeds arbitrary bytes to Restore as a snapshot: it never
// panics, a refused snapshot leaves the state as it was, and an accepted
// one survives a snapshot and restore round trip with the same hash.
func FuzzRestore(f *testing.F) {
	h := newHarness(f)
	for _, cmd := range script() {
		h.apply(cmd)
	}
	f.Add(snapshotBytes(f, h.f))
	f.Add([]byte(`{"Version":1,"State":null}`))
	f.Add([]byte(`{"Version":1,"State":{"Hosts":{"a":{"Name":"a","VTEP":"10.0.0.1"}}}}`))
	f.Add([]byte(`{"Version":99}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM()
		before := fsm.State().Hash()
		if err := fsm.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			if got := fsm.State().Hash(); got != before {
				t.Fatalf("a refused snapshot changed the state: %v", err)
			}
			return
		}
		st := fsm.State()
		again := NewFSM()
		if err := again.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, fsm)))); err != nil {
			t.Fatalf("restoring our own snapshot of an accepted one: %v", err)
		}
		if again.State().Hash() != st.Hash() {
			t.Fatalf("round trip changed the hash")
		}
	})
}

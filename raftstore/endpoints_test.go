package raftstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"testing"
)

// TestEndpointMapJSON: an EndpointMap encodes to the bytes a
// map[string]Endpoint does (snapshots and State.Hash are unchanged) and
// decodes back with its indexes.
func TestEndpointMapJSON(t *testing.T) {
	plain := map[string]Endpoint{}
	for i := range 300 {
		name := fmt.Sprintf("e%d", i)
		plain[name] = Endpoint{Name: name, Network: fmt.Sprintf("n%d", i%3), Host: "h<&>", MAC: mac(i + 1),
			IP: netip.AddrFrom4([4]byte{10, byte(i % 3), byte(i >> 8), byte(i)}), Aliases: []string{name + "-a"}}
	}
	want, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	m := NewEndpointMap(plain)
	got, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("EndpointMap JSON differs from map JSON:\n%.200s\n%.200s", got, want)
	}
	var back EndpointMap
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if back.Len() != 300 || back.NetworkLen("n1") != 100 {
		t.Fatalf("decoded %d endpoints, %d in n1; want 300 and 100", back.Len(), back.NetworkLen("n1"))
	}
	e, ok := back.ByIP("n1", plain["e4"].IP)
	if !ok || e.Name != "e4" {
		t.Fatalf("ByIP found %v %v, want e4", e.Name, ok)
	}
	if e, ok := back.ByMAC("n2", mac(6)); !ok || e.Name != "e5" {
		t.Fatalf("ByMAC found %v %v, want e5", e.Name, ok)
	}
	if e, ok := back.ByDNSName("n0", "e3-a"); !ok || e.Name != "e3" {
		t.Fatalf("ByDNSName found %v %v, want e3", e.Name, ok)
	}
	back = back.without("e4")
	if _, ok := back.ByIP("n1", plain["e4"].IP); ok || back.NetworkLen("n1") != 99 {
		t.Fatal("the indexes still hold a removed endpoint")
	}
	if _, ok := m.ByIP("n1", plain["e4"].IP); !ok {
		t.Fatal("removing from a copy changed the original")
	}
	var null EndpointMap
	if err := json.Unmarshal([]byte("null"), &null); err != nil || null.Len() != 0 {
		t.Fatalf("null decodes to %d endpoints, %v", null.Len(), err)
	}
}

// TestRestoreSharesHistoryBase: a restored state shares with its history's
// base the endpoints the retained commands did not touch, and is the state
// that was snapshotted.
func TestRestoreSharesHistoryBase(t *testing.T) {
	h := newHarness(t)
	h.f.SetHistoryLimits(HistoryLimits{Entries: 5})
	h.must(addHost("a", "10.0.0.1"))
	h.must(createNet("web", "10.20.0.0/24", 0))
	h.must(createNet("db", "10.30.0.0/24", 0))
	for i := range 40 {
		h.must(attach(fmt.Sprintf("w%d", i), "web", "a", mac(i+1)))
	}
	for i := range 5 { // only db changes in the retained history
		h.must(attach(fmt.Sprintf("d%d", i), "db", "a", mac(i+100)))
	}
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufferSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	f := NewFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	st, base := f.State(), f.hist.base.State()
	if st.Hash() != h.f.State().Hash() {
		t.Fatal("the restored state differs from the snapshotted one")
	}
	if !st.Endpoints.SameNetwork(base.Endpoints, "web") {
		t.Error("network web, untouched since the history's base, is not shared with it")
	}
	if st.Endpoints.SameNetwork(base.Endpoints, "db") {
		t.Error("network db changed since the base but is shared with it")
	}
}

package raftstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// benchNetworks is how many networks the benchmark states spread their
// endpoints over; each has a /16, so room for 65,000 more.
const benchNetworks = 10

// benchSnapshot returns a snapshot (the JSON document Persist writes) of a
// state with 5 hosts and n endpoints spread over benchNetworks networks. It
// is built as plain JSON, not through the FSM, so that large states are
// quick to make.
func benchSnapshot(tb testing.TB, n int) []byte {
	tb.Helper()
	hosts := map[string]any{}
	for i := range 5 {
		name := fmt.Sprintf("h%d", i)
		hosts[name] = map[string]any{"Name": name, "VTEP": fmt.Sprintf("10.0.0.%d", i+1)}
	}
	nets := map[string]any{}
	for i := range benchNetworks {
		name := fmt.Sprintf("n%d", i)
		nets[name] = map[string]any{"Name": name, "VNI": 100 + i, "Subnet": fmt.Sprintf("10.%d.0.0/16", 100+i),
			"Resolver": fmt.Sprintf("10.%d.0.1", 100+i)}
	}
	eps := map[string]any{}
	last := map[string]netip.Addr{}
	for i := range n {
		nw := fmt.Sprintf("n%d", i%benchNetworks)
		k := i / benchNetworks
		ip := netip.AddrFrom4([4]byte{10, byte(100 + i%benchNetworks), byte((k + 2) >> 8), byte((k + 2) & 0xff)})
		last[nw] = ip
		name := fmt.Sprintf("e%d", i)
		eps[name] = map[string]any{"Name": name, "Network": nw, "Host": fmt.Sprintf("h%d", i%5),
			"MAC": benchMAC(i), "IP": ip, "IfName": "eth0"}
	}
	for nw, ip := range last {
		nets[nw].(map[string]any)["LastIP"] = ip
	}
	doc := map[string]any{"Version": 1, "State": map[string]any{"Hosts": hosts, "Networks": nets, "Endpoints": eps, "MACs": map[string]any{}}}
	b, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func benchMAC(i int) string {
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:01", i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff)
}

func restoreBench(tb testing.TB, snap []byte) *FSM {
	tb.Helper()
	f := NewFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		tb.Fatal(err)
	}
	return f
}

// BenchmarkAttach applies endpoint.attach (the FSM picks the address)
// straight to the FSM, without raft or views, at 1k, 10k and 100k
// endpoints. Each iteration attaches one more endpoint.
//
// The history=full case first fills the FSM's history to its default bound
// (DefaultHistoryEntries), as on any host that has run for a while, so each
// attach also drops the oldest entry.
func BenchmarkAttach(b *testing.B) {
	for _, c := range []struct {
		n    int
		full bool
	}{{1_000, false}, {10_000, false}, {100_000, false}, {10_000, true}} {
		name := fmt.Sprintf("endpoints=%d", c.n)
		if c.full {
			name += "/history=full"
		}
		b.Run(name, func(b *testing.B) {
			f := restoreBench(b, benchSnapshot(b, c.n))
			index := uint64(1_000_000)
			i := c.n
			attach := func() {
				cmd := Command{Op: OpEndpointAttach, Time: 1, Endpoint: &Endpoint{
					Name: fmt.Sprintf("e%d", i), Network: fmt.Sprintf("n%d", i%benchNetworks), Host: "h1", MAC: benchMAC(i), IfName: "eth0"}}
				data, err := EncodeCommand(cmd)
				if err != nil {
					b.Fatal(err)
				}
				index++
				if res := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}).(*Result); res.Err != "" {
					b.Fatal(res.Err)
				}
				i++
			}
			for c.full && f.HistoryInfo().Entries < DefaultHistoryEntries {
				attach()
			}
			cpu0 := processCPU()
			for b.Loop() {
				attach()
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkSnapshot writes and restores a snapshot of 100k endpoints.
func BenchmarkSnapshot(b *testing.B) {
	const n = 100_000
	snap := benchSnapshot(b, n)
	f := restoreBench(b, snap)
	b.Run("persist", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			s, err := f.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			sink := &memSink{}
			if err := s.Persist(sink); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(sink.Len()), "bytes")
		}
		reportCPU(b, cpu0)
	})
	b.Run("restore", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			restoreBench(b, snap)
		}
		reportCPU(b, cpu0)
	})
}

// processCPU returns the CPU time this process has used (all threads,
// the garbage collector's included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per iteration since cpu0: on a
// shared machine the wall time per op (ns/op) includes waiting for a core.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "bench" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

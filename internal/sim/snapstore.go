package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// seedSnapshots is a host's raft.SnapshotStore: raft's in-memory store for
// the snapshots the host takes, in front of the seed snapshot every host
// starts from. The seed's bytes are shared by all hosts (never modified),
// so a thousand hosts do not hold a thousand copies of it; a real host
// keeps its own on disk.
type seedSnapshots struct {
	*raft.InmemSnapshotStore
	meta raft.SnapshotMeta
	data []byte // shared, read only
}

func newSeedSnapshots(snap []byte, index uint64, conf raft.Configuration) *seedSnapshots {
	return &seedSnapshots{
		InmemSnapshotStore: raft.NewInmemSnapshotStore(),
		meta: raft.SnapshotMeta{Version: raft.SnapshotVersionMax, ID: "seed", Index: index, Term: 1,
			Configuration: conf, ConfigurationIndex: 1, Size: int64(len(snap))},
		data: snap,
	}
}

// List returns the host's latest snapshot, or the seed before it took one.
func (s *seedSnapshots) List() ([]*raft.SnapshotMeta, error) {
	list, err := s.InmemSnapshotStore.List()
	if err != nil || len(list) > 0 {
		return list, err
	}
	meta := s.meta
	return []*raft.SnapshotMeta{&meta}, nil
}

// Open opens the seed or a snapshot the host took.
func (s *seedSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	if id == s.meta.ID {
		meta := s.meta
		return &meta, io.NopCloser(bytes.NewReader(s.data)), nil
	}
	return s.InmemSnapshotStore.Open(id)
}

// withoutHistory returns snap without the FSM's history. The seed is made
// by applying every seed command to one FSM, whose history (up to
// raftstore.DefaultHistoryBytes, 16 MiB) every host would otherwise
// restore; the hosts start with an empty history instead, which shares the
// restored state, and record the churn.
func withoutHistory(snap []byte) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(snap, &doc); err != nil {
		return nil, fmt.Errorf("sim: read the seed snapshot: %w", err)
	}
	delete(doc, "History")
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("sim: write the seed snapshot: %w", err)
	}
	return out, nil
}

package vswitch

import "sync/atomic"

// Stats is a snapshot of the switch's counters, returned by Switch.Stats.
// All counts are totals since New. The zero value means nothing happened.
type Stats struct {
	// RxFrames and RxBytes count frames read from TAP ports.
	RxFrames, RxBytes uint64
	// TxFrames and TxBytes count frames written to TAP ports (from other
	// local ports or from the underlay).
	TxFrames, TxBytes uint64
	// EncapFrames counts VXLAN packets sent to the underlay.
	EncapFrames uint64
	// DecapFrames counts VXLAN packets from the underlay that passed the
	// header, VNI and member checks.
	DecapFrames uint64
	// FloodCopies counts the copies made by flooding broadcast, multicast and
	// unknown-unicast frames, one per port or VTEP the frame was sent to.
	FloodCopies uint64
	// LocalSwitched counts frames written from one local TAP port to another.
	LocalSwitched uint64
	// Drops counts dropped frames and refused learning by reason; only
	// reasons with a non-zero count are present. The reasons are "short",
	// "bad_flags", "reserved_bits", "unknown_vni", "not_member", "oversize",
	// "no_port", "runt_inner", "learn_cap" and "write_error".
	Drops map[string]uint64
	// CsumCompleted counts inner TCP/UDP checksums completed on frames from
	// the underlay that carried only a partial (pseudo-header) checksum.
	CsumCompleted uint64
}

// dropReason indexes counters.drops.
type dropReason int

const (
	dropShort dropReason = iota
	dropBadFlags
	dropReserved
	dropUnknownVNI
	dropNotMember
	dropOversize
	dropNoPort
	dropRuntInner
	dropLearnCap
	dropWriteError
	numDropReasons
)

// dropNames are the reason strings of Stats.Drops, indexed by dropReason.
var dropNames = [numDropReasons]string{
	dropShort:      "short",
	dropBadFlags:   "bad_flags",
	dropReserved:   "reserved_bits",
	dropUnknownVNI: "unknown_vni",
	dropNotMember:  "not_member",
	dropOversize:   "oversize",
	dropNoPort:     "no_port",
	dropRuntInner:  "runt_inner",
	dropLearnCap:   "learn_cap",
	dropWriteError: "write_error",
}

// counters are the live counters; every field is updated atomically from
// the data path and read by snapshot.
type counters struct {
	rxFrames, rxBytes atomic.Uint64
	txFrames, txBytes atomic.Uint64
	encap, decap      atomic.Uint64
	floodCopies       atomic.Uint64
	localSwitched     atomic.Uint64
	csumCompleted     atomic.Uint64
	drops             [numDropReasons]atomic.Uint64
}

func (c *counters) drop(r dropReason) { c.drops[r].Add(1) }

func (c *counters) snapshot() Stats {
	s := Stats{
		RxFrames:      c.rxFrames.Load(),
		RxBytes:       c.rxBytes.Load(),
		TxFrames:      c.txFrames.Load(),
		TxBytes:       c.txBytes.Load(),
		EncapFrames:   c.encap.Load(),
		DecapFrames:   c.decap.Load(),
		FloodCopies:   c.floodCopies.Load(),
		LocalSwitched: c.localSwitched.Load(),
		CsumCompleted: c.csumCompleted.Load(),
		Drops:         make(map[string]uint64),
	}
	for i := range c.drops {
		if n := c.drops[i].Load(); n != 0 {
			s.Drops[dropNames[i]] = n
		}
	}
	return s
}

// Stats returns a snapshot of the counters. It may be called from any
// goroutine at any time.
func (s *Switch) Stats() Stats { return s.stats.snapshot() }

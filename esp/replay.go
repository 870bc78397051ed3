package esp

import "sync"

// The replay window is a ring of 64-bit blocks (the layout of RFC 6479):
// bit s%ringBits of the ring stands for sequence number s. The block holding
// the highest sequence number seen is never fully inside the window, so the
// window covers ringBits-64 numbers below the highest, which keeps the
// update to "clear the blocks the top moved past" with no shifting.
const (
	ringBlocks = 32
	ringBits   = ringBlocks * 64
	// WindowSize is how far below the highest sequence number received a
	// packet may arrive and still be accepted once (RFC 4303 section
	// 3.4.3 asks for at least 32, recommends 64).
	WindowSize = ringBits - 64
)

// window is the anti-replay state of one inbound SA. The zero value is an
// empty window (no sequence number seen). It is safe for concurrent use.
type window struct {
	mu   sync.Mutex
	top  uint32 // highest sequence number accepted; 0 means none yet
	ring [ringBlocks]uint64
}

// check reports whether seq may be new: not 0, not below the window, and
// not yet accepted. It changes nothing: call it before the ICV is verified.
func (w *window) check(seq uint32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fresh(seq)
}

// accept marks seq as received after its ICV verified and slides the
// window forward when seq is the new highest. It reports false when seq
// is not new after all (another goroutine accepted it first, or the
// window moved past it meanwhile).
func (w *window) accept(seq uint32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.fresh(seq) {
		return false
	}
	if seq > w.top {
		w.advance(seq)
	}
	w.ring[seq/64%ringBlocks] |= 1 << (seq % 64)
	return true
}

// fresh is check without the lock.
func (w *window) fresh(seq uint32) bool {
	if seq == 0 {
		return false // never sent (RFC 4303 section 3.3.3 starts at 1)
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= WindowSize {
		return false
	}
	return w.ring[seq/64%ringBlocks]&(1<<(seq%64)) == 0
}

// advance moves the top to seq > w.top, clearing the blocks between the
// old top's block (exclusive) and seq's block (inclusive).
func (w *window) advance(seq uint32) {
	from := w.top / 64
	to := seq / 64
	if to-from >= ringBlocks {
		w.ring = [ringBlocks]uint64{}
	} else {
		for b := from + 1; b <= to; b++ {
			w.ring[b%ringBlocks] = 0
		}
	}
	w.top = seq
}

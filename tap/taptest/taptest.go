// Package taptest provides an in-memory tap.Device for tests of the switch
// and the agent: a test injects frames as if an endpoint sent them and reads
// back the frames the switch wrote to the port. NewOffload makes one with
// the offload path of the contract (vnet headers, TSO super-frames), so a
// test runs the same switch code as a TAP opened with Config.Offload.
package taptest

import (
	"os"
	"sync"
	"time"

	"vxswitch/tap"
)

// Device is an in-memory tap.Device.
//
// Create it with New; the zero value is not usable. All methods may be called
// from any goroutine at the same time. Frames are copied on the way in and
// out, so callers may reuse their buffers.
type Device struct {
	name    string
	offload bool          // Offload reports true: reads and writes carry vnet headers
	in      chan []byte   // frames injected by the test, read by Read
	closed  chan struct{} // closed by Close
	once    sync.Once

	mu      sync.Mutex
	written [][]byte      // every frame passed to Write, in order
	writes  int           // how many writes there were, recorded or not
	discard bool          // count writes without recording them (CountOnly)
	next    int           // index in written of the next frame Next returns
	notify  chan struct{} // buffered 1: a frame was written

	// For WaitIdle: packets injected and taken by a reader, and whether
	// a reader waits for the next one (after its idle function).
	injected, taken int
	waiting         bool
	idle            chan struct{} // buffered 1: a reader started waiting
}

var _ tap.Device = (*Device)(nil)

// injectQueue is how many injected frames may wait for Read before Inject
// blocks.
const injectQueue = 1024

// New returns an open in-memory device called name, without offloads.
func New(name string) *Device {
	return &Device{
		name:   name,
		in:     make(chan []byte, injectQueue),
		closed: make(chan struct{}),
		notify: make(chan struct{}, 1),
		idle:   make(chan struct{}, 1),
	}
}

// NewOffload returns an open in-memory device called name with offloads:
// Offload reports true, and like a TAP opened with tap.Config.Offload, every
// packet read with ReadVnetIdle and every one recorded (WriteVnet, and Write
// with a zero vnet header in front of the frame) starts with a vnet header.
// Inject takes such packets (see InjectFrame for a plain frame).
func NewOffload(name string) *Device {
	d := New(name)
	d.offload = true
	return d
}

// CountOnly makes the device count later writes (Writes) without
// recording them, so that a test can measure allocations or speed of the
// code that writes.
func (d *Device) CountOnly() {
	d.mu.Lock()
	d.discard = true
	d.mu.Unlock()
}

// Writes returns how many writes there were, recorded or not.
func (d *Device) Writes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes
}

// Inject makes a copy of frame readable by Read (ReadVnetIdle on a device
// with offloads, where frame starts with its vnet header), as if the
// endpoint behind the port had sent it. It blocks while injectQueue frames
// are already waiting, and drops the frame if the device is closed.
func (d *Device) Inject(frame []byte) {
	f := append([]byte(nil), frame...)
	d.mu.Lock()
	d.injected++
	d.mu.Unlock()
	select {
	case d.in <- f:
	case <-d.closed:
		d.mu.Lock()
		d.injected--
		d.mu.Unlock()
	}
}

// WaitIdle waits up to timeout until a reader has taken every packet
// injected so far and waits for the next one, after calling its idle
// function: the switch reading the device has finished with them, and
// everything they made it write or send has been written or sent. It
// reports false when that did not happen in time. It assumes one reader,
// as the switch has per port, and one caller at a time.
func (d *Device) WaitIdle(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		d.mu.Lock()
		done := d.waiting && d.taken == d.injected
		d.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-d.idle:
		case <-timer.C:
			return false
		}
	}
}

// InjectFrame is Inject for a plain Ethernet frame: on a device with
// offloads it puts a zero vnet header (no checksum to complete, no
// segmentation) in front of it.
func (d *Device) InjectFrame(frame []byte) {
	if d.offload {
		frame = append(make([]byte, tap.VnetHdrLen), frame...)
	}
	d.Inject(frame)
}

// Next waits up to timeout for the next frame the switch wrote to the device
// that Next has not returned yet, and returns a copy of it. ok is false when
// none came in time.
func (d *Device) Next(timeout time.Duration) (frame []byte, ok bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		d.mu.Lock()
		if d.next < len(d.written) {
			f := d.written[d.next]
			d.next++
			d.mu.Unlock()
			return append([]byte(nil), f...), true
		}
		d.mu.Unlock()
		select {
		case <-d.notify:
		case <-timer.C:
			return nil, false
		}
	}
}

// Written returns copies of all frames written to the device so far, in
// order, whether or not Next has returned them. On a device with offloads
// each starts with its vnet header.
func (d *Device) Written() [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([][]byte, len(d.written))
	for i, f := range d.written {
		out[i] = append([]byte(nil), f...)
	}
	return out
}

// Read blocks until a frame is injected and copies it into frame, truncating
// it if frame is too small, as a TAP does. After Close it returns
// os.ErrClosed. On a device with offloads it strips the vnet header.
func (d *Device) Read(frame []byte) (int, error) {
	f, err := d.take(nil)
	if err != nil {
		return 0, err
	}
	if d.offload && len(f) >= tap.VnetHdrLen {
		f = f[tap.VnetHdrLen:]
	}
	return copy(frame, f), nil
}

// ReadVnetIdle is Read for a device with offloads: it copies the next
// injected packet, vnet header included, into buf. It calls idle (when not
// nil) each time it finds no packet waiting, before it waits, as a TAP
// does. On a device without offloads it returns tap.ErrNoOffload.
func (d *Device) ReadVnetIdle(buf []byte, idle func()) (int, error) {
	if !d.offload {
		return 0, tap.ErrNoOffload
	}
	f, err := d.take(idle)
	if err != nil {
		return 0, err
	}
	return copy(buf, f), nil
}

// take returns the next injected packet, calling idle (when not nil) when
// none is waiting yet; after Close it returns os.ErrClosed.
func (d *Device) take(idle func()) ([]byte, error) {
	select {
	case <-d.closed:
		return nil, os.ErrClosed
	default:
	}
	select {
	case f := <-d.in:
		d.took()
		return f, nil
	default:
	}
	if idle != nil {
		idle()
	}
	d.mu.Lock()
	d.waiting = true
	d.mu.Unlock()
	select {
	case d.idle <- struct{}{}:
	default:
	}
	select {
	case f := <-d.in:
		d.took()
		return f, nil
	case <-d.closed:
		return nil, os.ErrClosed
	}
}

// took counts a packet taken by the reader, which no longer waits.
func (d *Device) took() {
	d.mu.Lock()
	d.taken++
	d.waiting = false
	d.mu.Unlock()
}

// Write records a copy of frame for Next and Written (on a device with
// offloads, behind a zero vnet header, as a TAP sends it). After Close it
// returns os.ErrClosed.
func (d *Device) Write(frame []byte) (int, error) {
	if d.offload {
		if _, err := d.record(tap.VnetHdrLen+len(frame), frame); err != nil {
			return 0, err
		}
		return len(frame), nil
	}
	return d.record(len(frame), frame)
}

// WriteVnet records a copy of pkt, which starts with its vnet header, for
// Next and Written. On a device without offloads it returns
// tap.ErrNoOffload; after Close, os.ErrClosed.
func (d *Device) WriteVnet(pkt []byte) (int, error) {
	if !d.offload {
		return 0, tap.ErrNoOffload
	}
	return d.record(len(pkt), pkt)
}

// record keeps a copy of b, placed at the end of a new slice of n bytes
// (the rest zero: room for a vnet header), unless the device only counts.
func (d *Device) record(n int, b []byte) (int, error) {
	select {
	case <-d.closed:
		return 0, os.ErrClosed
	default:
	}
	d.mu.Lock()
	d.writes++
	if !d.discard {
		f := make([]byte, n)
		copy(f[n-len(b):], b)
		d.written = append(d.written, f)
	}
	d.mu.Unlock()
	select {
	case d.notify <- struct{}{}:
	default:
	}
	return len(b), nil
}

// Offload reports whether the device was made by NewOffload.
func (d *Device) Offload() bool { return d.offload }

// Name returns the name given to New.
func (d *Device) Name() string { return d.name }

// Close makes a blocked Read and every later Read and Write return
// os.ErrClosed. Closing twice is not an error.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// Closed reports whether Close has been called.
func (d *Device) Closed() bool {
	select {
	case <-d.closed:
		return true
	default:
		return false
	}
}

// Package taptest provides an in-memory tap.Device for tests of the switch
// and the agent: a test injects frames as if an endpoint sent them and reads
// back the frames the switch wrote to the port.
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
	name   string
	in     chan []byte   // frames injected by the test, read by Read
	closed chan struct{} // closed by Close
	once   sync.Once

	mu      sync.Mutex
	written [][]byte      // every frame passed to Write, in order
	next    int           // index in written of the next frame Next returns
	notify  chan struct{} // buffered 1: a frame was written
}

var _ tap.Device = (*Device)(nil)

// injectQueue is how many injected frames may wait for Read before Inject
// blocks.
const injectQueue = 1024

// New returns an open in-memory device called name.
func New(name string) *Device {
	return &Device{
		name:   name,
		in:     make(chan []byte, injectQueue),
		closed: make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
}

// Inject makes a copy of frame readable by Read, as if the endpoint behind
// the port had sent it. It blocks while injectQueue frames are already
// waiting, and drops the frame if the device is closed.
func (d *Device) Inject(frame []byte) {
	f := append([]byte(nil), frame...)
	select {
	case d.in <- f:
	case <-d.closed:
	}
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
// order, whether or not Next has returned them.
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
// os.ErrClosed.
func (d *Device) Read(frame []byte) (int, error) {
	select {
	case <-d.closed:
		return 0, os.ErrClosed
	default:
	}
	select {
	case f := <-d.in:
		return copy(frame, f), nil
	case <-d.closed:
		return 0, os.ErrClosed
	}
}

// Write records a copy of frame for Next and Written. After Close it returns
// os.ErrClosed.
func (d *Device) Write(frame []byte) (int, error) {
	select {
	case <-d.closed:
		return 0, os.ErrClosed
	default:
	}
	f := append([]byte(nil), frame...)
	d.mu.Lock()
	d.written = append(d.written, f)
	d.mu.Unlock()
	select {
	case d.notify <- struct{}{}:
	default:
	}
	return len(frame), nil
}

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

// Package nsrun runs a function inside a network namespace without moving
// the caller: the one place where vxswitch changes a thread's namespace.
package nsrun

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// In runs fn on a fresh goroutine whose OS thread is locked and has entered
// the namespace target, then moves the thread back and returns fn's error.
// If the thread cannot be moved back it stays locked, so the Go runtime
// ends the thread with that goroutine instead of reusing a thread in the
// wrong namespace; the caller's own goroutine never changes namespace.
//
// Only what fn does on its goroutine happens inside target: goroutines it
// starts run on other threads, in the original namespace. Sockets and
// devices fn creates stay in target after In returns. In is safe for
// concurrent use; target stays owned by the caller.
func In(target netns.NsHandle, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		saved, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer saved.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter netns: %w", err)
			return
		}
		err = fn()
		if rerr := netns.Set(saved); rerr != nil {
			// Leave the thread locked: it ends with this goroutine.
			done <- errors.Join(err, fmt.Errorf("return to original netns: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

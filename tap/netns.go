package tap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// netnsDir is where 'ip netns add NAME' keeps the namespace files.
const netnsDir = "/var/run/netns/"

// ResolveNetNS turns a namespace name or path into the path of the
// namespace file. A bare name such as "api" becomes /var/run/netns/api; a
// value containing a slash (/var/run/netns/api, /proc/PID/ns/net) is used as
// a path. Either way the file must exist. The empty string is an error: a
// caller that means its own namespace leaves Config.NetNS empty instead.
func ResolveNetNS(nameOrPath string) (string, error) {
	if nameOrPath == "" {
		return "", errors.New(`tap: empty netns: give a name such as "api" or a path such as /proc/PID/ns/net`)
	}
	if strings.Contains(nameOrPath, "/") {
		if _, err := os.Stat(nameOrPath); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("tap: netns path %q not found: give an existing /var/run/netns/NAME or /proc/PID/ns/net", nameOrPath)
			}
			return "", fmt.Errorf("tap: netns path %q: %w", nameOrPath, err)
		}
		return nameOrPath, nil
	}
	if nameOrPath == "." || nameOrPath == ".." {
		return "", fmt.Errorf("tap: invalid netns name %q: give a name such as \"api\"", nameOrPath)
	}
	path := netnsDir + nameOrPath
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("tap: netns %q not found: create it with 'ip netns add %s'", nameOrPath, nameOrPath)
		}
		return "", fmt.Errorf("tap: netns %q: %w", nameOrPath, err)
	}
	return path, nil
}

// openNS returns a handle on the namespace at path, or on the calling
// thread's own namespace when path is "". The caller closes the handle.
func openNS(path string) (netns.NsHandle, error) {
	if path == "" {
		return netns.Get()
	}
	return netns.GetFromPath(path)
}

// inNS runs fn on a fresh goroutine whose OS thread is locked and has
// entered the namespace target, then moves the thread back and waits for the
// result. If the thread cannot be moved back it stays locked, so the Go
// runtime ends the thread with that goroutine instead of reusing a thread in
// the wrong namespace; the caller's own goroutine never changes namespace.
//
// Only what fn does on its goroutine happens inside target: goroutines it
// starts run on other threads, in the original namespace.
func inNS(target netns.NsHandle, fn func() error) error {
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

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFileName is the file in the data directory that an agent holds an
// exclusive flock on for as long as it runs; it contains the agent's PID.
const lockFileName = "agent.lock"

// lockDataDir takes the data directory for this process, before anything
// else touches it or the host: a second agent started by mistake with the
// same data directory is refused with the PID of the one that runs (as
// Consul and etcd do), and so can neither corrupt the Raft store nor remove
// the running agent's socket on its way out. The lock goes with the
// returned file: the kernel drops it when the process dies, so a crash
// leaves no stale lock.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent: open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := "unknown"
			if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				pid = strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("agent: data dir %s is in use by a running agent (pid %s): stop that agent first, or give this one its own --data-dir and --socket", dir, pid)
		}
		return nil, fmt.Errorf("agent: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

package agent

import (
	"fmt"
	"syscall"
)

// nsID identifies a network namespace: the device and inode of its nsfs
// file, which is what /proc/PID/ns/net and a bind mount under
// /var/run/netns lead to. A path can come to lead to another namespace (the
// process exited and its PID was reused, or a named namespace was deleted
// and made again); the identity recorded at attach time tells. The zero
// value means unknown.
type nsID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// statNS returns the identity of the namespace that path leads to now.
func statNS(path string) (nsID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nsID{}, fmt.Errorf("agent: stat netns %s: %w", path, err)
	}
	return nsID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}

// replacedNS reports whether path no longer leads to the namespace id (a
// known identity that differs from the current one). An unknown id, or a
// path that leads nowhere, is not reported: the caller's own open fails
// then.
func replacedNS(path string, id nsID) bool {
	if id == (nsID{}) {
		return false
	}
	cur, err := statNS(path)
	return err == nil && cur != id
}

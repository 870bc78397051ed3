package tap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
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

// openNSHandle opens the namespace at path ("" for the caller's own) and a
// netlink handle inside it. The caller closes both.
func openNSHandle(path string) (netns.NsHandle, *netlink.Handle, error) {
	target, err := openNS(path)
	if err != nil {
		return netns.None(), nil, fmt.Errorf("tap: open netns %s: %w", nsLabel(path), err)
	}
	inside, err := netlink.NewHandleAt(target)
	if err != nil {
		target.Close()
		return netns.None(), nil, fmt.Errorf("tap: netlink in netns %s: %w", nsLabel(path), err)
	}
	return target, inside, nil
}

package nsrun_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"

	"vxswitch/internal/netlab"
	"vxswitch/nsrun"
)

// TestIn checks that fn sees the target namespace (only a loopback device
// there), that its error comes back, and that the caller stays where it was.
func TestIn(t *testing.T) {
	netlab.RequireRoot(t)
	name := fmt.Sprintf("vxnsrun%d-", os.Getpid())
	path, err := netlab.AddNS(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlab.DelNS(name) })
	target, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	runtime.LockOSThread() // so that the namespace of "the caller" is one thread's
	defer runtime.UnlockOSThread()
	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()

	var inside []net.Interface
	sentinel := errors.New("from fn")
	err = nsrun.In(target, func() error {
		var err error
		inside, err = net.Interfaces()
		return errors.Join(err, sentinel)
	})
	if !errors.Is(err, sentinel) {
		t.Fatalf("In returned %v, want fn's error", err)
	}
	if len(inside) != 1 || inside[0].Name != "lo" {
		t.Errorf("inside the new namespace fn saw %v, want only lo", inside)
	}
	after, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if !after.Equal(before) {
		t.Errorf("the caller's namespace changed from %s to %s", before, after)
	}
}

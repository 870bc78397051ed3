package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vxswitch/internal/netlab"
)

// naiveRelay is one host's naive relay process ('vxswitch lab
// naive-relay'), started in the host's namespace.
type naiveRelay struct {
	cmd    *exec.Cmd
	stderr strings.Builder
	exited chan struct{}
}

// startNaive starts the naive relay of host h (the i-th, 1-based) towards
// peer: a TAP called nvx with 10.98.0.i/24 and the MTU the underlay leaves,
// VXLAN on naivePort. It returns once the relay says it is ready.
func startNaive(ctx context.Context, binary string, h, peer *netlab.Host, i int) (*naiveRelay, error) {
	r := &naiveRelay{exited: make(chan struct{})}
	r.cmd = exec.Command("ip", "netns", "exec", h.NS, binary, "lab", "naive-relay",
		"--tap", "nvx", "--addr", fmt.Sprintf("10.98.0.%d/24", i), "--mtu", strconv.Itoa(h.MTU-50),
		"--listen", netip.AddrPortFrom(h.Addr, naivePort).String(),
		"--peer", netip.AddrPortFrom(peer.Addr, naivePort).String(),
		"--vni", strconv.Itoa(naiveVNI))
	r.cmd.Stderr = &r.stderr
	// A bench that dies takes its relays with it: nothing else would stop them.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: naive relay on %s: %w", h.Name, err)
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start the naive relay on %s: %w", h.Name, err)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
		r.cmd.Wait()
		close(r.exited)
	}()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case ok := <-ready:
		if ok {
			return r, nil
		}
		<-r.exited
		return nil, fmt.Errorf("bench: the naive relay on %s did not start: %s", h.Name, strings.TrimSpace(r.stderr.String()))
	case <-timeout.C:
	case <-ctx.Done():
	}
	r.stop()
	return nil, fmt.Errorf("bench: the naive relay on %s did not say ready within 10 s", h.Name)
}

// stop ends the relay (SIGTERM, which makes it delete its TAP) and waits
// for it, killing it after 5 s.
func (r *naiveRelay) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

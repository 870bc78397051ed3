package integration

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
)

// TestSecondAgentRefused: an agent started by mistake with the data dir and
// socket of the running one is refused before it touches anything; the
// error names the running agent's PID, and the running agent still answers
// on its socket afterwards. A second agent with its own data dir but the
// same socket and addresses fails too, and leaves the socket alone.
func TestSecondAgentRefused(t *testing.T) {
	c := newLab(t, lab.Options{Hosts: 1, NoEndpoints: true, Network: "-"})
	a := c.Agents[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var st api.Status
	if err := a.Client().Get(ctx, "/v1/status", &st); err != nil {
		t.Fatal(err)
	}

	second := func(dataDir string) string {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", a.Host.NS, binary, "--socket", a.Socket, "agent",
			"--name", a.Host.Name, "--advertise", a.Host.Addr.String(), "--data-dir", dataDir, "--bootstrap")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("a second agent with data dir %s started:\n%s", dataDir, out)
		}
		return string(out)
	}

	out := second(a.DataDir)
	pid := strconv.Itoa(a.Pid())
	if !strings.Contains(out, "in use by a running agent (pid "+pid+")") || !strings.Contains(out, "--data-dir") {
		t.Errorf("second agent on the same data dir said:\n%s\nwant the running agent's pid %s and the fix", out, pid)
	}
	if err := a.Client().Get(ctx, "/v1/status", &st); err != nil {
		t.Fatalf("the running agent no longer answers on its socket after a second agent was refused: %v", err)
	}

	// With its own data dir it gets further, and fails to bind the VXLAN
	// port (or the socket): the failure the finding was about, where the
	// agent on its way out deleted the running agent's socket.
	out = second(t.TempDir())
	t.Logf("second agent with its own data dir: %s", strings.TrimSpace(out))
	if err := a.Client().Get(ctx, "/v1/status", &st); err != nil {
		t.Fatalf("the running agent no longer answers on its socket after a second agent was refused: %v", err)
	}
}

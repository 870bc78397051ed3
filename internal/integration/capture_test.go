package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vxswitch/api"
	"vxswitch/internal/lab"
)

// TestCapture captures and traces a cross-host ping on h1 with the CLI,
// then checks that tshark dissects the capture (VXLAN with the network's
// VNI around the inner ICMP), that the inner and outer records of a frame
// carry the same frame ID in their comments, that the trace names h2 as
// the VTEP host, and that 'vxswitch decode' reads the capture.
func TestCapture(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed, and CI=true: install it (.ci/run does)")
		}
		t.Skip("tshark is not installed: install it to run this test")
	}
	c := newLab(t, lab.Options{Hosts: 2})
	c1, c2 := c.Endpoints[0], c.Endpoints[1]
	h1 := c1.Agent
	var nw api.Network
	if err := h1.Client().Get(context.Background(), "/v1/networks/web", &nw); err != nil {
		t.Fatal(err)
	}
	ping(t, c1.NS, c2.IP.String(), 1) // ARP is answered now, not during the capture

	file := filepath.Join(t.TempDir(), "ping.pcapng")
	const records = 12 // 3 pings: request and reply, each inner and outer
	trace := captureAndTrace(t, h1.Socket,
		[]string{"--network", "web", "-c", fmt.Sprint(records), "-w", file},
		[]string{"--network", "web", "-c", "6"},
		func() { ping(t, c1.NS, c2.IP.String(), 3) })

	// tshark: VXLAN with the network's VNI around ICMP, comments linking
	// records.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tshark, "-r", file, "-T", "fields", "-E", "separator=|",
		"-e", "frame.interface_name", "-e", "vxlan.vni", "-e", "icmp.type", "-e", "ip.src", "-e", "ip.dst", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	idRe := regexp.MustCompile(`^frame (\d+) `)
	inner, outer := map[string]bool{}, map[string]bool{}
	vxlanICMP, replies := 0, 0
	// tshark lists the outer, then the inner IP addresses of a VXLAN
	// packet, separated by commas.
	innerIP := func(field string) string { return field[strings.LastIndex(field, ",")+1:] }
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 6 {
			t.Fatalf("tshark line %q: want 6 fields", line)
		}
		m := idRe.FindStringSubmatch(f[5])
		if m == nil {
			t.Errorf("record without a frame comment: %q", line)
			continue
		}
		if f[0] != "underlay" {
			inner[m[1]] = true
			continue
		}
		outer[m[1]] = true
		if f[1] == fmt.Sprint(nw.VNI) && f[2] != "" {
			vxlanICMP++
		}
		if f[2] == "0" || f[1] != fmt.Sprint(nw.VNI) {
			// An echo reply from h2 (decapsulated and delivered to
			// c1), or a record without the network's VNI: the
			// underlay record must show the packet as received, with
			// its VNI and the reply from c2 to c1 inside.
			replies++
			if f[1] != fmt.Sprint(nw.VNI) || f[2] != "0" || innerIP(f[3]) != c2.IP.String() || innerIP(f[4]) != c1.IP.String() {
				t.Errorf("underlay record %q: want VNI %d around an echo reply %s > %s", line, nw.VNI, c2.IP, c1.IP)
			}
		}
	}
	if vxlanICMP == 0 {
		t.Errorf("tshark found no VXLAN packet with VNI %d around ICMP:\n%s", nw.VNI, out)
	}
	if replies == 0 {
		t.Errorf("the capture has no underlay record of an echo reply from h2:\n%s", out)
	}
	linked := 0
	for id := range inner {
		if outer[id] {
			linked++
		}
	}
	if linked == 0 {
		t.Errorf("no frame ID is on both an inner and an outer record:\n%s", out)
	}

	// trace: the echo requests go to h2's VTEP, named.
	h2VTEP := c2.Agent.Host.Addr.String()
	want := fmt.Sprintf("| vtep to %s (%s)", h2VTEP, c2.Agent.Host.Name)
	found := false
	for _, line := range strings.Split(trace, "\n") {
		if strings.Contains(line, "ICMP echo request") && strings.Contains(line, want) && strings.Contains(line, "lookup raft") {
			found = true
		}
	}
	if !found {
		t.Errorf("no trace line of an echo request with %q:\n%s", want, trace)
	}
	// The echo replies come from the underlay: decapsulated in network web
	// with its VNI, the inner frame shown, delivered to c1.
	found = false
	for _, line := range strings.Split(trace, "\n") {
		if strings.Contains(line, " web underlay from ") && strings.Contains(line, "ICMP echo reply") &&
			strings.Contains(line, "| local to "+c1.Name) && strings.HasSuffix(line, fmt.Sprintf(" vni %d", nw.VNI)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no trace line of an echo reply from the underlay in network web, VNI %d, to %s:\n%s", nw.VNI, c1.Name, trace)
	}

	// decode reads vxswitch's own capture.
	dec, err := cli(t, h1, "decode", file)
	if err != nil || !strings.Contains(dec, "VXLAN") || !strings.Contains(dec, "EchoRequest") {
		t.Errorf("vxswitch decode %s: %v\n%s", file, err, dec)
	}

	// The answers the switch makes itself are on the port's interface too:
	// a name lookup shows the query and the resolver's response.
	dnsFile := filepath.Join(t.TempDir(), "dns.pcapng")
	dnsCmd := exec.Command(binary, "--socket", h1.Socket, "capture", "--endpoint", c1.Name, "-c", "8", "-w", dnsFile)
	var dnsErr bytes.Buffer
	dnsCmd.Stderr = &dnsErr
	if err := dnsCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dnsCmd.Process.Kill() })
	dnsDone := make(chan error, 1)
	go func() { dnsDone <- dnsCmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for waiting := true; waiting; {
		select {
		case err := <-dnsDone:
			if err != nil {
				t.Fatalf("capture failed: %v\n%s", err, dnsErr.String())
			}
			waiting = false
		case <-deadline:
			t.Fatalf("the DNS capture did not end\n%s", dnsErr.String())
		default:
			run(t, c1.NS, "getent", "hosts", c2.Name)
		}
	}
	out, err = exec.CommandContext(ctx, tshark, "-r", dnsFile, "-T", "fields", "-E", "separator=|",
		"-e", "frame.interface_name", "-e", "dns.flags.response", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", dnsFile, err)
	}
	if !regexp.MustCompile(`(?m)^` + c1.Name + `\|(1|True)\|frame \d+ vni \d+ in switch: made by the switch, to ` + c1.Name + `, answering frame \d+$`).Match(out) {
		t.Errorf("no DNS response made by the switch on %s in the capture:\n%s", c1.Name, out)
	}
}

// captureAndTrace runs 'vxswitch capture' and 'vxswitch trace' against the
// agent at socket with the given arguments, calls traffic until both have
// what they asked for (the first packets may go by before the agent has set
// up the streams), and returns what trace printed. It fails the test if
// either command fails or both have not ended within 60 s.
func captureAndTrace(t *testing.T, socket string, captureArgs, traceArgs []string, traffic func()) string {
	t.Helper()
	capCmd := exec.Command(binary, append([]string{"--socket", socket, "capture"}, captureArgs...)...)
	var out bytes.Buffer
	traceCmd := exec.Command(binary, append([]string{"--socket", socket, "trace"}, traceArgs...)...)
	traceCmd.Stdout = &out
	// Each command gets its own stderr buffer: exec copies them from two
	// goroutines.
	var capErr, traceErr bytes.Buffer
	capCmd.Stderr, traceCmd.Stderr = &capErr, &traceErr
	done := make(chan error, 2)
	for _, cmd := range []*exec.Cmd{capCmd, traceCmd} {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() }) // harmless once it has exited
		go func() { done <- cmd.Wait() }()
	}
	deadline := time.After(60 * time.Second)
	for finished := 0; finished < 2; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("capture or trace failed: %v\n%s%s", err, capErr.String(), traceErr.String())
			}
			finished++
		case <-deadline:
			t.Fatalf("capture and trace did not end within 60 s\n%s%s", capErr.String(), traceErr.String())
		default:
			traffic()
		}
	}
	return out.String()
}

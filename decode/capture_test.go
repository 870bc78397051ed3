package decode

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"vxswitch/internal/netlab"
)

var capture = flag.Bool("capture", false, "re-make testdata/decode/kernel-vxlan.pcap and .pcapng from a live Linux kernel VXLAN overlay (needs root, tcpdump)")

// TestMakeKernelCapture is not a check but the recipe of the kernel
// captures: two namespaces joined by a bridge, a kernel vxlan device in
// each (VNI 4242), one ping and one short TCP exchange across the overlay,
// captured with tcpdump on h1's underlay eth0. It runs only with -capture.
func TestMakeKernelCapture(t *testing.T) {
	if !*capture {
		t.Skip("re-make the kernel captures with: sudo go test ./decode/ -run TestMakeKernelCapture -capture")
	}
	lab := netlab.NewT(t, "vxdec", netlab.Options{Hosts: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	h1, h2 := lab.Hosts[0], lab.Hosts[1]
	for i, h := range lab.Hosts {
		// No IPv6: its neighbour discovery would cross the overlay too.
		if _, err := netlab.Exec(ctx, h.NS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
			t.Fatal(err)
		}
		peer := lab.Hosts[1-i].Addr
		err := h.KernelVTEP(netlab.VTEPOptions{
			VNI:   4242,
			Peers: []netip.Addr{peer},
			Addr:  netip.MustParsePrefix(fmt.Sprintf("10.42.0.%d/24", i+1)),
			MAC:   fmt.Sprintf("02:42:00:00:00:%02x", i+1),
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	pcapFile := filepath.Join(t.TempDir(), "kernel-vxlan.pcap")
	dump := startTcpdump(t, h1.NS, pcapFile)

	if _, err := netlab.Exec(ctx, h1.NS, "ping", "-c", "1", "-W", "2", "10.42.0.2"); err != nil {
		t.Fatal(err)
	}
	tcpExchange(t, h1, h2)

	// tcpdump stops by itself after 10 packets.
	if err := dump.stop(5 * time.Second); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	data, err := os.ReadFile(pcapFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kernel-vxlan.pcap"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pcapToPcapng(pcapFile, filepath.Join(dir, "kernel-vxlan.pcapng")); err != nil {
		t.Fatal(err)
	}
}

// tcpdump is a running tcpdump process.
type tcpdump struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit error, set before done is closed
}

// startTcpdump runs tcpdump on eth0 of namespace ns, writing at most 10
// VXLAN packets to file, and returns once it listens. Cleanup stops it if
// it still runs.
func startTcpdump(t *testing.T, ns, file string) *tcpdump {
	cmd := exec.Command("ip", "netns", "exec", ns,
		"tcpdump", "-i", "eth0", "-n", "-U", "-c", "10", "-w", file, "udp port 4789")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &tcpdump{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() { _ = d.stop(0) })
	// tcpdump says "listening on eth0" on stderr once it captures.
	sc := bufio.NewScanner(stderr)
	listening := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			listening = true
			break
		}
	}
	go func() {
		_, _ = io.Copy(io.Discard, stderr)
		d.err = cmd.Wait()
		close(d.done)
	}()
	if !listening {
		t.Fatal("tcpdump exited before it listened")
	}
	return d
}

// stop waits up to grace for tcpdump to exit by itself (after its packet
// count), then interrupts it, which makes it flush and exit.
func (d *tcpdump) stop(grace time.Duration) error {
	select {
	case <-d.done:
	case <-time.After(grace):
		// 'ip netns exec' execs tcpdump, so this is the tcpdump process.
		_ = d.cmd.Process.Signal(syscall.SIGINT)
		<-d.done
	}
	return d.err
}

// tcpExchange opens a TCP connection from h1 to h2 over the overlay,
// sends a line and reads one back.
func tcpExchange(t *testing.T, h1, h2 *netlab.Host) {
	var ln net.Listener
	err := netlab.Do(h2.NSPath, func() (err error) {
		ln, err = net.Listen("tcp4", "10.42.0.2:7000")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			_, err = fmt.Fprintf(c, "hi, you said %s", line)
		}
		served <- err
	}()
	var c net.Conn
	err = netlab.Do(h1.NSPath, func() (err error) {
		c, err = net.DialTimeout("tcp4", "10.42.0.2:7000", 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "hello vxlan\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if reply != "hi, you said hello vxlan\n" {
		t.Fatalf("reply %q", reply)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// pcapToPcapng writes the packets of a pcap file into a new pcapng file.
func pcapToPcapng(in, out string) (err error) {
	src, err := os.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	r, err := pcapgo.NewReader(src)
	if err != nil {
		return err
	}
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dst.Close()) }()
	w, err := pcapgo.NewNgWriter(dst, r.LinkType())
	if err != nil {
		return err
	}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		ci.InterfaceIndex = 0
		if err := w.WritePacket(ci, data); err != nil {
			return err
		}
	}
	return w.Flush()
}

package tap

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"vxswitch/internal/netlab"
)

func TestVnetHdr(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		hdr  VnetHdr
	}{
		{"plain frame", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, VnetHdr{}},
		{"checksum only", []byte{1, 0, 0, 0, 0, 0, 34, 0, 16, 0},
			VnetHdr{Flags: VnetNeedsCsum, CsumStart: 34, CsumOffset: 16}},
		{"tso v4", []byte{1, 1, 66, 0, 0x76, 0x05, 34, 0, 16, 0},
			VnetHdr{Flags: VnetNeedsCsum, GSOType: VnetGSOTCPv4, HdrLen: 66, GSOSize: 1398, CsumStart: 34, CsumOffset: 16}},
		{"tso v6", []byte{1, 4, 86, 0, 0x62, 0x05, 54, 0, 16, 0},
			VnetHdr{Flags: VnetNeedsCsum, GSOType: VnetGSOTCPv6, HdrLen: 86, GSOSize: 1378, CsumStart: 54, CsumOffset: 16}},
	}
	for _, tt := range tests {
		if got := DecodeVnetHdr(tt.wire); got != tt.hdr {
			t.Errorf("%s: decoded %+v, want %+v", tt.name, got, tt.hdr)
		}
		b := make([]byte, VnetHdrLen)
		tt.hdr.Encode(b)
		if string(b) != string(tt.wire) {
			t.Errorf("%s: encoded % x, want % x", tt.name, b, tt.wire)
		}
	}
	ecn := DecodeVnetHdr([]byte{1, VnetGSOTCPv4 | VnetGSOECN, 0, 0, 0, 0, 0, 0, 0, 0})
	if ecn.GSOType != VnetGSOTCPv4 {
		t.Errorf("ECN bit not masked: GSO type %#x", ecn.GSOType)
	}
}

// createOffload makes the endpoint's TAP with offloads in the namespace at
// path; it is closed when the test ends.
func createOffload(t *testing.T, path string) *TAP {
	t.Helper()
	tp, err := Create(Config{NetNS: path, Name: "eth0", MAC: epMAC, MTU: 1400, Addr: epAddr, Offload: true, GSOMaxSegs: 44})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { tp.Close() })
	if !tp.Offload() {
		t.Fatal("Offload() is false: the kernel refused IFF_VNET_HDR or TUNSETOFFLOAD")
	}
	return tp
}

func TestOffloadDevice(t *testing.T) {
	_, path := newNS(t)
	tp := createOffload(t, path)

	h := handleIn(t, path)
	link, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if got := link.Attrs().GSOMaxSegs; got != 44 {
		t.Errorf("gso_max_segs %d, want 44", got)
	}

	// Plain Write and Read add and strip the vnet header.
	arpExchange(t, tp)

	// WriteVnet and ReadVnet carry it.
	pkt := append(make([]byte, VnetHdrLen), arpRequest...)
	if _, err := tp.WriteVnet(pkt); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, VnetHdrLen+65535)
		for {
			n, err := tp.ReadVnet(buf)
			if err != nil {
				got <- err
				return
			}
			if n >= VnetHdrLen && isARPReply(buf[VnetHdrLen:n]) {
				got <- nil
				return
			}
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		tp.Close()
		t.Fatal("no ARP reply through ReadVnet")
	}
}

func TestOffloadChecksumCompleted(t *testing.T) {
	_, path := newNS(t)
	tp := createOffload(t, path)
	h := handleIn(t, path)
	link, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	// A static neighbour, so the endpoint sends without asking ARP.
	if err := h.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT,
		IP: net.IPv4(10, 9, 0, 1), HardwareAddr: agentMAC}); err != nil {
		t.Fatal(err)
	}
	// A UDP socket made inside the namespace sends through the TAP; its
	// checksum is left to the device (NEEDS_CSUM), so Read completes it.
	var conn *net.UDPConn
	if err := netlab.Do(path, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 9, 0, 1), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("offloaded checksum")); err != nil {
		t.Fatal(err)
	}
	readMatch(t, tp, func(f []byte) bool {
		if len(f) < 42 || f[23] != 17 || binary.BigEndian.Uint16(f[36:]) != 9999 {
			return false
		}
		udp := f[34:]
		var sum uint32 = 17 + uint32(len(udp))
		for _, w := range [][]byte{f[26:34], udp} {
			for i := 0; i+1 < len(w); i += 2 {
				sum += uint32(binary.BigEndian.Uint16(w[i:]))
			}
			if len(w)%2 == 1 {
				sum += uint32(w[len(w)-1]) << 8
			}
		}
		for sum>>16 != 0 {
			sum = sum>>16 + sum&0xffff
		}
		if sum != 0xffff {
			t.Errorf("UDP checksum of the frame read does not verify (sum %#04x)", sum)
		}
		return true
	})
}

func TestOffloadCloseUnblocksReadVnet(t *testing.T) {
	_, path := newNS(t)
	tp := createOffload(t, path)
	read := make(chan error, 1)
	go func() {
		buf := make([]byte, VnetHdrLen+65535)
		for {
			if _, err := tp.ReadVnet(buf); err != nil {
				read <- err
				return
			}
		}
	}()
	closeUnblocks(t, tp, read, "ReadVnet")
}

func TestOffloadReadVnetIdle(t *testing.T) {
	_, path := newNS(t)
	tp := createOffload(t, path)
	// The endpoint answers each ARP request within WriteVnet, so three
	// answers wait in the device before the first read.
	req := append(make([]byte, VnetHdrLen), arpRequest...)
	for range 3 {
		if _, err := tp.WriteVnet(req); err != nil {
			t.Fatal(err)
		}
	}
	var idled atomic.Int32
	idle := func() { idled.Add(1) }
	buf := make([]byte, VnetHdrLen+65535)
	for replies := 0; replies < 3; {
		n, err := tp.ReadVnetIdle(buf, idle)
		if err != nil {
			t.Fatal(err)
		}
		if n >= VnetHdrLen && isARPReply(buf[VnetHdrLen:n]) {
			replies++
		}
	}
	if n := idled.Load(); n != 0 {
		t.Fatalf("idle ran %d times while answers were waiting", n)
	}
	// Nothing more comes: a read runs idle, then waits until Close.
	read := make(chan error, 1)
	go func() {
		for {
			if _, err := tp.ReadVnetIdle(buf, idle); err != nil {
				read <- err
				return
			}
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); idled.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a read that found nothing did not run idle within 5 s")
		}
	}
	closeUnblocks(t, tp, read, "ReadVnetIdle")
}

package arp

import (
	"bytes"
	"net/netip"
	"testing"

	"vxswitch/header"
)

var (
	macA     = header.MAC{0x02, 0, 0, 0, 0, 0x0a}
	macR     = header.MAC{0x02, 0, 0, 0, 0, 0x72}
	macRes   = header.MAC{0x02, 0, 0, 0, 0, 0x53}
	ipA      = netip.MustParseAddr("10.100.0.10")
	ipR      = netip.MustParseAddr("10.100.0.20")
	resolver = netip.MustParseAddr("10.100.0.1")
)

// request is an ARP request from macA/ipA for ipR, byte for byte.
var request = []byte{
	0, 1, 0x08, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
	0x02, 0, 0, 0, 0, 0x0a, 10, 100, 0, 10, // sender macA ipA
	0, 0, 0, 0, 0, 0, 10, 100, 0, 20, // target ipR
}

// TestReplyBytes checks one answer byte for byte.
func TestReplyBytes(t *testing.T) {
	req, ok := ParseRequest(request)
	if !ok {
		t.Fatal("ParseRequest refused a request")
	}
	if req != (Request{SenderMAC: macA, SenderIP: ipA, TargetIP: ipR}) {
		t.Fatalf("ParseRequest = %+v", req)
	}
	want := []byte{
		0, 1, 0x08, 0, 6, 4, 0, 2, // reply
		0x02, 0, 0, 0, 0, 0x72, 10, 100, 0, 20, // ipR is at macR
		0x02, 0, 0, 0, 0, 0x0a, 10, 100, 0, 10,
	}
	got := make([]byte, header.ARPLen)
	PutReply(got, req, macR)
	if !bytes.Equal(got, want) {
		t.Errorf("reply\n got % x\nwant % x", got, want)
	}
}

func TestParseRequestRefuses(t *testing.T) {
	reply := bytes.Clone(request)
	reply[7] = 2
	for name, b := range map[string][]byte{"short": request[:27], "reply": reply, "empty": nil} {
		if _, ok := ParseRequest(b); ok {
			t.Errorf("%s: ParseRequest accepted % x", name, b)
		}
	}
}

func TestLookup(t *testing.T) {
	addrs := mapAddrs{ipA: macA, ipR: macR}
	tests := []struct {
		name string
		req  Request
		want header.MAC
		ok   bool
	}{
		{"endpoint", Request{macA, ipA, ipR}, macR, true},
		{"resolver", Request{macA, ipA, resolver}, macRes, true},
		{"unknown", Request{macA, ipA, netip.MustParseAddr("10.100.0.99")}, header.MAC{}, false},
		{"gratuitous request", Request{macA, ipA, ipA}, header.MAC{}, false},
		{"duplicate address probe", Request{macA, netip.IPv4Unspecified(), ipA}, header.MAC{}, false},
	}
	for _, tt := range tests {
		got, ok := Lookup(tt.req, resolver, macRes, addrs)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: Lookup = %v %v, want %v %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := Lookup(Request{macA, ipA, resolver}, resolver, header.MAC{}, addrs); ok {
		t.Error("answered for the resolver without a resolver MAC")
	}
}

func TestGratuitous(t *testing.T) {
	g := make([]byte, GratuitousLen)
	PutGratuitous(g, ipR, macR)
	eth := header.Ethernet(g)
	a := header.ARP(eth.Payload())
	if eth.Destination() != header.BroadcastMAC || eth.Source() != macR || eth.Type() != header.EtherTypeARP {
		t.Errorf("Ethernet header % x", g[:header.EthernetLen])
	}
	if !a.IsValid() || a.Op() != header.ARPReply || a.SenderMAC() != macR || a.SenderIP() != ipR ||
		a.TargetMAC() != macR || a.TargetIP() != ipR {
		t.Errorf("ARP packet % x", a)
	}
}

func TestMemory(t *testing.T) {
	var m Memory
	if m.Saw(1, ipA, macA) {
		t.Error("a new address counted as a change")
	}
	if m.Saw(1, ipA, macA) {
		t.Error("the same MAC counted as a change")
	}
	if !m.Saw(1, ipA, macR) {
		t.Error("a new MAC did not count as a change")
	}
	if m.Saw(2, ipA, macA) {
		t.Error("another network shares the memory")
	}
	m.Keep(func(vni uint32) bool { return vni == 2 })
	if m.Saw(1, ipA, macA) {
		t.Error("a forgotten network still remembered its address")
	}
	m.Forget(2, ipA)
	if m.Saw(2, ipA, macR) {
		t.Error("a forgotten address still counted as a change")
	}
	m.Forget(3, ipA) // a network it never saw: nothing to do
}

// mapAddrs is the table Lookup reads, as a Go map.
type mapAddrs map[netip.Addr]header.MAC

func (m mapAddrs) Get(ip netip.Addr) (header.MAC, bool) { mac, ok := m[ip]; return mac, ok }

package vswitch

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/gopacket/layers"
)

// arpFrame builds a broadcast ARP request from sha/spa for tpa with gopacket.
func arpFrame(t testing.TB, sha MAC, spa, tpa netip.Addr) []byte {
	t.Helper()
	return serialize(t,
		&layers.Ethernet{DstMAC: net.HardwareAddr(BroadcastMAC[:]), SrcMAC: net.HardwareAddr(sha[:]), EthernetType: layers.EthernetTypeARP},
		&layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
			SourceHwAddress: sha[:], SourceProtAddress: spa.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: tpa.AsSlice(),
		})
}

// checkARPReply checks that frame is an ARP reply telling the requester
// (reqMAC, reqIP) that ip is at mac, with gopacket decoding every field.
func checkARPReply(t *testing.T, frame []byte, mac MAC, ip netip.Addr, reqMAC MAC, reqIP netip.Addr) {
	t.Helper()
	pkt := decode(t, frame)
	e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	if !ok {
		t.Fatalf("not an ARP frame: % x", frame)
	}
	if !bytes.Equal(e.DstMAC, reqMAC[:]) || !bytes.Equal(e.SrcMAC, mac[:]) || e.EthernetType != layers.EthernetTypeARP {
		t.Errorf("Ethernet %v -> %v type %v, want %v -> %v ARP", e.SrcMAC, e.DstMAC, e.EthernetType, mac, reqMAC)
	}
	if a.Operation != layers.ARPReply || a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 ||
		a.HwAddressSize != 6 || a.ProtAddressSize != 4 {
		t.Errorf("ARP header %+v, want an IPv4/Ethernet reply", a)
	}
	if !bytes.Equal(a.SourceHwAddress, mac[:]) || !bytes.Equal(a.SourceProtAddress, ip.AsSlice()) ||
		!bytes.Equal(a.DstHwAddress, reqMAC[:]) || !bytes.Equal(a.DstProtAddress, reqIP.AsSlice()) {
		t.Errorf("ARP %v is-at %v for %v/%v, want %v is-at %v for %v/%v",
			net.IP(a.SourceProtAddress), net.HardwareAddr(a.SourceHwAddress), net.IP(a.DstProtAddress),
			net.HardwareAddr(a.DstHwAddress), ip, mac, reqIP, reqMAC)
	}
}

func TestARPSuppressed(t *testing.T) {
	tests := []struct {
		name   string
		target netip.Addr
		want   MAC
	}{
		{"local endpoint", ipB, macB},
		{"remote endpoint", ipR, macR},
		{"resolver", resolverIP, resolverMAC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newNamesWorld(t, Config{}, 1500)
			w.fromPort(t, "a", arpFrame(t, macA, ipA, tt.target))
			checkARPReply(t, onlyFrame(t, w.a.Written()), tt.want, tt.target, macA, ipA)
			if got := writtenCount(w.b, w.c); !slices.Equal(got, []int{0, 0}) {
				t.Errorf("frames written to b, c = %v, want none", got)
			}
			mustNothingSent(t, w)
			if st := w.s.Stats(); st.ARPSuppressed != 1 || st.ARPFlooded != 0 {
				t.Errorf("ARPSuppressed %d ARPFlooded %d, want 1 0", st.ARPSuppressed, st.ARPFlooded)
			}
		})
	}
}

// TestARPReplyBytes checks one answer byte for byte.
func TestARPReplyBytes(t *testing.T) {
	w := newNamesWorld(t, Config{}, 1500)
	req := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x0a, 0x08, 0x06, // Ethernet
		0, 1, 0x08, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
		0x02, 0, 0, 0, 0, 0x0a, 10, 100, 0, 10, // sender macA ipA
		0, 0, 0, 0, 0, 0, 10, 100, 0, 20, // target ipR
	}
	want := []byte{
		0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x72, 0x08, 0x06,
		0, 1, 0x08, 0, 6, 4, 0, 2, // reply
		0x02, 0, 0, 0, 0, 0x72, 10, 100, 0, 20, // ipR is at macR
		0x02, 0, 0, 0, 0, 0x0a, 10, 100, 0, 10,
	}
	w.fromPort(t, "a", req)
	if got := onlyFrame(t, w.a.Written()); !bytes.Equal(got, want) {
		t.Errorf("reply\n got % x\nwant % x", got, want)
	}
}

func TestARPFlooded(t *testing.T) {
	tests := []struct {
		name     string
		sha      MAC
		spa, tpa netip.Addr
	}{
		{"unknown address", macA, ipA, ipUnknown},
		{"gratuitous request", macA, ipA, ipA},
		{"duplicate address probe", macA, netip.IPv4Unspecified(), ipA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newNamesWorld(t, Config{}, 1500)
			frame := arpFrame(t, tt.sha, tt.spa, tt.tpa)
			w.fromPort(t, "a", frame)
			if got := writtenCount(w.a, w.b, w.c); !slices.Equal(got, []int{0, 1, 0}) {
				t.Fatalf("frames written to a, b, c = %v, want [0 1 0]", got)
			}
			checkSent(t, w.u.packets(), 100, frame, host2, host3, external)
			if st := w.s.Stats(); st.ARPSuppressed != 0 || st.ARPFlooded != 1 {
				t.Errorf("ARPSuppressed %d ARPFlooded %d, want 0 1", st.ARPSuppressed, st.ARPFlooded)
			}
		})
	}
}

func TestARPWithoutAddrsFloods(t *testing.T) {
	w := newWorld(t, Config{}) // testView: no Addrs, no resolver
	w.fromPort(t, "a", arpFrame(t, macA, ipA, ipB))
	if got := writtenCount(w.a, w.b); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("frames written to a, b = %v, want [0 1]", got)
	}
	if st := w.s.Stats(); st.ARPFlooded != 1 {
		t.Errorf("ARPFlooded = %d, want 1", st.ARPFlooded)
	}
}

func TestGratuitousARPOnMACChange(t *testing.T) {
	w := newNamesWorld(t, Config{}, 1500)
	v := namesView(1500)
	v.Networks[100].Addrs = v.Networks[100].Addrs.With(ipR, macX) // ipR moved to a new MAC
	v.Networks[100].Addrs = v.Networks[100].Addrs.With(ipUnknown, macE)
	w.s.SetView(v)

	for _, d := range []struct {
		name string
		got  [][]byte
	}{{"a", w.a.Written()}, {"b", w.b.Written()}} {
		g := onlyFrame(t, d.got)
		pkt := decode(t, g)
		e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		a := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !bytes.Equal(e.DstMAC, BroadcastMAC[:]) || !bytes.Equal(e.SrcMAC, macX[:]) {
			t.Errorf("%s: Ethernet %v -> %v, want %v -> broadcast", d.name, e.SrcMAC, e.DstMAC, macX)
		}
		if a.Operation != layers.ARPReply ||
			!bytes.Equal(a.SourceHwAddress, macX[:]) || !bytes.Equal(a.DstHwAddress, macX[:]) ||
			!bytes.Equal(a.SourceProtAddress, ipR.AsSlice()) || !bytes.Equal(a.DstProtAddress, ipR.AsSlice()) {
			t.Errorf("%s: gratuitous ARP %+v", d.name, a)
		}
	}
	if n := len(w.c.Written()); n != 0 {
		t.Errorf("port c of another network got %d frames", n)
	}
	mustNothingSent(t, w)
	if st := w.s.Stats(); st.GARPSent != 2 {
		t.Errorf("GARPSent = %d, want 2", st.GARPSent)
	}

	// An address moving to port b's own MAC is not announced to b.
	v2 := namesView(1500)
	v2.Networks[100].Addrs = v2.Networks[100].Addrs.With(ipR, macB)
	w.s.SetView(v2)
	if got := writtenCount(w.a, w.b); !slices.Equal(got, []int{2, 1}) {
		t.Errorf("frames written to a, b = %v, want [2 1]", got)
	}
	// The same view again announces nothing.
	w.s.SetView(v2)
	if st := w.s.Stats(); st.GARPSent != 3 {
		t.Errorf("GARPSent = %d, want 3", st.GARPSent)
	}
}

// TestGratuitousARPOnReuse: an address freed by a detach (absent from the
// views in between) and given to an endpoint with a new MAC is announced,
// because the peers' caches may still hold the old MAC. The frame is a
// broadcast ARP reply with sender and target both the address (golden).
func TestGratuitousARPOnReuse(t *testing.T) {
	w := newNamesWorld(t, Config{}, 1500)
	held := namesView(1500)
	held.Networks[100].Addrs = held.Networks[100].Addrs.With(ipUnknown, macE) // a new address: not announced
	w.s.SetView(held)
	w.s.SetView(namesView(1500)) // detached: gone, nothing to announce
	if got := writtenCount(w.a, w.b); !slices.Equal(got, []int{0, 0}) {
		t.Fatalf("frames written to a, b before the reuse = %v, want none", got)
	}
	reused := namesView(1500)
	reused.Networks[100].Addrs = reused.Networks[100].Addrs.With(ipUnknown, macX)
	w.s.SetView(reused)

	golden := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Ethernet destination: broadcast
		0x02, 0, 0, 0, 0, 0x58, // source: the new MAC
		0x08, 0x06, // EtherType ARP
		0x00, 0x01, 0x08, 0x00, 6, 4, // Ethernet, IPv4, lengths
		0x00, 0x02, // reply
		0x02, 0, 0, 0, 0, 0x58, 10, 100, 0, 99, // sender: new MAC, reused address
		0x02, 0, 0, 0, 0, 0x58, 10, 100, 0, 99, // target: the same
	}
	for _, d := range []struct {
		name string
		got  [][]byte
	}{{"a", w.a.Written()}, {"b", w.b.Written()}} {
		if g := onlyFrame(t, d.got); !bytes.Equal(g, golden) {
			t.Errorf("%s: announcement\n% x\nwant\n% x", d.name, g, golden)
		}
	}
	if st := w.s.Stats(); st.GARPSent != 2 {
		t.Errorf("GARPSent = %d, want 2", st.GARPSent)
	}
	// Removing the network forgets its addresses.
	w.s.SetView(&View{})
	w.s.SetView(reused)
	if st := w.s.Stats(); st.GARPSent != 2 {
		t.Errorf("GARPSent after the network came back = %d, want 2", st.GARPSent)
	}
}

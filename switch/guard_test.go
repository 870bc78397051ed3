package vswitch

import (
	"net/netip"
	"testing"
	"time"

	"vxswitch/header"
	"vxswitch/tap/taptest"
	"vxswitch/vxlan"
)

// More of the guard's test world: macD is an endpoint of VNI 100 known only
// from Addrs (not a local port, not in Remote), and ipX is an address of no
// endpoint, used by a MAC behind port a.
var (
	macD = MAC{0x02, 0, 0, 0, 0, 0x0d}
	ipD  = netip.MustParseAddr("10.100.0.30")
	ipX  = netip.MustParseAddr("10.100.0.200")
	zero = netip.IPv4Unspecified()
)

// guardView is namesView(1500) with macD at ipD in Addrs.
func guardView() *View {
	v := namesView(1500)
	v.Networks[100].Addrs = v.Networks[100].Addrs.With(ipD, macD)
	return v
}

// guardDrops are the reasons of guard.go.
var guardDrops = []string{"bad_src_mac", "spoofed_mac", "spoofed_ip", "flood_limit", "stacked_vlan", "mac_taken", "unassigned_ip", "router_advert"}

// udp4 builds an Ethernet/IPv4/UDP frame from sip to dip, byte by byte: a
// 20-byte IPv4 header (checksum left 0; the guard does not look at it) and
// an 8-byte UDP header for ports 68 -> 67 with 4 bytes of payload.
func udp4(dst, src MAC, sip, dip netip.Addr) []byte {
	f := eth(dst, src, 0x0800, 14+20+8+4)
	copy(f[14:26], []byte{0x45, 0x00, 0x00, 32, 0x00, 0x01, 0x00, 0x00, 64, 17, 0x00, 0x00})
	s4, d4 := sip.As4(), dip.As4()
	copy(f[26:30], s4[:])
	copy(f[30:34], d4[:])
	copy(f[34:], []byte{0x00, 68, 0x00, 67, 0x00, 12, 0x00, 0x00, 'd', 'h', 'c', 'p'})
	return f
}

// vlan inserts an 802.1Q tag (VLAN 5) into frame.
func vlan(frame []byte) []byte {
	f := append([]byte(nil), frame[:12]...)
	f = append(f, 0x81, 0x00, 0x00, 0x05)
	return append(f, frame[12:]...)
}

// arp4 builds a broadcast ARP packet (IPv4 over Ethernet) byte by byte.
func arp4(src MAC, op byte, sha MAC, spa, tpa netip.Addr) []byte {
	f := eth(BroadcastMAC, src, 0x0806, 14+28)
	copy(f[14:22], []byte{0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, op})
	s4, t4 := spa.As4(), tpa.As4()
	copy(f[22:28], sha[:])
	copy(f[28:32], s4[:])
	copy(f[32:38], make([]byte, 6))
	copy(f[38:42], t4[:])
	return f
}

// guardCounts returns the guard's drop counters of s.
func guardCounts(s *Switch) map[string]uint64 {
	out := map[string]uint64{}
	for _, r := range guardDrops {
		if n := s.Stats().Drops[r]; n != 0 {
			out[r] = n
		}
	}
	return out
}

func TestGuardFromPort(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		drop  string // "" = passes the guard
	}{
		{"multicast source", eth(macB, MAC{0x01, 0x00, 0x5e, 0, 0, 1}, 0x88b5, 60), "bad_src_mac"},
		{"broadcast source", eth(macB, BroadcastMAC, 0x88b5, 60), "bad_src_mac"},
		{"zero source", eth(macB, MAC{}, 0x88b5, 60), "bad_src_mac"},
		{"another local port's MAC", eth(BroadcastMAC, macB, 0x88b5, 60), "spoofed_mac"},
		{"a remote endpoint's MAC", eth(macB, macR, 0x88b5, 60), "spoofed_mac"},
		{"an endpoint MAC known from Addrs only", eth(macB, macD, 0x88b5, 60), "spoofed_mac"},
		{"the resolver's MAC", eth(macB, resolverMAC, 0x88b5, 60), "spoofed_mac"},
		{"ARP with another endpoint's sender MAC", arp4(macA, 2, macB, ipA, ipB), "spoofed_mac"},
		{"ARP reply claiming another endpoint's address", arp4(macA, 2, macA, ipB, ipB), "spoofed_ip"},
		{"ARP request from a remote endpoint's address", arp4(macA, 1, macA, ipR, ipB), "spoofed_ip"},
		{"ARP claiming the resolver's address", arp4(macA, 2, macA, resolverIP, resolverIP), "spoofed_ip"},
		{"IPv4 from another endpoint's address", udp4(macB, macA, ipR, ipB), "spoofed_ip"},
		{"IPv4 from an Addrs-only endpoint's address", udp4(macB, macA, ipD, ipB), "spoofed_ip"},
		{"IPv4 from the resolver's address", udp4(macB, macA, resolverIP, ipB), "spoofed_ip"},
		{"tagged IPv4 from another endpoint's address", vlan(udp4(macB, macA, ipB, ipB)), "spoofed_ip"},
		{"MAC behind the port using another endpoint's address", udp4(macB, macX, ipB, ipB), "spoofed_ip"},
		{"MAC behind the port ARPing as another endpoint", arp4(macX, 1, macX, ipR, ipB), "spoofed_ip"},
		{"double-tagged ARP claiming another endpoint's address", vlan(vlan(arp4(macA, 2, macA, ipB, ipB))), "stacked_vlan"},

		{"own MAC and address", udp4(macB, macA, ipA, ipB), ""},
		{"tagged, own MAC and address", vlan(udp4(macB, macA, ipA, ipB)), ""},
		{"DHCP discover from 0.0.0.0", udp4(BroadcastMAC, macA, zero, netip.MustParseAddr("255.255.255.255")), ""},
		{"ARP probe from 0.0.0.0", arp4(macA, 1, macA, zero, ipA), ""},
		{"gratuitous ARP for the own address", arp4(macA, 2, macA, ipA, ipA), ""},
		{"MAC behind the port with its own address", udp4(macB, macX, ipX, ipB), ""},
		{"MAC behind the port ARPing with its own address", arp4(macX, 1, macX, ipX, ipB), ""},
		{"MAC behind the port using the port's address", udp4(macB, macX, ipA, ipB), ""},
		// Weak host model: a macvlan's address sent from the port's MAC.
		{"own MAC with an address of no endpoint", udp4(macB, macA, ipX, ipB), ""},
		{"own MAC answering ARP for an address of no endpoint", arp4(macA, 2, macA, ipX, ipB), ""},
		{"not IP nor ARP", eth(macB, macA, 0x88b5, 60), ""},
		{"truncated IPv4 header", eth(macB, macA, 0x0800, 20), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, Config{})
			w.s.SetView(guardView())
			w.fromPort(t, "a", tc.frame)
			got := guardCounts(w.s)
			if tc.drop == "" {
				if len(got) != 0 {
					t.Fatalf("drops %v, want the frame to pass the guard", got)
				}
				if st := w.s.Stats(); st.TxFrames+st.EncapFrames+st.ARPSuppressed == 0 {
					t.Fatalf("the frame went nowhere: %+v", st)
				}
				return
			}
			if len(got) != 1 || got[tc.drop] != 1 {
				t.Fatalf("drops %v, want exactly one %q", got, tc.drop)
			}
			if n := writtenCount(w.a, w.b, w.c); n[0]+n[1]+n[2] != 0 {
				t.Errorf("ports got %v frames, want none", n)
			}
			mustNothingSent(t, w)
			if l := w.s.Learned(); len(l) != 0 {
				t.Errorf("learned %v from a refused frame", l)
			}
		})
	}
}

// TestGuardBehindEndpoint: a MAC behind port a (a VM or a macvlan in the
// container) with an address of its own is learned and forwarded both
// ways, locally and from the underlay.
func TestGuardBehindEndpoint(t *testing.T) {
	w := newWorld(t, Config{})
	w.s.SetView(guardView())
	out := udp4(macB, macX, ipX, ipB)
	w.fromPort(t, "a", out)
	if got := onlyFrame(t, w.b.Written()); string(got) != string(out) {
		t.Fatalf("port b got % x, want % x", got, out)
	}
	if l := w.s.Learned(); len(l) != 1 || l[0].MAC != macX || l[0].Port != "a" {
		t.Fatalf("learned %v, want macX on port a", l)
	}
	back := udp4(macX, macR, ipR, ipX)
	w.fromUnderlay(host2, 100, back)
	if got := onlyFrame(t, w.a.Written()); string(got) != string(back) {
		t.Fatalf("port a got % x, want % x", got, back)
	}
	if got := guardCounts(w.s); len(got) != 0 {
		t.Fatalf("drops %v, want none", got)
	}
}

func TestGuardFromUnderlay(t *testing.T) {
	for _, tc := range []struct {
		name string
		from netip.Addr
		src  MAC
		drop string // "" = delivered to port a
	}{
		{"multicast inner source", host2, MAC{0x33, 0x33, 0, 0, 0, 1}, "bad_src_mac"},
		{"zero inner source", host2, MAC{}, "bad_src_mac"},
		{"a local port's MAC", host2, macB, "spoofed_mac"},
		{"a local port's MAC from an external VTEP", external, macA, "spoofed_mac"},
		{"a remote MAC from the wrong host", host3, macR, "spoofed_mac"},
		{"a remote MAC from an external VTEP", external, macR, "spoofed_mac"},

		{"a remote MAC from its host", host2, macR, ""},
		{"a remote MAC from its host, IPv4-mapped source", netip.AddrFrom16(host2.As16()), macR, ""},
		{"an unknown MAC from a member", host3, macX, ""},
		{"a MAC behind an external VTEP", external, macE, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, Config{})
			w.s.SetView(guardView())
			w.fromUnderlay(tc.from, 100, eth(macA, tc.src, 0x88b5, 60))
			got, st := guardCounts(w.s), w.s.Stats()
			if tc.drop == "" {
				if len(got) != 0 || len(w.a.Written()) != 1 || st.DecapFrames != 1 {
					t.Fatalf("drops %v, port a got %d frames, decap %d; want it delivered", got, len(w.a.Written()), st.DecapFrames)
				}
				return
			}
			if len(got) != 1 || got[tc.drop] != 1 {
				t.Fatalf("drops %v, want exactly one %q", got, tc.drop)
			}
			if n := writtenCount(w.a, w.b, w.c); n[0]+n[1]+n[2] != 0 || st.DecapFrames != 0 {
				t.Errorf("ports got %v frames, decap %d; want none", n, st.DecapFrames)
			}
			if len(w.s.FDB()) != 3+1 { // own MACs of a, b, c and macR from the view
				t.Errorf("fdb %v: a refused frame was learned", w.s.FDB())
			}
		})
	}
}

// TestGuardFromUnderlayAddresses: a member host cannot use, through VXLAN,
// the address of an endpoint that is not behind it: an ARP reply that claims
// another endpoint's IP (which would poison the neighbour caches of the
// endpoints it reaches) or the resolver's is dropped and counted, as is a
// frame that hides its ARP header behind two VLAN tags. macR at ipR lives
// on host2; macA/ipA is local port a.
func TestGuardFromUnderlayAddresses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		from  netip.Addr
		frame []byte
		drop  string // "" = delivered to port a
	}{
		{"ARP reply claiming a local endpoint's IP", host2, arp4(macR, 2, macR, ipA, ipB), "spoofed_ip"},
		{"ARP reply claiming another host's endpoint IP", host3, arp4(macX, 2, macX, ipR, ipA), "spoofed_ip"},
		{"ARP reply claiming the resolver", host2, arp4(macR, 2, macR, resolverIP, ipA), "spoofed_ip"},
		{"ARP with a local port's MAC as sender", host2, arp4(macR, 2, macB, ipR, ipA), "spoofed_mac"},
		{"IPv4 from a local endpoint's address", host2, udp4(macA, macR, ipB, ipA), "spoofed_ip"},
		{"ARP behind two VLAN tags", host2, vlan(vlan(arp4(macR, 2, macR, ipA, ipB))), "stacked_vlan"},

		{"ARP from the endpoint's own host", host2, arp4(macR, 2, macR, ipR, ipA), ""},
		{"IPv4 from the endpoint's own host", host2, udp4(macA, macR, ipR, ipA), ""},
		{"ARP for an address of no endpoint", external, arp4(macE, 2, macE, ipUnknown, ipA), ""},
		{"ARP probe (sender 0.0.0.0)", host3, arp4(macX, 1, macX, netip.IPv4Unspecified(), ipA), ""},
		{"one VLAN tag", host2, vlan(arp4(macR, 2, macR, ipR, ipA)), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, Config{})
			w.s.SetView(guardView())
			w.fromUnderlay(tc.from, 100, tc.frame)
			got := guardCounts(w.s)
			if tc.drop == "" {
				if len(got) != 0 || len(w.a.Written()) == 0 {
					t.Fatalf("drops %v, port a got %d frames; want it delivered", got, len(w.a.Written()))
				}
				return
			}
			if len(got) != 1 || got[tc.drop] != 1 {
				t.Fatalf("drops %v, want exactly one %q", got, tc.drop)
			}
			if n := writtenCount(w.a, w.b, w.c); n[0]+n[1]+n[2] != 0 {
				t.Errorf("ports got %v frames; want none", n)
			}
		})
	}
}

// TestGuardUnassignedAddresses: with the network's subnet in the view, an
// address of the subnet that IPAM gave no endpoint is refused as a source
// from a port (also from a MAC behind it) and from a member host, while
// addresses outside the subnet, 0.0.0.0 and frames from an external VTEP
// pass.
func TestGuardUnassignedAddresses(t *testing.T) {
	outside := netip.MustParseAddr("192.168.7.7")
	for _, tc := range []struct {
		name  string
		from  netip.Addr // zero: from port a
		frame []byte
		drop  string
	}{
		{"port: IPv4 from an unassigned address", netip.Addr{}, udp4(macB, macA, ipX, ipB), "unassigned_ip"},
		{"port: ARP claiming an unassigned address", netip.Addr{}, arp4(macA, 2, macA, ipX, ipB), "unassigned_ip"},
		{"port: MAC behind it with an unassigned address", netip.Addr{}, udp4(macB, macX, ipX, ipB), "unassigned_ip"},
		{"member host: IPv4 from an unassigned address", host2, udp4(macA, macR, ipX, ipA), "unassigned_ip"},
		{"member host: ARP for an unassigned address", host3, arp4(macX, 2, macX, ipX, ipA), "unassigned_ip"},

		{"port: own address", netip.Addr{}, udp4(macB, macA, ipA, ipB), ""},
		{"port: MAC behind it with an address outside the subnet", netip.Addr{}, udp4(macB, macX, outside, ipB), ""},
		{"port: ARP probe", netip.Addr{}, arp4(macA, 1, macA, zero, ipA), ""},
		{"member host: its endpoint's address", host2, udp4(macA, macR, ipR, ipA), ""},
		{"external VTEP: an address of no endpoint", external, arp4(macE, 2, macE, ipUnknown, ipA), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := guardView()
			v.Networks[100].Subnet = netip.MustParsePrefix("10.100.0.0/24")
			guardVerdict(t, v, tc.from, tc.frame, tc.drop)
		})
	}
}

func TestFloodBucket(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var b floodBucket // zero value: full
	for i := range floodBurst {
		if !b.take(t0) {
			t.Fatalf("take %d of a full bucket refused, want %d allowed", i, floodBurst)
		}
	}
	if b.take(t0) {
		t.Fatal("an empty bucket gave a token")
	}
	if b.take(t0.Add(-time.Second)) {
		t.Fatal("a clock going backwards refilled the bucket")
	}
	// 1 ms at floodRate refills floodRate/1000 tokens.
	t1 := t0.Add(time.Millisecond)
	for i := range floodRate / 1000 {
		if !b.take(t1) {
			t.Fatalf("take %d after 1 ms refused", i)
		}
	}
	if b.take(t1) {
		t.Fatal("more tokens after 1 ms than the rate gives")
	}
	// A long pause refills only up to the burst.
	t2 := t1.Add(time.Hour)
	n := 0
	for b.take(t2) {
		n++
	}
	if n != floodBurst {
		t.Fatalf("after an hour the bucket gave %d tokens, want the burst %d", n, floodBurst)
	}
}

// TestFloodLimit: flooding from one port is cut at the bucket, counted as
// flood_limit, refills with the switch's clock, and leaves other ports and
// unicast alone.
func TestFloodLimit(t *testing.T) {
	w := newWorld(t, Config{})
	bcast := eth(BroadcastMAC, macA, 0x88b5, 60)
	send := func(name string, frame []byte, n int) {
		for range n {
			w.fromPort(t, name, frame)
		}
	}
	send("a", bcast, floodBurst+3)
	if got := guardCounts(w.s); got["flood_limit"] != 3 || len(got) != 1 {
		t.Fatalf("drops %v after %d floods, want flood_limit 3", got, floodBurst+3)
	}
	if n := len(w.b.Written()); n != floodBurst {
		t.Fatalf("port b got %d flooded frames, want %d", n, floodBurst)
	}
	// Unicast to a known port and flooding from port b still work.
	w.fromPort(t, "a", eth(macB, macA, 0x88b5, 60))
	w.fromPort(t, "b", eth(BroadcastMAC, macB, 0x88b5, 60))
	if n := len(w.b.Written()); n != floodBurst+1 {
		t.Fatalf("port b got %d frames, want %d (unicast not limited)", n, floodBurst+1)
	}
	if n := len(w.a.Written()); n != 1 {
		t.Fatalf("port a got %d frames, want port b's flood", n)
	}
	w.clock.Advance(10 * time.Millisecond) // 20 tokens at 2000/s
	send("a", bcast, 25)
	if got := guardCounts(w.s)["flood_limit"]; got != 3+5 {
		t.Fatalf("flood_limit %d after 10 ms and 25 floods, want %d", got, 3+5)
	}
}

// TestGuardMACTakeover: a MAC learned behind port a cannot be moved to port
// b, nor behind an external VTEP, by a frame from there while a's entry is
// fresh (the frame is dropped as mac_taken, and traffic for the MAC still
// goes to a); once the entry aged out, the MAC may move.
func TestGuardMACTakeover(t *testing.T) {
	w := newWorld(t, Config{AgeTime: time.Minute})
	w.s.SetView(guardView())
	w.fromPort(t, "a", udp4(macB, macX, ipX, ipB))
	w.fromPort(t, "b", udp4(macA, macX, ipX, ipA))
	w.fromUnderlay(external, 100, udp4(macA, macX, ipX, ipA))
	if got := guardCounts(w.s); got["mac_taken"] != 2 || len(got) != 1 {
		t.Fatalf("drops %v, want two mac_taken", got)
	}
	if l := w.s.Learned(); len(l) != 1 || l[0].MAC != macX || l[0].Port != "a" {
		t.Fatalf("learned %v, want macX still on port a", l)
	}
	if n := len(w.a.Written()); n != 0 {
		t.Fatalf("port a got %d frames from the takeover attempts", n)
	}
	if st := w.s.Stats(); st.DecapFrames != 0 {
		t.Errorf("decap %d, want the refused frame not counted", st.DecapFrames)
	}
	w.clock.Advance(2 * time.Minute) // a's entry aged out: a real move
	w.fromPort(t, "b", udp4(macA, macX, ipX, ipA))
	if l := w.s.Learned(); len(l) != 1 || l[0].Port != "b" {
		t.Fatalf("learned %v, want macX on port b after aging", l)
	}
}

// TestLearnCapSweepThrottled: an owner at its cap looks for its own expired
// entries at most once per sweepEvery, so a port that sends new MACs
// without pause does not scan on every frame, and never scans the entries
// of other owners; after the next allowed sweep expired entries make room
// again.
func TestLearnCapSweepThrottled(t *testing.T) {
	tbl := learnTable{age: time.Minute}
	o := owner{vni: 1}
	t0 := time.Unix(1000, 0)
	key := func(i int) fdbKey { return fdbKey{1, MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)}} }
	for i := range 4 {
		if r := tbl.learn(key(i), learnEntry{owner: o, seen: t0}, 4); r != learned {
			t.Fatalf("learn %d: %v", i, r)
		}
	}
	for i := 100; i < 1100; i++ { // another owner's entries, never swept here
		tbl.learn(key(i), learnEntry{owner: owner{vni: 2}, seen: t0}, 10000)
	}
	at := t0.Add(time.Minute - 100*time.Millisecond)
	if r := tbl.learn(key(50), learnEntry{owner: o, seen: at}, 4); r != learnFull {
		t.Fatalf("at cap: %v, want learnFull", r)
	}
	// The entries expire now, but the last sweep was 200 ms ago.
	if r := tbl.learn(key(51), learnEntry{owner: o, seen: at.Add(200 * time.Millisecond)}, 4); r != learnFull {
		t.Fatalf("within sweepEvery of the last sweep: %v, want learnFull", r)
	}
	if r := tbl.learn(key(52), learnEntry{owner: o, seen: at.Add(sweepEvery)}, 4); r != learned {
		t.Fatalf("after sweepEvery: %v, want learned", r)
	}
	if n := len(tbl.byOwner[o]); n != 1 {
		t.Fatalf("owner has %d entries, want 1 (the expired ones swept)", n)
	}
	if n := len(tbl.byOwner[owner{vni: 2}]); n != 1000 {
		t.Fatalf("other owner has %d entries, want 1000", n)
	}
}

// TestZeroAllocsGuard: the checks cost no allocation per frame, on a frame
// that passes them (flooded, so the bucket runs too) and on refused ones.
func TestZeroAllocsGuard(t *testing.T) {
	s, p, _, _ := benchSwitch(t)
	s.SetView(guardView())
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"DHCP broadcast", udp4(BroadcastMAC, macA, zero, netip.MustParseAddr("255.255.255.255"))},
		{"spoofed IP", udp4(macR, macA, ipB, ipR)},
		{"spoofed MAC", arp4(macR, 1, macR, ipR, ipB)},
	} {
		buf := make([]byte, vxlan.HeaderLen+len(tc.frame))
		copy(buf[vxlan.HeaderLen:], tc.frame)
		if allocs := testing.AllocsPerRun(500, func() { s.fromPort(&portFrame{p: p, buf: buf, n: len(tc.frame)}) }); allocs != 0 {
			t.Errorf("%s: %v allocations per frame, want 0", tc.name, allocs)
		}
	}
	if got := guardCounts(s); got["spoofed_ip"] != 501 || got["spoofed_mac"] != 501 || len(got) != 2 {
		t.Fatalf("drops %v, want 501 spoofed_ip and spoofed_mac", got)
	}
	pkt := encap(100, eth(macA, macR, 0x88b5, 60))
	src := netip.AddrPortFrom(host3, vxlan.Port) // macR lives on host2
	if allocs := testing.AllocsPerRun(500, func() { s.HandleUnderlay(pkt, src) }); allocs != 0 {
		t.Errorf("refused underlay frame: %v allocations, want 0", allocs)
	}
}

// FuzzFromUnderlay feeds whole VXLAN payloads (header and inner frame) from
// a member host, an unknown host or an external VTEP through the underlay
// receive path and the guard. Whatever comes in, the switch must not panic
// nor send anything back to the underlay (split horizon); no ARP that
// reaches a port may claim the address of a local endpoint or of the
// resolver for a MAC other than its own (the poisoning of issue 18, finding
// 4), and every frame that reaches a port must pass the guard again.
func FuzzFromUnderlay(f *testing.F) {
	f.Add(encap(100, arp4(macR, 2, macR, ipR, ipA)), uint8(0))
	f.Add(encap(100, arp4(macR, 2, macR, ipA, ipB)), uint8(0))
	f.Add(encap(100, vlan(vlan(arp4(macR, 2, macR, ipA, ipB)))), uint8(1))
	f.Add(encap(100, udp4(macA, macR, ipR, ipA)), uint8(0))
	f.Add(encap(100, arp4(macE, 2, macE, ipUnknown, ipA)), uint8(2))
	f.Add(encap(7, eth(macA, macR, 0x88b5, 60)), uint8(3))
	f.Add([]byte{0x08, 0, 0, 0}, uint8(0))
	sources := []netip.Addr{host2, host3, external, netip.MustParseAddr("192.0.2.1")}
	f.Fuzz(func(t *testing.T, pkt []byte, which uint8) {
		w := newWorld(t, Config{})
		w.s.SetView(guardView())
		from := sources[int(which)%len(sources)]
		w.s.HandleUnderlay(pkt, netip.AddrPortFrom(from, vxlan.Port))
		if n := len(w.u.packets()); n != 0 {
			t.Fatalf("sent %d packets to the underlay for one from the underlay", n)
		}
		nw := w.s.view.Load().Networks[100]
		owner := map[netip.Addr]MAC{ipA: macA, ipB: macB, resolverIP: resolverMAC}
		for _, d := range []*taptest.Device{w.a, w.b, w.c} {
			for _, out := range d.Written() {
				if len(out) < header.EthernetLen {
					t.Fatalf("delivered a %d-byte frame", len(out))
				}
				if r, refuse := w.s.refuseFromUnderlay(100, nw, out, from); refuse {
					t.Fatalf("delivered a frame the guard refuses (%s): % x", dropNames[r], out)
				}
				et, off, ok := l3(out)
				if !ok {
					continue
				}
				sha, isARP, ip, ok := l3Sender(et, out[off:])
				if m, local := owner[ip]; ok && isARP && local && sha != m {
					t.Fatalf("an ARP from %s claiming %s for %s reached a port", from, ip, sha)
				}
			}
		}
	})
}

// eui64 returns the link-local address Linux derives from mac by default
// (RFC 4291 appendix A).
func eui64(mac MAC) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 6: 0, 8: mac[0] ^ 0x02, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]})
}

// ndp6 builds an Ethernet/IPv6/ICMPv6 neighbour message (type 135 or 136)
// from sip about target, with a link-layer address option holding ll
// (source option for a solicitation, target option for an advertisement),
// byte by byte; the checksum is left 0 (the guard does not read it).
func ndp6(src MAC, sip netip.Addr, typ byte, target netip.Addr, ll MAC) []byte {
	f := eth(BroadcastMAC, src, 0x86dd, 14+40+24+8)
	ip := f[14:]
	clear(ip)
	ip[0], ip[4], ip[5], ip[6], ip[7] = 0x60, 0, 32, 58, 255
	s16, d16, t16 := sip.As16(), netip.MustParseAddr("ff02::1").As16(), target.As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], d16[:])
	m := ip[40:]
	m[0] = typ
	copy(m[8:24], t16[:])
	opt := byte(1)
	if typ == 136 {
		opt = 2
	}
	m[24], m[25] = opt, 1
	copy(m[26:32], ll[:])
	return f
}

// TestGuardIPv6: an endpoint cannot use another endpoint's EUI-64
// link-local address as its IPv6 source or in a neighbour advertisement,
// nor name another MAC in a neighbour discovery option; a member host
// cannot either for endpoints not behind it. Its own addresses, and
// addresses not made from a MAC, pass.
func TestGuardIPv6(t *testing.T) {
	privacy := netip.MustParseAddr("fe80::1234:5678:9abc:def0")
	for _, tc := range []struct {
		name  string
		from  netip.Addr // zero: from port a
		frame []byte
		drop  string
	}{
		{"advertisement for another endpoint's address", netip.Addr{}, ndp6(macA, eui64(macA), 136, eui64(macB), macA), "spoofed_ip"},
		{"source address of a remote endpoint", netip.Addr{}, ndp6(macA, eui64(macR), 135, eui64(macB), macA), "spoofed_ip"},
		{"solicitation naming another MAC", netip.Addr{}, ndp6(macA, eui64(macA), 135, eui64(macB), macB), "spoofed_mac"},
		{"advertisement naming another MAC", netip.Addr{}, ndp6(macA, eui64(macA), 136, eui64(macA), macX), "spoofed_mac"},
		{"member host advertising a local endpoint's address", host2, ndp6(macR, eui64(macR), 136, eui64(macA), macR), "spoofed_ip"},

		{"own advertisement", netip.Addr{}, ndp6(macA, eui64(macA), 136, eui64(macA), macA), ""},
		{"own solicitation", netip.Addr{}, ndp6(macA, eui64(macA), 135, eui64(macB), macA), ""},
		{"stable-privacy address", netip.Addr{}, ndp6(macA, privacy, 136, privacy, macA), ""},
		{"member host for its own endpoint", host2, ndp6(macR, eui64(macR), 136, eui64(macR), macR), ""},
	} {
		t.Run(tc.name, func(t *testing.T) { guardVerdict(t, guardView(), tc.from, tc.frame, tc.drop) })
	}
}

// guardVerdict sends frame through a switch with view v, from port a when
// from is the zero Addr, else from the VTEP from, and checks that the
// guard drops it for reason drop ("": that it passes).
func guardVerdict(t *testing.T, v *View, from netip.Addr, frame []byte, drop string) {
	t.Helper()
	w := newWorld(t, Config{})
	w.s.SetView(v)
	if from.IsValid() {
		w.fromUnderlay(from, 100, frame)
	} else {
		w.fromPort(t, "a", frame)
	}
	got := guardCounts(w.s)
	if drop == "" {
		if len(got) != 0 {
			t.Fatalf("drops %v, want the frame to pass", got)
		}
		return
	}
	if len(got) != 1 || got[drop] != 1 {
		t.Fatalf("drops %v, want exactly one %q", got, drop)
	}
}

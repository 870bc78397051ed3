package vswitch

import (
	"bytes"
	"net/netip"
	"reflect"
	"sync"
	"testing"

	"github.com/google/gopacket/layers"

	"vxswitch/header"
	"vxswitch/tap"
	"vxswitch/vxlan"
)

// recorder is an Observer that keeps copies of the events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Observe(ev *Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *ev
	c.Frame = append([]byte(nil), ev.Frame...)
	c.Payload = append([]byte(nil), ev.Payload...)
	r.events = append(r.events, c)
}

func TestObserver(t *testing.T) {
	bcast := MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	tests := []struct {
		name    string
		send    func(w *world)
		ingress string
		lookup  string
		action  string
		reason  string
		ports   []string
		vteps   []netip.Addr
		vni     uint32
		network string
	}{
		{
			name:    "unicast to a remote VTEP",
			send:    func(w *world) { w.fromPort(t, "a", eth(macR, macA, 0x0800, 60)) },
			ingress: "a", lookup: LookupRaft, action: ActionVTEP,
			vteps: []netip.Addr{host2}, vni: 100, network: "blue",
		},
		{
			name:    "local unicast",
			send:    func(w *world) { w.fromPort(t, "a", eth(macB, macA, 0x0800, 60)) },
			ingress: "a", lookup: LookupLocal, action: ActionLocal,
			ports: []string{"b"}, vni: 100, network: "blue",
		},
		{
			name:    "broadcast floods to ports and VTEPs",
			send:    func(w *world) { w.fromPort(t, "a", eth(bcast, macA, 0x0800, 60)) },
			ingress: "a", lookup: "", action: ActionFlood,
			ports: []string{"b"}, vteps: []netip.Addr{host2, host3, external}, vni: 100, network: "blue",
		},
		{
			name:    "unknown unicast is a miss",
			send:    func(w *world) { w.fromPort(t, "c", eth(macX, macC, 0x0800, 60)) },
			ingress: "c", lookup: LookupMiss, action: ActionFlood,
			vteps: []netip.Addr{host3}, vni: 200, network: "red",
		},
		{
			name:    "non-member source is dropped",
			send:    func(w *world) { w.fromUnderlay(stranger, 100, eth(macA, macR, 0x0800, 60)) },
			ingress: UnderlayIngress, action: ActionDropped, reason: "not_member", vni: 100, network: "blue",
		},
		{
			name:    "from the underlay to a local port",
			send:    func(w *world) { w.fromUnderlay(host2, 100, eth(macA, macR, 0x0800, 60)) },
			ingress: UnderlayIngress, lookup: LookupLocal, action: ActionLocal,
			ports: []string{"a"}, vni: 100, network: "blue",
		},
		{
			name:    "oversize without IP is dropped",
			send:    func(w *world) { w.fromPort(t, "a", eth(macR, macA, 0x88b5, 1600)) },
			ingress: "a", action: ActionDropped, reason: "oversize", vni: 100, network: "blue",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, Config{})
			r := &recorder{}
			w.s.SetObserver(r)
			tt.send(w)
			w.s.SetObserver(nil)
			tt.send(w) // not observed
			if len(r.events) != 1 {
				t.Fatalf("got %d events, want 1: %+v", len(r.events), r.events)
			}
			ev := r.events[0]
			if ev.ID == 0 || ev.Time.IsZero() || len(ev.Frame) < header.EthernetLen {
				t.Errorf("event without ID, time or frame: %+v", ev)
			}
			if ev.Self != netip.AddrPortFrom(self, vxlan.Port) {
				t.Errorf("Self = %v, want %v", ev.Self, netip.AddrPortFrom(self, vxlan.Port))
			}
			got := []any{ev.Ingress(), ev.Lookup, ev.Action, ev.Reason, ev.Ports, ev.VTEPs, ev.VNI, ev.Network}
			want := []any{tt.ingress, tt.lookup, tt.action, tt.reason, tt.ports, tt.vteps, tt.vni, tt.network}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("event (ingress lookup action reason ports vteps vni network)\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestObserverIDsAreUnique(t *testing.T) {
	w := newWorld(t, Config{})
	r := &recorder{}
	w.s.SetObserver(r)
	for range 3 {
		w.fromPort(t, "a", eth(macR, macA, 0x0800, 60))
	}
	for i, ev := range r.events {
		if ev.ID != uint64(i+1) {
			t.Errorf("event %d has ID %d, want %d", i, ev.ID, i+1)
		}
	}
}

// TestZeroAllocsNoObserver: with the observer set and removed again, the
// data path is back to no allocation.
func TestZeroAllocsNoObserver(t *testing.T) {
	s, p, _, _ := benchSwitch(t)
	s.SetObserver(&recorder{})
	s.SetObserver(nil)
	frame := eth(macR, macX, 0x0800, 1514)
	buf := make([]byte, vxlan.HeaderLen+len(frame))
	copy(buf[vxlan.HeaderLen:], frame)
	if allocs := testing.AllocsPerRun(1000, func() { s.fromPort(&portFrame{p: p, buf: buf, n: len(frame)}) }); allocs != 0 {
		t.Fatalf("TAP -> underlay after the observer left allocates %v times per frame, want 0", allocs)
	}
}

// TestObserverReportsMadeFrames: the frames the switch makes itself are
// events of their own, after the frame they answer and linked to it, with
// the bytes written into the port; a late answer from another goroutine
// is linked too.
func TestObserverReportsMadeFrames(t *testing.T) {
	h := &fakeDNS{answer: testAnswer}
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	r := &recorder{}
	w.s.SetObserver(r)

	w.fromPort(t, "a", arpFrame(t, macA, ipA, ipB))
	w.fromPort(t, "a", dnsFrame(t, testQuery))
	h.mu.Lock()
	h.answer = nil
	h.mu.Unlock()
	w.fromPort(t, "a", dnsFrame(t, testQuery)) // answered later
	done := make(chan struct{})
	go func() { h.calls[1].reply(lateAnswer); close(done) }()
	<-done
	w.s.SetObserver(nil)

	type brief struct {
		id, answers     uint64
		ingress, action string
		ports           []string
	}
	var got []brief
	for _, ev := range r.events {
		got = append(got, brief{ev.ID, ev.Answers, ev.Ingress(), ev.Action, ev.Ports})
	}
	want := []brief{
		{1, 0, "a", ActionARP, []string{"a"}},
		{2, 1, SwitchIngress, ActionGenerated, []string{"a"}},
		{3, 0, "a", ActionDNS, nil},
		{4, 3, SwitchIngress, ActionGenerated, []string{"a"}},
		{5, 0, "a", ActionDNS, nil},
		{6, 5, SwitchIngress, ActionGenerated, []string{"a"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n got %+v\nwant %+v", got, want)
	}
	written := w.a.Written()
	for i, at := range []int{1, 3, 5} {
		if i >= len(written) || !reflect.DeepEqual(r.events[at].Frame, written[i]) {
			t.Errorf("event %d does not carry the frame written into a", r.events[at].ID)
		}
	}
	if ev := r.events[5]; ev.Network != "blue" || ev.VNI != 100 || ev.Self != netip.AddrPortFrom(self, vxlan.Port) {
		t.Errorf("made frame event: network %q vni %d self %v", ev.Network, ev.VNI, ev.Self)
	}
}

// TestObserverLinksLateTCPAnswer: the segments that carry a DNS-over-TCP
// answer given later, from another goroutine, are linked to the segment
// that carried the query, like a late UDP answer.
func TestObserverLinksLateTCPAnswer(t *testing.T) {
	h := &fakeDNS{} // answers later, through h.calls[0].reply
	w := newNamesWorld(t, Config{DNS: h}, 1450)
	c := connect(t, w, 1460, 65535)
	r := &recorder{}
	w.s.SetObserver(r)
	c.data(t, header.TCPFlagPSH|header.TCPFlagFIN, c.iss+1, framed(testQuery)) // query and FIN
	query := r.events[0].ID
	done := make(chan struct{})
	go func() { h.calls[0].reply(testAnswer); close(done) }()
	<-done
	w.s.SetObserver(nil)

	var answers []uint64
	for _, ev := range r.events[1:] {
		if ev.Action != ActionGenerated {
			t.Fatalf("event %d: action %s, want only frames the switch made after the query", ev.ID, ev.Action)
		}
		answers = append(answers, ev.Answers)
	}
	// The ACK of the query+FIN, made while deciding it; then the answer
	// and our FIN, sent from the handler's goroutine.
	if want := []uint64{query, query, query}; !reflect.DeepEqual(answers, want) {
		t.Fatalf("made frames answer %v, want %v (the query's frame)", answers, want)
	}
}

// TestObserverUnderlayToOffloadPort: delivery to a port with offloads
// reuses the bytes of a packet from the underlay (a vnet header goes over
// its VXLAN header; the payload of a coalesced segment moves over its
// headers), yet each packet is reported with its VNI and network, the
// payload as received and the frame as delivered (the SYN's MSS clamped).
func TestObserverUnderlayToOffloadPort(t *testing.T) {
	s, _, d, _ := vnetSwitch(t, true)
	r := &recorder{}
	s.SetObserver(r)
	ping := encap(100, eth(macA, macR, 0x0800, 98))
	syn := tcpFrame(t, false, true, false, []layers.TCPOption{mssOpt(9000)})
	copy(syn[0:6], macA[:])
	copy(syn[6:12], macR[:])
	swapIPv4Addrs(syn)
	synPkt := encap(100, syn)
	_, dgrams, seg := peerSegments(t, false, 5000, 1000)
	g := groConn(netip.AddrPortFrom(host2, vxlan.Port), [][]byte{ping, synPkt, dgrams}, []int{0, 0, seg})
	if err := s.ServeUnderlay(g); err != nil {
		t.Fatal(err)
	}
	s.SetObserver(nil)

	received := [][]byte{ping, synPkt}
	for off := 0; off < len(dgrams); off += seg {
		received = append(received, dgrams[off:min(off+seg, len(dgrams))])
	}
	if len(r.events) != len(received) {
		t.Fatalf("got %d events, want one per datagram (%d)", len(r.events), len(received))
	}
	written := d.Written()
	if len(written) != 3 {
		t.Fatalf("port got %d packets, want 3: the ping, the SYN, one super-frame", len(written))
	}
	for i, ev := range r.events {
		if ev.VNI != 100 || ev.Network != "blue" || ev.Action != ActionLocal || !reflect.DeepEqual(ev.Ports, []string{"a"}) {
			t.Errorf("event %d: vni %d network %q action %s ports %v; want 100 blue local [a]", i, ev.VNI, ev.Network, ev.Action, ev.Ports)
		}
		if !bytes.Equal(ev.Payload, received[i]) {
			t.Errorf("event %d: payload differs from the datagram received", i)
		}
		switch i {
		case 0, 1: // written alone: the frame reported is the one written
			if !bytes.Equal(ev.Frame, written[i][tap.VnetHdrLen:]) {
				t.Errorf("event %d: frame differs from the one written to the port", i)
			}
		default: // joined into the super-frame: the segment as received
			if !bytes.Equal(ev.Frame, received[i][vxlan.HeaderLen:]) {
				t.Errorf("event %d: frame differs from the segment received", i)
			}
		}
	}
	if got, sent := mssOf(t, r.events[1].Frame), mssOf(t, r.events[1].Payload[vxlan.HeaderLen:]); got != 1460 || sent != 9000 {
		t.Errorf("SYN: MSS %d delivered, %d received; want 1460 (clamped) and 9000", got, sent)
	}
}

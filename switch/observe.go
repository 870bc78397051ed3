package vswitch

import (
	"bytes"
	"net/netip"
	"slices"
	"time"

	"vxswitch/vxlan"
)

// Observer watches the frames the switch handles, for captures and traces.
//
// Observe is called once per frame, in the goroutine that switched it,
// after the switch is done with it. It may be called from several
// goroutines at once. It must return quickly and must not keep ev or the
// byte slices in it after it returns: they belong to the data path, so an
// observer that needs them later copies them.
type Observer interface {
	Observe(ev *Event)
}

// Actions of an Event: what the switch did with the frame.
const (
	ActionLocal      = "local"         // written to local port(s) only
	ActionVTEP       = "vtep"          // sent to one VTEP
	ActionFlood      = "flood"         // copied to the ports and VTEPs listed
	ActionARP        = "arp-answered"  // ARP request answered by the switch
	ActionNDP        = "ndp-answered"  // IPv6 neighbour solicitation answered by the switch
	ActionDNS        = "dns-answered"  // DNS query passed to the resolver
	ActionEcho       = "echo-answered" // ICMP echo to the resolver answered
	ActionICMP       = "icmp-sent"     // too big: ICMP frag needed / ICMPv6 packet too big sent back
	ActionFragmented = "fragmented"    // IPv4 without DF split; fragments forwarded
	ActionDropped    = "dropped"       // not forwarded; Event.Reason says why
	ActionGenerated  = "generated"     // made by the switch itself (an answer, a gratuitous ARP), written to Ports
)

// Lookup results of an Event: where the destination MAC was found.
const (
	LookupLocal   = "local"   // the own MAC of a local port
	LookupRaft    = "raft"    // a remote MAC from the replicated state
	LookupLearned = "learned" // learned behind a local port or an external VTEP
	LookupMiss    = "miss"    // unknown unicast, flooded
)

// UnderlayIngress is the Event.Ingress of frames that came from the underlay.
const UnderlayIngress = "underlay"

// SwitchIngress is the Event.Ingress of frames the switch made itself
// (ActionGenerated).
const SwitchIngress = "switch"

// Event describes one frame the switch handled. Its slices are only valid
// during the call to Observer.Observe.
type Event struct {
	// ID numbers the frames of one Switch, from 1, in the order they
	// arrived; it is unique per Switch.
	ID uint64
	// Time is when the switch started to handle the frame.
	Time time.Time
	// VNI is the frame's network; 0 when a packet from the underlay had no
	// valid VXLAN header. Network is its name, "" when unknown.
	VNI     uint32
	Network string
	// Port is the name of the ingress port; "" for frames from the underlay.
	Port string
	// From is the outer source of a packet from the underlay; zero for
	// frames from a port.
	From netip.AddrPort
	// Self is this host's VTEP address and UDP port: the outer source of
	// what the switch sends and the outer destination of what it receives.
	Self netip.AddrPort
	// Frame is the inner Ethernet frame as switched (after MSS clamping and
	// checksum completion): for a packet from the underlay, as it was
	// delivered to the local ports, or as received when it was dropped;
	// nil when the VXLAN header was invalid.
	Frame []byte
	// Payload is the UDP payload (VXLAN header and inner frame) of a packet
	// from the underlay as it was received; nil for frames from a port.
	Payload []byte
	// Lookup is one of the Lookup constants, or "" when no unicast lookup
	// was made (multicast, answered or dropped before the lookup).
	Lookup string
	// Action is one of the Action constants.
	Action string
	// Reason is the drop reason (a Stats.Drops key, or "same_port" for a
	// frame whose destination is its ingress port) when Action is
	// ActionDropped; "" otherwise.
	Reason string
	// Ports are the local ports the frame (or the switch's answer) was
	// written to, and VTEPs the VTEPs it was sent to, each once.
	Ports []string
	VTEPs []netip.Addr
	// Answers is, for a frame the switch made (ActionGenerated), the ID of
	// the observed frame it answers; 0 when it answers none (a gratuitous
	// ARP) or that frame was not observed. A generated frame that answers
	// is reported after the frame it answers.
	Answers uint64
}

// Ingress returns the name of the ingress port, UnderlayIngress, or
// SwitchIngress for a frame the switch made.
func (e *Event) Ingress() string {
	switch {
	case e.Action == ActionGenerated:
		return SwitchIngress
	case e.Port == "":
		return UnderlayIngress
	}
	return e.Port
}

// observerBox holds an Observer so it can live behind an atomic pointer.
type observerBox struct{ o Observer }

// SetObserver makes o the observer of every frame from now on; nil turns
// observing off. With no observer the data path pays one atomic load and a
// nil check per frame and nothing else. It may be called at any time from
// any goroutine; frames being switched at that moment may or may not be
// observed.
func (s *Switch) SetObserver(o Observer) {
	if o == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&observerBox{o})
}

// observing reports whether an observer is set.
func (s *Switch) observing() bool { return s.observer.Load() != nil }

// decision collects what the switch did with one observed frame. The
// frame being switched carries a *decision that is nil when nobody observes;
// every method is a no-op on nil, so recording costs a nil check then.
type decision struct {
	id      uint64 // the ID of the frame being decided
	lookup  string
	action  string // set for answers and fragmentation; else derived
	reason  string
	flooded bool
	ports   []string
	vteps   []netip.Addr
	// made are the frames the switch made while handling this one,
	// reported after it.
	made []madeFrame
	// frame is a copy of the inner frame of a packet from the underlay
	// as it was delivered to the local ports; nil when it went nowhere.
	frame []byte
}

// madeFrame is a frame the switch made and wrote into port q.
type madeFrame struct {
	q     *port
	frame []byte
}

// found records the lookup result.
func (d *decision) found(lookup string) {
	if d != nil {
		d.lookup = lookup
	}
}

// foundPort records a hit on the local port q for the MAC dst.
func (d *decision) foundPort(q *port, dst MAC) {
	if d == nil {
		return
	}
	d.lookup = LookupLearned
	if q.mac == dst {
		d.lookup = LookupLocal
	}
}

// flood records that the frame was flooded.
func (d *decision) flood() {
	if d != nil {
		d.flooded = true
	}
}

// toPort records a write to the local port q.
func (d *decision) toPort(q *port) {
	if d != nil && !slices.Contains(d.ports, q.name) {
		d.ports = append(d.ports, q.name)
	}
}

// toVTEP records a send to vtep.
func (d *decision) toVTEP(vtep netip.Addr) {
	if d != nil && !slices.Contains(d.vteps, vtep) {
		d.vteps = append(d.vteps, vtep)
	}
}

// answer records an action the switch took instead of forwarding, and the
// port its answer went to (q may be nil).
func (d *decision) answer(action string, q *port) {
	if d == nil {
		return
	}
	d.action = action
	if q != nil {
		d.toPort(q)
	}
}

// delivering records a copy of frame, the inner frame of a packet from the
// underlay ready for the local ports (checksum completed, MSS clamped),
// before delivery may reuse its bytes.
func (d *decision) delivering(frame []byte) {
	if d != nil {
		d.frame = append(d.frame[:0], frame...)
	}
}

// because records why the frame went nowhere, for drops that are not
// counted as such.
func (d *decision) because(reason string) {
	if d != nil {
		d.reason = reason
	}
}

// drop counts a dropped frame and records why.
func (s *Switch) drop(d *decision, r dropReason) {
	s.stats.drop(r)
	if d != nil {
		d.reason = dropNames[r]
	}
}

// result returns the action and drop reason of d.
func (d *decision) result() (action, reason string) {
	switch {
	case d.action != "":
		return d.action, ""
	case len(d.ports) == 0 && len(d.vteps) == 0:
		if d.reason == "" {
			return ActionDropped, dropNames[dropNoPort]
		}
		return ActionDropped, d.reason
	case d.flooded:
		return ActionFlood, ""
	case len(d.vteps) > 0:
		return ActionVTEP, ""
	}
	return ActionLocal, ""
}

// writeMade writes frame, which the switch made itself (an answer, a
// gratuitous ARP), into port q and reports it to the observer: after the
// frame being decided when d is not nil (it answers that frame), else at
// once, as answering the frame with ID answers (0 for none). frame must
// not be changed afterwards.
func (s *Switch) writeMade(q *port, frame []byte, d *decision, answers uint64) {
	s.writePort(q, frame)
	if d != nil {
		d.made = append(d.made, madeFrame{q, frame})
		return
	}
	if box := s.observer.Load(); box != nil {
		s.observeMade(box.o, q, frame, answers)
	}
}

// frameID returns the ID of the frame d decides, or 0 for a nil d.
func (d *decision) frameID() uint64 {
	if d == nil {
		return 0
	}
	return d.id
}

// observeMade reports to o the frame the switch made and wrote into q, as
// the answer to the frame with ID answers (0 for none).
func (s *Switch) observeMade(o Observer, q *port, frame []byte, answers uint64) {
	ev := Event{ID: s.frameID.Add(1), Time: s.now(), VNI: q.vni, Frame: frame,
		Action: ActionGenerated, Ports: []string{q.name}, Answers: answers}
	s.complete(&ev)
	o.Observe(&ev)
}

// observeFromPort switches the frame f (as fromPort does) recording what
// happens in f.d, and reports it to o.
func (s *Switch) observeFromPort(o Observer, f *portFrame) {
	ev := Event{ID: s.frameID.Add(1), Time: s.now(), VNI: f.p.vni, Port: f.p.name}
	d := decision{id: ev.ID}
	f.d = &d
	s.admit(f)
	ev.Frame = f.frame()
	s.emit(o, &ev, &d)
}

// observeUnderlay handles the packet u (as fromUnderlay does) recording
// what happens in u.d, and reports it to o.
//
// Delivery reuses the packet's bytes: a vnet header goes over the VXLAN
// header of a frame written to a port with offloads, and the payload of a
// segment joined to a coalescing run moves down over its own headers. So
// the event takes its copy of the packet, and its VNI, before the decision;
// the frame as delivered is copied by the decision just before delivery
// (decision.delivering).
func (s *Switch) observeUnderlay(o Observer, u *underlayPacket) {
	pkt := bytes.Clone(u.pkt)
	ev := Event{ID: s.frameID.Add(1), Time: s.now(), From: u.src, Payload: pkt}
	if vni, inner, err := vxlan.Decode(pkt); err == nil {
		ev.VNI, ev.Frame = vni, inner
	}
	d := decision{id: ev.ID}
	u.d = &d
	s.decap(u)
	if d.frame != nil {
		ev.Frame = d.frame
	}
	s.emit(o, &ev, &d)
}

// emit completes ev from d and the view and passes it to o, then the
// frames the switch made while handling it.
func (s *Switch) emit(o Observer, ev *Event, d *decision) {
	s.complete(ev)
	ev.Lookup = d.lookup
	ev.Action, ev.Reason = d.result()
	ev.Ports, ev.VTEPs = d.ports, d.vteps
	o.Observe(ev)
	for _, m := range d.made {
		s.observeMade(o, m.q, m.frame, ev.ID)
	}
}

// complete sets ev.Self and ev.Network from the current view.
func (s *Switch) complete(ev *Event) {
	v := s.view.Load()
	if v != nil {
		ev.Self = netip.AddrPortFrom(v.Self, s.udpPort)
	}
	if nw := v.network(ev.VNI); nw != nil {
		ev.Network = nw.Name
	}
}

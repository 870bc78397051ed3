package vswitch

import (
	"fmt"
	"slices"
	"sync/atomic"

	"vxswitch/tap"
	"vxswitch/vxlan"
)

// maxFrame is the largest frame a port goroutine reads; anything a TAP can
// hand over fits, so oversize frames are seen whole and counted.
const maxFrame = 65535

// port is one local TAP port.
type port struct {
	name    string
	vni     uint32
	mac     MAC
	dev     tap.Device
	offload bool          // dev.Offload(): frames move with vnet headers (offload.go)
	closing atomic.Bool   // set by RemovePort before closing dev
	done    chan struct{} // closed when the read goroutine has exited
	flood   floodBucket   // flood rate limit (guard.go)
	count   portCounters  // what the device carried (PortStats)
}

// portCounters count what one port's device carries: rx what the endpoint
// sent (read from the device), tx what the switch wrote into it. One read
// or write is one frame, a TSO super-frame or a coalesced one included;
// bytes are without the vnet header. They are updated atomically from the
// data path and read by Switch.PortStats.
type portCounters struct {
	rxFrames, rxBytes atomic.Uint64
	txFrames, txBytes atomic.Uint64
}

// read counts a read of n bytes (without the vnet header) from the device.
func (c *portCounters) read(n int) {
	c.rxFrames.Add(1)
	c.rxBytes.Add(uint64(n))
}

// wrote counts a write of n bytes (without the vnet header) to the device.
func (c *portCounters) wrote(n int) {
	c.txFrames.Add(1)
	c.txBytes.Add(uint64(n))
}

// fdbKey identifies a MAC within one network.
type fdbKey struct {
	vni uint32
	mac MAC
}

// portTable is an immutable snapshot of the ports, replaced as a whole
// (copy on write) by AddPort and RemovePort so the data path reads it
// without locks.
type portTable struct {
	byName map[string]*port
	byVNI  map[uint32][]*port // in the order they were added
	byMAC  map[fdbKey]*port   // each port's own MAC
}

// with returns a copy of t with p added.
func (t *portTable) with(p *port) *portTable {
	n := &portTable{
		byName: make(map[string]*port, len(t.byName)+1),
		byVNI:  make(map[uint32][]*port, len(t.byVNI)+1),
		byMAC:  make(map[fdbKey]*port, len(t.byMAC)+1),
	}
	for k, v := range t.byName {
		n.byName[k] = v
	}
	for k, v := range t.byVNI {
		n.byVNI[k] = v // never modified in place: append below copies
	}
	for k, v := range t.byMAC {
		n.byMAC[k] = v
	}
	n.byName[p.name] = p
	n.byVNI[p.vni] = append(slices.Clip(n.byVNI[p.vni]), p)
	n.byMAC[fdbKey{p.vni, p.mac}] = p
	return n
}

// without returns a copy of t with p removed.
func (t *portTable) without(p *port) *portTable {
	n := &portTable{
		byName: make(map[string]*port, len(t.byName)),
		byVNI:  make(map[uint32][]*port, len(t.byVNI)),
		byMAC:  make(map[fdbKey]*port, len(t.byMAC)),
	}
	for k, v := range t.byName {
		if v != p {
			n.byName[k] = v
		}
	}
	for k, v := range t.byVNI {
		rest := slices.DeleteFunc(slices.Clone(v), func(q *port) bool { return q == p })
		if len(rest) > 0 {
			n.byVNI[k] = rest
		}
	}
	for k, v := range t.byMAC {
		if v != p {
			n.byMAC[k] = v
		}
	}
	return n
}

// names returns the port names in sorted order.
func (t *portTable) names() []string {
	var names []string
	for name := range t.byName {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// AddPort attaches dev as the port called name on network vni, whose
// endpoint has the MAC address mac, and starts the goroutine that reads
// frames from dev. The switch owns dev from now on: RemovePort closes it.
// name must be unique among the ports, and mac unique within vni.
func (s *Switch) AddPort(name string, vni uint32, mac MAC, dev tap.Device) error {
	switch {
	case name == "":
		return fmt.Errorf("vswitch: add port: empty name: give each port a unique name")
	case vni > vxlan.MaxVNI:
		return fmt.Errorf("vswitch: add port %q: VNI %d exceeds the 24-bit maximum %d", name, vni, vxlan.MaxVNI)
	case dev == nil:
		return fmt.Errorf("vswitch: add port %q: nil device", name)
	case mac.IsMulticast() || mac.IsZero():
		return fmt.Errorf("vswitch: add port %q: MAC %s is not a unicast address: use one like 02:00:00:00:00:01", name, mac)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("vswitch: add port %q: %w", name, ErrClosed)
	}
	t := s.ports.Load()
	if _, ok := t.byName[name]; ok {
		return fmt.Errorf("vswitch: add port %q: name already in use: remove the old port first", name)
	}
	if q, ok := t.byMAC[fdbKey{vni, mac}]; ok {
		return fmt.Errorf("vswitch: add port %q: MAC %s already belongs to port %q in VNI %d", name, mac, q.name, vni)
	}
	p := &port{name: name, vni: vni, mac: mac, dev: dev, offload: dev.Offload(), done: make(chan struct{})}
	s.ports.Store(t.with(p))
	if p.offload {
		go s.readLoopVnet(p)
	} else {
		go s.readLoop(p)
	}
	return nil
}

// RemovePort detaches the port called name: it closes the device, waits for
// the port's goroutine to exit and forgets the MACs learned on the port.
func (s *Switch) RemovePort(name string) error {
	s.mu.Lock()
	t := s.ports.Load()
	p, ok := t.byName[name]
	if ok {
		s.ports.Store(t.without(p))
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("vswitch: remove port %q: no such port", name)
	}
	p.closing.Store(true)
	err := p.dev.Close()
	<-p.done
	s.local.forget(owner{port: p})
	if err != nil {
		return fmt.Errorf("vswitch: remove port %q: close device: %w", name, err)
	}
	return nil
}

// readLoop reads frames from p until the device fails or is closed. It uses
// one buffer for the life of the port, with vxlan.HeaderLen bytes of
// headroom in front of the frame for the VXLAN header.
func (s *Switch) readLoop(p *port) {
	defer close(p.done)
	buf := make([]byte, vxlan.HeaderLen+maxFrame)
	for {
		n, err := p.dev.Read(buf[vxlan.HeaderLen:])
		if err != nil {
			s.stopped(p, err)
			return
		}
		p.count.read(n)
		s.fromPort(&portFrame{p: p, buf: buf, n: n})
	}
}

// stopped reports that the goroutine of port p stopped reading with err:
// nothing when RemovePort closed the device, else a warning and a call of
// Config.PortStopped.
func (s *Switch) stopped(p *port, err error) {
	if p.closing.Load() {
		return
	}
	s.log.Warn("vswitch: port stopped reading", "port", p.name, "vni", p.vni, "err", err)
	if s.portStopped != nil {
		s.portStopped(p.name, p.dev, err)
	}
}

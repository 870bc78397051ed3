// Package capture turns the switch's observed frames (vswitch.Event) into
// what people read: a pcapng stream with one interface per TAP port and one
// for the underlay, where underlay packets carry the outer Ethernet, IPv4 or
// IPv6 (the family of the underlay),
// UDP and VXLAN headers as the socket sends them and every record carries a
// comment linking a frame to the packets it became (Recorder), and one
// trace line per frame (Line).
package capture

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	vswitch "vxswitch/switch"
)

// Names returns the host name of the VTEP at addr, or "" when it is not a
// known host. A nil Names knows no host.
type Names func(addr netip.Addr) string

// name returns the name of addr, or "".
func (n Names) name(addr netip.Addr) string {
	if n == nil {
		return ""
	}
	return n(addr)
}

// vtep returns "10.77.0.2 (h2)", or the bare address when its host is
// unknown.
func (n Names) vtep(addr netip.Addr) string {
	if name := n.name(addr); name != "" {
		return fmt.Sprintf("%s (%s)", addr, name)
	}
	return addr.String()
}

// Filter selects the frames of a capture or trace. The zero value selects
// everything.
type Filter struct {
	// Network keeps frames of the network with this name; "" keeps all.
	Network string
	// Endpoint keeps frames that entered or left through the port of this
	// endpoint; "" keeps all.
	Endpoint string
	// Underlay keeps only packets on the underlay: a capture then writes
	// no port records, and frames that never crossed the underlay are left
	// out.
	Underlay bool
}

// Match reports whether ev passes f.
func (f Filter) Match(ev *vswitch.Event) bool {
	switch {
	case f.Network != "" && ev.Network != f.Network:
		return false
	case f.Endpoint != "" && ev.Port != f.Endpoint && !slices.Contains(ev.Ports, f.Endpoint):
		return false
	case f.Underlay && ev.Port != "" && len(ev.VTEPs) == 0:
		return false
	case f.Underlay && ev.Action == vswitch.ActionGenerated:
		return false
	}
	return true
}

// Comment returns the comment every record of ev carries, such as
// "frame 17 vni 100 in c1: unicast to vtep 10.77.0.2 (h2)". The frame ID
// links the inner frame to the outer packets it became.
func Comment(ev *vswitch.Event, names Names) string {
	in := ev.Ingress()
	if in == vswitch.UnderlayIngress {
		in += " from " + names.vtep(ev.From.Addr())
	}
	return fmt.Sprintf("frame %d vni %d in %s: %s", ev.ID, ev.VNI, in, decision(ev, names))
}

// decision describes what the switch did with ev, for people.
func decision(ev *vswitch.Event, names Names) string {
	switch ev.Action {
	case vswitch.ActionVTEP:
		return "unicast to vtep " + names.vtep(ev.VTEPs[0])
	case vswitch.ActionLocal:
		return "local to " + strings.Join(ev.Ports, ", ")
	case vswitch.ActionFlood:
		var parts []string
		if n := len(ev.VTEPs); n > 0 {
			parts = append(parts, plural(n, "host"))
		}
		if n := len(ev.Ports); n > 0 {
			parts = append(parts, plural(n, "port"))
		}
		if len(parts) == 0 {
			return "flooded to nobody"
		}
		return "flooded to " + strings.Join(parts, " and ")
	case vswitch.ActionDropped:
		return "dropped: " + ev.Reason
	case vswitch.ActionGenerated:
		to := "made by the switch, to " + strings.Join(ev.Ports, ", ")
		if ev.Answers != 0 {
			to += fmt.Sprintf(", answering frame %d", ev.Answers)
		}
		return to
	}
	return strings.ReplaceAll(ev.Action, "-", " ") // "arp answered", "icmp sent", ...
}

// plural returns "1 host" or "2 hosts".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Recorder writes the records of observed frames to a Writer. The zero
// value is not usable; set W. A Recorder is not safe for concurrent use.
type Recorder struct {
	W      *Writer
	Filter Filter
	// Names names the VTEPs in comments; nil leaves them bare.
	Names Names
	// Describe returns the description of the interface of a new port; nil
	// means none.
	Describe func(port string) string
}

// Record writes the records of ev that pass the filter, at most max of
// them (max < 0: no limit), and returns how many it wrote:
//
//   - a frame from a port: the frame on the port's interface, then for each
//     VTEP it was sent to the whole outer packet on "underlay" (outer
//     headers synthesized from this host's VTEP address to the VTEP's, see
//     OuterPacket), then the frame on each local port it was written to
//     when it was forwarded (local or flood);
//   - a packet from the underlay: the outer packet on "underlay" (from the
//     sender's address to this host's), then the delivered frame on each
//     port it was written to;
//   - a frame the switch made (an ARP or DNS answer, an ICMP error, a
//     gratuitous ARP): the frame on the port it was written to.
//
// Every record carries Comment(ev).
func (r *Recorder) Record(ev *vswitch.Event, max int) (int, error) {
	if !r.Filter.Match(ev) {
		return 0, nil
	}
	comment := Comment(ev, r.Names)
	n := 0
	write := func(intf int, data []byte) error {
		if max >= 0 && n >= max {
			return nil
		}
		if err := r.W.WritePacket(intf, ev.Time, data, comment); err != nil {
			return err
		}
		n++
		return nil
	}
	onPort := func(name string, data []byte) error {
		if r.Filter.Underlay || data == nil {
			return nil
		}
		desc := ""
		if r.Describe != nil {
			desc = r.Describe(name)
		}
		intf, err := r.W.Interface(name, desc)
		if err != nil {
			return err
		}
		return write(intf, data)
	}
	self := ev.Self
	if ev.Port != "" {
		if err := onPort(ev.Port, ev.Frame); err != nil {
			return n, err
		}
		if self.Addr().IsValid() {
			for _, vtep := range ev.VTEPs {
				if vtep.Unmap().Is4() != self.Addr().Unmap().Is4() {
					continue // another family: the socket could not send it
				}
				pkt := OuterPacket(self, netip.AddrPortFrom(vtep, self.Port()), ev.VNI, ev.Frame)
				if err := write(0, pkt); err != nil {
					return n, err
				}
			}
		}
		if ev.Action != vswitch.ActionLocal && ev.Action != vswitch.ActionFlood {
			return n, nil
		}
	} else if ev.Action != vswitch.ActionGenerated && self.Addr().IsValid() && ev.From.Addr().Unmap().Is4() == self.Addr().Unmap().Is4() {
		from := netip.AddrPortFrom(ev.From.Addr().Unmap(), ev.From.Port())
		pkt := append(OuterHeaders(from, self, ev.Payload), ev.Payload...)
		if err := write(0, pkt); err != nil {
			return n, err
		}
	}
	for _, name := range ev.Ports {
		if err := onPort(name, ev.Frame); err != nil {
			return n, err
		}
	}
	return n, nil
}

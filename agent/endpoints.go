package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"time"

	"vxswitch/api"
	"vxswitch/raftstore"
	"vxswitch/stateview"
	vswitch "vxswitch/switch"
	"vxswitch/tap"
	"vxswitch/vxlan"
)

// port is one attached endpoint of this host: its committed record and the
// TAP device the agent holds.
type port struct {
	ep  raftstore.Endpoint
	dev *tap.TAP
	ns  nsID // the namespace the TAP was opened in (nsid.go)
}

var ifNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)

func (a *Agent) handleAttach(w http.ResponseWriter, r *http.Request) {
	var req api.AttachRequest
	if err := decode(r, &req); err != nil {
		reply(w, nil, err)
		return
	}
	ep, err := a.attach(r.Context(), req)
	reply(w, ep, err)
}

// attach commits a new endpoint on this host (the FSM assigns its address),
// then creates its TAP inside the endpoint's netns. If the device cannot be
// made, the commit is undone.
func (a *Agent) attach(ctx context.Context, req api.AttachRequest) (api.Endpoint, error) {
	if req.IfName == "" {
		req.IfName = "eth0"
	}
	if err := raftstore.CheckEndpointName(req.Name); err != nil {
		return api.Endpoint{}, badRequest("%v", err)
	}
	switch {
	case !ifNameRE.MatchString(req.IfName):
		return api.Endpoint{}, badRequest("--ifname %q is not a valid interface name: 1 to 15 letters, digits, '_', '.', '-'", req.IfName)
	case len(req.Owner) > 256:
		return api.Endpoint{}, badRequest("owner tag is %d bytes: at most 256", len(req.Owner))
	case req.NetNS == "":
		return api.Endpoint{}, badRequest("--netns is required: the name of a network namespace (ip netns add NAME) or a path like /proc/PID/ns/net")
	}
	st := a.store.State()
	n, ok := st.Networks[req.Network]
	if !ok {
		return api.Endpoint{}, notFound("no network named %q: create it with 'vxswitch network create %s --subnet 10.20.0.0/24'", req.Network, req.Network)
	}
	if e, ok := st.Endpoints.Get(req.Name); ok {
		return api.Endpoint{}, badRequest("endpoint name %q is already used (network %s, host %s): choose another name or detach it first", req.Name, e.Network, e.Host)
	}
	nsPath, err := tap.ResolveNetNS(req.NetNS)
	if err != nil {
		return api.Endpoint{}, badRequest("%v", err)
	}
	if err := tap.CheckTUN(); err != nil {
		return api.Endpoint{}, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	mac := a.freeMAC(st, n.Name, req.Name)
	ep, err := a.commitPort(ctx, raftstore.Endpoint{
		Name: req.Name, Network: n.Name, Host: a.cfg.Name, MAC: mac.String(),
		NetNS: nsPath, IfName: req.IfName, Aliases: req.Aliases, Owner: req.Owner,
	}, n)
	if err != nil {
		return api.Endpoint{}, err
	}
	out := a.apiEndpoint(a.store.State(), ep)
	if path := resolvConfPath(ep.NetNS); path != "" {
		if err := writeResolvConf(path, n); err != nil {
			a.log.Warn("endpoint attached, but names will not resolve by default in it", "endpoint", ep.Name, "err", err)
		} else {
			out.ResolvConf = path
		}
	}
	return out, nil
}

// commitPort commits the endpoint e of network n, waits until this host
// has applied it, and creates its TAP and port. If the TAP cannot be made,
// the commit is undone. The caller holds a.mu.
func (a *Agent) commitPort(ctx context.Context, e raftstore.Endpoint, n raftstore.Network) (raftstore.Endpoint, error) {
	res, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpEndpointAttach, Endpoint: &e})
	if err != nil {
		return raftstore.Endpoint{}, err
	}
	ep := *res.Endpoint
	// The leader answered; wait until this host has applied the entry too,
	// or reconcile would see a port whose endpoint it does not know yet.
	if err := a.waitState(ctx, func(st *raftstore.State) bool { return st.Endpoints.At(ep.Name).MAC == ep.MAC }); err != nil {
		a.undoAttach(ep.Name)
		return raftstore.Endpoint{}, err
	}
	if old, ok := a.ports[ep.Name]; ok {
		// An endpoint of the same name, detached a moment ago, whose
		// port reconcile has not removed yet: the name is ep's now.
		a.closePort(ep.Name, old)
	}
	if err := a.openPort(ep, n, tap.Create); err != nil {
		a.undoAttach(ep.Name)
		return raftstore.Endpoint{}, err
	}
	return ep, nil
}

// freeMAC returns the endpoint's stable MAC, or the next salted one if
// another endpoint of the network already has it.
func (a *Agent) freeMAC(st *raftstore.State, network, name string) vswitch.MAC {
	used := map[string]bool{}
	for _, e := range st.Endpoints.All() {
		if e.Network == network {
			used[e.MAC] = true
		}
	}
	for salt := 0; ; salt++ {
		if mac := stateview.StableMAC(network, name, salt); !used[mac.String()] {
			return mac
		}
	}
}

// undoAttach removes a committed endpoint whose device could not be set up.
func (a *Agent) undoAttach(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if _, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpEndpointDetach, Name: name}); err != nil {
		a.log.Error("undo attach: endpoint stays committed without a device; run 'vxswitch detach'", "endpoint", name, "err", err)
	}
}

// openPort creates (tap.Create) or re-attaches to (tap.Open) the endpoint's
// TAP and adds it to the switch. The caller holds a.mu.
func (a *Agent) openPort(ep raftstore.Endpoint, n raftstore.Network, open func(tap.Config) (*tap.TAP, error)) error {
	mac, err := vswitch.ParseMAC(ep.MAC)
	if err != nil {
		return fmt.Errorf("agent: endpoint %s has a bad MAC: %w", ep.Name, err)
	}
	dev, err := open(tap.Config{
		NetNS: ep.NetNS, Name: ep.IfName, MAC: net.HardwareAddr(mac[:]),
		MTU: a.endpointMTU(n), Addr: addr4(ep, n), Addr6: addr6(ep, n),
		Offload: true, GSOMaxSegs: vxlan.SegmentsPerSend(a.endpointMTU(n) + 14),
	})
	if err != nil {
		return err
	}
	ns, _ := statNS(ep.NetNS) // unknown (zero) if it fails: then never compared
	if err := a.sw.AddPort(ep.Name, n.VNI, mac, dev); err != nil {
		dev.Close()
		return fmt.Errorf("agent: add port %s: %w", ep.Name, err)
	}
	a.ports[ep.Name] = &port{ep: ep, dev: dev, ns: ns}
	a.savePorts()
	delete(a.broken, ep.Name)
	delete(a.last, ep.Name)
	return nil
}

// addr6 returns the IPv6 address of ep with its network's prefix length,
// addr4 returns the IPv4 address of ep with its network's prefix length,
// or the zero Prefix when ep has none (an IPv6-only network).
func addr4(ep raftstore.Endpoint, n raftstore.Network) netip.Prefix {
	if !ep.IP.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(ep.IP, n.Subnet.Bits())
}

// or the zero Prefix when ep has none.
func addr6(ep raftstore.Endpoint, n raftstore.Network) netip.Prefix {
	if !ep.IP6.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(ep.IP6, n.Subnet6.Bits())
}

// portStopped is the switch's Config.PortStopped: a port's TAP that
// reports tap.ErrGone went with its endpoint's namespace, so the endpoint
// is detached (endpointGone), unless the port's name belongs to another
// device by now. It runs in the port's goroutine, which RemovePort waits
// for while holding a.mu, so the work goes to a goroutine of its own.
func (a *Agent) portStopped(name string, dev tap.Device, err error) {
	if !errors.Is(err, tap.ErrGone) {
		return
	}
	go func() {
		a.mu.Lock()
		p := a.ports[name]
		a.mu.Unlock()
		if p != nil && tap.Device(p.dev) == dev {
			a.endpointGone(p.ep)
		}
	}()
}

// endpointGone detaches an endpoint whose network namespace was deleted:
// the container is gone, so its address returns to the pool.
func (a *Agent) endpointGone(ep raftstore.Endpoint) {
	cur, ok := a.store.State().Endpoints.Get(ep.Name)
	if !ok || cur.Host != a.cfg.Name || cur.MAC != ep.MAC {
		return
	}
	a.log.Info("endpoint's namespace is gone; detaching it", "endpoint", ep.Name, "netns", ep.NetNS)
	ctx, cancel := context.WithTimeout(a.ctx, writeTimeout)
	defer cancel()
	if _, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpEndpointDetach, Name: ep.Name}); err != nil {
		a.log.Warn("detach of a gone endpoint failed; it stays listed", "endpoint", ep.Name, "err", err)
	}
}

func (a *Agent) handleDetach(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := a.store.State().Endpoints.Get(name); !ok {
		reply(w, nil, notFound("no endpoint named %q: see 'vxswitch endpoints'", name))
		return
	}
	_, err := a.apply(r.Context(), raftstore.Command{Op: raftstore.OpEndpointDetach, Name: name})
	if err == nil {
		// The owning host deletes the TAP when it sees the change; if that
		// is us, do it before answering.
		a.reconcile()
	}
	reply(w, struct{}{}, err)
}

// reconcile makes the local ports match the endpoints that the state puts
// on this host: ports of endpoints that are gone are removed and their TAPs
// deleted; endpoints without a port (after a restart) are re-attached to
// their persistent TAPs.
func (a *Agent) reconcile() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx.Err() != nil {
		return
	}
	st := a.store.State()
	for name, p := range a.ports {
		e, ok := st.Endpoints.Get(name)
		if ok && e.Host == a.cfg.Name && e.MAC == p.ep.MAC && e.Network == p.ep.Network && e.IP == p.ep.IP {
			// The same endpoint. If a container runtime moved its TAP
			// (endpoint.update), the open device moved with it.
			if p.ep.NetNS != e.NetNS || p.ep.IfName != e.IfName {
				p.ep = e
				p.ns, _ = statNS(e.NetNS)
				a.savePorts()
			}
			continue
		}
		a.closePort(name, p)
	}
	a.forgetGone(st)
	for _, e := range st.Endpoints.All() {
		if e.Host != a.cfg.Name || a.ports[e.Name] != nil {
			continue
		}
		n, ok := st.Networks[e.Network]
		if !ok {
			continue
		}
		if a.broken[e.Name] == brokenReplaced {
			// Already found replaced; its detach is on the way. Checked
			// before the namespace identity, which a later reconcile may
			// no longer have (issue 18's race: the foreign TAP was taken
			// over in the window before the detach applied).
			continue
		}
		if replacedNS(e.NetNS, a.lastNS(e)) {
			// The namespace this endpoint was attached to is gone, and
			// its path leads to another one (a reused PID, a namespace
			// made again under the same name): never open a device there.
			a.log.Warn("endpoint's namespace was replaced by another at the same path; detaching it", "endpoint", e.Name, "netns", e.NetNS)
			a.broken[e.Name] = brokenReplaced
			go a.endpointGone(e)
			continue
		}
		if err := a.openPort(e, n, tap.Open); err != nil {
			if a.broken[e.Name] != err.Error() {
				a.log.Warn("cannot re-attach endpoint; it stays down until its TAP is back", "endpoint", e.Name, "err", err)
				a.broken[e.Name] = err.Error()
			}
		}
	}
}

// brokenReplaced is the reason a.broken records for an endpoint whose
// namespace path leads to another namespace: it is never re-opened.
const brokenReplaced = "namespace replaced"

// forgetGone drops what reconcile remembers of endpoints that the state no
// longer places on this host: why they could not be re-attached and, once
// removeOrphans has seen a current state, the namespace identity of their
// last run's port (before that, a state still catching up may not list
// them yet). A new endpoint of the same name starts afresh. The caller
// holds a.mu.
func (a *Agent) forgetGone(st *raftstore.State) {
	here := func(name string) bool {
		e, ok := st.Endpoints.Get(name)
		return ok && e.Host == a.cfg.Name
	}
	for name := range a.broken {
		if !here(name) {
			delete(a.broken, name)
		}
	}
	if !a.orphansDone {
		return
	}
	for name := range a.last {
		if !here(name) {
			delete(a.last, name)
		}
	}
}

// closePort removes the port of an endpoint that is gone and deletes its
// TAP. The caller holds a.mu.
func (a *Agent) closePort(name string, p *port) {
	if err := a.sw.RemovePort(name); err != nil {
		a.log.Warn("remove port", "endpoint", name, "err", err)
	}
	if replacedNS(p.ep.NetNS, p.ns) {
		// The TAP went with its namespace; the path now leads to another
		// one, whose interfaces are not ours.
	} else if err := tap.Delete(p.ep.NetNS, p.ep.IfName); err != nil {
		a.log.Warn("delete TAP of detached endpoint", "endpoint", name, "err", err)
	}
	if path := resolvConfPath(p.ep.NetNS); path != "" {
		removeResolvConf(path)
	}
	delete(a.ports, name)
	a.savePorts()
}

// announceLoop publishes, once a second at most, the MACs the switch learned
// behind local ports, and withdraws those that aged out, so that the other
// hosts forward to them without flooding.
func (a *Agent) announceLoop() { a.every(time.Second, a.announce) }

// every calls fn every d until the agent stops.
func (a *Agent) every(d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func (a *Agent) announce() {
	st := a.store.State()
	netByVNI := map[uint32]string{}
	for _, n := range st.Networks {
		netByVNI[n.VNI] = n.Name
	}
	want := map[string]raftstore.MACEntry{}
	for _, l := range a.sw.Learned() {
		name, ok := netByVNI[l.VNI]
		if !ok {
			continue
		}
		m := raftstore.MACEntry{Network: name, MAC: l.MAC.String(), Host: a.cfg.Name, Port: l.Port}
		want[m.Network+"/"+m.MAC] = m
	}
	var add, del []raftstore.MACEntry
	for k, m := range want {
		if cur, ok := st.MACs[k]; !ok || cur != m {
			add = append(add, m)
		}
	}
	for k, m := range st.MACs {
		if _, ok := want[k]; !ok && m.Host == a.cfg.Name {
			del = append(del, m)
		}
	}
	ctx, cancel := context.WithTimeout(a.ctx, 3*time.Second)
	defer cancel()
	for _, c := range []struct {
		op   string
		macs []raftstore.MACEntry
	}{{raftstore.OpMACAnnounce, add}, {raftstore.OpMACWithdraw, del}} {
		if len(c.macs) == 0 {
			continue
		}
		if _, err := a.apply(ctx, raftstore.Command{Op: c.op, MACs: c.macs}); err != nil {
			a.log.Debug("mac announcement failed; retrying next tick", "op", c.op, "err", err)
		}
	}
}

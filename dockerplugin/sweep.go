package dockerplugin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"vxswitch/raftstore"
)

// Run keeps names and cleanup in step with the engine until ctx is done:
// it sweeps at every engine event and every Config.Every.
func (p *Plugin) Run(ctx context.Context) {
	kick := make(chan struct{}, 1)
	go p.cfg.Engine.Watch(ctx, func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	t := time.NewTicker(p.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-kick:
		case <-t.C:
		case <-ctx.Done():
			return
		}
		p.Sweep(ctx)
	}
}

// Sweep registers container names as DNS aliases and removes what the
// engine no longer knows. Nothing is removed when the engine cannot be
// asked.
func (p *Plugin) Sweep(ctx context.Context) {
	v, err := p.cfg.Engine.View(ctx)
	if err != nil {
		p.warnOnce("engine", "cannot reach the docker engine: container names and cleanup wait for it", err)
		return
	}
	p.warnOnce("engine", "", nil)
	p.syncNames(ctx, v)
	p.collect(ctx, v, time.Now())
}

// warnOnce logs msg and err for subject unless they are what was logged
// last for it; a nil err forgets the subject, so its next failure is
// logged again.
func (p *Plugin) warnOnce(subject, msg string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		msg = "" // it worked: log the next failure again
	}
	line := msg
	if err != nil {
		line += ": " + err.Error()
	}
	if p.warned[subject] == line {
		return
	}
	p.warned[subject] = line
	if msg != "" {
		p.log.Warn(msg, "subject", subject, "err", err)
	}
}

// dnsAliases returns the DNS aliases of a container's endpoint named self:
// the container's name, then its network aliases, lower-cased, without
// those the cluster would refuse, self and repeats.
func dnsAliases(self, container string, aliases []string) []string {
	var out []string
	for _, a := range append([]string{container}, aliases...) {
		a = strings.ToLower(a)
		if a != self && raftstore.IsName(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// freeNames returns the names that no other endpoint of e's network uses
// as its name or alias: with Docker Compose every replica of a service has
// the service's name as an alias, on every host; the first to register it
// keeps it, the others keep their own names.
func freeNames(st *raftstore.State, e raftstore.Endpoint, names []string) []string {
	taken := map[string]bool{}
	for _, o := range st.NetworkEndpoints(e.Network) {
		if o.Name == e.Name {
			continue
		}
		taken[o.Name] = true
		for _, a := range o.Aliases {
			taken[a] = true
		}
	}
	var out []string
	for _, n := range names {
		if !taken[n] {
			out = append(out, n)
		}
	}
	return out
}

// syncNames sets the aliases of this host's Docker endpoints to their
// containers' names and network aliases.
func (p *Plugin) syncNames(ctx context.Context, v View) {
	host := p.cfg.Cluster.HostName()
	for _, n := range v.Networks {
		for _, ee := range n.Endpoints {
			name, _, err := endpointNames(ee.ID)
			if err != nil {
				continue
			}
			e, ok := p.cfg.Cluster.State().Endpoints.Get(name)
			if !ok || e.Host != host || e.Owner != OwnerPrefix+ee.ID {
				continue
			}
			want := freeNames(p.cfg.Cluster.State(), e, dnsAliases(e.Name, ee.Container, ee.Aliases))
			if slices.Equal(e.Aliases, want) {
				continue
			}
			e.Aliases = want
			err = p.cfg.Cluster.Update(ctx, e)
			p.warnOnce("names/"+name, fmt.Sprintf("container %s keeps no DNS name on the cluster", ee.Container), err)
		}
	}
}

// collect removes this host's Docker endpoints and reservations that the
// engine does not know and that are older than Config.Grace (their
// container went away while the agent could not hear of it), and TAPs of
// Docker endpoints left in the agent's namespace without an endpoint.
func (p *Plugin) collect(ctx context.Context, v View, now time.Time) {
	links, linkErr := netlink.LinkList()
	st := p.cfg.Cluster.State()
	host := p.cfg.Cluster.HostName()
	known, used := map[string]bool{}, map[string]bool{}
	for _, n := range v.Networks {
		for _, ee := range n.Endpoints {
			known[ee.ID] = true
			used[n.Subnet.String()+"/"+ee.IP.String()] = true
			if ee.IP6.IsValid() {
				used[n.Subnet.String()+"/"+ee.IP6.String()] = true
			}
		}
	}
	old := func(created int64) bool { return now.Sub(time.Unix(0, created)) > p.cfg.Grace }
	taps := map[string]bool{}
	for _, e := range st.HostEndpoints(host) {
		id, ok := strings.CutPrefix(e.Owner, OwnerPrefix)
		if !ok {
			continue
		}
		if known[id] || !old(e.CreatedAt) {
			taps[e.IfName] = true
			continue
		}
		p.log.Info("removing a docker endpoint the engine no longer has", "endpoint", e.Name, "ip", e.IP)
		if err := p.cfg.Cluster.Detach(ctx, e.Name, e.IfName); err != nil {
			p.warnOnce("collect/"+e.Name, "cannot remove a stale docker endpoint", err)
		}
	}
	for _, r := range st.Reserved {
		nw, ok := st.Networks[r.Network]
		if r.Host != host || r.Owner != ReservationOwner || !old(r.CreatedAt) || (ok && used[nw.Subnet.String()+"/"+r.IP.String()]) {
			continue
		}
		p.log.Info("releasing an address reserved for a docker endpoint that never came", "network", r.Network, "ip", r.IP)
		if err := p.cfg.Cluster.Release(ctx, r.Network, r.IP); err != nil {
			p.warnOnce("collect/"+raftstore.ReservationKey(r.Network, r.IP), "cannot release a stale reservation", err)
		}
	}
	if linkErr != nil {
		return
	}
	// The state was read after the links, and an endpoint is committed
	// before its TAP is made: a TAP without an endpoint here is a leftover.
	for _, l := range links {
		name := l.Attrs().Name
		if l.Type() != "tuntap" || !strings.HasPrefix(name, TAPPrefix) || taps[name] {
			continue
		}
		if _, ok := st.Endpoints.Get(EndpointPrefix + strings.TrimPrefix(name, TAPPrefix)); ok {
			continue
		}
		p.log.Info("deleting a docker endpoint's TAP left without an endpoint", "tap", name)
		if err := netlink.LinkDel(l); err != nil {
			p.warnOnce("collect/"+name, "cannot delete a leftover TAP", err)
		}
	}
}

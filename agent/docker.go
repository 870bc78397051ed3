package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"time"

	"vxswitch/dockerplugin"
	"vxswitch/raftstore"
	vswitch "vxswitch/switch"
	"vxswitch/tap"
)

// dockerCluster is the agent as the Docker plugin uses it
// (dockerplugin.Cluster): every write commits through Raft and returns once
// this host has applied it.
type dockerCluster struct{ a *Agent }

var _ dockerplugin.Cluster = dockerCluster{}

func (d dockerCluster) HostName() string { return d.a.cfg.Name }

func (d dockerCluster) State() *raftstore.State { return d.a.store.State() }

// EnsureNetwork creates the network unless it exists; an existing one must
// have the same subnets (dockerplugin.CheckSubnets).
func (d dockerCluster) EnsureNetwork(ctx context.Context, name string, subnet, subnet6 netip.Prefix) (raftstore.Network, error) {
	check := func(n raftstore.Network) (raftstore.Network, error) {
		return n, dockerplugin.CheckSubnets(n, subnet, subnet6)
	}
	if n, ok := d.a.store.State().Networks[name]; ok {
		return check(n)
	}
	_, err := d.a.apply(ctx, raftstore.Command{Op: raftstore.OpNetworkCreate, Network: &raftstore.Network{Name: name, Subnet: subnet, Subnet6: subnet6}})
	if err != nil {
		// Refused: perhaps another host's engine made it a moment ago.
		n, found, known := settled(d, ctx, func(st *raftstore.State) (raftstore.Network, bool) { n, ok := st.Networks[name]; return n, ok })
		if !found || !known {
			return raftstore.Network{}, err
		}
		return check(n)
	}
	return check(d.a.store.State().Networks[name])
}

func (d dockerCluster) Reserve(ctx context.Context, network string, ip netip.Addr, v6 bool, owner string) (netip.Addr, error) {
	res, err := d.a.apply(ctx, raftstore.Command{Op: raftstore.OpAddressReserve,
		Reservation: &raftstore.Reservation{Network: network, IP: ip, IPv6: v6, Host: d.a.cfg.Name, Owner: owner}})
	if err != nil {
		return netip.Addr{}, err
	}
	return res.Reservation.IP, nil
}

func (d dockerCluster) Release(ctx context.Context, network string, ip netip.Addr) error {
	if _, ok := d.a.store.State().Reserved[raftstore.ReservationKey(network, ip)]; !ok {
		return nil
	}
	_, err := d.a.apply(ctx, raftstore.Command{Op: raftstore.OpAddressRelease, Reservation: &raftstore.Reservation{Network: network, IP: ip}})
	if err != nil {
		// Refused: fine if the reservation is gone (an endpoint took it over).
		if _, found, known := settled(d, ctx, func(st *raftstore.State) (raftstore.Reservation, bool) {
			r, ok := st.Reserved[raftstore.ReservationKey(network, ip)]
			return r, ok
		}); known && !found {
			return nil
		}
	}
	return err
}

// Attach commits ep and creates its TAP in the agent's own namespace
// (ep.NetNS is ""): Docker moves it into the container at Join.
func (d dockerCluster) Attach(ctx context.Context, ep raftstore.Endpoint) (raftstore.Endpoint, error) {
	a := d.a
	if err := tap.CheckTUN(); err != nil {
		return raftstore.Endpoint{}, err
	}
	st := a.store.State()
	n, ok := st.Networks[ep.Network]
	if !ok {
		return raftstore.Endpoint{}, fmt.Errorf("no network named %q", ep.Network)
	}
	ep.Host, ep.NetNS = a.cfg.Name, ""
	a.mu.Lock()
	defer a.mu.Unlock()
	if ep.MAC == "" {
		ep.MAC = a.freeMAC(st, n.Name, ep.Name).String()
	} else if _, err := vswitch.ParseMAC(ep.MAC); err != nil {
		return raftstore.Endpoint{}, fmt.Errorf("MAC address %q: %w", ep.MAC, err)
	}
	return a.commitPort(ctx, ep, n)
}

// Update records an endpoint's new place and aliases; its port stays.
func (d dockerCluster) Update(ctx context.Context, ep raftstore.Endpoint) error {
	_, err := d.a.apply(ctx, raftstore.Command{Op: raftstore.OpEndpointUpdate, Endpoint: &ep})
	return err // apply returns once this host has applied it
}

// Detach removes the endpoint, its port, and the TAP Docker moved back into
// the agent's namespace.
func (d dockerCluster) Detach(ctx context.Context, name, tapName string) error {
	a := d.a
	if _, ok := a.store.State().Endpoints.Get(name); ok {
		_, err := a.apply(ctx, raftstore.Command{Op: raftstore.OpEndpointDetach, Name: name})
		if err != nil {
			// Refused: fine if the endpoint is gone (detached twice).
			if _, found, known := settled(d, ctx, func(st *raftstore.State) (raftstore.Endpoint, bool) {
				e, ok := st.Endpoints.Get(name)
				return e, ok
			}); found || !known {
				return err
			}
		}
		a.reconcile()
	}
	return tap.Delete("", tapName)
}

// settled looks x up in this host's state once it has applied everything
// the leader has (a read index), after a write was refused: the refusal may
// come from a change this host has not applied yet.
// It reports known false when this host cannot catch up.
func settled[T any](d dockerCluster, ctx context.Context, find func(*raftstore.State) (T, bool)) (x T, found, known bool) {
	if err := d.a.catchUpConsistent(ctx); err != nil {
		return x, false, false
	}
	x, found = find(d.a.store.State())
	return x, found, true
}

// startDockerPlugin serves the Docker network and IPAM driver on
// cfg.DockerPlugin and follows the engine at cfg.DockerHost.
func (a *Agent) startDockerPlugin() error {
	if a.cfg.DockerPlugin == "" {
		return nil
	}
	engine, err := dockerplugin.NewDockerEngine(a.cfg.DockerHost)
	if err != nil {
		return err
	}
	l, err := dockerplugin.Listen(a.cfg.DockerPlugin)
	if err != nil {
		return err
	}
	p := dockerplugin.New(dockerplugin.Config{Cluster: dockerCluster{a}, Engine: engine, Grace: a.cfg.DockerStaleAfter, Logger: a.log})
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 5 * time.Second}
	a.servers = append(a.servers, srv)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("docker plugin server stopped", "err", err)
		}
		os.Remove(a.cfg.DockerPlugin) // it was ours: Listen refuses a live one
	}()
	go func() { defer a.wg.Done(); p.Run(a.ctx) }()
	a.log.Info("docker plugin ready", "socket", a.cfg.DockerPlugin, "engine", a.cfg.DockerHost)
	return nil
}

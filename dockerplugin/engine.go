package dockerplugin

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Engine is the Docker engine as the plugin sees it: what it needs to learn
// network and container names, which Docker does not pass to drivers.
type Engine interface {
	// View returns the engine's networks of this driver and the
	// containers attached to them.
	View(ctx context.Context) (View, error)
	// Network returns the name and subnet of the network id (Endpoints
	// left empty), or an error wrapping errUnknownNetwork if the engine
	// has no such network. It is what a driver call needs, at the cost of
	// one engine request instead of View's one per network and container.
	Network(ctx context.Context, id string) (EngineNetwork, error)
	// Watch calls changed after every container start and network
	// connect or disconnect, until ctx is done; it reconnects when the
	// engine restarts and calls changed after each reconnect.
	Watch(ctx context.Context, changed func())
}

// View is what an engine knows about the networks of this driver.
type View struct {
	Networks []EngineNetwork
}

// EngineNetwork is one Docker network of this driver.
type EngineNetwork struct {
	ID, Name  string
	Subnet    netip.Prefix
	Subnet6   netip.Prefix // zero unless the network has --ipv6
	Endpoints []EngineEndpoint
}

// EngineEndpoint is one container's endpoint on an EngineNetwork.
type EngineEndpoint struct {
	ID        string // Docker's endpoint ID
	Container string // container name without the leading '/'
	Aliases   []string
	IP        netip.Addr
	IP6       netip.Addr // zero on an IPv4-only network
}

// DockerEngine is the Engine of a real Docker daemon, reached through its
// API with the Docker client library. The zero value is not usable; make
// one with NewDockerEngine.
type DockerEngine struct {
	c *client.Client
}

// NewDockerEngine returns the engine at host, a Docker host URL such as
// unix:///var/run/docker.sock; "" uses DOCKER_HOST or the default socket.
// The API version is negotiated, so Docker 20.10 (API 1.41) and later work.
func NewDockerEngine(host string) (*DockerEngine, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker plugin: engine client: %w", err)
	}
	return &DockerEngine{c: c}, nil
}

// View lists the networks of this driver with network inspect, and the
// aliases of their containers with container inspect.
func (d *DockerEngine) View(ctx context.Context) (View, error) {
	nets, err := d.c.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", Name))})
	if err != nil {
		return View{}, fmt.Errorf("docker plugin: list docker networks: %w", err)
	}
	var v View
	aliases := map[string]map[string][]string{} // container ID -> network ID -> aliases
	for _, s := range nets {
		n, err := d.c.NetworkInspect(ctx, s.ID, network.InspectOptions{})
		if err != nil {
			return View{}, fmt.Errorf("docker plugin: inspect docker network %s: %w", s.Name, err)
		}
		en := engineNetwork(n)
		for cid, c := range n.Containers {
			ep := EngineEndpoint{ID: c.EndpointID, Container: strings.TrimPrefix(c.Name, "/")}
			if p, err := netip.ParsePrefix(c.IPv4Address); err == nil {
				ep.IP = p.Addr()
			}
			if p, err := netip.ParsePrefix(c.IPv6Address); err == nil {
				ep.IP6 = p.Addr()
			}
			if _, ok := aliases[cid]; !ok {
				aliases[cid] = map[string][]string{}
				if ci, err := d.c.ContainerInspect(ctx, cid); err == nil && ci.NetworkSettings != nil {
					for _, es := range ci.NetworkSettings.Networks {
						aliases[cid][es.NetworkID] = es.Aliases
					}
				}
			}
			ep.Aliases = aliases[cid][n.ID]
			en.Endpoints = append(en.Endpoints, ep)
		}
		v.Networks = append(v.Networks, en)
	}
	return v, nil
}

// Network inspects one network.
func (d *DockerEngine) Network(ctx context.Context, id string) (EngineNetwork, error) {
	n, err := d.c.NetworkInspect(ctx, id, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return EngineNetwork{}, fmt.Errorf("docker network %.12s: %w", id, errUnknownNetwork)
	}
	if err != nil {
		return EngineNetwork{}, fmt.Errorf("docker plugin: inspect docker network %.12s: %w", id, err)
	}
	return engineNetwork(n), nil
}

// engineNetwork returns the ID, name and subnets of an inspected network.
func engineNetwork(n network.Inspect) EngineNetwork {
	en := EngineNetwork{ID: n.ID, Name: n.Name}
	for _, c := range n.IPAM.Config {
		p, err := netip.ParsePrefix(c.Subnet)
		switch {
		case err != nil:
		case p.Addr().Is4() && !en.Subnet.IsValid():
			en.Subnet = p
		case p.Addr().Is6() && !en.Subnet6.IsValid():
			en.Subnet6 = p
		}
	}
	return en
}

// Watch follows the engine's event stream.
func (d *DockerEngine) Watch(ctx context.Context, changed func()) {
	f := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("event", "start"),
		filters.Arg("type", string(events.NetworkEventType)), filters.Arg("event", "connect"), filters.Arg("event", "disconnect"),
	)
	for ctx.Err() == nil {
		msgs, errs := d.c.Events(ctx, events.ListOptions{Filters: f})
		changed()
	stream:
		for {
			select {
			case <-msgs:
				changed()
			case <-errs:
				break stream
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
}

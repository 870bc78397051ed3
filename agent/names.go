package agent

import (
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"

	"vxswitch/api"
	"vxswitch/raftstore"
)

// netnsEtc is where `ip netns exec NAME` finds per-namespace /etc files.
const netnsEtc = "/etc/netns"

// resolvMarker starts every resolv.conf the agent writes, so that it only
// ever removes its own.
const resolvMarker = "# written by vxswitch: the in-band resolver of network "

// resolvConfPath returns /etc/netns/NAME/resolv.conf for a named netns
// (nsPath under /var/run/netns or /run/netns), or "" for any other path such
// as /proc/PID/ns/net: that namespace has no /etc of its own to use.
func resolvConfPath(nsPath string) string {
	dir, name := filepath.Split(nsPath)
	if dir != "/var/run/netns/" && dir != "/run/netns/" || name == "" {
		return ""
	}
	return filepath.Join(netnsEtc, name, "resolv.conf")
}

// writeResolvConf points the namespace's resolver at the network's resolver
// address of each family the network has, with the network
// as search domain, so `ip netns exec NAME getent hosts OTHER` works.
func writeResolvConf(path string, n raftstore.Network) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("agent: write %s: %w", path, err)
	}
	var servers string
	for _, r := range []netip.Addr{n.Resolver, n.Resolver6} {
		if r.IsValid() {
			servers += "nameserver " + r.String() + "\n"
		}
	}
	body := fmt.Sprintf("%s%s\n%ssearch %s\noptions ndots:1 timeout:2 attempts:2\n", resolvMarker, n.Name, servers, n.Name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return fmt.Errorf("agent: write %s: %w", path, err)
	}
	return nil
}

// removeResolvConf removes a resolv.conf the agent wrote, and its netns
// directory if that is then empty.
func removeResolvConf(path string) {
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte(resolvMarker)) {
		return
	}
	os.Remove(path)
	os.Remove(filepath.Dir(path)) // only succeeds when empty
}

func (a *Agent) handleNames(w http.ResponseWriter, r *http.Request) {
	network := r.URL.Query().Get("network")
	if _, ok := a.store.State().Networks[network]; network != "" && !ok {
		reply(w, nil, notFound("no network named %q: see 'vxswitch network ls'", network))
		return
	}
	out := []api.DNSName{}
	for _, n := range a.dns.Names(network) {
		out = append(out, api.DNSName{Name: n.Name, Network: n.Network, IP: n.IP, Kind: n.Kind})
	}
	reply(w, out, nil)
}

func (a *Agent) handleLookup(w http.ResponseWriter, r *http.Request) {
	network, name := r.URL.Query().Get("network"), r.URL.Query().Get("name")
	if network == "" {
		reply(w, nil, badRequest("--network is required: names resolve within one network"))
		return
	}
	addrs, err := a.dns.Lookup(network, name)
	if err != nil {
		reply(w, nil, notFound("%v", err))
		return
	}
	reply(w, api.DNSLookup{Name: name, Network: network, Addrs: addrs}, nil)
}

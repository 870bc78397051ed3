package agent

import (
	"encoding/json"
	"os"
	"path/filepath"

	"vxswitch/raftstore"
	"vxswitch/tap"
)

// The agent keeps the list of the TAPs it holds in DATADIR/ports.json, so
// that after a restart it can delete the TAPs of endpoints that were
// detached (or whose host was removed) while it was down: their persistent
// devices would otherwise stay in the endpoints' namespaces for good.

func (a *Agent) portsFile() string { return filepath.Join(a.cfg.DataDir, "ports.json") }

// savedPort is one entry of the ports file: the endpoint and the identity
// of the namespace its TAP was opened in (absent in files of older agents).
type savedPort struct {
	raftstore.Endpoint
	NS nsID `json:"netns_id"`
}

// lastNS returns the namespace identity the last run recorded for e's
// port, or the zero nsID when it had none for this very endpoint (same
// MAC, namespace path and interface). The caller holds a.mu.
func (a *Agent) lastNS(e raftstore.Endpoint) nsID {
	p, ok := a.last[e.Name]
	if !ok || p.MAC != e.MAC || p.NetNS != e.NetNS || p.IfName != e.IfName {
		return nsID{}
	}
	return p.NS
}

// savePorts writes the endpoints of the current ports. The caller holds a.mu.
func (a *Agent) savePorts() {
	eps := make([]savedPort, 0, len(a.ports))
	for _, p := range a.ports {
		eps = append(eps, savedPort{p.ep, p.ns})
	}
	b, err := json.Marshal(eps)
	if err == nil {
		tmp := a.portsFile() + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, a.portsFile())
		}
	}
	if err != nil {
		a.log.Warn("cannot record the ports; TAPs detached while this agent is down may stay behind", "err", err)
	}
}

// loadPorts reads the ports the last run held, and keeps them in a.last
// for reconcile until each is re-opened (openPort) or its endpoint leaves
// this host (forgetGone). It must run before the first reconcile, which
// rewrites the file.
func (a *Agent) loadPorts() []savedPort {
	a.last = map[string]savedPort{}
	b, err := os.ReadFile(a.portsFile())
	if err != nil {
		return nil
	}
	var last []savedPort
	if err := json.Unmarshal(b, &last); err != nil {
		a.log.Warn("ignoring an unreadable ports file", "file", a.portsFile(), "err", err)
		return nil
	}
	for _, p := range last {
		a.last[p.Name] = p
	}
	return last
}

// removeOrphans deletes the TAPs the last run held (last, from loadPorts)
// whose endpoints the current state no longer places here with the same
// device, then records the ports held now.
func (a *Agent) removeOrphans(last []savedPort) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.store.State()
	for _, old := range last {
		e, ok := st.Endpoints.Get(old.Name)
		if ok && e.Host == a.cfg.Name && e.NetNS == old.NetNS && e.IfName == old.IfName && e.MAC == old.MAC {
			continue
		}
		if replacedNS(old.NetNS, old.NS) {
			a.log.Info("the namespace of an endpoint detached while this agent was down is gone; another one is at its path now, left alone", "endpoint", old.Name, "netns", old.NetNS)
			continue
		}
		if err := tap.Delete(old.NetNS, old.IfName); err != nil {
			a.log.Warn("cannot delete the TAP of an endpoint detached while this agent was down", "endpoint", old.Name, "err", err)
			continue
		}
		if path := resolvConfPath(old.NetNS); path != "" {
			removeResolvConf(path)
		}
		a.log.Info("deleted the TAP of an endpoint detached while this agent was down", "endpoint", old.Name, "netns", old.NetNS)
	}
	// The identities of ports not re-opened yet stay in a.last: reconcile
	// still needs them to tell a replaced namespace (forgetGone drops
	// them once their endpoints leave).
	a.orphansDone = true
	a.savePorts()
}

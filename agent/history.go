package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"vxswitch/api"
	"vxswitch/raftstore"
	"vxswitch/stateview"
	vswitch "vxswitch/switch"
)

// This file holds the agent's views of the cluster's history (issue 16):
// explain, the event stream, and the tables as of a past index. The
// history itself is raftstore's (FSM.History, FSM.StateAt).

// apiObject turns a history object into its API form.
func apiObject(kind, key string, o *raftstore.Object) api.Object {
	out := api.Object{Kind: kind, Key: key}
	if o == nil {
		return out
	}
	switch {
	case o.Host != nil:
		out.Name, out.VTEP = o.Host.Name, o.Host.VTEP
	case o.Network != nil:
		out.Name, out.Network, out.Subnet, out.VNI = o.Network.Name, o.Network.Name, o.Network.Subnet, o.Network.VNI
		out.Subnet6 = o.Network.Subnet6
	case o.Endpoint != nil:
		e := o.Endpoint
		out.Name, out.Network, out.Host, out.MAC, out.IP, out.Owner = e.Name, e.Network, e.Host, e.MAC, e.IP, e.Owner
		out.IP6 = e.IP6
	case o.MAC != nil:
		out.Network, out.Host, out.MAC, out.Port = o.MAC.Network, o.MAC.Host, o.MAC.MAC, o.MAC.Port
	case o.VTEP != nil:
		out.Network, out.VTEP = o.VTEP.Network, o.VTEP.Addr
	case o.Reservation != nil:
		r := o.Reservation
		out.Network, out.Host, out.IP, out.Owner = r.Network, r.Host, r.IP, r.Owner
	}
	return out
}

func apiChange(c raftstore.Change) api.Change {
	o := c.Object()
	out := api.Change{Action: c.Action(), Object: apiObject(c.Kind, c.Key, &o)}
	if c.Action() == "updated" {
		old := apiObject(c.Kind, c.Key, c.Old)
		out.Old = &old
	}
	return out
}

// describe writes one object for people: "endpoint web-1 (net web, host
// h1, 10.20.0.5, 02:...)".
func describe(o api.Object) string {
	var parts []string
	add := func(label, v string) {
		if v != "" && v != "invalid IP" && v != "invalid Prefix" && v != "0" {
			parts = append(parts, label+v)
		}
	}
	switch o.Kind {
	case raftstore.KindNetwork:
		add("vni ", strconv.FormatUint(uint64(o.VNI), 10))
		add("", o.Subnet.String())
		add("", o.Subnet6.String())
	case raftstore.KindHost:
		add("vtep ", o.VTEP.String())
	default:
		add("net ", o.Network)
		add("host ", o.Host)
		add("", o.IP.String())
		add("", o.IP6.String())
		add("", o.MAC)
		add("behind port ", o.Port)
		add("vtep ", o.VTEP.String())
		add("owner ", o.Owner)
	}
	name := o.Name
	switch o.Kind {
	case raftstore.KindMAC:
		name = o.MAC
		parts = slices.DeleteFunc(parts, func(p string) bool { return p == o.MAC })
	case raftstore.KindVTEP:
		name = o.VTEP.String()
		parts = slices.DeleteFunc(parts, func(p string) bool { return p == "vtep "+name })
	case raftstore.KindReservation:
		name = o.IP.String()
		parts = slices.DeleteFunc(parts, func(p string) bool { return p == name })
	case raftstore.KindCluster, raftstore.KindToken:
		return o.Kind
	}
	s := o.Kind + " " + name
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// kindWord names a kind of object in a summary (a learned MAC is not an
// endpoint's own).
func kindWord(c api.Change) string {
	if c.Kind == raftstore.KindMAC {
		return "learned MAC"
	}
	return c.Kind
}

// summary writes an event in one line.
func summary(e api.Event) (out string) {
	switch {
	case e.Error != "":
		return "refused: " + e.Error
	case e.Duplicate:
		return "retry of an applied request: no change"
	case len(e.Changes) == 0:
		return "no change"
	}
	defer func() {
		if out == "" {
			out = "no visible change"
		}
	}()
	var parts []string
	shown := 0
	for _, c := range e.Changes {
		if c.Old != nil && *c.Old == c.Object {
			continue // an update people do not see (the network's last allocated address)
		}
		if shown == 3 {
			parts = append(parts, "and more")
			break
		}
		shown++
		d := describe(c.Object)
		d = kindWord(c) + strings.TrimPrefix(d, c.Kind)
		parts = append(parts, d+" "+c.Action)
	}
	return strings.Join(parts, "; ")
}

// apiEvent turns a history entry into its API form.
func apiEvent(e *raftstore.HistoryEntry) api.Event {
	out := api.Event{
		Index: e.Index, Term: e.Term, Op: e.Op, Origin: e.Origin, ReqID: e.ReqID,
		Error: e.Err, Duplicate: e.Duplicate,
	}
	if e.Time != 0 {
		out.Time = time.Unix(0, e.Time).UTC()
	}
	for _, c := range e.Changes {
		out.Changes = append(out.Changes, apiChange(c))
	}
	out.Summary = summary(out)
	return out
}

// inNetwork tells whether an entry changed an object of network.
func inNetwork(e *raftstore.HistoryEntry, network string) bool {
	for _, c := range e.Changes {
		if o := apiObject(c.Kind, c.Key, objectPtr(c.Object())); o.Network == network {
			return true
		}
	}
	return false
}

func objectPtr(o raftstore.Object) *raftstore.Object { return &o }

func (a *Agent) historyStatus() *api.HistoryStatus {
	info := a.store.FSM().HistoryInfo()
	s := &api.HistoryStatus{
		Entries: info.Entries, Bytes: info.Bytes, First: info.First, Last: info.Last, BaseIndex: info.BaseIndex,
		MaxEntries: info.Limits.Entries, MaxBytes: info.Limits.Bytes,
	}
	if info.Limits.Age > 0 {
		s.MaxAge = info.Limits.Age.String()
	}
	return s
}

func (a *Agent) handleExplain(w http.ResponseWriter, r *http.Request) {
	subject, network := strings.TrimSpace(r.URL.Query().Get("q")), r.URL.Query().Get("network")
	if subject == "" {
		reply(w, nil, badRequest("explain needs an IP address, a MAC address or a name: for example 'vxswitch explain 10.20.0.5'"))
		return
	}
	// A network that no longer exists may still have a history: no check.
	st := a.store.State()
	entries, base := a.store.FSM().Explain(subject, network)
	out := api.Explanation{Subject: subject, Network: network, HistoryFrom: base, Index: st.Index, Now: []api.Object{}, History: []api.Event{}}
	for _, c := range st.Matching(subject, network) {
		out.Now = append(out.Now, apiChange(c).Object)
	}
	for _, e := range entries {
		out.History = append(out.History, apiEvent(e))
	}
	reply(w, out, nil)
}

// handleEvents streams the committed commands this host applies, as JSON
// lines, or as server-sent events to a client that accepts
// text/event-stream. ?since=INDEX resumes after that index (default: the
// next command), ?network=N keeps the events of one network, ?count=C
// stops after C events, ?follow=0 stops after the retained ones.
func (a *Agent) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fsm := a.store.FSM()
	since := fsm.HistoryInfo().Last
	if s := q.Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			reply(w, nil, badRequest("since=%q is not a Raft index: give a number, like --since 0 for everything retained", s))
			return
		}
		since = v
	}
	count := 0
	if s := q.Get("count"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			reply(w, nil, badRequest("count=%q is not a count: give a positive number", s))
			return
		}
		count = v
	}
	follow := q.Get("follow") != "0"
	network := q.Get("network")
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	sent := 0
	send := func(e api.Event) bool {
		b, err := json.Marshal(e)
		if err != nil {
			return false
		}
		if sse {
			_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Index, e.Op, b)
		} else {
			_, err = fmt.Fprintf(w, "%s\n", b)
		}
		if err != nil {
			return false
		}
		sent++
		return count == 0 || sent < count
	}
	for {
		entries, gone, wake := fsm.History(since, 256)
		if gone {
			base := fsm.HistoryInfo().BaseIndex
			if !send(api.Event{Index: base, Op: api.OpHistoryGone, Summary: fmt.Sprintf(
				"entries %d to %d were dropped from this host's history before they could be sent", since+1, base)}) {
				return
			}
		}
		for _, e := range entries {
			since = e.Index
			if network != "" && !inNetwork(e, network) {
				continue
			}
			if !send(apiEvent(e)) {
				if flusher != nil {
					flusher.Flush()
				}
				return
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		if len(entries) > 0 {
			continue
		}
		if !follow {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-a.ctx.Done():
			return
		case <-wake:
		}
	}
}

// pastState returns the state as of the request's ?at: a Raft index, a
// time (RFC 3339) or a duration ago ("10m"), rebuilt from the history;
// ok is false without ?at.
func (a *Agent) pastState(r *http.Request) (st *raftstore.State, ok bool, err error) {
	at := r.URL.Query().Get("at")
	if at == "" {
		return nil, false, nil
	}
	fsm := a.store.FSM()
	index, perr := strconv.ParseUint(at, 10, 64)
	if perr != nil {
		t, terr := time.Parse(time.RFC3339Nano, at)
		if terr != nil {
			d, derr := time.ParseDuration(at)
			if derr != nil || d < 0 {
				return nil, true, badRequest("--at %q is neither a Raft index, a time like 2025-01-02T15:04:05Z, nor a duration ago like 10m", at)
			}
			t = time.Now().Add(-d)
		}
		index, err = fsm.IndexAt(t.UnixNano())
		if err != nil {
			return nil, true, badRequest("%v", err)
		}
	}
	if applied := a.store.AppliedIndex(); index > applied {
		return nil, true, badRequest("--at %d is after this host's last applied index %d: give an index up to %d", index, applied, applied)
	}
	st, err = fsm.StateAt(index)
	if errors.Is(err, raftstore.ErrHistoryGone) {
		return nil, true, notFound("%v", err)
	}
	return st, true, err
}

// asOf serves past with the state rebuilt for ?at, and live without it.
func (a *Agent) asOf(live http.HandlerFunc, past func(http.ResponseWriter, *http.Request, *raftstore.State)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, ok, err := a.pastState(r)
		switch {
		case !ok:
			live(w, r)
		case err != nil:
			reply(w, nil, err)
		default:
			past(w, r, st)
		}
	}
}

// noNetwork is the error for a network that the state, current or past,
// does not hold.
func noNetwork(r *http.Request, st *raftstore.State, name string) error {
	if r.URL.Query().Get("at") != "" {
		return notFound("there was no network named %q at index %d: see 'vxswitch explain %s'", name, st.Index, name)
	}
	return notFound("no network named %q: see 'vxswitch network ls'", name)
}

// endpointsAt lists the endpoints of st, of every network or of the one
// the request names; networksAt and networkAt list networks. They serve
// the current state and past ones alike.
func (a *Agent) endpointsAt(w http.ResponseWriter, r *http.Request, st *raftstore.State) {
	network := r.URL.Query().Get("network")
	if _, ok := st.Networks[network]; network != "" && !ok {
		reply(w, nil, noNetwork(r, st, network))
		return
	}
	reply(w, a.endpointList(st, network), nil)
}

func (a *Agent) networksAt(w http.ResponseWriter, _ *http.Request, st *raftstore.State) {
	out := []api.Network{}
	for _, n := range st.Networks {
		out = append(out, a.apiNetwork(st, n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	reply(w, out, nil)
}

func (a *Agent) networkAt(w http.ResponseWriter, r *http.Request, st *raftstore.State) {
	n, ok := st.Networks[r.PathValue("name")]
	if !ok {
		reply(w, nil, noNetwork(r, st, r.PathValue("name")))
		return
	}
	out := a.apiNetwork(st, n)
	out.Members = a.endpointList(st, n.Name)
	reply(w, out, nil)
}

// membersAt lists the hosts of a past state; their Raft roles and
// liveness then are not recorded ("-").
func (a *Agent) membersAt(w http.ResponseWriter, _ *http.Request, st *raftstore.State) {
	out := []api.Member{}
	for _, h := range st.Hosts {
		out = append(out, api.Member{Name: h.Name, VTEP: h.VTEP, RaftAddr: h.RaftAddr, APIAddr: h.APIAddr, Role: "-", State: "-"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	reply(w, out, nil)
}

// fdbAt is this host's forwarding table as the replicated state made it
// at a past index, through the same stateview.Build the switch gets: local
// entries for this host's endpoints, learned entries this host announced,
// and raft entries for everything behind other hosts. MACs learned from
// external VTEPs never reach the state, so they are not shown.
func (a *Agent) fdbAt(w http.ResponseWriter, r *http.Request, st *raftstore.State) {
	network := r.URL.Query().Get("network")
	if _, ok := st.Networks[network]; network != "" && !ok {
		reply(w, nil, noNetwork(r, st, network))
		return
	}
	out := []api.FDBEntry{}
	keep := func(n string) bool { return network == "" || n == network }
	for _, e := range st.HostEndpoints(a.cfg.Name) {
		if keep(e.Network) {
			out = append(out, api.FDBEntry{Network: e.Network, VNI: st.Networks[e.Network].VNI, MAC: e.MAC, Port: e.Name, Origin: "local"})
		}
	}
	for _, m := range st.MACs {
		if m.Host == a.cfg.Name && keep(m.Network) {
			out = append(out, api.FDBEntry{Network: m.Network, VNI: st.Networks[m.Network].VNI, MAC: m.MAC, Port: m.Port, Origin: "learned"})
		}
	}
	v := stateview.Build(st, a.cfg.Name, a.endpointMTU)
	for _, n := range v.Networks {
		if !keep(n.Name) {
			continue
		}
		for mac, vtep := range n.Remote.All() {
			out = append(out, api.FDBEntry{Network: n.Name, VNI: n.VNI, MAC: vswitch.MAC(mac).String(), VTEP: vtep.String(), Host: v.Hosts[vtep], Origin: "raft"})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VNI != out[j].VNI {
			return out[i].VNI < out[j].VNI
		}
		return out[i].MAC < out[j].MAC
	})
	reply(w, out, nil)
}

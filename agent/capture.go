package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"vxswitch/capture"
	"vxswitch/raftstore"
	vswitch "vxswitch/switch"
)

// The capture and trace streams. One observer (a tap) is set on the switch
// while at least one stream runs; it copies each matching event once and
// hands it to every stream whose filter it passes. When the last stream
// ends the observer is removed, so the data path pays nothing again.

// streamQueue is how many events a slow stream may fall behind before events
// for it are skipped (counted in the stream's skipped field).
const streamQueue = 4096

// stream is one running capture or trace.
type stream struct {
	filter  capture.Filter
	events  chan *vswitch.Event
	skipped int // events dropped because events was full; under tap.mu
}

// fanout fans the switch's events out to the streams. Its zero value has no
// streams; the agent holds one.
type fanout struct {
	mu      sync.Mutex
	streams map[*stream]bool
}

// Observe copies ev for the streams it matches. It runs on the data path
// and never blocks: a stream whose queue is full misses the event.
func (t *fanout) Observe(ev *vswitch.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c *vswitch.Event
	for s := range t.streams {
		if !s.filter.Match(ev) {
			continue
		}
		if c == nil {
			c = copyEvent(ev)
		}
		select {
		case s.events <- c:
		default:
			s.skipped++
		}
	}
}

// copyEvent returns a copy of ev that owns its slices; streams share it
// read-only.
func copyEvent(ev *vswitch.Event) *vswitch.Event {
	c := *ev
	c.Frame = bytes.Clone(ev.Frame)
	c.Payload = bytes.Clone(ev.Payload)
	c.Ports = slices.Clone(ev.Ports)
	c.VTEPs = slices.Clone(ev.VTEPs)
	return &c
}

// subscribe adds a stream with filter f and sets the observer if it is the
// first. The caller must call unsubscribe.
func (a *Agent) subscribe(f capture.Filter) *stream {
	s := &stream{filter: f, events: make(chan *vswitch.Event, streamQueue)}
	a.fanout.mu.Lock()
	defer a.fanout.mu.Unlock()
	if a.fanout.streams == nil {
		a.fanout.streams = make(map[*stream]bool)
	}
	a.fanout.streams[s] = true
	if len(a.fanout.streams) == 1 {
		a.sw.SetObserver(&a.fanout)
	}
	return s
}

// unsubscribe removes s and, with it the last stream, the observer.
func (a *Agent) unsubscribe(s *stream) {
	a.fanout.mu.Lock()
	defer a.fanout.mu.Unlock()
	delete(a.fanout.streams, s)
	if len(a.fanout.streams) == 0 {
		a.sw.SetObserver(nil)
	}
	if s.skipped > 0 {
		a.log.Info("capture stream fell behind and missed frames", "missed", s.skipped)
	}
}

// streamRequest reads the query of a capture or trace request: network,
// endpoint, underlay=1 and count (0 or absent: until the client goes).
func (a *Agent) streamRequest(r *http.Request) (capture.Filter, int, error) {
	q := r.URL.Query()
	f := capture.Filter{Network: q.Get("network"), Endpoint: q.Get("endpoint")}
	switch u := q.Get("underlay"); u {
	case "", "0", "false":
	case "1", "true":
		f.Underlay = true
	default:
		return f, 0, badRequest("underlay=%q: use underlay=1 or leave it out", u)
	}
	count := -1
	if c := q.Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return f, 0, badRequest("count=%q is not a number of records: use count=10, or 0 for no limit", c)
		}
		if n > 0 {
			count = n
		}
	}
	st := a.store.State()
	if _, ok := st.Networks[f.Network]; f.Network != "" && !ok {
		return f, 0, notFound("no network %q: see 'vxswitch network list'", f.Network)
	}
	if ep, ok := st.Endpoints.Get(f.Endpoint); f.Endpoint != "" && (!ok || ep.Host != a.cfg.Name) {
		return f, 0, notFound("no endpoint %q on this host (%s): capture on the host the endpoint is attached to (see 'vxswitch endpoints')", f.Endpoint, a.cfg.Name)
	}
	return f, count, nil
}

// vtepNames returns the host names of VTEP addresses from the current
// state; an external VTEP is named "external".
func (a *Agent) vtepNames() capture.Names {
	var (
		index uint64
		names map[netip.Addr]string
	)
	return func(addr netip.Addr) string {
		st := a.store.State()
		if names == nil || st.Index != index {
			index, names = st.Index, make(map[netip.Addr]string)
			for _, v := range st.VTEPs {
				names[v.Addr] = "external"
			}
			for _, h := range st.Hosts {
				names[h.VTEP] = h.Name
			}
		}
		return names[addr.Unmap()]
	}
}

// portDescription describes the capture interface of the endpoint name.
func portDescription(st *raftstore.State, host, name string) string {
	ep, ok := st.Endpoints.Get(name)
	if !ok {
		return "TAP port " + name
	}
	n := st.Networks[ep.Network]
	return fmt.Sprintf("TAP port of endpoint %s (network %s, VNI %d, %s, %s) on host %s", ep.Name, ep.Network, n.VNI, ep.IP, ep.MAC, host)
}

// handleCapture streams pcapng: GET /v1/capture?network=&endpoint=&underlay=1&count=N.
// Each record is flushed as it is written; the stream ends after count
// records or when the client goes away.
func (a *Agent) handleCapture(w http.ResponseWriter, r *http.Request) {
	f, count, err := a.streamRequest(r)
	if err != nil {
		reply(w, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-pcapng")
	w.WriteHeader(http.StatusOK)
	flusher := http.NewResponseController(w)
	self := a.self()
	cw, err := capture.NewWriter(w, "vxswitch capture",
		fmt.Sprintf("underlay of host %s: VXLAN from VTEP %s, UDP port %d", self.Name, self.VTEP, a.cfg.VXLANPort))
	if err != nil {
		return // the client is gone
	}
	st := a.store.State()
	rec := &capture.Recorder{W: cw, Filter: f, Names: a.vtepNames(),
		Describe: func(port string) string { return portDescription(a.store.State(), self.Name, port) }}
	if !f.Underlay { // the local ports first, so readers know them all at once
		var names []string
		for _, ep := range st.Endpoints.All() {
			if ep.Host == self.Name && (f.Network == "" || ep.Network == f.Network) && (f.Endpoint == "" || ep.Name == f.Endpoint) {
				names = append(names, ep.Name)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			if _, err := cw.Interface(name, portDescription(st, self.Name, name)); err != nil {
				return
			}
		}
	}
	flusher.Flush()
	s := a.subscribe(f)
	defer a.unsubscribe(s)
	for written := 0; count < 0 || written < count; {
		ev, ok := a.next(r, s)
		if !ok {
			return
		}
		max := -1
		if count >= 0 {
			max = count - written
		}
		n, err := rec.Record(ev, max)
		written += n
		if err != nil || (n > 0 && flusher.Flush() != nil) {
			return
		}
	}
}

// next waits for the next event of s, and reports false when the request
// or the agent ends first.
func (a *Agent) next(r *http.Request, s *stream) (*vswitch.Event, bool) {
	select {
	case <-r.Context().Done():
		return nil, false
	case <-a.ctx.Done():
		return nil, false
	case ev := <-s.events:
		return ev, true
	}
}

// handleTrace streams one line per frame: GET
// /v1/trace?network=&endpoint=&count=N&format=json (text without format).
func (a *Agent) handleTrace(w http.ResponseWriter, r *http.Request) {
	f, count, err := a.streamRequest(r)
	if err != nil {
		reply(w, nil, err)
		return
	}
	asJSON := false
	switch format := r.URL.Query().Get("format"); format {
	case "", "text":
	case "json":
		asJSON = true
	default:
		reply(w, nil, badRequest("format=%q: use format=json or leave it out for text", format))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if asJSON {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.WriteHeader(http.StatusOK)
	flusher := http.NewResponseController(w)
	flusher.Flush()
	names := a.vtepNames()
	enc := json.NewEncoder(w)
	s := a.subscribe(f)
	defer a.unsubscribe(s)
	for written := 0; count < 0 || written < count; written++ {
		ev, ok := a.next(r, s)
		if !ok {
			return
		}
		line := capture.NewLine(ev, names)
		if asJSON {
			err = enc.Encode(line)
		} else {
			_, err = fmt.Fprintln(w, line.String())
		}
		if err != nil || flusher.Flush() != nil {
			return
		}
	}
}

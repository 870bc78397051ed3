package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// Object is one object of the cluster state as the history shows it: an
// endpoint, host, network, learned MAC, external VTEP or reserved address.
// Only the fields that apply to Kind are set; a "cluster" or "token"
// object carries no contents (they are secrets).
type Object struct {
	Kind    string       `json:"kind"` // host, network, endpoint, mac, vtep, reservation, cluster, token
	Key     string       `json:"key"`
	Name    string       `json:"name,omitempty"`
	Network string       `json:"network,omitempty"`
	Host    string       `json:"host,omitempty"`
	MAC     string       `json:"mac,omitempty"`
	IP      netip.Addr   `json:"ip,omitzero"`
	VTEP    netip.Addr   `json:"vtep,omitzero"`
	Subnet  netip.Prefix `json:"subnet,omitzero"`
	VNI     uint32       `json:"vni,omitempty"`
	// IP6 and Subnet6 are the IPv6 address of an endpoint and the IPv6
	// subnet of a network, on a dual-stack network.
	IP6     netip.Addr   `json:"ip6,omitzero"`
	Subnet6 netip.Prefix `json:"subnet6,omitzero"`
	// Port is the local port (endpoint) on Host a learned MAC is behind.
	Port  string `json:"port,omitempty"`
	Owner string `json:"owner,omitempty"`
}

// Change is one object a committed command added, removed or updated.
// The embedded Object is the object after the change (before it, for a
// removal); Old is the object before an update.
type Change struct {
	Action string `json:"action"` // added, removed, updated
	Object
	Old *Object `json:"old,omitempty"`
}

// Event is one committed command as a host applied it.
type Event struct {
	Index uint64    `json:"index"` // Raft index
	Term  uint64    `json:"term"`
	Time  time.Time `json:"time"` // when the proposing host made the command
	Op    string    `json:"op"`   // endpoint.attach, endpoint.detach, host.remove, ...; history.gone for a gap
	// Origin is the host that proposed the command; ReqID its request ID.
	Origin string `json:"origin,omitempty"`
	ReqID  string `json:"req_id,omitempty"`
	// Error is set when the cluster refused the command: it changed
	// nothing. Duplicate marks a retry of a request already applied.
	Error     string   `json:"error,omitempty"`
	Duplicate bool     `json:"duplicate,omitempty"`
	Summary   string   `json:"summary"` // one line for people
	Changes   []Change `json:"changes,omitempty"`
}

// OpHistoryGone is the Op of the event that stands for entries dropped
// from the history before they could be sent (resuming from an index
// older than what the host retains): Index is the last dropped index.
const OpHistoryGone = "history.gone"

// Explanation is what `vxswitch explain` shows: the objects Subject names
// now, and every retained change that touched them, oldest first.
type Explanation struct {
	Subject string   `json:"subject"`
	Network string   `json:"network,omitempty"`
	Now     []Object `json:"now"`
	History []Event  `json:"history"`
	// HistoryFrom is the index the retained history starts after: changes
	// up to it are gone (0 = the history is complete).
	HistoryFrom uint64 `json:"history_from"`
	// Index is the Raft index this host's state is at.
	Index uint64 `json:"index"`
}

// HistoryStatus says what a host's history retains and what bounds it.
type HistoryStatus struct {
	Entries   int    `json:"entries"`
	Bytes     int    `json:"bytes"`
	First     uint64 `json:"first"`      // oldest retained entry (0 = none)
	Last      uint64 `json:"last"`       // newest retained entry
	BaseIndex uint64 `json:"base_index"` // entries up to it were dropped (0 = none)
	// MaxEntries, MaxBytes and MaxAge are the bounds (MaxAge "" = none).
	MaxEntries int    `json:"max_entries"`
	MaxBytes   int    `json:"max_bytes"`
	MaxAge     string `json:"max_age,omitempty"`
}

// Explain asks the agent for the story of subject: an endpoint, host or
// network name, an IP address or a MAC address; network, when not "",
// limits it to that network.
func (c *Client) Explain(ctx context.Context, subject, network string) (Explanation, error) {
	var out Explanation
	err := c.call(ctx, RouteExplain, nil, query("q", subject, "network", network), nil, &out)
	return out, err
}

// EventsQuery selects the events of Client.Events.
type EventsQuery struct {
	// Since is the Raft index to resume after: events with a higher
	// index follow. Nil starts with the next command this host applies.
	Since *uint64
	// Network, when not "", keeps the events that changed an object of
	// that network.
	Network string
	// Count, when not 0, ends the stream after that many events.
	Count int
	// NoFollow ends the stream after the retained events instead of
	// waiting for new ones.
	NoFollow bool
}

func (q EventsQuery) values() url.Values {
	v := url.Values{}
	if q.Since != nil {
		v.Set("since", strconv.FormatUint(*q.Since, 10))
	}
	if q.Network != "" {
		v.Set("network", q.Network)
	}
	if q.Count > 0 {
		v.Set("count", strconv.Itoa(q.Count))
	}
	if q.NoFollow {
		v.Set("follow", "0")
	}
	return v
}

// EventStream reads the events the agent sends, one JSON object a line.
// Close it when done; cancelling the context given to Events ends it too.
type EventStream struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// Events opens the agent's stream of committed changes (GET
// /v1/history/events, JSON lines; the route also speaks server-sent events
// to a client that accepts text/event-stream). Each host sends the
// commands in the order it applied them, each once.
func (c *Client) Events(ctx context.Context, q EventsQuery) (*EventStream, error) {
	body, err := c.stream(ctx, RouteEvents, q.values())
	if err != nil {
		return nil, err
	}
	return &EventStream{body: body, dec: json.NewDecoder(bufio.NewReader(body))}, nil
}

// Next returns the next event; io.EOF when the stream ended.
func (s *EventStream) Next() (Event, error) {
	var e Event
	if err := s.dec.Decode(&e); err != nil {
		if err == io.EOF {
			return Event{}, io.EOF
		}
		return Event{}, fmt.Errorf("api: read event: %w", err)
	}
	return e, nil
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// WaitEvent waits for the first event after index since for which match
// returns true and returns it, so a test can wait for "endpoint X
// attached" instead of sleeping. It fails when ctx ends first.
func (c *Client) WaitEvent(ctx context.Context, since uint64, match func(Event) bool) (Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.Events(ctx, EventsQuery{Since: &since})
	if err != nil {
		return Event{}, err
	}
	defer s.Close()
	for {
		e, err := s.Next()
		if err != nil {
			if ctx.Err() != nil {
				return Event{}, fmt.Errorf("api: wait for an event: %w", ctx.Err())
			}
			return Event{}, err
		}
		if match(e) {
			return e, nil
		}
	}
}

package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Client calls one agent's API. The zero value is not usable; build one with
// NewUnixClient or NewTCPClient. A Client is safe for concurrent use.
type Client struct {
	// Stale, when set before the first request, asks the agent to answer
	// reads from its own applied state without first catching up with the
	// leader (?stale=1): faster, and possible without a leader, but it may
	// miss writes acknowledged elsewhere a moment ago.
	Stale bool

	http *http.Client
	base string
	// where names the agent in error messages: the socket path or TCP address.
	where string
}

// NewUnixClient returns a client for the agent listening on the unix socket
// at path.
func NewUnixClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://agent", where: path}
}

// NewTCPClient returns a client for the agent API at addr (host:port). Each
// request gives up after timeout.
func NewTCPClient(addr string, timeout time.Duration) *Client {
	tr := &http.Transport{DialContext: (&net.Dialer{Timeout: timeout}).DialContext}
	return &Client{http: &http.Client{Transport: tr, Timeout: timeout}, base: "http://" + addr, where: addr}
}

// NewTLSClient returns a client for the agent API at addr (host:port) over
// TLS with conf. Each request gives up after timeout.
func NewTLSClient(addr string, timeout time.Duration, conf *tls.Config) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
		TLSClientConfig:     conf,
		TLSHandshakeTimeout: timeout,
		// Many concurrent requests queue here rather than open more
		// connections than a peer accepts from one address
		// (pki.MaxConnsPerSource, 64).
		MaxConnsPerHost:     MaxConnsPerPeer,
		MaxIdleConnsPerHost: MaxConnsPerPeer,
	}
	return &Client{http: &http.Client{Transport: tr, Timeout: timeout}, base: "https://" + addr, where: addr}
}

// MaxConnsPerPeer bounds the connections a client of NewTLSClient opens.
const MaxConnsPerPeer = 16

// ErrUnreachable is wrapped by errors returned when the agent could not be
// reached at all (nothing listening, connection refused, timeout).
var ErrUnreachable = errors.New("agent unreachable")

// StatusError is returned when the agent answered with an error.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

// Do sends in (if not nil) as the JSON body of a request and decodes the
// answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	if c.Stale {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "stale=1"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("api: read answer of %s %s from %s: %w", method, path, c.where, err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("agent at %s answered %s", c.where, resp.Status)
		}
		return &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("api: decode answer of %s %s from %s: %w", method, path, c.where, err)
	}
	return nil
}

func (c *Client) unreachable(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	hint := ""
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		hint = ": is the agent running? start it with 'vxswitch agent ...' or point --socket / VXSWITCH_SOCKET at its socket"
	case errors.Is(err, syscall.EACCES):
		hint = ": permission denied, run as root"
	}
	return fmt.Errorf("%w at %s: %w%s", ErrUnreachable, c.where, err, hint)
}

// Get is Do with GET and no body.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodGet, path, nil, out)
}

// Post is Do with POST.
func (c *Client) Post(ctx context.Context, path string, in, out any) error {
	return c.Do(ctx, http.MethodPost, path, in, out)
}

// Delete is Do with DELETE and no body.
func (c *Client) Delete(ctx context.Context, path string, out any) error {
	return c.Do(ctx, http.MethodDelete, path, nil, out)
}

// Stream sends a GET request for path and returns the body of the answer
// as it arrives, for the streaming routes (/v1/capture, /v1/trace). The
// caller must close it; cancelling ctx ends the stream.
func (c *Client) Stream(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("api: GET %s: %w", path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("agent at %s answered %s", c.where, resp.Status)
		}
		return nil, &StatusError{Code: resp.StatusCode, Message: e.Error}
	}
	return resp.Body, nil
}

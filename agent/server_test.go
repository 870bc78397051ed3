package agent

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"vxswitch/pki"
)

// TestPeerServerLimits: the peer API answers a body over maxPeerBody with
// 413 and closes a connection beyond pki.MaxConnsPerSource from one
// address at once, counting it; once connections close, their address may
// connect again.
func TestPeerServerLimits(t *testing.T) {
	a := &Agent{log: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := a.peerServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		err := decode(r, &v)
		reply(w, v, err)
	}))
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	request := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range pki.MaxConnsPerSource {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The server has seen them all once a request on the last is answered.
	last := conns[len(conns)-1]
	io.WriteString(last, request)
	last.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := last.Read(make([]byte, 64)); err != nil || n == 0 {
		t.Fatalf("connection %d: %v", pki.MaxConnsPerSource, err)
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	io.WriteString(over, request)
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Closed unanswered: EOF, or a reset since the request was unread.
	if b, err := io.ReadAll(over); len(b) != 0 || isTimeout(err) {
		t.Fatalf("connection %d from one address read %q, %v; want it closed unanswered", pki.MaxConnsPerSource+1, b, err)
	}
	if n := a.auth.overLimit.Load(); n != 1 {
		t.Errorf("counted %d connections over the limit, want 1", n)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil

	// The connections are gone: a request gets through, a body over the
	// limit gets 413.
	var resp *http.Response
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = http.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"CSR":"`+strings.Repeat("A", maxPeerBody)+`"}`))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "request body over 1048576 bytes") {
		t.Fatalf("a body over %d bytes: %s %s, want 413", maxPeerBody, resp.Status, body)
	}
	resp, err = http.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"ok":1}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a small body: %v %v", resp, err)
	}
	resp.Body.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

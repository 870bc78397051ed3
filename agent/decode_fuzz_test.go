package agent

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"vxswitch/api"
	"vxswitch/raftstore"
)

// FuzzDecodeRequest decodes an arbitrary body into each request type the
// API handlers read (the local socket's and the peer API's): it must never
// panic, a body that does not decode must come back as a bad request (400,
// with its message) and never as a server error, and one that decodes must
// decode the same way twice.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(byte(0), []byte(`{"network":"web","name":"c1","netns":"c1"}`))
	f.Add(byte(1), []byte(`{"name":"web","subnet":"10.20.0.0/24","mtu":1400}`))
	f.Add(byte(2), []byte(`{"Op":"endpoint.attach","Name":"x"}`))
	f.Add(byte(3), []byte(`{"name":"h2","addr":"10.0.0.2"}`))
	f.Add(byte(4), []byte(`{"name":`))
	f.Add(byte(5), []byte(`[1,2,3]`))
	f.Add(byte(6), []byte("\xff\xfe{}"))
	news := []func() any{
		func() any { return new(api.AttachRequest) },
		func() any { return new(api.NetworkRequest) },
		func() any { return new(raftstore.Command) },
		func() any { return new(api.JoinRequest) },
		func() any { return new(api.RemoveRequest) },
		func() any { return new(api.VTEPRequest) },
		func() any { return new(api.EnrollRequest) },
	}
	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		newReq := news[int(kind)%len(news)]
		v := newReq()
		err := decode(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)), v)
		if err != nil {
			var br *badRequestError
			if !errors.As(err, &br) {
				t.Fatalf("decode error %T %v, want a bad request", err, err)
			}
			rec := httptest.NewRecorder()
			reply(rec, nil, err)
			if rec.Code != http.StatusBadRequest || !bytes.Contains(rec.Body.Bytes(), []byte("malformed request body")) {
				t.Fatalf("reply %d %s, want 400 naming the malformed body", rec.Code, rec.Body)
			}
			return
		}
		again := newReq()
		if err := decode(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)), again); err != nil {
			t.Fatalf("decoded once, then failed: %v", err)
		}
	})
}

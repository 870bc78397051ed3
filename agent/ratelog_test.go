package agent

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRateLog: a key is logged once per period; the calls in between are
// counted into the next message; other keys are not held back.
func TestRateLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r := rateLog{period: 50 * time.Millisecond}
	for range 100 {
		r.warn(log, "join/a", "refused a join")
	}
	r.warn(log, "join/b", "refused a join")
	if got := strings.Count(buf.String(), "refused a join"); got != 2 {
		t.Fatalf("%d lines after 100 calls for one key and 1 for another, want 2:\n%s", got, buf.String())
	}
	time.Sleep(60 * time.Millisecond)
	r.warn(log, "join/a", "refused a join")
	if !strings.Contains(buf.String(), "not_logged_since_last=99") {
		t.Fatalf("the next message does not count the 99 held back:\n%s", buf.String())
	}
}

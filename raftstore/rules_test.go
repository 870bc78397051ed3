package raftstore

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestCheckEndpointName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // "" = valid, else a piece of the error
	}{
		{"web-1", ""},
		{"a", ""},
		{"1db", ""},
		{strings.Repeat("a", 63), ""},
		{strings.Repeat("a", 64), "is invalid"},
		{"", "is empty"},
		{"web_1", "is invalid"},
		{"db.primary", "is invalid"},
		{"web-", "is invalid"},
		{"-web", "is invalid"},
		{"Web", "is invalid"},
		{"a b", "is invalid"},
	} {
		err := CheckEndpointName(tc.name)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckEndpointName(%q) = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckEndpointName(%q) = %v, want an error with %q", tc.name, err, tc.want)
		case err != nil && !strings.Contains(err.Error(), "web-1"):
			t.Errorf("CheckEndpointName(%q) = %v: the error names no fix", tc.name, err)
		}
	}
}

// TestEndpointNameRulesByVersion: the FSM checks an endpoint.attach under
// the rules the command carries. Names that only the old rule allows
// (web_1, db.primary, web-) apply from a command without a version and
// are refused from one of the current version.
func TestEndpointNameRulesByVersion(t *testing.T) {
	for _, name := range []string{"web_1", "db.primary", "web-"} {
		h := newHarness(t)
		h.must(addHost("a", "10.0.0.1"))
		h.must(createNet("web", "10.20.0.0/24", 0))
		cmd := attach(name, "web", "a", mac(1))
		cmd.Rules = CurrentRules
		if res := h.apply(cmd); !strings.Contains(res.Err, "is invalid") || !strings.Contains(res.Err, "DNS name") {
			t.Errorf("attach %q under rules %d: %q, want a refusal naming the DNS rule", name, CurrentRules, res.Err)
		}
		cmd.Rules = 0
		if res := h.apply(cmd); res.Err != "" {
			t.Errorf("attach %q under rules 0: refused: %s", name, res.Err)
		}
	}
	// Both versions refuse what was never a name.
	for _, rules := range []int{0, CurrentRules} {
		h := newHarness(t)
		h.must(addHost("a", "10.0.0.1"))
		h.must(createNet("web", "10.20.0.0/24", 0))
		cmd := attach("Web", "web", "a", mac(1))
		cmd.Rules = rules
		if res := h.apply(cmd); !strings.Contains(res.Err, "is invalid") {
			t.Errorf("attach \"Web\" under rules %d: %q, want a refusal", rules, res.Err)
		}
	}
}

// TestOldLogEntryReplays: a Raft log on disk holds an endpoint.attach
// written by an agent before rules had versions (the JSON it wrote, with no
// Rules field), for a name the current rule refuses. It applies when
// written, a new command with such a name is refused, and after a restart
// the log replays to the same state, old endpoint included.
func TestOldLogEntryReplays(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{ID: "n1", Dir: dir, Bind: freeAddr(t), Bootstrap: true}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitFor(t, 10*time.Second, "leadership", func() bool { return s.Role() == RoleLeader })
	applyOK(t, s, addHost("n1", "127.0.0.1"))
	applyOK(t, s, createNet("web", "10.20.0.0/24", 0))

	old := `{"Op":"endpoint.attach","ReqID":"old-1","Time":3,"Origin":"n1",` +
		`"Endpoint":{"Name":"db_1","Network":"web","Host":"n1","MAC":"02:00:00:00:00:01","IfName":"eth0"}}`
	if err := s.raft.Apply([]byte(old), 5*time.Second).Error(); err != nil {
		t.Fatalf("write the old entry: %v", err)
	}
	waitFor(t, 10*time.Second, "the old entry to apply", func() bool { return s.State().Endpoints.At("db_1").Name == "db_1" })

	// A proposer cannot ask for the old rules: Store.Apply stamps the
	// current ones.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := attach("db_2", "web", "n1", mac(2))
	cmd.Rules = -1
	res, err := s.Apply(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Err, `endpoint name "db_2" is invalid`) {
		t.Fatalf("new attach of db_2: %q, want a refusal", res.Err)
	}
	applyOK(t, s, attach("db-2", "web", "n1", mac(2)))
	want := s.State()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	waitFor(t, 15*time.Second, "the log to replay", func() bool {
		st := s2.State()
		return st.Index == want.Index && st.Hash() == want.Hash()
	})
	st := s2.State()
	if e := st.Endpoints.At("db_1"); e.IP != netip.MustParseAddr("10.20.0.2") {
		t.Errorf("replayed db_1 = %+v, want it at 10.20.0.2", e)
	}
	if _, ok := st.Endpoints.Get("db_2"); ok {
		t.Error("db_2, refused when written, exists after replay")
	}
}

// TestFSMReplayOfOldEntry: the history rebuilds past states by applying
// retained entries through FSM.Apply again; an old entry applies, and the
// same on every FSM.
func TestFSMReplayOfOldEntry(t *testing.T) {
	old := `{"Op":"endpoint.attach","Time":3,"Endpoint":{"Name":"web.old","Network":"web","Host":"a","MAC":"02:00:00:00:00:01"}}`
	var hashes []string
	for range 2 {
		h := newHarness(t)
		h.must(addHost("a", "10.0.0.1"))
		h.must(createNet("web", "10.20.0.0/24", 0))
		res, _ := h.f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: []byte(old)}).(*Result)
		if res == nil || res.Err != "" {
			t.Fatalf("old entry: %+v", res)
		}
		hashes = append(hashes, h.f.State().Hash())
	}
	if hashes[0] != hashes[1] {
		t.Fatal("the same old entry applied to two FSMs gives two states")
	}
}

func TestCheckSubnet(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want []string // nil = valid; else pieces of the error
	}{
		{"10.20.0.0/24", nil},
		{"10.0.0.0/8", nil},
		{"192.168.1.8/29", nil},
		{"10.20.0.1/24", []string{"host bits", "use 10.20.0.0/24"}},
		{"10.0.0.0/7", []string{"/7", "between /8 and /29"}},
		{"10.0.0.0/30", []string{"/30", "between /8 and /29"}},
		{"fd00::/64", []string{"not IPv4", "10.20.0.0/24"}},
		{"::ffff:10.20.0.0/120", []string{"IPv4-mapped", "10.20.0.0/24"}},
		{"10.20.0.0", []string{"not a prefix", "10.20.0.0/24"}},
		{"", []string{"not a prefix"}},
	} {
		p, err := ParseSubnet(tc.s)
		if tc.want == nil {
			if err != nil || p.String() != tc.s {
				t.Errorf("ParseSubnet(%q) = %v, %v", tc.s, p, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseSubnet(%q) = %v, want an error", tc.s, p)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseSubnet(%q): %v, want %q in it", tc.s, err, w)
			}
		}
	}
	if err := CheckSubnet(netip.Prefix{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("CheckSubnet(zero) = %v", err)
	}
}

func TestOverlappingNetwork(t *testing.T) {
	h := newHarness(t)
	h.must(createNet("b", "10.20.0.0/16", 0))
	h.must(createNet("a", "10.30.0.0/24", 0))
	st := h.f.State()
	for _, tc := range []struct {
		p    string
		want string // "" = none
	}{
		{"10.20.5.0/24", "b"},
		{"10.0.0.0/8", "a"}, // overlaps both: the first by name
		{"10.30.0.0/24", "a"},
		{"10.40.0.0/24", ""},
	} {
		n, ok := OverlappingNetwork(st, netip.MustParsePrefix(tc.p))
		if ok != (tc.want != "") || n.Name != tc.want {
			t.Errorf("OverlappingNetwork(%s) = %q, %v; want %q", tc.p, n.Name, ok, tc.want)
		}
	}
}

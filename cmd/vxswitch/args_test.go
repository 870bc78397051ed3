package main

import (
	"slices"
	"strings"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		{"vxswitch attach web api --netns api", "vxswitch attach --netns api web api"},
		{"vxswitch attach web api --netns=api --ifname eth1", "vxswitch attach --netns=api --ifname eth1 web api"},
		{"vxswitch --socket /s endpoints web -o json", "vxswitch --socket /s endpoints -o json web"},
		{"vxswitch endpoints web --socket /s", "vxswitch --socket /s endpoints web"},
		{"vxswitch network create web --subnet 10.0.0.0/24 --vni 7", "vxswitch network create --subnet 10.0.0.0/24 --vni 7 web"},
		{"vxswitch agent --name h1 --bootstrap --advertise 10.0.0.1", "vxswitch agent --name h1 --bootstrap --advertise 10.0.0.1"},
		{"vxswitch members rm h3", "vxswitch members rm h3"},
		{"vxswitch detach -- -odd", "vxswitch detach -- -odd"},
	} {
		got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNeedArgsNamesTheFix(t *testing.T) {
	app := newApp()
	var out strings.Builder
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(interspersed(app, []string{"vxswitch", "detach"}))
	if err == nil || !strings.Contains(err.Error(), "NAME") || !strings.Contains(err.Error(), "--help") {
		t.Fatalf("detach without a name: %v", err)
	}
	if !slices.Contains(app.Commands, findCommand(app.Commands, "lab")) {
		t.Fatal("lab command missing")
	}
}

// TestLocalChecks: the CLI refuses a bad subnet or endpoint name with the
// cluster's own rule before it calls any agent (the socket here leads
// nowhere, so reaching for it would fail differently).
func TestLocalChecks(t *testing.T) {
	sock := t.TempDir() + "/none.sock"
	for _, tc := range []struct {
		args string
		want []string
	}{
		{"network create web --subnet 10.20.0.1/24", []string{"--subnet", "use 10.20.0.0/24"}},
		{"network create web --subnet fd00::/120 --vni 99999999", []string{"--vni", "out of range"}}, // IPv6 alone passes the subnet checks
		{"network create web --subnet 10.20.0.0/24 --subnet fe80::/64", []string{"--subnet", "not for endpoint addresses"}},
		{"network create web --subnet 10.20.0.0/24 --subnet fd00::/48 --subnet fd01::/64", []string{"both IPv6"}},
		{"network create web --subnet 10.20.0.0/30", []string{"--subnet", "between /8 and /29"}},
		{"network create web --subnet web", []string{"--subnet", "not a prefix"}},
		{"attach web db_1 --netns x", []string{`endpoint name "db_1" is invalid`, "web-1"}},
		{"attach web Web --netns x", []string{`endpoint name "Web" is invalid`}},
	} {
		app := newApp()
		var out strings.Builder
		app.Writer, app.ErrWriter = &out, &out
		args := append([]string{"vxswitch", "--socket", sock}, strings.Fields(tc.args)...)
		err := app.Run(interspersed(app, args))
		if err == nil {
			t.Errorf("%s: no error", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q in it", tc.args, err, w)
			}
		}
		if strings.Contains(err.Error(), sock) {
			t.Errorf("%s: called the agent: %v", tc.args, err)
		}
	}
}

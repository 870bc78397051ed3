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

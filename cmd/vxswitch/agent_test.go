package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestAgentProcs(t *testing.T) {
	all := runtime.GOMAXPROCS(0)
	for _, c := range []struct {
		flag    int
		fromEnv bool
		want    int
	}{
		{flag: 0, want: max(1, all/2)},
		{flag: 0, fromEnv: true, want: all},
		{flag: 3, fromEnv: true, want: 3},
		{flag: 1, want: 1},
	} {
		got, err := agentProcs(c.flag, c.fromEnv)
		if err != nil || got != c.want {
			t.Errorf("agentProcs(%d, %v) = %d, %v; want %d", c.flag, c.fromEnv, got, err, c.want)
		}
	}
	if _, err := agentProcs(-1, false); err == nil || !strings.Contains(err.Error(), "--procs -1") {
		t.Errorf("agentProcs(-1) error = %v; want one naming --procs -1", err)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestLabSimPrintsFigures runs a small simulation through the CLI and
// checks that both outputs carry the figures and the command.
func TestLabSimPrintsFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two small simulations")
	}
	args := []string{"vxswitch", "lab", "sim", "--hosts", "5", "--voters", "3", "--endpoints", "40", "--churn", "20/s", "--duration", "1s", "-q"}
	run := func(extra ...string) string {
		app := newApp()
		var out, errOut strings.Builder
		app.Writer, app.ErrWriter = &out, &errOut
		if err := app.Run(interspersed(app, append(append([]string(nil), args...), extra...))); err != nil {
			t.Fatalf("lab sim %v: %v (stderr %s)", extra, err, errOut.String())
		}
		return out.String()
	}

	var res map[string]any
	out := run("-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"visible_p50_ms", "visible_p99_ms", "commit_p99_ms", "state_bytes_per_host", "snapshot_bytes", "snapshot_ms", "apply_cpu_us"} {
		if v, ok := res[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, res[k])
		}
	}
	if res["hosts"] != 5.0 || res["voters"] != 3.0 || res["endpoints"] != 40.0 || res["churn_per_s"] != 20.0 || res["converged"] != true {
		t.Errorf("parameters or convergence wrong: %v", res)
	}
	if want := "vxswitch lab sim --hosts 5 --voters 3 --endpoints 40 --networks 1 --churn 20/s --duration 1s --own-state 5 --gc-percent 1000"; res["command"] != want {
		t.Errorf("command %q, want %q", res["command"], want)
	}

	out = run()
	for _, want := range []string{"5 hosts (3 voters)", "command: vxswitch lab sim", "visible p50 / p99 / max", "commit p50 / p99", "state per host", "snapshot", "duplicate addresses"} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"50/s": 50, "2.5": 2.5, "0": 0} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"fast", "-1/s", "5/m"} {
		if _, err := parseRate(in); err == nil || !strings.Contains(err.Error(), "--churn") {
			t.Errorf("parseRate(%q) error %v, want one naming --churn", in, err)
		}
	}
}

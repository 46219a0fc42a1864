//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemas compiles the published report and event schemas (docs/schema).
func schemas(t *testing.T) (report, event *jsonschema.Schema) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range []string{"report.v1.json", "event.v1.json"} {
		f, err := os.Open(filepath.Join("..", "..", "docs", "schema", name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.AddResource("https://rollout.dev/schema/"+name, doc); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if report, err = c.Compile("https://rollout.dev/schema/report.v1.json"); err != nil {
		t.Fatal(err)
	}
	if event, err = c.Compile("https://rollout.dev/schema/event.v1.json"); err != nil {
		t.Fatal(err)
	}
	return report, event
}

// TestMachineContract: the --output json reports of real runs (a promotion, and one that fails a
// gate and rolls back) validate against docs/schema/report.v1.json, and every --events line
// against docs/schema/event.v1.json, in journal order.
func TestMachineContract(t *testing.T) {
	t.Parallel()
	reportSchema, eventSchema := schemas(t)
	f := newFleet(t, twoRings("0s"))
	events := filepath.Join(f.dir, "events.ndjson")
	var reports []string
	reports = append(reports, f.must(0, "start", "--release", "v1", "--output", "json", "--events", events).stdout)
	reports = append(reports, f.must(2, "start", "--release", "v2", "--var", "fault_tier=main", "--output", "json", "--events", events).stdout)
	reports = append(reports, f.run("status", "--output", "json").stdout)
	for i, r := range reports {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(r))
		if err != nil {
			t.Fatalf("report %d is not JSON: %v\n%s", i, err, r)
		}
		if err := reportSchema.Validate(v); err != nil {
			t.Fatalf("report %d does not match docs/schema/report.v1.json: %v\n%s", i, err, r)
		}
	}
	file, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	last := map[string]int64{}
	var types []string
	for sc.Scan() {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(sc.Text()))
		if err != nil {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		if err := eventSchema.Validate(v); err != nil {
			t.Fatalf("event does not match docs/schema/event.v1.json: %v\n%s", err, sc.Text())
		}
		var ev struct {
			Run  string `json:"run"`
			Seq  int64  `json:"seq"`
			Type string `json:"type"`
		}
		_ = json.Unmarshal(sc.Bytes(), &ev)
		if ev.Seq != last[ev.Run]+1 {
			t.Fatalf("run %s: event %d after %d: out of order or missing", ev.Run, ev.Seq, last[ev.Run])
		}
		last[ev.Run] = ev.Seq
		types = append(types, ev.Type)
	}
	if len(last) != 2 || types[0] != "run.started" || types[len(types)-1] != "run.finished" {
		t.Fatalf("want two whole runs, from run.started to run.finished: %d runs, %v ... %v", len(last), types[:1], types[len(types)-1:])
	}
	for _, want := range []string{"ring.started", "target.planned", "target.applied", "gate.measured", "target.verified", "target.gate_failed", "rollback.planned", "target.rolled_back"} {
		found := false
		for _, got := range types {
			found = found || got == want
		}
		if !found {
			t.Errorf("no %s event in the stream", want)
		}
	}
}

// conforming fails the test unless out, a --output json report, matches docs/schema/report.v1.json.
func conforming(t *testing.T, out string) string {
	t.Helper()
	reportSchema, _ := schemas(t)
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	if err := reportSchema.Validate(v); err != nil {
		t.Fatalf("report does not match docs/schema/report.v1.json: %v\n%s", err, out)
	}
	return out
}

// Commands beyond the run's report honour --output json too, on stdout, also when they fail or
// have nothing to do.
func TestMoreCommandsPrintJSON(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true}\n"))
	asJSON := func(r result) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
			t.Fatalf("not JSON on stdout (exit %d): %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
		}
		return m
	}
	if m := asJSON(f.must(0, "validate", "--output", "json")); m["v"] != float64(1) || m["valid"] != true {
		t.Fatalf("validate: %v", m)
	}
	good := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	f.write("rollout.yaml", strings.Replace(good, "maxParallel: 1", "maxParallel: -1", 1))
	m := asJSON(f.must(1, "validate", "--output", "json"))
	problems, _ := m["problems"].([]any)
	if m["valid"] != false || len(problems) == 0 || problems[0].(map[string]any)["key"] != "rings[0].maxParallel" {
		t.Fatalf("validate of a broken configuration: %v", m)
	}
	f.write("rollout.yaml", good)

	f.must(3, "start", "--release", "v1")
	run := f.status().Run
	if m := asJSON(f.must(0, "approve", run, "--ring", "only", "--reason", "ok", "--as", "ops", "--output", "json")); m["run"] != run {
		t.Fatalf("approve: %v", m)
	}
	f.must(0, "resume", run)
	fleetJSON := asJSON(f.must(0, "fleet", "--output", "json"))
	targets, _ := fleetJSON["targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("fleet: %v", fleetJSON)
	}
	if tg := targets[0].(map[string]any); tg["target"] != "t-1" || tg["release"].(map[string]any)["name"] != "v1" || tg["run"] != run || tg["verdict"] != "passed" {
		t.Fatalf("fleet says %v", tg)
	}
	if rel, _ := f.stateRelease("t-1"); rel != "v1" {
		t.Fatalf("Terraform's state says %q", rel)
	}
	if m := asJSON(f.must(0, "rollback", "--reason", "nothing", "--yes", "--output", "json")); m["nothingToDo"] != true {
		t.Fatalf("a rollback with nothing to do: %v", m)
	}
	archive := filepath.Join(t.TempDir(), "v1.tgz")
	if m := asJSON(f.must(0, "release", "export", "v1", "--out", archive, "--output", "json")); m["archive"] != archive || len(m["sha256"].(string)) != 64 {
		t.Fatalf("release export: %v", m)
	}
}

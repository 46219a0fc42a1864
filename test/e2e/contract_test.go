//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/cli"
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

// conformsTo fails the test unless out is one JSON document that matches docs/schema/<schema>.
func conformsTo(t *testing.T, schema, out string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(filepath.Join("..", "..", "docs", "schema", schema))
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("not one JSON document (want %s): %v\n%s", schema, err, out)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("does not match docs/schema/%s: %v\n%s", schema, err, out)
	}
}

// covered are commands whose JSON another test checks against its schema, and which.
var covered = map[string]string{
	"rollout demo": "TestDemo (rollout demo --output json, demo.v1.json)",
}

// Every command of the tree that reports prints JSON that matches its schema, when it succeeds,
// when it fails (error.v1.json) and when it has nothing to do: the tree is walked, and a command
// with a schema that no step below exercised fails the test.
func TestEveryCommandsJSONMatchesItsSchema(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true}\n"))
	ran := map[string]bool{}
	check := func(want int, schema string, args ...string) result {
		t.Helper()
		r := f.must(want, append(args, "--output", "json")...)
		conformsTo(t, schema, r.stdout)
		cmd, _, err := cli.NewRoot(cli.IO{}).Find(args)
		if err != nil {
			t.Fatal(err)
		}
		schemas, _ := cli.Schemas(cmd)
		if !slices.Contains(append(schemas, "error.v1.json"), schema) {
			t.Fatalf("%s printed %s, which its contract does not name (%v)", cmd.CommandPath(), schema, schemas)
		}
		ran[cmd.CommandPath()] = true
		return r
	}
	dir := t.TempDir()
	check(0, "version.v1.json", "version")
	check(0, "init.v1.json", "init", "--cloud", "local", "--dir", filepath.Join(t.TempDir(), "starter"))
	check(1, "error.v1.json", "init", "--cloud", "lcoal", "--dir", filepath.Join(t.TempDir(), "starter"))
	check(0, "validate.v1.json", "validate")
	good := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	f.write("rollout.yaml", strings.Replace(good, "maxParallel: 1", "maxParallel: -1", 1))
	if r := check(1, "validate.v1.json", "validate"); !strings.Contains(r.stdout, `"key":"rings[0].maxParallel"`) {
		t.Fatalf("validate of a broken configuration: %s", r.stdout)
	}
	check(1, "error.v1.json", "plan", "--release", "v1") // fails before it could plan
	f.write("rollout.yaml", good)
	check(0, "preflight.v1.json", "preflight")
	check(0, "plan.v1.json", "plan", "--release", "v1")
	check(1, "error.v1.json", "start", "--release", "v1", "--var", "nope=1")
	start := check(3, "report.v1.json", "start", "--release", "v1")
	var rep report
	_ = json.Unmarshal([]byte(start.stdout), &rep)
	check(3, "report.v1.json", "status")
	check(0, "report.v1.json", "pause", rep.Run, "--reason", "a look first")
	check(0, "report.v1.json", "approve", rep.Run, "--ring", "only", "--reason", "ok", "--as", "ops")
	check(1, "error.v1.json", "drift", "ack", rep.Run, "--ring", "only", "--reason", "none stopped it")
	check(1, "error.v1.json", "gate", "override", rep.Run, "--target", "t-1", "--gate", "healthz", "--verdict", "pass", "--reason", "nothing waits")
	check(1, "error.v1.json", "bake", "end", rep.Run, "--ring", "only", "--reason", "not baking")
	check(0, "report.v1.json", "resume", rep.Run)
	check(0, "history.v1.json", "history")
	check(0, "history.v1.json", "history", "--target", "t-1")
	check(0, "fleet.v1.json", "fleet")
	check(0, "drift.v1.json", "drift")
	check(0, "nothing-to-do.v1.json", "expand")
	check(0, "nothing-to-do.v1.json", "rollback", "--reason", "nothing before v1", "--yes")
	check(0, "freeze.v1.json", "freeze", "on", "--reason", "contract")
	check(4, "freeze.v1.json", "freeze", "status")
	check(0, "freeze.v1.json", "freeze", "off")
	check(0, "keygen.v1.json", "evidence", "keygen", "--out", filepath.Join(dir, "k"))
	ev := check(0, "evidence.v1.json", "evidence", rep.Run, "--key", filepath.Join(dir, "k.key"), "--out", filepath.Join(dir, "ev"))
	var files struct{ Files []string }
	_ = json.Unmarshal([]byte(ev.stdout), &files)
	i := slices.IndexFunc(files.Files, func(p string) bool { return strings.HasSuffix(p, ".intoto.json") })
	if i < 0 {
		t.Fatalf("evidence wrote no attestation: %s", ev.stdout)
	}
	check(0, "evidence-verify.v1.json", "evidence", "verify", files.Files[i], "--trust", filepath.Join(dir, "k.pub"))
	archive := filepath.Join(dir, "v1.tgz")
	check(0, "release.v1.json", "release", "export", "v1", "--out", archive)
	check(1, "error.v1.json", "release", "import", filepath.Join(dir, "missing.tgz"))
	other := f.workingCopy()
	other.must(0, "release", "import", archive)
	f.must(3, "start", "--release", "v2")
	f.must(0, "approve", f.status().Run, "--ring", "only", "--reason", "ok", "--as", "ops")
	f.must(0, "resume", f.status().Run)
	check(0, "rollback-preview.v1.json", "rollback", "--dry-run")
	check(0, "report.v1.json", "rollback", "--reason", "contract", "--yes")
	check(1, "error.v1.json", "abort", rep.Run, "--reason", "it is over")
	if r := check(3, "report.v1.json", "start", "--release", "v3", "--ring", "only", "--reason", "hotfix", "--as", "ops"); !strings.Contains(r.stdout, `"kind":"promote"`) ||
		!strings.Contains(r.stdout, `"requested":{"actor":"ops","reason":"hotfix"}`) {
		t.Fatalf("a promotion into one ring: %s", r.stdout)
	}
	check(0, "env-add.v1.json", "env", "add", "--boundary", "local-a", "--region", "local", "--name", "t-9")
	check(0, "doctor.v1.json", "state", "doctor")
	check(0, "state-migrate.v1.json", "state", "migrate")
	export := filepath.Join(dir, "journal.ndjson")
	f.must(0, "state", "export", "--to", export)
	check(0, "state-transfer.v1.json", "state", "import", "--from", export, "--state", "sqlite:"+filepath.Join(dir, "moved.db"))
	conformsTo(t, "release.v1.json", other.must(0, "release", "import", archive, "--output", "json").stdout)

	root := cli.NewRoot(cli.IO{})
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		if schemas, _ := cli.Schemas(cmd); len(schemas) > 0 && !ran[cmd.CommandPath()] && covered[cmd.CommandPath()] == "" {
			t.Errorf("%s has a schema (%v) that no step of this test checked", cmd.CommandPath(), schemas)
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// Shell completion reads the fleet as the shell asks: run IDs, rings, targets, releases, and the
// values of enum flags; without a journal it offers no run and creates none.
func TestShellCompletionReadsTheFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(2, "0", ""))
	if r := f.must(0, "__complete", "status", ""); strings.Contains(r.stdout, "v1-") {
		t.Fatalf("runs offered before any: %s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(f.dir, ".rollout")); err == nil {
		t.Fatal("a completion created the fleet's journal")
	}
	f.must(0, "start", "--release", "v1")
	run := f.status().Run
	for args, want := range map[string]string{
		"resume|":                              run + "\trelease v1",
		"start|--ring|":                        "only",
		"rollback|--target|":                   "t-1\nt-2",
		"start|--release|":                     "v1",
		"status|--output|":                     "text\njson",
		"gate|override|" + run + "|--verdict|": "pass\nfail",
		"release|export|":                      "v1",
	} {
		r := f.must(0, append([]string{"__complete"}, strings.Split(args, "|")...)...)
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("completing %q: want %q in:\n%s", args, want, r.stdout)
		}
	}
	if r := f.must(0, "completion", "bash"); !strings.Contains(r.stdout, "__start_rollout") {
		t.Fatalf("completion bash: %s", r.stdout[:min(200, len(r.stdout))])
	}
}

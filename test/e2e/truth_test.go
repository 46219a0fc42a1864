//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// checkTruth is the invariant every end-to-end test ends with (newFleet registers it): what the
// journal says is deployed is what Terraform's state says, no target ever had two operations in
// flight at once, and every run's report and exit code agree with its phase.
func (f *fleet) checkTruth() {
	t := f.t
	t.Helper()
	if f.run("validate").code != 0 {
		return // a test that left its fleet's configuration broken: nothing of it can run
	}
	evs := f.journalEvents()
	if err := rings.CheckOneOperationAtATime(evs); err != nil {
		t.Errorf("truth: %v", err)
	}
	var runs []struct {
		Run, Phase string
	}
	if err := json.Unmarshal(field(f.run("history", "--output", "json").stdout, "runs"), &runs); err != nil {
		t.Errorf("truth: history --output json: %v", err)
		return
	}
	newest := map[string]string{}         // target -> the release the newest run that touched it says it runs
	unknown := map[string]bool{}          // targets whose newest operation's outcome the journal does not know
	for i := len(runs) - 1; i >= 0; i-- { // oldest first
		r := f.run("status", runs[i].Run, "--output", "json")
		var rep report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Errorf("truth: status %s: %v\n%s", runs[i].Run, err, r.stderr)
			continue
		}
		want, settled := exitFor(rep.Phase, rep.Waiting)
		if rep.ExitCode != want {
			t.Errorf("truth: run %s is %s (waiting for %q) but its report says exit %d, want %d", rep.Run, rep.Phase, rep.Waiting, rep.ExitCode, want)
		}
		if settled && r.code != rep.ExitCode {
			t.Errorf("truth: run %s: status exited %d, its report says %d", rep.Run, r.code, rep.ExitCode)
		}
		for _, ring := range rep.Rings {
			for _, tg := range ring.Targets {
				if tg.Phase != "pending" || newest[tg.Name] == "" {
					rel := ""
					if tg.Release != nil {
						rel = tg.Release.Name
					}
					newest[tg.Name] = rel
					// An interrupted or failed apply or rollback: Terraform may have written part of it.
					switch tg.Phase {
					case "applying", "rolling_back", "failed", "rollback_failed":
						unknown[tg.Name] = true
					default:
						unknown[tg.Name] = false
					}
				}
			}
		}
	}
	// The same comparison, as users get it: rollout state doctor --targets.
	var doc struct {
		Targets []struct{ Target, Journal, Verdict, Detail string }
	}
	if r := f.run("state", "doctor", "--targets", "--output", "json"); json.Unmarshal([]byte(r.stdout), &doc) != nil {
		t.Errorf("truth: state doctor --targets: %s %s", r.stdout, r.stderr)
	}
	for _, d := range doc.Targets {
		if d.Verdict == "differs" && !unknown[d.Target] {
			t.Errorf("truth: state doctor --targets: %s: %s", d.Target, d.Detail)
		}
	}
	for target, says := range newest {
		deployed, ok := f.stateRelease(target)
		if !ok || unknown[target] {
			continue // a module without a version output, or a test's stand-in binary
		}
		if says != deployed {
			t.Errorf("truth: the journal says %s runs %q, its Terraform state says %q", target, says, deployed)
		}
		if current := journalCurrent(evs, target); current != deployed {
			t.Errorf("truth: the last apply or rollback journaled for %s was %q, its Terraform state says %q", target, current, deployed)
		}
	}
}

// exitFor is the CI contract: the exit code of a run in phase, and whether the run stays so until
// someone acts (status exits with that code then; 0 while it is in progress).
func exitFor(phase, waiting string) (int, bool) {
	switch phase {
	case "succeeded":
		return 0, true
	case "aborted":
		return 7, true
	case "rolled_back":
		return 2, true
	case "waiting", "paused":
		return 3, true
	case "blocked":
		return 4, true
	case "rollback_failed":
		return 6, true
	}
	if waiting == "driver" {
		return 3, true
	}
	return 0, false
}

// journalEvents reads every event of the fleet's journal, in the order they were appended.
func (f *fleet) journalEvents() []rings.Event {
	f.t.Helper()
	r := f.run("state", "export")
	if r.code != 0 {
		f.t.Errorf("truth: state export: %s", r.stderr)
		return nil
	}
	var evs []rings.Event
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var rec struct {
			Kind  string       `json:"kind"`
			Event *rings.Event `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err == nil && rec.Kind == "event" && rec.Event != nil {
			evs = append(evs, *rec.Event)
		}
	}
	return evs
}

// journalCurrent is the release of the last apply or rollback journaled for target.
func journalCurrent(evs []rings.Event, target string) string {
	cur := ""
	for _, ev := range evs {
		if ev.Target == target && (ev.Type == rings.TargetApplied || ev.Type == rings.TargetRolledBack) && ev.Release != nil {
			cur = ev.Release.Name
		}
	}
	return cur
}

// stateRelease reads the release a target's Terraform state says it carries: the stamp module's
// `version` output, from the state file itself (not through rollout). ok is false when there is
// no state file of the stamp's form to read.
func (f *fleet) stateRelease(target string) (string, bool) {
	return releaseInState(f.readState(target))
}

// readState reads target's Terraform state: from its backend when the test says how, else from
// the local state files.
func (f *fleet) readState(target string) ([]byte, bool, error) {
	if f.state != nil {
		b, ok := f.state(target)
		return b, ok, nil
	}
	dir := f.tfstate
	if dir == "" {
		dir = filepath.Join(f.dir, ".rollout", "tfstate")
	}
	b, err := os.ReadFile(filepath.Join(dir, target+".tfstate"))
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// releaseInState is the release a Terraform state's version output names ("" for none); ok is false
// when that cannot be told.
func releaseInState(b []byte, present bool, err error) (string, bool) {
	if err != nil {
		return "", false
	}
	if !present {
		return "", true // never applied: nothing deployed
	}
	var st struct {
		Outputs map[string]struct {
			Value any `json:"value"`
		} `json:"outputs"`
		Resources []any `json:"resources"`
	}
	if json.Unmarshal(b, &st) != nil {
		return "", false
	}
	v, ok := st.Outputs["version"]
	if !ok {
		return "", len(st.Resources) == 0
	}
	s, ok := v.Value.(string)
	return s, ok
}

// Aborting a run that a freeze blocked between rings, with --rollback, starts nothing: the canary
// returns to the last release, the next ring never sees the new one, and the run ends aborted
// (exit 1). Before, the abort entered the frozen ring and applied each of its targets twice at
// once, and status said they ran the old release while Terraform had the new one.
func TestAbortOfAFrozenRunWithRollback(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{
		targets: "targets:\n" + targetsYAML("canary", "local-a", "canary", 1, "    vars: {apply_seconds: 2}\n") +
			targetsYAML("pub", "local-a", "commercial", 2, "") + targetsYAML("gov", "local-b", "sovereign", 1, ""),
		rings: `  - name: canary
    targets: {labels: {tier: canary}}
    gates: [healthz]
  - name: commercial
    targets: {labels: {tier: commercial}}
    maxParallel: 2
    gates: [healthz]
  - name: sovereign
    targets: {labels: {tier: sovereign}}
    gates: [healthz]
`})
	f.must(0, "start", "--release", "r5")
	cmd, errb := startUntilApplying(t, f, "r7", "canary-1")
	f.must(0, "freeze", "on", "--reason", "incident 12")
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 4 {
		t.Fatalf("start after freeze on: %v\n%s", err, lastLines(errb.String(), 30))
	}
	run := f.status().Run
	f.must(0, "freeze", "off")
	a := f.must(7, "abort", run, "--reason", "test abort", "--rollback", "--yes")
	if strings.Contains(a.stderr, "pub-1: applying") || strings.Contains(a.stderr, "pub-2: applying") {
		t.Fatalf("the abort applied the frozen ring:\n%s", a.stderr)
	}
	rep := f.status(run)
	if rep.Phase != "aborted" || rep.ExitCode != 7 || !strings.Contains(rep.Reason, "rolled back") {
		t.Fatalf("after abort --rollback: %s exit %d (%s)", rep.Phase, rep.ExitCode, rep.Reason)
	}
	for _, name := range []string{"canary-1", "pub-1", "pub-2", "gov-1"} {
		if v := f.deployedVersion(name); v != "r5" {
			t.Errorf("%s runs %s after the abort, want r5", name, v)
		}
	}
}

// An approved run that no process drives says so: it waits for a driver (exit 3, next: rollout
// resume RUN), and status --wait returns at once instead of running to its timeout. Before, it
// said "running", "exit code 1", and --wait hung for the whole --timeout.
func TestApprovedRunWithoutADriverWaitsForOne(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true}\n"))
	f.must(3, "start", "--release", "v1")
	run := f.status().Run
	f.must(0, "approve", run, "--ring", "only", "--as", "ana", "--reason", "ok")
	r := f.must(3, "status", run, "--output", "json")
	conforming(t, r.stdout)
	var rep struct {
		Phase, WaitingFor, Next string
		ExitCode                int
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.WaitingFor != "driver" || rep.ExitCode != 3 || !strings.Contains(rep.Next, "rollout resume "+run) {
		t.Fatalf("approved, undriven run: %v %+v", err, rep)
	}
	if text := f.must(3, "status", run); !strings.Contains(text.stdout, "next: no process drives this run") || strings.Contains(text.stdout, "exit code 1") {
		t.Fatalf("status text:\n%s", text.stdout)
	}
	began := time.Now()
	f.must(3, "status", run, "--wait", "--timeout", "20s", "--every", "100ms")
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("status --wait of an undriven run took %s: it should return at once", took)
	}
	f.must(0, "resume", run)
}

// While a process drives a run, its report says exit 0 and who drives it, as the command does.
// Before, the report said exitCode 1 while status exited 0.
func TestReportOfARunInProgress(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(2, "2", ""))
	f.must(0, "start", "--release", "v1", "--detach")
	r := f.must(0, "status", "--output", "json")
	var rep struct {
		Phase    string
		ExitCode int
		Driver   *struct{ PID int }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Phase != "running" || rep.ExitCode != 0 || rep.Driver == nil || rep.Driver.PID == 0 {
		t.Fatalf("report of a driven run: %v %s", err, r.stdout)
	}
	f.must(0, "status", "--wait", "--every", "100ms")
}

// A plan that fails does not bind the release's name; the first start does. A name bound to other
// content is refused with what differs, in full, and a secret's value masked. Releases with the
// same code and other variables have other digests. Before, the failed plan bound the name, the
// refusal cut both values at 40 characters, and the digests were equal.
func TestReleaseIsBoundByItsStartNotByAFailedPlan(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	f.write("terraform/stamp/extra.tf", "variable \"region_code\" {\n  type = string\n}\nvariable \"db_password\" {\n  type      = string\n  default   = \"\"\n  sensitive = true\n}\n")
	if r := f.run("plan", "--release", "v1"); r.code != 1 || !strings.Contains(r.stdout+r.stderr, "region_code") {
		t.Fatalf("plan without a required variable: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	long := strings.Repeat("eu-west-", 8) + "1"
	f.must(0, "start", "--release", "v1", "--var", "region_code="+long, "--var", "db_password=hunter2-first")
	r := f.must(1, "start", "--release", "v1", "--var", "region_code="+long+"b", "--var", "db_password=hunter2-second")
	if !strings.Contains(r.stderr, `variable region_code: now "`+long+`b", recorded "`+long+`"`) || strings.Contains(r.stderr, "db_password") || strings.Contains(r.stderr, "hunter2") {
		t.Fatalf("refusal of a changed release:\n%s", r.stderr)
	}
	// A secret is not part of a release (rollout never keeps it): the same release with another
	// password is the same release, and its run is over.
	f.must(0, "start", "--release", "v1", "--var", "region_code="+long, "--var", "db_password=hunter2-second")
	f.must(0, "start", "--release", "v2", "--var", "region_code="+long, "--var", "db_password=hunter2-first")
	f.must(0, "start", "--release", "v3", "--var", "region_code=other", "--var", "db_password=hunter2-first")
	var rels []struct {
		Release struct{ Name, Digest, Module string }
	}
	if err := json.Unmarshal(field(f.must(0, "history", "--output", "json").stdout, "runs"), &rels); err != nil || len(rels) != 3 {
		t.Fatalf("history: %v %+v", err, rels)
	}
	digest := map[string]string{}
	for _, r := range rels {
		digest[r.Release.Name] = r.Release.Digest
		if r.Release.Module != rels[0].Release.Module || r.Release.Module == "" {
			t.Fatalf("module digests differ or are missing: %+v", rels)
		}
	}
	// A release is its name and its content: the same code and variables under two names give
	// two digests (evidence of one is never of the other), and so do other variables.
	if digest["v1"] == digest["v2"] || digest["v3"] == digest["v1"] || digest["v3"] == "" || digest["v1"] == "" {
		t.Fatalf("release digests %v: three releases, three digests", digest)
	}
}

// A manual rollback that fails on a target says so: exit 6, its ring failed (not passed) with the
// target named, a next: line, and a reason in history. Before, status showed the ring passed.
func TestFailedManualRollbackSaysSo(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(2, "0", ""))
	f.must(0, "start", "--release", "v1")
	f.must(0, "start", "--release", "v2")
	// t-1's stand-in cannot be written any more: re-applying v1 there fails.
	if err := os.MkdirAll(filepath.Join(f.deployed, "t-1.json.tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.must(6, "rollback", "--ring", "only", "--reason", "e2e", "--yes")
	out := f.must(6, "status", "--output", "json").stdout
	conforming(t, out)
	var rep struct {
		Phase, Reason, Next string
		Rings               []struct{ Phase, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Phase != "rollback_failed" || rep.Rings[0].Phase != "failed" ||
		!strings.Contains(rep.Rings[0].Reason, "t-1") || !strings.Contains(rep.Next, "rollout rollback --run") || rep.Reason == "" {
		t.Fatalf("a failed manual rollback: %v %s", err, out)
	}
	var runs []struct{ Kind, Reason string }
	if err := json.Unmarshal(field(f.must(0, "history", "--output", "json").stdout, "runs"), &runs); err != nil || runs[0].Kind != "rollback" || !strings.Contains(runs[0].Reason, "t-1") {
		t.Fatalf("history: %v %+v", err, runs)
	}
	if v := f.deployedVersion("t-2"); v != "v1" {
		t.Fatalf("t-2 runs %s: the rollback should go on with the other targets", v)
	}
}

// noProviders is a stamp without providers: it needs no CLI configuration to install anything.
const noProviders = `variable "app_version" { type = string }
variable "target" { type = string }
resource "terraform_data" "app" { input = var.app_version }
output "version" { value = var.app_version }
output "endpoint" { value = "" }
`

// An error of this machine is found before a run is journaled, and exits 1: it is never a failed
// release. Where Terraform tolerates something (a CLI configuration file that does not exist), so
// does rollout. Before, every target failed with "read CLI configuration", the ring halted, and
// the command exited 2, which a pipeline reads as "this release is bad".
func TestEnvironmentErrorsAreFoundBeforeTheRunStarts(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{targets: "targets:\n" + targetsYAML("t", "local-a", "main", 2, ""),
		rings: "  - name: only\n    targets: {boundaries: [local-a]}\n", gates: "\n  ok:\n    command: {run: [\"true\"]}\n"})
	f.write("terraform/plain/main.tf", noProviders)
	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	cfg = strings.Replace(cfg, "module: terraform/stamp", "module: terraform/plain", 1)
	cfg = regexp.MustCompile(`(?m)^    (tier|deploy_dir|service_url):.*\n`).ReplaceAllString(cfg, "")
	f.write("rollout.yaml", cfg)

	// A CLI configuration that does not exist is no configuration, as for Terraform itself.
	missing := append([]string{}, f.env...)
	f.env = append(f.env, "TF_CLI_CONFIG_FILE="+filepath.Join(f.dir, "no-such.tfrc"))
	f.must(0, "start", "--release", "v1")

	// Providers that cannot be installed (a mirror without them), a binary that does not run: exit
	// 1, the cause named, and no run in the journal.
	f.env = missing
	f.write("terraform/plain/versions.tf", "terraform {\n  required_providers {\n    time = { source = \"hashicorp/time\", version = \"0.14.2\" }\n  }\n}\n")
	empty := filepath.Join(f.dir, "empty-mirror")
	_ = os.MkdirAll(empty, 0o755)
	f.write("mirror.tfrc", fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", empty))
	f.env = append(f.env, "TF_CLI_CONFIG_FILE="+filepath.Join(f.dir, "mirror.tfrc"))
	r := f.must(1, "start", "--release", "v2")
	if !strings.Contains(r.stderr, "not ready to run Terraform (nothing was journaled)") || !strings.Contains(r.stderr, "install providers") {
		t.Fatalf("providers that cannot be installed:\n%s", r.stderr)
	}
	f.env = missing
	bad := filepath.Join(f.dir, "broken-tf")
	f.write("broken-tf", "#!/bin/sh\necho 'error while loading shared libraries' >&2\nexit 127\n")
	_ = os.Chmod(bad, 0o755)
	r = f.must(1, "start", "--release", "v3", "--tf-bin", bad)
	if !strings.Contains(r.stderr, "terraform binary") || !strings.Contains(r.stderr, "shared libraries") {
		t.Fatalf("a binary that does not run:\n%s", r.stderr)
	}
	var runs []struct{ Release struct{ Name string } }
	if err := json.Unmarshal(field(f.must(0, "history", "--output", "json").stdout, "runs"), &runs); err != nil || len(runs) != 1 || runs[0].Release.Name != "v1" {
		t.Fatalf("runs journaled: %v %+v (want only v1)", err, runs)
	}
	// v2 was never started, so its name is still free for the same content.
	_ = os.Remove(filepath.Join(f.dir, "terraform/plain/versions.tf"))
	f.must(0, "start", "--release", "v2")
}

// Each configuration file is its own fleet: freezing one leaves the other alone, and their runs
// are in separate journals. Before, every rollout.*.yaml in a folder shared .rollout/state.db.
func TestEachConfigurationFileIsItsOwnFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	other := filepath.Join(f.dir, "rollout.other.yaml")
	f.write("rollout.other.yaml", readFile(t, filepath.Join(f.dir, "rollout.yaml")))
	f.must(0, "--config", other, "freeze", "on", "--reason", "other fleet only")
	if r := f.run("freeze", "status"); r.code != 0 || !strings.Contains(r.stdout, "off") {
		t.Fatalf("the default fleet is frozen by another fleet's switch: %d %s", r.code, r.stdout)
	}
	f.must(0, "start", "--release", "v1")
	if r := f.run("--config", other, "history", "--output", "json"); r.code != 0 || strings.Contains(r.stdout, "v1") {
		t.Fatalf("the other fleet sees the default fleet's run: %s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(f.dir, ".rollout", "fleets", "rollout.other", "state.db")); err != nil {
		t.Fatalf("the other fleet's journal: %v", err)
	}
}

// The smaller truths: version says what runs (rollout and the Terraform binary), an unknown
// target's history is an error, and durations in events are text, not nanoseconds.
func TestVersionHistoryAndEventDurations(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", "    bake: 1s\n"))
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if r := f.must(0, args...); !strings.Contains(r.stdout, "rollout ") || !strings.Contains(r.stdout, "terraform: ") || strings.Contains(r.stdout, "not usable") {
			t.Fatalf("%v: %s", args, r.stdout)
		}
	}
	if r := f.run("history", "--target", "NOPE"); r.code != 1 || !strings.Contains(r.stderr, `target "NOPE" is not declared`) {
		t.Fatalf("history of an unknown target: %d %s", r.code, r.stderr)
	}
	events := filepath.Join(f.dir, "events.ndjson")
	f.must(0, "start", "--release", "v1", "--events", events)
	if log := readFile(t, events); !strings.Contains(log, `"bake":"1s"`) {
		t.Fatalf("run.started's plan should say bake \"1s\":\n%s", log[:min(len(log), 2000)])
	}
	f.must(0, "history", "--target", "t-1")
}

// A saved plan, and plan --detail, show each resource change with its attributes before and after;
// a value of a sensitive variable is masked. Before, a reviewer got counts and a digest only.
func TestPlanDetailForReview(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	f.write("terraform/stamp/secret.tf", "variable \"db_password\" {\n  type      = string\n  default   = \"\"\n  sensitive = true\n}\nresource \"terraform_data\" \"db\" {\n  input = var.db_password\n}\n")
	f.must(0, "start", "--release", "v1", "--var", "db_password=first-Secret-1")
	r := f.must(0, "plan", "--release", "v2", "--var", "db_password=second-Secret-2", "--detail")
	for _, want := range []string{"-/+ terraform_data.app (replace)", `input: "{\"healthy\":true,\"target\":\"t-1\",\"version\":\"v1\"}" -> "{\"healthy\":true,\"target\":\"t-1\",\"version\":\"v2\"}"`,
		"terraform_data.db (update)", "input: (sensitive) -> (sensitive)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan --detail lacks %q:\n%s", want, r.stdout)
		}
	}
	saved := filepath.Join(f.dir, "v2.plan.json")
	f.must(0, "plan", "--release", "v2", "--var", "db_password=second-Secret-2", "--save", saved)
	text := readFile(t, saved)
	if !strings.Contains(text, `"action": "replace"`) || !strings.Contains(text, `"path": "input"`) {
		t.Errorf("the saved plan has no attribute detail:\n%s", text)
	}
	for _, out := range []string{r.stdout, r.stderr, text} {
		if strings.Contains(out, "Secret-") {
			t.Fatalf("a sensitive value is shown:\n%s", out)
		}
	}
	if st, err := os.Stat(saved); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the saved plan's mode: %v %v", st.Mode(), err)
	}
	f.must(0, "start", "--release", "v2", "--var", "db_password=second-Secret-2", "--reviewed", saved)
}

// A target a failed first deployment left on a bad release (nothing to roll back to) runs that
// release: the next run says so while the target waits its turn. Before, it showed "-" (its last
// known good, none), though Terraform had the bad release there.
func TestPendingTargetShowsWhatItRuns(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{
		targets: "targets:\n" + targetsYAML("a", "local-a", "canary", 1, "") + targetsYAML("b", "local-b", "main", 1, ""),
		rings: `  - name: canary
    targets: {labels: {tier: canary}}
    gates: [healthz]
  - name: main
    targets: {labels: {tier: main}}
    gates: [healthz]
    approval: {required: true}
`})
	f.must(3, "start", "--release", "v1", "--var", "fault_tier=main")
	run := f.status().Run
	f.must(0, "approve", run, "--ring", "main", "--reason", "go")
	f.must(2, "resume", run) // b-1's gate fails; a first deployment has nothing to return to
	if v := f.deployedVersion("b-1"); v != "v1" {
		t.Fatalf("b-1 runs %q after its failed first deployment", v)
	}
	f.must(3, "start", "--release", "v2")
	if got := f.status().targets()["b-1"]; got != [2]string{"pending", "v1"} {
		t.Fatalf("b-1 while v2 waits for its approval: %v, want pending on v1 (what Terraform has there)", got)
	}
}

//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// oneRing is a fleet of n targets in one ring, applied one at a time, each apply slow enough
// for an operator to act while it runs.
func oneRing(n int, applySeconds string, extraRing string) fleetSpec {
	return fleetSpec{targets: "targets:\n" + targetsYAML("t", "local-a", "main", n, "    vars: {apply_seconds: "+applySeconds+"}\n"),
		rings: "  - name: only\n    targets: {boundaries: [local-a]}\n    maxParallel: 1\n    gates: [healthz]\n" + extraRing}
}

func TestStartWithoutWaitingThenStatusWait(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(2, "1", ""))
	began := time.Now()
	r := f.must(0, "start", "--release", "v1", "--wait=false", "--output", "json")
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Phase != "running" || rep.Run == "" {
		t.Fatalf("start --wait=false: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("start --wait=false took %s: it should return once the run is journaled", took)
	}
	if !strings.Contains(r.stderr, "goes on in the background") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	// Asked again while the background process drives it: the same run, no second one.
	f.waitFor("the background run to apply", time.Minute, func(rep report) bool { return rep.targets()["t-1"][0] == "applying" })
	again := f.must(0, "start", "--release", "v1", "--wait=false", "--output", "json")
	if !strings.Contains(again.stderr, "in progress") || !strings.Contains(again.stdout, rep.Run) {
		t.Fatalf("second start --wait=false: %s\n%s", again.stdout, again.stderr)
	}
	w := f.must(0, "status", rep.Run, "--wait", "--every", "100ms", "--output", "json")
	if !strings.Contains(w.stdout, `"phase":"succeeded"`) || f.deployedVersion("t-2") != "v1" {
		t.Fatalf("status --wait: %s", w.stdout)
	}
	hist := f.must(0, "history", "--output", "json")
	if n := strings.Count(hist.stdout, `"kind":"release"`); n != 1 {
		t.Fatalf("history has %d release runs, want 1: %s", n, hist.stdout)
	}
	if log := readFile(t, filepath.Join(f.dir, ".rollout", "runs", rep.Run+".log")); !strings.Contains(log, "run finished: succeeded") {
		t.Fatalf("background log:\n%s", log)
	}
}

// resume --detach hands a paused run to a background process and returns at once; status --wait
// follows it to the end, and Terraform's state says what the report says.
func TestResumeDetached(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(2, "1", "    approval: {required: true}\n"))
	f.must(3, "start", "--release", "v1")
	run := f.status().Run
	f.must(0, "pause", run, "--as", "oncall", "--reason", "not tonight")
	f.must(0, "approve", run, "--ring", "only", "--as", "lead", "--reason", "reviewed")
	began := time.Now()
	r := f.must(0, "resume", run, "--detach", "--as", "oncall", "--output", "json")
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("resume --detach took %s: it should return once the run is handed over", took)
	}
	conforming(t, r.stdout)
	if !strings.Contains(r.stderr, "goes on in the background") {
		t.Fatalf("resume --detach: %s", r.stderr)
	}
	w := f.must(0, "status", run, "--wait", "--every", "100ms", "--output", "json")
	if !strings.Contains(w.stdout, `"phase":"succeeded"`) || f.deployedVersion("t-1") != "v1" || f.deployedVersion("t-2") != "v1" {
		t.Fatalf("after resume --detach: %s", w.stdout)
	}
	if log := readFile(t, filepath.Join(f.dir, ".rollout", "runs", run+".log")); !strings.Contains(log, "unpaused by oncall") {
		t.Fatalf("background log:\n%s", log)
	}
	f.must(1, "resume", run, "--detach") // over: nothing to hand on
}

// An operator ends the canary's hour-long bake early, from another process, with a reason: the
// process driving the run reads it, the canary passes and main is applied; the journal says who
// and why.
func TestEndABakeEarly(t *testing.T) {
	t.Parallel()
	f := newFleet(t, twoRings("1h"))
	var started report
	_ = json.Unmarshal([]byte(f.must(0, "start", "--release", "v1", "--wait=false", "--output", "json").stdout), &started)
	run := started.Run
	f.waitFor("the canary to bake", time.Minute, func(rep report) bool { return len(rep.Rings) > 0 && rep.Rings[0].Phase == "baking" })
	f.must(1, "bake", "end", run, "--ring", "main", "--reason", "wrong ring")
	r := f.must(0, "bake", "end", run, "--ring", "canary", "--as", "oncall", "--reason", "error budget clean for 20m", "--output", "json")
	conforming(t, r.stdout)
	w := f.must(0, "status", run, "--wait", "--every", "100ms", "--timeout", "2m", "--output", "json")
	if !strings.Contains(w.stdout, `"phase":"succeeded"`) || f.deployedVersion("main-3") != "v1" {
		t.Fatalf("after the bake was ended: %s", w.stdout)
	}
	if log := readFile(t, filepath.Join(f.dir, ".rollout", "runs", run+".log")); !strings.Contains(log, "bake ended early by oncall: error budget clean for 20m") {
		t.Fatalf("background log:\n%s", log)
	}
}

// A target waiting for its boundary's slot (local-b: maxParallel 2, a ring of 3 at once) shows as
// queued, in the report, the status table and the event log, not as if Terraform ran on it.
func TestATargetWaitingForItsBoundarysSlotIsQueued(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{targets: "targets:\n" + targetsYAML("q", "local-b", "main", 3, "    vars: {apply_seconds: 2}\n"),
		rings: "  - name: only\n    targets: {boundaries: [local-b]}\n    maxParallel: 3\n"})
	f.must(0, "start", "--release", "v1", "--wait=false")
	var seen string
	f.waitFor("a target queued", time.Minute, func(rep report) bool {
		r := f.run("status", "--output", "json")
		if strings.Contains(r.stdout, `"queued":true`) && strings.Contains(f.run("fleet", "--output", "json").stdout, `"state":"queued"`) {
			seen = f.run("status").stdout
			return true
		}
		return false
	})
	if !strings.Contains(seen, "queued (applying)") {
		t.Fatalf("status while a target waits for its slot:\n%s", seen)
	}
	w := f.must(0, "status", "--wait", "--every", "100ms", "--output", "json")
	if strings.Contains(w.stdout, `"queued":true`) {
		t.Fatalf("a target still queued after the run: %s", w.stdout)
	}
	if log := f.must(0, "status").stderr + readFile(t, filepath.Join(f.dir, ".rollout", "runs", f.status().Run+".log")); !strings.Contains(log, "queued, waiting for a slot of boundary local-b (maxParallel 2)") {
		t.Fatalf("the run's log does not say a target was queued:\n%s", log)
	}
}

func TestPauseThenResume(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(3, "2", ""))
	cmd, errb := startUntilApplying(t, f, "v1", "t-1")
	run := f.status().Run
	p := f.must(0, "pause", run, "--as", "oncall", "--reason", "looking at a graph")
	if !strings.Contains(p.stderr, "paused by oncall") {
		t.Fatalf("pause: %s", p.stderr)
	}
	// The running process reads the pause, lets t-1 finish, starts nothing more, and exits 3.
	if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("start after the pause: %v\n%s", err, lastLines(errb.String(), 30))
	}
	conforming(t, f.must(3, "status", run, "--output", "json").stdout)
	rep := f.status(run)
	ts := rep.targets()
	if rep.Phase != "paused" || rep.ExitCode != 3 || ts["t-1"][0] != "verified" || ts["t-2"][0] != "pending" {
		t.Fatalf("paused run: %s exit %d %v", rep.Phase, rep.ExitCode, ts)
	}
	if !strings.Contains(errb.String(), "run paused by oncall") {
		t.Fatalf("the running process did not say it was paused:\n%s", lastLines(errb.String(), 20))
	}
	// start of the same release does not unpause it; resume does.
	f.must(3, "start", "--release", "v1")
	f.must(0, "resume", run)
	if rep := f.status(run); rep.Phase != "succeeded" || f.deployedVersion("t-3") != "v1" {
		t.Fatalf("after resume: %s", rep.Phase)
	}
}

func TestAbortWithRollbackFromAnotherProcess(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(3, "2", ""))
	f.must(0, "start", "--release", "v1")
	cmd, errb := startUntilApplying(t, f, "v2", "t-2")
	run := f.status().Run
	// Rolling back changes what runs: without a terminal to ask on, --yes says so; refused, nothing
	// is journaled.
	if r := f.must(1, "abort", run, "--rollback", "--as", "oncall", "--reason", "customer reports"); !strings.Contains(r.stderr, "no terminal to ask on: give --yes") {
		t.Fatalf("abort --rollback without --yes: %s", r.stderr)
	}
	if rep := f.status(); rep.Phase != "running" {
		t.Fatalf("a refused abort changed the run: %s", rep.Phase)
	}
	a := f.must(0, "abort", run, "--rollback", "--as", "oncall", "--reason", "customer reports", "--yes")
	if !strings.Contains(a.stderr, "abort journaled") {
		t.Fatalf("abort while another process drives the run: %s", a.stderr)
	}
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 7 {
		t.Fatalf("the running start after abort --rollback: %v\n%s", err, lastLines(errb.String(), 30))
	}
	rep := f.status(run)
	if rep.Phase != "aborted" || rep.ExitCode != 7 || !strings.Contains(rep.Reason, "aborted by oncall: customer reports") {
		t.Fatalf("after abort --rollback: %s %q", rep.Phase, rep.Reason)
	}
	for _, name := range []string{"t-1", "t-2", "t-3"} {
		if v := f.deployedVersion(name); v != "v1" {
			t.Fatalf("%s runs %s after abort --rollback, want v1", name, v)
		}
	}
}

func TestAbortAPausedRunHere(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(2, "1", "    approval: {required: true}\n"))
	f.must(3, "start", "--release", "v1") // waits for approval before anything changes
	run := f.status().Run
	r := f.must(7, "abort", run, "--reason", "wrong release")
	if !strings.Contains(r.stderr, "aborted by") {
		t.Fatalf("abort: %s", r.stderr)
	}
	conforming(t, f.must(7, "status", run, "--output", "json").stdout)
	rep := f.status(run)
	if rep.Phase != "aborted" || rep.ExitCode != 7 || f.deployedVersion("t-1") != "" {
		t.Fatalf("aborted run: %s exit %d, t-1 %q", rep.Phase, rep.ExitCode, f.deployedVersion("t-1"))
	}
	// An aborted run is over: a new release may start.
	f.must(3, "start", "--release", "v2")
}

func TestApprovalQuorum(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true, approvers: [ana, bo, cy], quorum: 2}\n"))
	f.must(3, "start", "--release", "v1")
	run := f.status().Run
	if r := f.run("approve", run, "--ring", "only", "--as", "ana"); r.code != 1 || !strings.Contains(r.stderr, "--reason is required") {
		t.Fatalf("an approval without a reason: %d %s", r.code, r.stderr)
	}
	if r := f.run("approve", run, "--ring", "only", "--as", "mallory", "--reason", "trust me"); r.code != 1 || !strings.Contains(r.stderr, "may not approve") {
		t.Fatalf("approval by someone not listed: %d %s", r.code, r.stderr)
	}
	f.must(0, "approve", run, "--ring", "only", "--as", "ana", "--reason", "reviewed")
	// The same approver again does not count twice toward the quorum of 2.
	if r := f.run("approve", run, "--ring", "only", "--as", "ana", "--reason", "again"); r.code != 1 || !strings.Contains(r.stderr, "ana approved ring only of run "+run+" already") {
		t.Fatalf("the same approver twice: %d %s", r.code, r.stderr)
	}
	f.must(3, "resume", run) // one of two
	f.must(0, "approve", run, "--ring", "only", "--as", "bo", "--reason", "lgtm")
	f.must(0, "resume", run)
	// A finished run has nothing to approve (it exited 0 and said to resume).
	if r := f.run("approve", run, "--ring", "only", "--as", "cy", "--reason", "late"); r.code != 1 || !strings.Contains(r.stderr, "is over (succeeded): there is nothing to approve") {
		t.Fatalf("an approval of a finished run: %d %s", r.code, r.stderr)
	}
	var full struct {
		Rings []struct {
			Approvals []struct{ Actor, Reason string }
		}
	}
	out := f.must(0, "status", run, "--output", "json").stdout
	if err := json.Unmarshal([]byte(out), &full); err != nil || len(full.Rings[0].Approvals) != 2 || full.Rings[0].Approvals[1].Actor != "bo" {
		t.Fatalf("approvals in the report: %v %s", err, out)
	}
}

func TestFreezeWindowSwitchAndBreakGlass(t *testing.T) {
	t.Parallel()
	today := time.Now().UTC()
	spec := oneRing(1, "0", "")
	f := newFleet(t, spec)
	// A deny window around now, fleet-wide: the run is created, and blocked before anything changes.
	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	frozen := strings.Replace(cfg, "defaults:", "freeze:\n  deny:\n    - {name: release-freeze, from: "+today.AddDate(0, 0, -1).Format("2006-01-02")+", to: "+today.AddDate(0, 0, 2).Format("2006-01-02")+"}\ndefaults:", 1)
	f.write("rollout.yaml", frozen)
	r := f.must(4, "start", "--release", "v1")
	if !strings.Contains(r.stderr, "release-freeze") {
		t.Fatalf("frozen start: %s", r.stderr)
	}
	conforming(t, f.must(4, "status", "--output", "json").stdout)
	rep := f.status()
	if rep.Phase != "blocked" || rep.ExitCode != 4 || f.deployedVersion("t-1") != "" {
		t.Fatalf("blocked run: %s %d", rep.Phase, rep.ExitCode)
	}
	if r := f.run("start", "--release", "v1", "--break-glass"); r.code != 1 || !strings.Contains(r.stderr, "--break-glass needs --reason") {
		t.Fatalf("break-glass without a reason: %d %s", r.code, r.stderr)
	}
	f.must(0, "start", "--release", "v1", "--break-glass", "--reason", "sev1 fix")
	var full struct {
		BreakGlass struct{ Actor, Reason string } `json:"breakGlass"`
	}
	out := conforming(t, f.must(0, "status", rep.Run, "--output", "json").stdout)
	if err := json.Unmarshal([]byte(out), &full); err != nil || full.BreakGlass.Reason != "sev1 fix" {
		t.Fatalf("break glass in the report: %v %s", err, out)
	}

	// The stop-the-line switch, with the calendar lifted.
	f.write("rollout.yaml", cfg)
	f.must(1, "freeze", "on")
	f.must(0, "freeze", "on", "--reason", "incident 7", "--as", "sre")
	if r := f.run("freeze", "status"); r.code != 4 || !strings.Contains(r.stdout, "incident 7") {
		t.Fatalf("freeze status: %d %s", r.code, r.stdout)
	}
	f.must(4, "start", "--release", "v2")
	run := f.status().Run
	f.must(4, "resume", run) // still on
	f.must(0, "freeze", "off")
	f.must(0, "resume", run)
	if v := f.deployedVersion("t-1"); v != "v2" {
		t.Fatalf("t-1 runs %s after the switch went off", v)
	}
}

// A running run sees the switch turned on: the next ring does not start.
func TestStopTheLineReachesARunningRun(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{targets: "targets:\n" + targetsYAML("a", "local-a", "canary", 1, "    vars: {apply_seconds: 2}\n") + targetsYAML("b", "local-b", "main", 1, ""),
		rings: "  - name: canary\n    targets: {labels: {tier: canary}}\n    gates: [healthz]\n  - name: main\n    targets: {labels: {tier: main}}\n    gates: [healthz]\n"})
	cmd, errb := startUntilApplying(t, f, "v1", "a-1")
	f.must(0, "freeze", "on", "--reason", "incident 9")
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 4 {
		t.Fatalf("running start after freeze on: %v\n%s", err, lastLines(errb.String(), 30))
	}
	ts := f.status().targets()
	if ts["a-1"][0] != "verified" || ts["b-1"][0] != "pending" {
		t.Fatalf("targets: %v", ts)
	}
}

func TestDriftFoundAndBlockingPromotion(t *testing.T) {
	t.Parallel()
	f := newFleet(t, twoRings("0s"))
	// A resource whose refresh can see a change made outside the tool.
	f.write("terraform/stamp/rotation.tf", "resource \"time_rotating\" \"cert\" {\n  rotation_days = 30\n}\n")
	f.must(0, "start", "--release", "v1")
	f.must(0, "drift")

	// Edit main-2's state outside the tool: its rotation is now long past, so a refresh finds
	// the resource gone.
	path := filepath.Join(f.dir, ".rollout", "tfstate", "main-2.tfstate")
	state := readFile(t, path)
	var st map[string]any
	if err := json.Unmarshal([]byte(state), &st); err != nil {
		t.Fatal(err)
	}
	edited := false
	for _, r := range st["resources"].([]any) {
		res := r.(map[string]any)
		if res["type"] == "time_rotating" {
			attrs := res["instances"].([]any)[0].(map[string]any)["attributes"].(map[string]any)
			attrs["rotation_rfc3339"] = "2001-01-01T00:00:00Z"
			edited = true
		}
	}
	data, _ := json.Marshal(st)
	if !edited || os.WriteFile(path, data, 0o644) != nil {
		t.Fatal("could not edit the state")
	}
	r := f.must(2, "drift", "--output", "json")
	var lines []struct {
		Target    string
		Drifted   bool
		Resources []string
	}
	if err := json.Unmarshal(field(r.stdout, "targets"), &lines); err != nil || len(lines) != 4 {
		t.Fatalf("drift --output json: %v\n%s", err, r.stdout)
	}
	for _, l := range lines {
		if l.Drifted != (l.Target == "main-2") || l.Drifted && !strings.Contains(strings.Join(l.Resources, ","), "time_rotating.cert") {
			t.Fatalf("drift: %+v", lines)
		}
	}
	f.must(0, "drift", "--ring", "canary")

	// With driftCheck: block on ring main, v2 goes through canary and stops before main.
	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	f.write("rollout.yaml", strings.Replace(cfg, "  - name: main\n", "  - name: main\n    driftCheck: block\n", 1))
	out := f.must(3, "start", "--release", "v2")
	if !strings.Contains(out.stderr, "main-2") || !strings.Contains(out.stderr, "drift ack") {
		t.Fatalf("blocked on drift: %s", lastLines(out.stderr, 20))
	}
	run := f.status().Run
	conforming(t, f.must(3, "status", run, "--output", "json").stdout)
	ts := f.status().targets()
	if ts["canary-1"] != [2]string{"verified", "v2"} || ts["main-1"][1] != "v1" {
		t.Fatalf("targets: %v", ts)
	}
	f.must(1, "drift", "ack", run, "--ring", "main") // a reason is required
	f.must(0, "drift", "ack", run, "--ring", "main", "--reason", "cert rotated by hand on purpose", "--as", "oncall")
	out = f.must(0, "resume", run, "--output", "json")
	if !strings.Contains(conforming(t, out.stdout), `"driftAcknowledged":{"actor":"oncall"`) {
		t.Fatalf("report: %s", out.stdout)
	}
	if v := f.deployedVersion("main-2"); v != "v2" {
		t.Fatalf("main-2 runs %s", v)
	}
}

func TestPlanReviewAndProtectedDestroy(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(2, "0", ""))
	f.must(0, "start", "--release", "v1")
	saved := filepath.Join(t.TempDir(), "v2.plan.json")
	f.must(0, "plan", "--release", "v2", "--save", saved)
	var sp struct {
		Targets map[string]struct{ Digest string }
	}
	if err := json.Unmarshal([]byte(readFile(t, saved)), &sp); err != nil || len(sp.Targets) != 2 || len(sp.Targets["t-1"].Digest) != 64 {
		t.Fatalf("saved plan: %v %s", err, readFile(t, saved))
	}
	// A reviewed plan of another release is refused before anything runs.
	if r := f.run("start", "--release", "v3", "--reviewed", saved); r.code != 1 || !strings.Contains(r.stderr, "reviewed release v2") {
		t.Fatalf("reviewed plan of another release: %d %s", r.code, r.stderr)
	}
	// Something changes after the review (a variable of t-2): t-1's plan still matches and is
	// applied; t-2's does not, so it is refused, and the ring rolls back.
	cfg := readFile(t, filepath.Join(f.dir, "environments", "test.yaml"))
	f.write("environments/test.yaml", strings.Replace(cfg, "  - name: t-2\n    boundary: local-a\n    region: r1\n    labels: {tier: main}\n    vars: {apply_seconds: 0}\n",
		"  - name: t-2\n    boundary: local-a\n    region: r1\n    labels: {tier: main}\n    vars: {apply_seconds: 0, app_version: v2-patched}\n", 1))
	r := f.run("start", "--release", "v2", "--reviewed", saved)
	if r.code != 2 || !strings.Contains(r.stderr, "t-2: apply failed: apply target t-2 refused: its plan") || !strings.Contains(r.stderr, "is not the reviewed one") {
		t.Fatalf("start --reviewed after a change: %d\n%s", r.code, lastLines(r.stderr, 30))
	}
	if f.deployedVersion("t-1") != "v1" || f.deployedVersion("t-2") != "v1" {
		t.Fatalf("t-1 %s t-2 %s", f.deployedVersion("t-1"), f.deployedVersion("t-2"))
	}
	f.write("environments/test.yaml", cfg)

	// protect: a plan that replaces a protected type is refused unless --allow-destroy.
	main := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	f.write("rollout.yaml", strings.Replace(main, "defaults:", "protect: [terraform_data]\ndefaults:", 1))
	r = f.run("start", "--release", "v3")
	if r.code != 2 || !strings.Contains(r.stderr, "protected type") || f.deployedVersion("t-1") != "v1" {
		t.Fatalf("protected replace: %d\n%s", r.code, lastLines(r.stderr, 30))
	}
	f.must(0, "start", "--release", "v4", "--allow-destroy", "--reason", "stateless app")
	if f.deployedVersion("t-2") != "v4" {
		t.Fatalf("t-2 runs %s", f.deployedVersion("t-2"))
	}
}

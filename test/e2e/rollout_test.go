//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/temporaltest"
)

// The demo is the whole story: v1 everywhere, v2 ring by ring (with an approval), and a faulty v3
// whose gate fails in the second ring, which is rolled back to v2 automatically.
// On Temporal (rollout demo --engine temporal), the demo starts a development server and a worker
// per boundary, and the story is the same.
func TestDemo(t *testing.T) {
	t.Parallel()
	t.Run("inprocess", func(t *testing.T) { demoAsDesigned(t) })
	t.Run("temporal", func(t *testing.T) {
		temporaltest.CLI(t) // skips (or fails under make test) without it; the demo finds it by ROLLOUT_TEMPORAL_CLI
		demoAsDesigned(t, "--engine", "temporal")
	})
}

// On a machine where Terraform cannot install the demo's providers, the demo stops at its first
// start and says what to do, instead of going on to a run that does not exist.
func TestDemoWithoutProvidersSaysWhatToDo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc := filepath.Join(t.TempDir(), "no-mirror.tfrc")
	if err := os.WriteFile(rc, []byte("provider_installation {\n  filesystem_mirror {\n    path = \""+filepath.Join(dir, "no-such-mirror")+"\"\n  }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, dir: dir, env: []string{"TF_CLI_CONFIG_FILE=" + rc}}
	r := f.run("demo", "--dir", filepath.Join(dir, "fleet"), "--output", "json")
	if r.code != 1 || !strings.Contains(r.stderr, "make tools") || strings.Contains(r.stderr, `run "": not found`) || strings.Contains(r.stderr, "start --release v2") {
		t.Fatalf("demo without providers: exit %d\n%s", r.code, lastLines(r.stderr, 30))
	}
	conformsTo(t, "error.v1.json", r.stdout)
}

func demoAsDesigned(t *testing.T, args ...string) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := (&fleet{t: t, dir: dir}).command(ctx, "demo")
	cmd.Args = append([]string{rolloutBin, "demo", "--dir", dir, "--output", "json"}, args...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rollout demo: %v\n%s", err, out)
	}
	var got struct {
		AsDesigned bool `json:"asDesigned"`
		Targets    []struct {
			Target, Deployed, Expected string
		} `json:"targets"`
	}
	conformsTo(t, "demo.v1.json", string(out))
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("demo --output json: %v\n%s", err, out)
	}
	if !got.AsDesigned || len(got.Targets) != 6 {
		t.Fatalf("demo not as designed: %s", out)
	}
	f := &fleet{t: t, dir: dir}
	rep := f.status()
	if rep.Phase != "rolled_back" || rep.ExitCode != 2 || !strings.Contains(rep.Reason, "gate healthz") {
		t.Fatalf("status of the v3 run: phase %s exit %d reason %q", rep.Phase, rep.ExitCode, rep.Reason)
	}
}

func twoRings(bake string) fleetSpec {
	return fleetSpec{
		rings: fmt.Sprintf(`  - name: canary
    targets: {labels: {tier: canary}}
    maxParallel: 1
    gates: [healthz]
    bake: %s
  - name: main
    targets: {labels: {tier: main}}
    maxParallel: 2
    gates: [healthz]
`, bake),
		targets: "targets:\n" + targetsYAML("canary", "local-a", "canary", 1, "") + targetsYAML("main", "local-b", "main", 3, ""),
	}
}

func TestPromotionPlanAndManualRollback(t *testing.T) {
	t.Parallel()
	f := newFleet(t, twoRings("0s"))
	f.must(0, "validate")
	f.must(0, "start", "--release", "v1")
	// plan shows what v2 would change, per target in ring order, and changes nothing.
	r := f.must(0, "plan", "--release", "v2", "--output", "json")
	var plans []struct {
		Ring, Target string
		Changes      bool
		Plan         struct{ Replaced []string }
	}
	if err := json.Unmarshal(field(r.stdout, "targets"), &plans); err != nil || len(plans) != 4 {
		t.Fatalf("plan --output json: %v\n%s", err, r.stdout)
	}
	if plans[0].Target != "canary-1" || !plans[0].Changes || len(plans[0].Plan.Replaced) == 0 {
		t.Fatalf("plan: want canary-1 first with replacements called out, got %+v", plans[0])
	}
	if v := f.deployedVersion("main-1"); v != "v1" {
		t.Fatalf("plan changed main-1: it runs %q", v)
	}

	f.must(0, "start", "--release", "v2")
	for name, st := range f.status().targets() {
		if st != [2]string{"verified", "v2"} || f.deployedVersion(name) != "v2" {
			t.Fatalf("%s after v2: %v, deployed %s", name, st, f.deployedVersion(name))
		}
	}
	// Starting the same release again does not start a second run.
	again := f.must(0, "start", "--release", "v2")
	if !strings.Contains(again.stderr, "already finished") {
		t.Fatalf("second start of v2: %s", again.stderr)
	}
	hist := f.must(0, "history", "--output", "json")
	var runs []struct{ Kind, Phase string }
	if err := json.Unmarshal(field(hist.stdout, "runs"), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("history: %v %s", err, hist.stdout)
	}
	// status, history and operators' acts read only the journal: a target file half edited at
	// 3 a.m. does not stop them, while a command that needs the targets names the file and line.
	good := readFile(t, filepath.Join(f.dir, "environments", "test.yaml"))
	f.write("environments/test.yaml", good+"  - {name: [broken\n")
	if rep := f.status(); rep.Phase != "succeeded" || !strings.HasPrefix(rep.Run, "v2-") {
		t.Fatalf("status with a broken target file: %s %s", rep.Run, rep.Phase)
	}
	f.must(0, "history")
	f.must(0, "freeze", "status") // operators' acts read the journal alone too
	if r := f.must(1, "plan", "--release", "v3"); !strings.Contains(r.stderr, "environments/test.yaml:") {
		t.Fatalf("plan with a broken target file: %s", r.stderr)
	}
	f.write("environments/test.yaml", good)

	// A rollback changes what runs: it needs a reason, and a pipeline (no terminal to ask on) says
	// --yes; --dry-run shows what it would change and changes nothing.
	if r := f.must(1, "rollback", "--ring", "main"); !strings.Contains(r.stderr, "--reason is required") {
		t.Fatalf("rollback without a reason: %s", r.stderr)
	}
	if r := f.must(1, "rollback", "--ring", "main", "--reason", "e2e"); !strings.Contains(r.stderr, "no terminal to ask on: give --yes") {
		t.Fatalf("rollback without --yes and without a terminal: %s", r.stderr)
	}
	var preview struct {
		Moves []struct {
			Target string `json:"target"`
			From   struct{ Name string }
			To     struct{ Name string }
		} `json:"moves"`
	}
	dry := f.must(0, "rollback", "--ring", "main", "--dry-run", "--output", "json")
	if err := json.Unmarshal([]byte(dry.stdout), &preview); err != nil || len(preview.Moves) != 3 || preview.Moves[0].To.Name != "v1" || preview.Moves[0].From.Name != "v2" {
		t.Fatalf("rollback --dry-run: %v\n%s", err, dry.stdout)
	}
	if v := f.deployedVersion("main-1"); v != "v2" || f.status().Kind == "rollback" {
		t.Fatalf("a refused or dry-run rollback changed something: main-1 runs %s", v)
	}

	// The manual rollback: one ring first, then the rest; each target goes back to v1 through
	// plan, apply and its gates.
	f.must(0, "rollback", "--ring", "main", "--reason", "e2e", "--yes")
	for _, name := range []string{"main-1", "main-2", "main-3"} {
		if v := f.deployedVersion(name); v != "v1" {
			t.Fatalf("%s after rollback --ring main: %s", name, v)
		}
	}
	if v := f.deployedVersion("canary-1"); v != "v2" {
		t.Fatalf("rollback --ring main touched canary-1: %s", v)
	}
	rep := f.status()
	if rep.Kind != "rollback" || rep.Phase != "succeeded" {
		t.Fatalf("rollback run: %s %s", rep.Kind, rep.Phase)
	}
	r = f.must(0, "rollback", "--reason", "e2e", "--yes")
	if !strings.Contains(r.stderr, "main-1: already at v1") {
		t.Fatalf("second rollback should leave main-1 alone: %s", r.stderr)
	}
	if v := f.deployedVersion("canary-1"); v != "v1" {
		t.Fatalf("canary-1 after rollback: %s", v)
	}
	th := f.must(0, "history", "--target", "main-1", "--output", "json")
	var h struct {
		LastKnownGood struct{ Name string } `json:"lastKnownGood"`
		Events        []struct{ Event, Message string }
	}
	if err := json.Unmarshal([]byte(th.stdout), &h); err != nil {
		t.Fatal(err)
	}
	last := h.Events[len(h.Events)-1]
	if h.LastKnownGood.Name != "v1" || last.Event != "target.verified" || !strings.Contains(last.Message, "healthz: healthy for") {
		t.Fatalf("history of main-1: %s", th.stdout)
	}
	// A release is immutable: the same name with other content is refused.
	r = f.must(1, "start", "--release", "v2", "--var", "tier=other")
	if !strings.Contains(r.stderr, "release v2 is immutable") || !strings.Contains(r.stderr, `variable tier: now "other"`) {
		t.Fatalf("reusing v2: %s", r.stderr)
	}
}

// A gate failure in the second ring halts it and rolls back every target of the run (scope run),
// newest ring first; the exit code is 2.
func TestGateFailureRollsBackRun(t *testing.T) {
	t.Parallel()
	spec := twoRings("0s")
	spec.rings = strings.Replace(spec.rings, "    gates: [healthz]\n", "    gates: [healthz]\n    rollback: run\n", 2)
	spec.rings = strings.Replace(spec.rings, "  - name: main\n", "  - name: main\n    maxFailures: 0\n", 1)
	f := newFleet(t, spec)
	f.must(0, "start", "--release", "v1")
	r := f.must(2, "start", "--release", "v2", "--var", "fault_tier=main", "--output", "json")
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Phase != "rolled_back" || rep.ExitCode != 2 {
		t.Fatalf("v2 run: %s %d", rep.Phase, rep.ExitCode)
	}
	for name, st := range rep.targets() {
		if f.deployedVersion(name) != "v1" {
			t.Fatalf("%s runs %s after the rollback (%v)", name, f.deployedVersion(name), st)
		}
	}
	if st := rep.targets()["canary-1"]; st[0] != "rolled_back" {
		t.Fatalf("scope run must roll back the canary too: %v", st)
	}
	// Idempotent: asking again reports the same outcome.
	f.must(2, "start", "--release", "v2", "--var", "fault_tier=main")
}

// SIGKILL in the middle of an apply, then start again: the run resumes from its journal,
// re-plans the target whose apply had an unknown outcome, and finishes.
func TestKillMidApplyThenResume(t *testing.T) {
	t.Parallel()
	spec := twoRings("0s")
	spec.targets = "targets:\n" + targetsYAML("canary", "local-a", "canary", 1, "") +
		targetsYAML("main", "local-b", "main", 3, "    vars: {apply_seconds: 2}\n")
	f := newFleet(t, spec)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := f.command(ctx, "start", "--release", "v1")
	logf, _ := os.Create(filepath.Join(f.dir, "first.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.waitFor("a main target to be applying", 2*time.Minute, func(rep report) bool {
		return rep.targets()["main-1"][0] == "applying"
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	rep := f.status()
	if rep.Phase != "running" || rep.targets()["main-1"][0] != "applying" {
		t.Fatalf("after SIGKILL the journal should show main-1 applying: %+v", rep.targets())
	}
	// An operator's process in a target's working directory is not the dead run's: the resume
	// must leave it alone (before, every process there was killed as an orphan).
	byHand := exec.Command("sleep", "120")
	byHand.Dir = filepath.Join(f.dir, ".rollout", "work", "main-1")
	if err := byHand.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = byHand.Process.Kill(); _ = byHand.Wait() }()
	r := f.must(0, "start", "--release", "v1")
	if !strings.Contains(r.stderr, "resuming run") {
		t.Fatalf("second start did not resume: %s", r.stderr)
	}
	if err := byHand.Process.Signal(syscall.Signal(0)); err != nil || strings.Contains(r.stderr, fmt.Sprint(byHand.Process.Pid)) {
		t.Fatalf("the resume killed a process started by hand in main-1's working directory (pid %d): %v\n%s", byHand.Process.Pid, err, r.stderr)
	}
	rep = f.status()
	for name, st := range rep.targets() {
		if st != [2]string{"verified", "v1"} || f.deployedVersion(name) != "v1" {
			t.Fatalf("%s after resume: %v deployed %q", name, st, f.deployedVersion(name))
		}
	}
}

// While one run holds the fleet, a second start is refused with exit 5 naming the holder.
func TestConcurrentRunRefused(t *testing.T) {
	t.Parallel()
	f := newFleet(t, twoRings("30s"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	first := f.command(ctx, "start", "--release", "v1")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Process.Kill(); _ = first.Wait() }()
	f.waitFor("the canary ring to bake", 2*time.Minute, func(rep report) bool {
		return len(rep.Rings) > 0 && rep.Rings[0].Phase == "baking"
	})
	for _, rel := range []string{"v1", "v2"} {
		r := f.must(5, "start", "--release", rel)
		if !strings.Contains(r.stderr, "holds this fleet") || !strings.Contains(r.stderr, fmt.Sprintf("pid %d", first.Process.Pid)) ||
			!strings.Contains(r.stderr, "start --release v1") {
			t.Fatalf("refusal should name the holder (pid %d): %s", first.Process.Pid, r.stderr)
		}
	}
	// SIGTERM stops it cleanly: it journals where it stands and gives the lease back.
	_ = first.Process.Signal(syscall.SIGTERM)
	_ = first.Wait()
	if code := first.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("interrupted run exited %d, want 1", code)
	}
	f.must(1, "start", "--release", "v2") // the lease is free; v1's run is unfinished
}

// 32 targets applied at once: providers are resolved once per snapshot and shared read-only, so
// concurrent inits never race on a plugin cache.
func TestThirtyTwoAtOnce(t *testing.T) {
	f := newFleet(t, fleetSpec{
		rings:   "  - name: all\n    targets: {boundaries: [local-a]}\n    maxParallel: 32\n",
		targets: "targets:\n" + targetsYAML("s", "local-a", "x", 32, ""),
	})
	start := time.Now()
	r := f.must(0, "start", "--release", "v1", "--output", "json")
	t.Logf("32 targets, maxParallel 32: %s", time.Since(start).Round(time.Millisecond))
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if n := len(rep.targets()); n != 32 {
		t.Fatalf("%d targets in the report", n)
	}
	for name, st := range rep.targets() {
		if st != [2]string{"verified", "v1"} {
			t.Fatalf("%s: %v", name, st)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(f.dir, ".rollout", "providers"))
	if len(entries) != 1 {
		t.Fatalf("providers resolved %d times, want once per snapshot", len(entries))
	}
	// No per-target provider copies: each target's package is a link into the one resolution.
	pkgs, _ := filepath.Glob(filepath.Join(f.dir, ".rollout", "work", "*", ".terraform", "providers", "*", "hashicorp", "time", "*", "*_*"))
	links := 0
	for _, p := range pkgs {
		if strings.HasSuffix(p, ".lock") {
			continue
		}
		st, err := os.Lstat(p)
		dest, _ := os.Readlink(p)
		if err != nil || st.Mode()&os.ModeSymlink == 0 || !strings.HasPrefix(dest, filepath.Join(f.dir, ".rollout", "providers")) {
			t.Fatalf("%s is not a link into the snapshot's resolution (mode %v, -> %q)", p, st.Mode(), dest)
		}
		links++
	}
	if links != 32 {
		t.Fatalf("%d provider links for 32 targets", links)
	}
}

// Bad configurations: the real binary names file, line and key, exits 1, and changes nothing.
func TestBadConfigurations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown key", "    maxParallel: 1\n", "    maxParalel: 1\n", `rollout.yaml:26: rings[0].maxParalel: unknown key (did you mean "maxParallel"?)`},
		{"unknown gate", "gates: [healthz]\n    bake", "gates: [health]\n    bake", `rings[0].gates: unknown gate "health"`},
		{"bad duration", "bake: 0s", "bake: 5 minutes", `rings[0].bake: must be a Go duration`},
		{"module missing", "module: terraform/stamp", "module: terraform/none", `release.module: module directory terraform/none does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, twoRings("0s"))
			b, _ := os.ReadFile(filepath.Join(f.dir, "rollout.yaml"))
			if !strings.Contains(string(b), tc.from) {
				t.Fatalf("test setup: %q not in rollout.yaml:\n%s", tc.from, b)
			}
			f.write("rollout.yaml", strings.Replace(string(b), tc.from, tc.to, 1))
			for _, args := range [][]string{{"validate"}, {"start", "--release", "v1"}} {
				r := f.must(1, args...)
				if !strings.Contains(r.stderr, tc.want) {
					t.Fatalf("rollout %v: stderr lacks %q:\n%s", args, tc.want, r.stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(f.dir, ".rollout")); err == nil {
				t.Fatal("a bad configuration still created .rollout/")
			}
		})
	}
	// A target in no ring, declared in an environment file.
	f := newFleet(t, twoRings("0s"))
	f.write("environments/extra/stray.yaml", "targets:\n  - name: stray\n    boundary: local-a\n")
	r := f.must(1, "validate")
	if !strings.Contains(r.stderr, `environments/extra/stray.yaml:2: targets[stray]: target "stray" is in no ring`) {
		t.Fatalf("stray target: %s", r.stderr)
	}
}

// A crash right after the run was created, before its start was journaled: starting the release
// again starts that run (it does not hang as a run with nothing to resume).
func TestRunCreatedButNeverStarted(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{
		rings:   "  - name: all\n    targets: {boundaries: [local-a]}\n    gates: [healthz]\n",
		targets: "targets:\n" + targetsYAML("s", "local-a", "x", 1, ""),
	})
	f.must(0, "validate")
	store, err := journal.OpenSQLite(filepath.Join(f.dir, ".rollout", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateRun(context.Background(), journal.Run{ID: "v1-dead00", Kind: "release", Release: rings.ReleaseRef{Name: "v1", Digest: "x"}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	r := f.must(0, "start", "--release", "v1")
	if !strings.Contains(r.stderr, "run v1-dead00: release v1") {
		t.Fatalf("the created run was not started: %s", r.stderr)
	}
	if rep := f.status(); rep.Run != "v1-dead00" || rep.Phase != "succeeded" || f.deployedVersion("s-1") != "v1" {
		t.Fatalf("status: %+v", rep)
	}
}

// env add then expand: the new target comes up to the release its ring runs, through plan, apply
// and gates; the existing targets are not touched (their Terraform state serial is unchanged).
func TestEnvAddThenExpand(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{targets: "targets:\n" + targetsYAML("x", "local-a", "commercial", 2, ""),
		rings: "  - name: only\n    targets: {boundaries: [local-a]}\n    gates: [healthz]\n"})
	f.must(0, "start", "--release", "v1")
	serials := func() map[string]int {
		out := map[string]int{}
		for _, n := range []string{"x-1", "x-2"} {
			var st struct{ Serial int }
			_ = json.Unmarshal([]byte(readFile(t, filepath.Join(f.dir, ".rollout", "tfstate", n+".tfstate"))), &st)
			out[n] = st.Serial
		}
		return out
	}
	before := serials()
	r := f.must(0, "env", "add", "--boundary", "local-a", "--name", "x-3", "--ring", "only", "--label", "tier=commercial")
	if !strings.Contains(r.stdout, "target x-3 (boundary local-a, region ) in ring only") {
		t.Fatalf("env add: %s", r.stdout)
	}
	r = f.must(0, "expand", "--output", "json")
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "expand" || len(rep.Rings) != 1 || len(rep.Rings[0].Targets) != 1 || rep.Rings[0].Targets[0].Phase != "verified" {
		t.Fatalf("expand report: %s", r.stdout)
	}
	if f.deployedVersion("x-3") != "v1" {
		t.Fatalf("x-3 runs %q, want v1 (its ring's release)", f.deployedVersion("x-3"))
	}
	if after := serials(); after["x-1"] != before["x-1"] || after["x-2"] != before["x-2"] {
		t.Fatalf("existing targets were touched: state serials %v -> %v", before, after)
	}
	if r := f.must(0, "expand"); !strings.Contains(r.stderr, "nothing to expand") {
		t.Fatalf("second expand: %s", r.stderr)
	}
}

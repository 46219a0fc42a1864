package runs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/evidence"
	"github.com/rollout-dev/rollout/internal/rings"
)

// The run service's use cases, through the Fleet the front ends use, with a provisioner that runs
// no Terraform (what each target runs is kept in memory) and a stand-in binary that answers
// `version` and `init` as a Terraform of no providers: real configuration loading, real SQLite
// journal, lease, engine and reports.

// memTerraform is the targets' Terraform: what each runs, every apply, and the targets to fail.
type memTerraform struct {
	mu      sync.Mutex
	runs    map[string]string // target -> release it runs
	applies []string          // "target=release", in order
	fail    map[string]string // target -> the release whose apply fails there
	// hold: an apply of this target announces itself on started and waits for release or its
	// context (a driver killed mid-apply).
	hold    string
	started chan string
	release chan struct{}
}

func (m *memTerraform) Apply(ctx context.Context, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	if planned != nil {
		planned(rings.PlanSummary{Change: 1})
	}
	m.mu.Lock()
	hold := m.hold == target
	m.mu.Unlock()
	if hold {
		m.started <- target
		select {
		case <-m.release:
		case <-ctx.Done():
			return rings.ApplyResult{}, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applies = append(m.applies, target+"="+rel.Name)
	if m.fail[target] == rel.Name {
		return rings.ApplyResult{}, errors.New("Error: creating stamp: StatusCode=403 AuthorizationFailed")
	}
	m.runs[target] = rel.Name
	return rings.ApplyResult{Outputs: map[string]any{}, Public: map[string]any{}}, nil
}

func (m *memTerraform) Outputs(context.Context, string) (map[string]any, error) { return nil, nil }

func (m *memTerraform) running(target string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs[target]
}

// service is a fleet of rings canary (c-1) and main (m-1, m-2; approval, if asked), on local
// boundaries, opened as the CLI opens it.
type service struct {
	t   *testing.T
	dir string
	tf  *memTerraform
}

func newService(t *testing.T, approval bool) *service {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "terraform", "stamp"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "terraform", "stamp", "main.tf"), []byte("terraform {}\nvariable \"extra\" {\n  default = \"\"\n}\n"), 0o644))
	main := "  - name: main\n    targets: {names: [m-1, m-2]}\n    rollback: run\n"
	if approval {
		main += "    approval: {required: true, approvers: [ana]}\n"
	}
	must(os.WriteFile(filepath.Join(dir, "rollout.yaml"), []byte("release:\n  module: terraform/stamp\nboundaries:\n  local-a: {cloud: local}\n"+
		"rings:\n  - name: canary\n    targets: {names: [c-1]}\n"+main), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "environments"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "environments", "all.yaml"), []byte("targets:\n"+
		"  - {name: c-1, boundary: local-a, region: r1}\n  - {name: m-1, boundary: local-a, region: r1}\n  - {name: m-2, boundary: local-a, region: r1}\n"), 0o644))
	return &service{t: t, dir: dir, tf: &memTerraform{runs: map[string]string{}, fail: map[string]string{},
		started: make(chan string, 1), release: make(chan struct{})}}
}

// edit replaces old with new in rollout.yaml.
func (s *service) edit(old, new string) {
	s.t.Helper()
	p := filepath.Join(s.dir, "rollout.yaml")
	b, err := os.ReadFile(p)
	if err != nil || !strings.Contains(string(b), old) {
		s.t.Fatalf("rollout.yaml has no %q (%v)", old, err)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// report is the run's report, as status prints it.
func (s *service) report(id string) *Report {
	s.t.Helper()
	f := s.open()
	defer f.Close()
	rep, _, err := f.Report(context.Background(), id, NeedAll)
	if err != nil {
		s.t.Fatal(err)
	}
	return rep
}

// fakeBinary answers `version` as a Terraform of no providers, `plan` with one resource to add,
// and everything else with success.
func fakeBinary(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "tofu")
	script := "#!/bin/sh\n[ \"$1\" = version ] && echo '{\"terraform_version\":\"1.10.10\",\"platform\":\"linux_amd64\"}'\n" +
		// plan: one resource to add (the JSON stream's change summary; exit 2: changes)
		"[ \"$1\" = plan ] && { echo '{\"type\":\"change_summary\",\"changes\":{\"add\":1,\"change\":0,\"remove\":0,\"operation\":\"plan\"}}'; exit 2; }\nexit 0\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// open opens the fleet as a command does; the caller closes it.
func (s *service) open() *Fleet {
	s.t.Helper()
	s.t.Setenv("TF_CLI_CONFIG_FILE", "")
	f, err := Open(context.Background(), Options{Config: s.dir, TFBin: fakeBinary(s.t),
		Provisioner: func(rings.Provisioner) rings.Provisioner { return s.tf }})
	if err != nil {
		s.t.Fatal(err)
	}
	return f
}

// do runs one use case on a freshly opened fleet, as one command would.
func (s *service) do(use func(f *Fleet) (string, error)) (string, error) {
	f := s.open()
	defer f.Close()
	return use(f)
}

func (s *service) phase(id string) rings.Phase {
	s.t.Helper()
	f := s.open()
	defer f.Close()
	rep, _, err := f.Report(context.Background(), id, NeedAll)
	if err != nil {
		s.t.Fatal(err)
	}
	return rep.Phase
}

func (s *service) start(release string) (string, error) {
	return s.do(func(f *Fleet) (string, error) {
		return f.Start(context.Background(), StartRequest{Release: release})
	})
}

func (s *service) runs(want map[string]string) {
	s.t.Helper()
	for target, rel := range want {
		if got := s.tf.running(target); got != rel {
			s.t.Fatalf("%s runs %q, want %q (applies: %v)", target, got, rel, s.tf.applies)
		}
	}
}

// Start promotes ring by ring; starting the same release again resumes its finished run and
// applies nothing.
func TestServiceStartPromotesOnceAndIsIdempotent(t *testing.T) {
	s := newService(t, false)
	id, err := s.start("v1")
	if err != nil || s.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("start v1: %s %v", id, err)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1", "m-2": "v1"})
	if s.tf.applies[0] != "c-1=v1" {
		t.Fatalf("canary first: %v", s.tf.applies)
	}
	n := len(s.tf.applies)
	if again, err := s.start("v1"); err != nil || again != id || len(s.tf.applies) != n {
		t.Fatalf("start v1 again: run %s (want %s), %v, applies %v", again, id, err, s.tf.applies)
	}
}

// A --var the release's module does not declare is refused before anything is journaled: a typo
// would otherwise be dropped and the release applied without it.
func TestServiceStartRefusesAnUndeclaredVariable(t *testing.T) {
	s := newService(t, false)
	_, err := s.do(func(f *Fleet) (string, error) {
		return f.Start(context.Background(), StartRequest{Release: "v1", Vars: map[string]any{"extar": "x"}})
	})
	if err == nil || !strings.Contains(err.Error(), "declares no variable extar") || !strings.Contains(err.Error(), `did you mean "extra"`) {
		t.Fatalf("start with --var extar: %v", err)
	}
	if lines, err := s.history(); err != nil || len(lines) != 0 {
		t.Fatalf("journaled: %v %v", lines, err)
	}
}

// A ring that needs approval waits for it: approve and resume go on; a pause holds, unpause
// releases; abort with rollback returns what the run changed.
func TestServiceActsOnAWaitingRun(t *testing.T) {
	s := newService(t, true)
	if _, err := s.start("v1"); err != nil {
		t.Fatal(err)
	}
	id, err := s.start("v1") // approve v1's main ring
	if err != nil || s.phase(id) != rings.PhaseWaiting {
		t.Fatalf("v1 waits for main's approval: %s %v", s.phase(id), err)
	}
	ctx := context.Background()
	if _, err := s.do(func(f *Fleet) (string, error) { return "", f.Approve(ctx, id, "main", Act{As: "bob", Reason: "x"}) }); err == nil {
		t.Fatal("bob, not an approver, approved")
	}
	// Paused, then approved: an approval does not end a pause, and nothing new starts.
	if _, err := s.do(func(f *Fleet) (string, error) { return "", f.Pause(ctx, id, Act{As: "ana", Reason: "hold"}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return "", f.Approve(ctx, id, "main", Act{As: "ana", Reason: "CAB 1"}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.start("v1"); err != nil || s.phase(id) != rings.PhasePaused || s.tf.running("m-1") != "" {
		t.Fatalf("start again of a paused run: %s %v, m-1 runs %q", s.phase(id), err, s.tf.running("m-1"))
	}
	_, err = s.do(func(f *Fleet) (string, error) { return "", f.Unpause(ctx, id, Act{As: "ana", Reason: "go"}) })
	if _, err2 := s.do(func(f *Fleet) (string, error) { return "", f.Unpause(ctx, id, Act{As: "ana", Reason: "go"}) }); err != nil || !errors.Is(err2, ErrNotPaused) {
		t.Fatalf("unpause: %v; again: %v", err, err2)
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return f.Resume(ctx, id, false, Act{As: "ana"}) }); err != nil || s.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("resume after approval: %s %v", s.phase(id), err)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1", "m-2": "v1"})

	// v2 waits at main; abort with rollback returns the canary to v1.
	id2, _ := s.start("v2")
	if s.phase(id2) != rings.PhaseWaiting || s.tf.running("c-1") != "v2" {
		t.Fatalf("v2: %s, c-1 %s", s.phase(id2), s.tf.running("c-1"))
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return f.Abort(ctx, id2, true, Act{As: "ana", Reason: "bad build"}) }); err != nil {
		t.Fatal(err)
	}
	if p := s.phase(id2); p != rings.PhaseAborted {
		t.Fatalf("aborted run: %s", p)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1"})
}

// A failed apply in a later ring rolls back the whole run (rollback: run), newest ring first.
func TestServiceAFailedApplyRollsTheRunBack(t *testing.T) {
	s := newService(t, false)
	if _, err := s.start("v1"); err != nil {
		t.Fatal(err)
	}
	s.tf.fail["m-2"] = "v2"
	id, _ := s.start("v2")
	if p := s.phase(id); p != rings.PhaseRolledBack {
		t.Fatalf("phase %s, applies %v", p, s.tf.applies)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1"})
	// The report tells the target that failed from its rolled-back neighbours.
	for _, tr := range s.report(id).Rings[1].Targets {
		if tr.FailedHere != (tr.Name == "m-2") {
			t.Errorf("%s: failedHere %v", tr.Name, tr.FailedHere)
		}
	}
}

// A manual rollback returns a run's targets to their last known good; rollback --to a release the
// ring verified is the fast path; expand brings a new target up to its ring's release.
func TestServiceRollbackAndExpand(t *testing.T) {
	s := newService(t, false)
	s.start("v1")
	s.start("v2")
	id, err := s.do(func(f *Fleet) (string, error) { return f.Rollback(context.Background(), RollbackRequest{Reason: "x"}) })
	if err != nil || s.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("rollback: %v", err)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1", "m-2": "v1"})
	if _, err := s.do(func(f *Fleet) (string, error) {
		return f.Rollback(context.Background(), RollbackRequest{To: "v2", Ring: "main", Reason: "x"})
	}); err != nil {
		t.Fatal(err)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v2", "m-2": "v2"})

	env := filepath.Join(s.dir, "environments", "all.yaml")
	b, _ := os.ReadFile(env)
	os.WriteFile(env, append(b, "  - {name: m-3, boundary: local-a, region: r1}\n"...), 0o644)
	cfg, _ := os.ReadFile(filepath.Join(s.dir, "rollout.yaml"))
	os.WriteFile(filepath.Join(s.dir, "rollout.yaml"), []byte(strings.Replace(string(cfg), "[m-1, m-2]", "[m-1, m-2, m-3]", 1)), 0o644)
	if _, err := s.do(func(f *Fleet) (string, error) { return f.Expand(context.Background(), nil) }); err != nil {
		t.Fatal(err)
	}
	s.runs(map[string]string{"m-3": "v2"})
	n := len(s.tf.applies)
	if id, err := s.do(func(f *Fleet) (string, error) { return f.Expand(context.Background(), nil) }); err != nil || id != "" || len(s.tf.applies) != n {
		t.Fatalf("expand with nothing new: %q %v, applies %v", id, err, s.tf.applies[n:])
	}
}

// A release crosses to another fleet with its evidence: the receiving fleet's promotion policy
// accepts the evidence for that release, refuses it for another name of the same content, and
// refuses a tampered archive.
func TestServiceEvidenceAndArchiveCrossToAnotherFleet(t *testing.T) {
	ctx := context.Background()
	com := newService(t, false)
	id, err := com.start("v1")
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	if err := evidence.GenerateKey(filepath.Join(keys, "com")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := com.do(func(f *Fleet) (string, error) {
		_, err := f.WriteEvidence(ctx, id, "", filepath.Join(keys, "com.key"), dir)
		return "", err
	}); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "v1.tgz")
	if _, err := com.do(func(f *Fleet) (string, error) { return f.ExportRelease(ctx, "v1", archive, false) }); err != nil {
		t.Fatal(err)
	}

	sov := newService(t, false)
	cfg, _ := os.ReadFile(filepath.Join(sov.dir, "rollout.yaml"))
	policy := fmt.Sprintf("promotion:\n  requires:\n    - ring: main\n      boundaries: [local-a]\n      trust: [%s]\n", filepath.Join(keys, "com.pub"))
	os.WriteFile(filepath.Join(sov.dir, "rollout.yaml"), append(cfg, policy...), 0o644)
	tampered := filepath.Join(t.TempDir(), "tampered.tgz")
	b, _ := os.ReadFile(archive)
	b[len(b)/2] ^= 1
	os.WriteFile(tampered, b, 0o644)
	if _, err := sov.do(func(f *Fleet) (string, error) { _, err := f.ImportRelease(ctx, tampered, ""); return "", err }); err == nil {
		t.Fatal("a tampered archive was imported")
	}
	if _, err := sov.do(func(f *Fleet) (string, error) { _, err := f.ImportRelease(ctx, archive, ""); return "", err }); err != nil {
		t.Fatal(err)
	}
	startWith := func(release string) (string, error) {
		return sov.do(func(f *Fleet) (string, error) {
			return f.Start(ctx, StartRequest{Release: release, Evidence: dir})
		})
	}
	if _, err := startWith("v9"); err == nil || !strings.Contains(err.Error(), "is about release v1") {
		t.Fatalf("v1's evidence for v9, the same content: %v", err)
	}
	if len(sov.tf.applies) != 0 {
		t.Fatalf("a refused start applied: %v", sov.tf.applies)
	}
	if id, err := startWith("v1"); err != nil || sov.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("v1 with its evidence: %v", err)
	}
	sov.runs(map[string]string{"c-1": "v1", "m-1": "v1", "m-2": "v1"})
}

// A ring name that is not the run's gets the nearest one as a suggestion.
func TestServiceSuggestsRingNames(t *testing.T) {
	s := newService(t, true)
	id, _ := s.start("v1")
	_, err := s.do(func(f *Fleet) (string, error) {
		return "", f.Approve(context.Background(), id, "mian", Act{As: "ana", Reason: "x"})
	})
	if err == nil || !strings.Contains(err.Error(), `did you mean "main"?`) {
		t.Fatalf("approve --ring mian: %v", err)
	}
	_, err = s.do(func(f *Fleet) (string, error) {
		return f.Rollback(context.Background(), RollbackRequest{Ring: "zzzzzz", Reason: "x"})
	})
	if err == nil || !strings.Contains(err.Error(), "(its rings: canary, main)") {
		t.Fatalf("rollback --ring zzzzzz: %v", err)
	}
}

// A configuration's problems are reported at once: one of rollout.yaml's own keys, one across
// files (a target of an unknown boundary) and one of a boundary's cloud, in one pass.
func TestConfigProblemsAreReportedInOnePass(t *testing.T) {
	s := newService(t, false)
	s.edit("    rollback: run\n", "    rollback: sideways\n")
	s.edit("  local-a: {cloud: local}\n", "  local-a: {cloud: local}\n  gov: {cloud: aws, partition: aws-us-gov, region: us-east-1}\n")
	if err := os.WriteFile(filepath.Join(s.dir, "environments", "more.yaml"), []byte("targets:\n  - {name: x-1, boundary: nowhere, region: r1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(s.dir)
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("not field errors: %v", err)
	}
	keys := map[string]bool{}
	for _, e := range errs {
		keys[e.Key] = true
	}
	for _, want := range []string{"rings[1].rollback", "targets[x-1].boundary", "boundaries.gov.region"} {
		if !keys[want] {
			t.Errorf("no problem at %s in: %v", want, err)
		}
	}
}

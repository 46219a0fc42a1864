package runs

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/resilience"
	"github.com/rollout-dev/rollout/internal/rings"
)

func TestExitForPhase(t *testing.T) {
	for phase, want := range map[rings.Phase]int{rings.PhaseSucceeded: 0, rings.PhaseRolledBack: 2, rings.PhaseWaiting: 3, rings.PhasePaused: 3,
		rings.PhaseBlocked: 4, rings.PhaseRollbackFailed: 6, rings.PhaseAborted: 7, rings.PhaseRunning: 3, "": 1} {
		if got := ExitForPhase(phase, false); got != want {
			t.Errorf("phase %s: exit %d, want %d", phase, got, want)
		}
	}
	// In progress: 0 while a process drives the run, 3 (waiting for one) when none does.
	for _, phase := range []rings.Phase{rings.PhaseRunning, rings.PhaseRollingBack, rings.PhaseAborting} {
		if ExitForPhase(phase, true) != ExitOK || ExitForPhase(phase, false) != ExitWaiting {
			t.Errorf("phase %s: driven %d, not driven %d", phase, ExitForPhase(phase, true), ExitForPhase(phase, false))
		}
	}
}

func TestRollbackPlanNewestRingFirstAndSkips(t *testing.T) {
	v1, v2 := rings.ReleaseRef{Name: "v1", Digest: "d"}, rings.ReleaseRef{Name: "v2", Digest: "d"}
	plan := &rings.Plan{Kind: rings.KindRelease, Release: v2, Rings: []rings.RingPlan{
		{Name: "a", MaxParallel: 1, Targets: []rings.TargetPlan{{Name: "a1", Release: v2, From: &v1}, {Name: "a2", Release: v2}}},
		{Name: "b", MaxParallel: 2, Targets: []rings.TargetPlan{{Name: "b1", Release: v2, From: &v1}, {Name: "b2", Release: v2, From: &v1}}},
	}}
	s := &rings.State{}
	rings.Decide(s, rings.Event{Type: rings.RunStarted, RunID: "r", Plan: plan})
	for _, ev := range []rings.Event{{Type: rings.TargetApplied, Target: "a1"}, {Type: rings.TargetVerified, Target: "a1"},
		{Type: rings.TargetApplied, Target: "a2"}, {Type: rings.TargetVerified, Target: "a2"},
		{Type: rings.TargetApplied, Target: "b1"}, {Type: rings.TargetVerified, Target: "b1"}} {
		rings.Decide(s, ev)
	}
	current := map[string]*rings.ReleaseRef{"a1": &v2, "a2": &v2, "b1": &v1}
	p, skipped := rollbackPlan(s, current, RollbackRequest{}, nil)
	// b2's apply had started (outcome unknown): it counts as changed. Newest ring first.
	if len(p.Rings) != 2 || p.Rings[0].Name != "b" || p.Rings[0].Targets[0].Name != "b2" || len(p.Rings[0].Targets) != 1 ||
		p.Rings[1].Name != "a" || len(p.Rings[1].Targets) != 1 || p.Rings[1].Targets[0].Name != "a1" || p.Rings[1].Targets[0].Release != v1 {
		t.Fatalf("plan = %+v", p.Rings)
	}
	want := []string{"b1: already at v1", "a2: no last known good"}
	for _, w := range want {
		if !strings.Contains(strings.Join(skipped, "\n"), w) {
			t.Fatalf("skipped %v lacks %q", skipped, w)
		}
	}
	// --to names the destination even for a target without a last known good.
	p, _ = rollbackPlan(s, current, RollbackRequest{Target: "a2"}, &v1)
	if len(p.Rings) != 1 || p.Rings[0].Targets[0].Name != "a2" || p.Rings[0].Targets[0].Release != v1 {
		t.Fatalf("--target a2 --to v1: %+v", p.Rings)
	}
}

func TestResumeRefusesARunWhoseTargetWasRemoved(t *testing.T) {
	f := &Fleet{cfg: &config.Config{Root: "/fleet", Boundaries: map[string]*config.Boundary{"l": {Cloud: "local"}, "a": {Cloud: "aws"}},
		Targets: []*config.Target{{Name: "here", Boundary: "l"}, {Name: "gov", Boundary: "a", File: "environments/gov.yaml"}}}}
	if err := f.requireDeclared([]string{"here"}); err != nil {
		t.Fatal(err)
	}
	if err := f.requireDeclared([]string{"here", "gone"}); err == nil || !strings.Contains(err.Error(), "target gone of this run is no longer declared") {
		t.Fatalf("removed target: %v", err)
	}
	if err := f.requireDeclared([]string{"gov"}); err != nil {
		t.Fatalf("a cloud target is run with its boundary's own environment now: %v", err)
	}
}

func TestFinishedRunReportIsKeptUntilTheJournalMoves(t *testing.T) {
	store, err := journal.OpenSQLite(t.TempDir() + "/state.db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	f := &Fleet{db: store, stores: storesOf(store, store)}
	v1 := rings.ReleaseRef{Name: "v1", Digest: "d"}
	plan := &rings.Plan{Kind: rings.KindRelease, Release: v1, Rings: []rings.RingPlan{{Name: "a", MaxParallel: 1, Rollback: "ring", Gates: []string{"g"}, Targets: []rings.TargetPlan{{Name: "t1", Release: v1}}}}}
	_ = store.CreateRun(ctx, journal.Run{ID: "r", Kind: rings.KindRelease, Release: v1, Created: time.Now()})
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	passed := true
	if err := store.Append(ctx, rings.Event{RunID: "r", Type: rings.RunStarted, Plan: plan, At: at},
		rings.Event{RunID: "r", Type: rings.TargetApplied, Target: "t1", At: at},
		rings.Event{RunID: "r", Type: rings.GateMeasured, Target: "t1", Gate: "g", Passed: &passed, At: at},
		rings.Event{RunID: "r", Type: rings.TargetVerified, Target: "t1", At: at}); err != nil {
		t.Fatal(err)
	}
	fresh, raw, err := f.Report(ctx, "r", NeedAll)
	if err != nil || raw != nil || fresh.Phase != rings.PhaseSucceeded || len(fresh.Rings[0].Targets[0].Gates) != 1 {
		t.Fatalf("first report: %+v, kept %v, %v", fresh, raw != nil, err)
	}
	kept, raw, err := f.Report(ctx, "r", NeedAll)
	if err != nil || raw == nil {
		t.Fatalf("second report was not taken from the journal: %v", err)
	}
	// Printing the kept JSON needs only the run's own fields (the exit code): no rings decoded;
	// history needs no JSON at all.
	head, headRaw, err := f.Report(ctx, "r", NeedJSON)
	if err != nil || string(headRaw) != string(raw) || head.Phase != fresh.Phase || head.ExitCode != fresh.ExitCode || head.Run != "r" || head.Rings != nil ||
		!head.Updated.Equal(fresh.Updated) || head.Release != fresh.Release {
		t.Fatalf("head of the kept report: %+v, %v", head, err)
	}
	if head, _, err := f.Report(ctx, "r", NeedHead); err != nil || head.Phase != fresh.Phase || head.Rings != nil || head.Run != "r" {
		t.Fatalf("head alone: %+v, %v", head, err)
	}
	// It is kept compressed: a large run's report is mostly the same keys over and over.
	if _, version, data, _ := store.LoadReport(ctx, "r"); version != keptFormat || len(data) >= len(raw) || bytes.Contains(data, []byte("t1")) {
		t.Fatalf("kept as version %d, %d bytes for %d of JSON", version, len(data), len(raw))
	}
	a, _ := json.Marshal(fresh)
	b, _ := json.Marshal(kept)
	if string(a) != string(b) || string(raw) != string(a) {
		t.Fatalf("kept report differs from the fresh one:\n%s\n%s", a, b)
	}
	// A later event (an approval appended to the finished run, say) makes the kept report stale.
	_ = store.Append(ctx, rings.Event{RunID: "r", Type: rings.RingApproved, Ring: "a", Actor: "x", At: at})
	if _, raw, _ := f.Report(ctx, "r", NeedJSON); raw != nil {
		t.Fatal("a stale kept report was used")
	}
}

func TestCompareTruth(t *testing.T) {
	v1 := rings.ReleaseRef{Name: "v1"}
	applied := &rings.Event{Type: rings.TargetApplied, Release: &v1, Outputs: map[string]any{"version": "v1", "token": "(sensitive)"}}
	for name, tc := range map[string]struct {
		last    *rings.Event
		state   map[string]any
		here    bool
		verdict string
	}{
		"same outputs":           {applied, map[string]any{"version": "v1", "token": "(sensitive)"}, true, "agrees"},
		"other outputs":          {applied, map[string]any{"version": "v2", "token": "(sensitive)"}, true, "differs"},
		"never deployed":         {nil, map[string]any{}, true, "agrees"},
		"state without journal":  {nil, map[string]any{"version": "v9"}, true, "differs"},
		"not set up here":        {applied, nil, false, "unknown"},
		"no outputs journaled":   {&rings.Event{Type: rings.TargetRolledBack, Release: &v1}, map[string]any{"version": "v1"}, true, "unknown"},
		"never deployed nowhere": {nil, nil, false, "agrees"},
	} {
		if got, detail := compareTruth(tc.last, tc.state, tc.here, nil); got != tc.verdict {
			t.Errorf("%s: %s (%s), want %s", name, got, detail, tc.verdict)
		}
	}
}

// Every event type a run journals reads as something for a person, or is deliberately silent.
func TestDescribeTellsEveryEvent(t *testing.T) {
	// Silent: bookkeeping that tells a person nothing new (a passing measurement, a bake's end
	// before ring.passed, who is about to hold a state lock, a frozen ring's time check, a queued
	// target getting its slot: its plan follows).
	silent := map[rings.EventType]bool{rings.RingBaked: true, rings.GateMeasured: true, rings.TargetLockHolder: true, rings.RingWindowCheck: true, rings.TargetDequeued: true}
	passed := true
	plan := &rings.Plan{Kind: rings.KindRelease, Release: rings.ReleaseRef{Name: "v1"}}
	for _, typ := range rings.EventTypes {
		text, _ := Describe(rings.Event{Type: typ, Ring: "r", Target: "t", Plan: plan, Passed: &passed})
		if (text == "") != silent[typ] {
			t.Errorf("%s: %q", typ, text)
		}
	}
}

// What the fleet journals is stamped by its one clock.
func TestTheFleetJournalsOnItsClock(t *testing.T) {
	store, err := journal.OpenSQLite(t.TempDir() + "/state.db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	at := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	f := &Fleet{db: store, stores: storesOf(store, store), opts: Options{Clock: resilience.NewManualClock(at)}}
	if err := f.SetSwitch(context.Background(), true, Act{As: "oncall", Reason: "incident 42"}); err != nil {
		t.Fatal(err)
	}
	sw, err := f.Switch(context.Background())
	if err != nil || sw == nil || !sw.At.Equal(at) {
		t.Fatalf("switch %+v, %v: want it stamped %s", sw, err, at)
	}
}

// Runs of one process (a Temporal worker caches several) each apply with their own apply mode
// and review: building one run's executor must not change another's (it wrote both into the
// fleet's one provisioner, and the newest run decided every run's mode).
func TestEachRunKeepsItsOwnApplyPolicy(t *testing.T) {
	f := &Fleet{cfg: &config.Config{Protect: nil}, prov: &provision.Terraform{}}
	reviewed := rings.Plan{Release: rings.ReleaseRef{Name: "v2"}, ApplyMode: config.ApplyAuto,
		Review: &rings.Review{Digests: map[string]string{"t1": "d"}}}
	direct := rings.Plan{Release: rings.ReleaseRef{Name: "v3"}, ApplyMode: config.ApplyDirect}
	a := f.executor(&rings.State{RunID: "a"}, reviewed, nil)
	b := f.executor(&rings.State{RunID: "b"}, direct, nil)
	pa, pb := a.Provisioner.(*provision.RunProvisioner), b.Provisioner.(*provision.RunProvisioner)
	if pa.Policy.ApplyMode != config.ApplyAuto || pa.Policy.Review == nil || pa.Policy.Review.Release != "v2" {
		t.Fatalf("run a's policy after run b's executor: %+v", pa.Policy)
	}
	if pb.Policy.ApplyMode != config.ApplyDirect || pb.Policy.Review != nil {
		t.Fatalf("run b's policy: %+v (a review of another run leaked into it)", pb.Policy)
	}
	if pa.Terraform != pb.Terraform {
		t.Fatal("runs must share the fleet's provisioner caches")
	}
}

// A manual rollback whose targets all go back to one release is named after it (history shows
// the release it applied, not the one it left); targets going to different ones keep the run's.
func TestARollbackIsNamedForWhereItGoes(t *testing.T) {
	v1, v2, v3 := rings.ReleaseRef{Name: "v1"}, rings.ReleaseRef{Name: "v2"}, rings.ReleaseRef{Name: "v3"}
	one := &rings.Plan{Release: v3, Rings: []rings.RingPlan{{Targets: []rings.TargetPlan{{Name: "a", Release: v1}, {Name: "b", Release: v1}}}}}
	if d, ok := oneDestination(one); !ok || d != v1 {
		t.Fatalf("one destination: %v %v", d, ok)
	}
	two := &rings.Plan{Release: v3, Rings: []rings.RingPlan{{Targets: []rings.TargetPlan{{Name: "a", Release: v1}}}, {Targets: []rings.TargetPlan{{Name: "b", Release: v2}}}}}
	if _, ok := oneDestination(two); ok {
		t.Fatal("two destinations taken for one")
	}
}

package rings

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// perTarget is a provisioner that counts, per target, the applies started and the most that ran
// at once: two at once on one target is the worst thing the engine can do.
type perTarget struct {
	mu      sync.Mutex
	running map[string]int
	peak    map[string]int
	calls   map[string][]string // target -> releases applied, in order
}

func newPerTarget() *perTarget {
	return &perTarget{running: map[string]int{}, peak: map[string]int{}, calls: map[string][]string{}}
}

func (p *perTarget) Apply(ctx context.Context, target string, rel ReleaseRef, planned func(PlanSummary)) (ApplyResult, error) {
	p.mu.Lock()
	p.running[target]++
	p.peak[target] = max(p.peak[target], p.running[target])
	p.calls[target] = append(p.calls[target], rel.Name)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running[target]--
		p.mu.Unlock()
	}()
	planned(PlanSummary{Change: 1})
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
		return ApplyResult{}, ctx.Err()
	}
	return ApplyResult{}, nil
}

func (p *perTarget) Outputs(context.Context, string) (map[string]any, error) { return nil, nil }

// blockedAfterCanary is the journal of a run whose canary passed and whose next ring was then
// blocked by the stop-the-line switch: the state `freeze on` leaves a run in.
func blockedAfterCanary(t *testing.T) (*memStore, *State) {
	t.Helper()
	from := rel("r5")
	tp := func(name string) TargetPlan {
		return TargetPlan{Name: name, Boundary: "b", Release: rel("r7"), From: &from}
	}
	plan := &Plan{Kind: KindRelease, Release: rel("r7"), Rings: []RingPlan{
		{Name: "canary", Targets: []TargetPlan{tp("pub-1")}, MaxParallel: 1, Rollback: "ring"},
		{Name: "commercial", Targets: []TargetPlan{tp("pub-2"), tp("pub-3")}, MaxParallel: 2, Rollback: "ring"},
	}}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	sw := &Switch{Actor: "oncall", Reason: "incident", At: at}
	evs := []Event{
		{Type: RunStarted, Plan: plan, At: at},
		{Type: TargetApplied, Target: "pub-1", At: at.Add(time.Second)},
		{Type: FreezeChanged, Switch: sw, At: at.Add(2 * time.Second)},
		{Type: TargetVerified, Target: "pub-1", At: at.Add(3 * time.Second)},
	}
	store := &memStore{}
	s := &State{}
	for _, ev := range evs {
		ev.V, ev.RunID = EventVersion, "run-1"
		Decide(s, ev)
		if err := store.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if s.Phase != PhaseBlocked || s.Rings[1].Phase != RFrozen {
		t.Fatalf("setup: phase %s, ring %s", s.Phase, s.Rings[1].Phase)
	}
	return store, Replay(store.events)
}

// A resumed run whose resume itself starts a ring (the switch went off meanwhile) starts each
// target once: the work the replayed journal had under way is re-driven, not the work the
// resume just decided.
func TestResumeStartsEachTargetOnce(t *testing.T) {
	store, s := blockedAfterCanary(t)
	p := newPerTarget()
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}}
	if err := x.Run(context.Background(), s, Event{Type: RunResumed}); err != nil {
		t.Fatal(err)
	}
	if s.Phase != PhaseSucceeded {
		t.Fatalf("phase %s", s.Phase)
	}
	for _, name := range []string{"pub-2", "pub-3"} {
		if n := len(p.calls[name]); n != 1 || p.peak[name] != 1 {
			t.Errorf("%s: %d applies (%v), %d at once; want 1", name, n, p.calls[name], p.peak[name])
		}
	}
	assertOneOperationAtATime(t, store.events)
}

// Aborting a blocked run with --rollback starts nothing new: it rolls back what the run changed
// (the canary), and the run ends aborted.
func TestAbortOfABlockedRunStartsNoRing(t *testing.T) {
	store, s := blockedAfterCanary(t)
	p := newPerTarget()
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}}
	abort := Event{Type: RunAbortRequested, Actor: "oncall", Message: "test abort", Rollback: true}
	if err := x.Run(context.Background(), s, abort); err != nil {
		t.Fatal(err)
	}
	if len(p.calls["pub-2"])+len(p.calls["pub-3"]) != 0 {
		t.Fatalf("the abort applied the next ring: %v", p.calls)
	}
	if got := p.calls["pub-1"]; len(got) != 1 || got[0] != "r5" {
		t.Fatalf("pub-1 applies %v, want one rollback to r5", got)
	}
	if s.Phase != PhaseAborted || s.Targets["pub-1"].Phase != TRolledBack {
		t.Fatalf("phase %s (%s), pub-1 %s", s.Phase, s.Reason, s.Targets["pub-1"].Phase)
	}
	if r := Replay(store.events); r.Phase != PhaseAborted {
		t.Fatalf("replayed phase %s", r.Phase)
	}
	assertOneOperationAtATime(t, store.events)
}

// assertOneOperationAtATime checks a journal for a target with two operations in flight at once:
// an apply or rollback started while the previous one has not ended.
func assertOneOperationAtATime(t *testing.T, evs []Event) {
	t.Helper()
	if err := CheckOneOperationAtATime(evs); err != nil {
		t.Fatal(err)
	}
}

// A manual rollback whose target could not be returned fails its ring (not "passed"), goes on
// with its other rings, and ends rollback_failed with a reason that names the target.
func TestManualRollbackWithAFailedTargetFailsItsRing(t *testing.T) {
	p := fleet(RingPlan{Name: "b", Targets: targets("b", 2), MaxParallel: 2, MaxFailures: 2, Rollback: RollbackNone},
		RingPlan{Name: "a", Targets: targets("a", 1), MaxParallel: 1, MaxFailures: 1, Rollback: RollbackNone})
	p.Kind = KindRollback
	h, _ := start(t, p)
	h.send(Event{Type: TargetApplyFailed, Target: "b-1", Message: "state lock held"})
	cmds := h.pass("b-2")
	if r := h.s.Rings[0]; r.Phase != RFailed || !strings.Contains(r.Reason, "b-1: state lock held") {
		t.Fatalf("ring b: %s (%s)", r.Phase, r.Reason)
	}
	if got := kinds(cmds, CmdApply); !slices.Equal(got, []string{"a-1"}) {
		t.Fatalf("the rollback should go on with ring a: %+v", cmds)
	}
	if finished(h.pass("a-1")) != PhaseRollbackFailed || !strings.Contains(h.s.Reason, "ring b: 1 of 2 target(s) could not be rolled back") {
		t.Fatalf("run: %s (%s)", h.s.Phase, h.s.Reason)
	}
}

// Durations in the journal and the events read as text; journals of earlier versions held
// nanoseconds, which still replay.
func TestDurationIsTextInJSONAndReadsOldNumbers(t *testing.T) {
	b, err := json.Marshal(RingPlan{Name: "r", Bake: Duration(10 * time.Minute)})
	if err != nil || !strings.Contains(string(b), `"bake":"10m0s"`) {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var old RingPlan
	if err := json.Unmarshal([]byte(`{"name":"r","bake":600000000000}`), &old); err != nil || old.Bake.D() != 10*time.Minute {
		t.Fatalf("an old journal's bake: %v %v", old.Bake, err)
	}
	var text RingPlan
	if err := json.Unmarshal(b, &text); err != nil || text.Bake.D() != 10*time.Minute {
		t.Fatalf("round trip: %v %v", text.Bake, err)
	}
}

type panicking struct{}

func (panicking) Apply(context.Context, string, ReleaseRef, func(PlanSummary)) (ApplyResult, error) {
	var m map[string]int
	m["boom"]++ // a bug
	return ApplyResult{}, nil
}
func (panicking) Outputs(context.Context, string) (map[string]any, error) { return nil, nil }

// A worker's panic is a bug, never an outcome: the run stops with an internal error (exit 1), the
// apply is not journaled as failed, and the process does not die with Go's exit code 2.
func TestAWorkerPanicStopsTheRunAsAnError(t *testing.T) {
	store := &memStore{}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", MaxParallel: 1, Rollback: "ring",
		Targets: []TargetPlan{{Name: "a1", Boundary: "a", Release: rel("v2")}}}}}
	x := &Executor{Store: store, Provisioner: panicking{}, Gates: passGates{}}
	err := x.Run(context.Background(), &State{RunID: "r1"}, Event{Type: RunStarted, Plan: plan})
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("Run = %v", err)
	}
	if got := store.types(); got[TargetApplyFailed] != 0 || got[TargetApplying] != 1 {
		t.Fatalf("journal: %v", got)
	}
}

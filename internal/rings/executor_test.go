package rings

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/resilience"
)

// memStore is a hand-written journal for executor tests.
type memStore struct {
	mu     sync.Mutex
	events []Event
	fail   error
}

func (m *memStore) Append(_ context.Context, evs ...Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for i := range evs {
		evs[i].Seq = int64(len(m.events) + i + 1)
	}
	m.events = append(m.events, evs...)
	return nil
}

func (m *memStore) types() map[EventType]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[EventType]int{}
	for _, ev := range m.events {
		out[ev.Type]++
	}
	return out
}

// fakeProvisioner records concurrency per boundary and can block or fail.
type fakeProvisioner struct {
	mu       sync.Mutex
	running  map[string]int
	peak     map[string]int
	total    int
	peakAll  int
	hold     time.Duration
	failFor  map[string]bool
	block    chan struct{}
	started  chan string
	boundary func(target string) string
}

func (f *fakeProvisioner) Apply(ctx context.Context, target string, rel ReleaseRef, planned func(PlanSummary)) (ApplyResult, error) {
	b := f.boundary(target)
	f.mu.Lock()
	f.running[b]++
	f.total++
	f.peak[b] = max(f.peak[b], f.running[b])
	f.peakAll = max(f.peakAll, f.total)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running[b]--
		f.total--
		f.mu.Unlock()
	}()
	if f.started != nil {
		f.started <- target
	}
	planned(PlanSummary{Add: 1})
	select {
	case <-time.After(f.hold):
	case <-ctx.Done():
		return ApplyResult{}, ctx.Err()
	case <-f.block:
	}
	if f.failFor[target] {
		return ApplyResult{}, errors.New("boom")
	}
	return ApplyResult{Outputs: map[string]any{"secret": "s3cr3t"}, Public: map[string]any{"secret": "(sensitive)"}}, nil
}

func (f *fakeProvisioner) Outputs(context.Context, string) (map[string]any, error) { return nil, nil }

type passGates struct{}

func (passGates) Target(context.Context, GateRequest, func(Measurement)) Verdict {
	return Verdict{Decision: Pass}
}
func (passGates) Ring(ctx context.Context, _ GateRequest, until time.Time, _ func(Measurement)) Verdict {
	return Verdict{Decision: Pass}
}

func newFake(hold time.Duration) *fakeProvisioner {
	return &fakeProvisioner{running: map[string]int{}, peak: map[string]int{}, hold: hold, failFor: map[string]bool{},
		boundary: func(t string) string { return t[:1] }}
}

func TestExecutorBulkheads(t *testing.T) {
	var ts []TargetPlan
	for _, n := range []string{"a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"} {
		ts = append(ts, TargetPlan{Name: n, Boundary: n[:1], Release: rel("v2")})
	}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", Targets: ts, MaxParallel: 8, Rollback: "ring"}}}
	p := newFake(30 * time.Millisecond)
	store := &memStore{}
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}, Boundaries: map[string]int{"a": 1}, GlobalLimit: 3}
	s := &State{RunID: "r1"}
	if err := x.Run(context.Background(), s, Event{Type: RunStarted, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if s.Phase != PhaseSucceeded {
		t.Fatalf("phase %s", s.Phase)
	}
	if p.peak["a"] != 1 || p.peakAll > 3 || p.peakAll < 2 {
		t.Fatalf("peak per boundary %v, overall %d: want a<=1 and overall 2..3", p.peak, p.peakAll)
	}
	for _, ev := range store.events {
		if ev.Type == TargetApplied && ev.Outputs["secret"] != "(sensitive)" {
			t.Fatalf("a sensitive output was journaled: %+v", ev.Outputs)
		}
	}
	if got := store.types(); got[TargetApplying] != 8 || got[TargetPlanned] != 8 || got[TargetVerified] != 8 || got[RunFinished] != 1 {
		t.Fatalf("journal = %v", got)
	}
	// The journal replays to the same outcome.
	if Replay(store.events).Phase != PhaseSucceeded {
		t.Fatal("replay of the executor's journal does not end in success")
	}
}

func TestExecutorInterruptedWorkIsNotJournaledAsFailed(t *testing.T) {
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", MaxParallel: 2, Rollback: "ring",
		Targets: []TargetPlan{{Name: "a1", Boundary: "a", Release: rel("v2")}, {Name: "b1", Boundary: "b", Release: rel("v2")}}}}}
	p := newFake(time.Hour)
	p.started = make(chan string, 2)
	store := &memStore{}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}}
	s := &State{RunID: "r1"}
	done := make(chan error)
	go func() { done <- x.Run(ctx, s, Event{Type: RunStarted, Plan: plan}) }()
	<-p.started
	<-p.started
	cancel()
	if err := <-done; !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run = %v, want ErrInterrupted", err)
	}
	got := store.types()
	if got[TargetApplyFailed] != 0 || got[TargetApplying] != 2 {
		t.Fatalf("journal after interruption = %v: applies must stay in flight, not failed", got)
	}
	// Resuming re-drives both applies.
	resumed := Replay(store.events)
	if n := len(resumed.InFlight()); n != 2 {
		t.Fatalf("in flight after replay: %d, want 2", n)
	}
	p2 := newFake(0)
	x2 := &Executor{Store: store, Provisioner: p2, Gates: passGates{}}
	if err := x2.Run(context.Background(), resumed, Event{Type: RunResumed}); err != nil || resumed.Phase != PhaseSucceeded {
		t.Fatalf("resume: %v, phase %s", err, resumed.Phase)
	}
}

func TestExecutorStopsWhenTheJournalFails(t *testing.T) {
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", MaxParallel: 1, Rollback: "ring",
		Targets: []TargetPlan{{Name: "a1", Boundary: "a", Release: rel("v2")}, {Name: "a2", Boundary: "a", Release: rel("v2")}}}}}
	p := newFake(time.Hour)
	p.started = make(chan string, 4)
	p.block = make(chan struct{})
	store := &memStore{}
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}}
	go func() {
		<-p.started // a1 is applying; its result will meet a failing journal
		store.mu.Lock()
		store.fail = errors.New("disk full")
		store.mu.Unlock()
		close(p.block)
	}()
	err := x.Run(context.Background(), &State{RunID: "r1"}, Event{Type: RunStarted, Plan: plan})
	if !errors.Is(err, store.fail) {
		t.Fatalf("Run = %v, want the journal's error", err)
	}
	if len(p.started) > 0 {
		t.Fatal("a second apply started after the journal failed")
	}
}

func TestExecutorPreflightsOncePerRingAndBoundary(t *testing.T) {
	ring := func(name string, targets ...string) RingPlan {
		var ts []TargetPlan
		for _, n := range targets {
			ts = append(ts, TargetPlan{Name: n, Boundary: n[:1], Release: rel("v2")})
		}
		return RingPlan{Name: name, Targets: ts, MaxParallel: 4, Rollback: "ring"}
	}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{ring("one", "a1", "a2", "a3"), ring("two", "a4", "b1")}}
	var mu sync.Mutex
	calls := map[string]int{}
	p := newFake(5 * time.Millisecond)
	store := &memStore{}
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{},
		Preflight: func(_ context.Context, ring, boundary string) (Identity, string, error) {
			mu.Lock()
			calls[ring+"/"+boundary]++
			mu.Unlock()
			if boundary == "b" {
				return Identity{}, "", errors.New("wrong partition")
			}
			return Identity{Cloud: "aws", Principal: "arn:aws:iam::1:user/u"}, "proved", nil
		}}
	s := &State{RunID: "r1"}
	if err := x.Run(context.Background(), s, Event{Type: RunStarted, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if calls["one/a"] != 1 || calls["two/a"] != 1 || calls["two/b"] != 1 || len(calls) != 3 {
		t.Fatalf("preflights %v: want one per ring and boundary", calls)
	}
	if got := store.types(); got[BoundaryVerified] != 2 || got[BoundaryRefused] != 1 {
		t.Fatalf("journal %v", got)
	}
	// b1 failed before Terraform ran: never applied, and not rolled back.
	if p.peak["b"] != 0 || s.Targets["b1"].Phase != TRollbackSkipped || s.Phase != PhaseRolledBack {
		t.Fatalf("b applies %d, b1 %s, run %s", p.peak["b"], s.Targets["b1"].Phase, s.Phase)
	}
}

func TestExecutorRateLimitsStartsPerBoundary(t *testing.T) {
	var ts []TargetPlan
	for _, n := range []string{"a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"} {
		ts = append(ts, TargetPlan{Name: n, Boundary: n[:1], Release: rel("v2")})
	}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", Targets: ts, MaxParallel: 8, Rollback: "ring"}}}
	p := newFake(0)
	p.started = make(chan string, 8)
	x := &Executor{Store: &memStore{}, Provisioner: p, Gates: passGates{}, Rates: map[string]float64{"a": 20}} // one start per 50ms in a
	begin := time.Now()
	if err := x.Run(context.Background(), &State{RunID: "r1"}, Event{Type: RunStarted, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	close(p.started)
	var order []string
	for n := range p.started {
		order = append(order, n)
	}
	// Four starts in a at 20/s take at least 150ms; b, unlimited, is not held behind a.
	if el := time.Since(begin); el < 150*time.Millisecond {
		t.Fatalf("4 starts at 20/s took %s", el)
	}
	bDone := 0
	for _, n := range order[:5] {
		if n[0] == 'b' {
			bDone++
		}
	}
	if bDone < 4 {
		t.Fatalf("start order %v: the unlimited boundary waited behind the limited one", order)
	}
}

// recordGates passes every gate and keeps each request's baseline.
type recordGates struct {
	mu       sync.Mutex
	baseline map[string]map[string][]string
}

func (g *recordGates) Target(_ context.Context, req GateRequest, _ func(Measurement)) Verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.baseline[req.Target] = req.Baseline
	return Verdict{Decision: Pass}
}
func (g *recordGates) Ring(context.Context, GateRequest, time.Time, func(Measurement)) Verdict {
	return Verdict{Decision: Pass}
}

func TestExecutorGivesCompareGatesTheUntouchedTargets(t *testing.T) {
	ring := func(name string, targets ...string) RingPlan {
		var ts []TargetPlan
		for _, n := range targets {
			ts = append(ts, TargetPlan{Name: n, Boundary: "a", Release: rel("v2")})
		}
		return RingPlan{Name: name, Targets: ts, MaxParallel: 1, Rollback: "ring", Gates: []string{"vs-baseline"}}
	}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{ring("one", "a1", "a2", "a3"), ring("two", "b1")}}
	gates := &recordGates{baseline: map[string]map[string][]string{}}
	x := &Executor{Store: &memStore{}, Provisioner: newFake(0), Gates: gates, CompareGates: []string{"vs-baseline"}}
	if err := x.Run(context.Background(), &State{RunID: "r1"}, Event{Type: RunStarted, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if got := gates.baseline["a1"]; !slices.Equal(got["one"], []string{"a2", "a3"}) || !slices.Equal(got["two"], []string{"b1"}) {
		t.Fatalf("a1's baseline %v", got)
	}
	if got := gates.baseline["a3"]; len(got["one"]) != 0 || !slices.Equal(got["two"], []string{"b1"}) {
		t.Fatalf("a3's baseline %v", got)
	}
}

// classErr is a provisioner failure with a class, as provision.Failure reports one.
type classErr struct{ class, reason string }

func (e classErr) Error() string       { return "terraform: " + e.reason }
func (e classErr) ErrorClass() string  { return e.class }
func (e classErr) ErrorReason() string { return e.reason }

// scripted fails each target's first n attempts with a given error, then succeeds.
type scripted struct {
	mu       sync.Mutex
	failures map[string][]error
	calls    map[string]int
	hold     map[string]time.Duration
}

func (p *scripted) Apply(_ context.Context, target string, _ ReleaseRef, planned func(PlanSummary)) (ApplyResult, error) {
	p.mu.Lock()
	hold := p.hold[target]
	p.mu.Unlock()
	time.Sleep(hold)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[target]++
	if f := p.failures[target]; len(f) > 0 {
		p.failures[target] = f[1:]
		return ApplyResult{}, f[0]
	}
	planned(PlanSummary{Add: 1})
	return ApplyResult{}, nil
}

func (p *scripted) Outputs(context.Context, string) (map[string]any, error) { return nil, nil }

func TestExecutorRetriesTransientFailuresOnly(t *testing.T) {
	throttled := classErr{"transient", "throttled"}
	denied := classErr{"permanent", "authorization denied"}
	p := &scripted{calls: map[string]int{}, failures: map[string][]error{"a1": {throttled, throttled}, "a2": {denied}}}
	ts := []TargetPlan{{Name: "a1", Boundary: "a", Release: rel("v2")}, {Name: "a2", Boundary: "a", Release: rel("v2")}}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", Targets: ts, MaxParallel: 1, MaxFailures: 1, Rollback: RollbackNone}}}
	store := &memStore{}
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}, Retry: RetryPolicy{Attempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond}}
	s := &State{RunID: "r1"}
	if err := x.Run(context.Background(), s, Event{Type: RunStarted, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if p.calls["a1"] != 3 || s.Targets["a1"].Phase != TVerified {
		t.Fatalf("a1: %d calls, %s: want 2 transient failures retried, then applied", p.calls["a1"], s.Targets["a1"].Phase)
	}
	if p.calls["a2"] != 1 || s.Targets["a2"].Phase != TFailed || !strings.Contains(s.Targets["a2"].Message, "authorization denied") {
		t.Fatalf("a2: %d calls, %s %q: want a permanent failure to fail at once", p.calls["a2"], s.Targets["a2"].Phase, s.Targets["a2"].Message)
	}
	var retries []Event
	for _, ev := range store.events {
		if ev.Type == TargetRetrying {
			retries = append(retries, ev)
		}
		if ev.Type == TargetApplyFailed && (ev.Target != "a2" || ev.Class != Permanent) {
			t.Fatalf("apply_failed %+v", ev)
		}
	}
	if len(retries) != 2 || retries[0].Class != Transient || !strings.Contains(retries[0].Message, "attempt 1 of 3 failed (throttled)") {
		t.Fatalf("every attempt is journaled with its class: %+v", retries)
	}
}

func TestExecutorBreakerHaltsABoundaryWhileOthersCarryOn(t *testing.T) {
	down := classErr{"transient", "provider 5xx"}
	p := &scripted{calls: map[string]int{}, failures: map[string][]error{}}
	var ts []TargetPlan
	for _, n := range []string{"a1", "a2", "a3", "a4", "b1", "b2"} {
		ts = append(ts, TargetPlan{Name: n, Boundary: n[:1], Release: rel("v2")})
		if n[0] == 'a' {
			p.failures[n] = []error{down, down, down, down}
		}
	}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", Targets: ts, MaxParallel: 1, MaxFailures: 4, Rollback: RollbackNone}}}
	store := &memStore{}
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}, Retry: RetryPolicy{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond},
		Breaker: BreakerPolicy{ConsecutiveFailures: 3, OpenFor: time.Hour}}
	s := &State{RunID: "r1"}
	if err := x.Run(context.Background(), s, Event{Type: RunStarted, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	// a1: 2 attempts, a2: 1 attempt opens the breaker (3 in a row); a3, a4 are not tried at all.
	if p.calls["a1"] != 2 || p.calls["a2"] != 1 || p.calls["a3"] != 0 || p.calls["a4"] != 0 {
		t.Fatalf("calls %v", p.calls)
	}
	if s.Targets["b1"].Phase != TVerified || s.Targets["b2"].Phase != TVerified || s.Phase != PhaseSucceeded {
		t.Fatalf("the other boundary must finish within the budget: b1 %s, b2 %s, run %s", s.Targets["b1"].Phase, s.Targets["b2"].Phase, s.Phase)
	}
	if got := store.types(); got[BoundaryHalted] != 1 {
		t.Fatalf("journal %v: want one boundary.halted", got)
	}
	if m := s.Targets["a3"].Message; !strings.Contains(m, "boundary a: circuit open after 3 consecutive transient failures; not attempted") {
		t.Fatalf("a3: %q", m)
	}
}

func TestExecutorBreakerProbesAfterItsTimeout(t *testing.T) {
	down := classErr{"transient", "provider 5xx"}
	p := &scripted{calls: map[string]int{}, failures: map[string][]error{"a1": {down}}, hold: map[string]time.Duration{"b1": 150 * time.Millisecond}}
	one := []TargetPlan{{Name: "a1", Boundary: "a", Release: rel("v2")}, {Name: "b1", Boundary: "b", Release: rel("v2")}}
	two := []TargetPlan{{Name: "a2", Boundary: "a", Release: rel("v2")}}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "one", Targets: one, MaxParallel: 2, MaxFailures: 1, Rollback: RollbackNone},
		{Name: "two", Targets: two, MaxParallel: 1, Rollback: RollbackNone}}}
	store := &memStore{}
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}, Breaker: BreakerPolicy{ConsecutiveFailures: 1, OpenFor: 30 * time.Millisecond}}
	s := &State{RunID: "r1"}
	if err := x.Run(context.Background(), s, Event{Type: RunStarted, Plan: plan}); err != nil {
		t.Fatal(err)
	}
	// a1's failure opened the breaker; ring two started once b1 was done, after the timeout, so
	// a2 was the half-open probe: it passed and closed the circuit.
	got := store.types()
	if s.Targets["a1"].Phase != TFailed || s.Targets["a2"].Phase != TVerified || got[BoundaryHalted] != 1 || got[BoundaryResumed] != 1 {
		t.Fatalf("calls %v, a1 %s, a2 %s, journal %v", p.calls, s.Targets["a1"].Phase, s.Targets["a2"].Phase, got)
	}
}

func TestExecutorDrainLetsRunningTerraformFinishAndStartsNothing(t *testing.T) {
	p := newFake(time.Hour) // an apply ends when block is closed
	p.block, p.started = make(chan struct{}), make(chan string, 4)
	ts := []TargetPlan{{Name: "a1", Boundary: "a", Release: rel("v2")}, {Name: "a2", Boundary: "a", Release: rel("v2")}}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", Targets: ts, MaxParallel: 1, Rollback: "ring", Gates: []string{"g"}}}}
	store := &memStore{}
	drain := make(chan struct{})
	x := &Executor{Store: store, Provisioner: p, Gates: passGates{}, Drain: drain}
	s := &State{RunID: "r1"}
	done := make(chan error, 1)
	go func() { done <- x.Run(context.Background(), s, Event{Type: RunStarted, Plan: plan}) }()
	<-p.started // a1's apply is under way
	close(drain)
	close(p.block)
	if err := <-done; !errors.Is(err, ErrInterrupted) {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	got := store.types()
	if got[TargetApplied] != 1 || got[TargetApplying] != 1 || got[TargetVerified] != 0 {
		t.Fatalf("journal %v: want a1's apply finished and journaled, nothing started after the drain", got)
	}
	// Resuming re-drives a1's gates, then a2.
	r := Replay(store.events)
	if cmds := r.InFlight(); len(cmds) != 1 || cmds[0].Kind != CmdGate || cmds[0].Target != "a1" {
		t.Fatalf("in flight after the drain: %+v", cmds)
	}
}

// The executor's waits go through its clock: an hour between attempts passes without sleeping,
// and the waits journaled are the clock's.
func TestExecutorRetryWaitsOnItsClock(t *testing.T) {
	throttled := classErr{"transient", "throttled"}
	p := &scripted{calls: map[string]int{}, failures: map[string][]error{"a1": {throttled, throttled}}}
	plan := &Plan{Kind: KindRelease, Release: rel("v2"), Rings: []RingPlan{{Name: "r", MaxParallel: 1, Rollback: RollbackNone,
		Targets: []TargetPlan{{Name: "a1", Boundary: "a", Release: rel("v2")}}}}}
	clock := resilience.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	x := &Executor{Store: &memStore{}, Provisioner: p, Gates: passGates{}, Clock: clock,
		Retry: RetryPolicy{Attempts: 3, Initial: time.Hour, Max: time.Hour, MaxElapsed: 24 * time.Hour}}
	s := &State{RunID: "r1"}
	done := make(chan error, 1)
	go func() { done <- x.Run(context.Background(), s, Event{Type: RunStarted, Plan: plan}) }()
	finished := make(chan struct{})
	go func() {
		for clock.WaitFor(1, finished) {
			clock.Advance(time.Hour)
		}
	}()
	err := <-done
	close(finished)
	if err != nil {
		t.Fatal(err)
	}
	if p.calls["a1"] != 3 || s.Targets["a1"].Phase != TVerified {
		t.Fatalf("a1: %d calls, %s: want two waits passed on the clock, then applied", p.calls["a1"], s.Targets["a1"].Phase)
	}
	if now := clock.Now(); now.Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) > 2*time.Hour {
		t.Fatalf("the clock moved to %s: want at most the two waits", now)
	}
}

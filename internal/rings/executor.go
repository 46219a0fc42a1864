package rings

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/resilience"
)

// Store is what the executor needs from the journal.
type Store interface {
	// Append writes events to their run's journal in order, atomically, setting each Seq. An error
	// means none was written; the executor then stops, since it may only act on what is journaled.
	Append(ctx context.Context, events ...Event) error
}

// Provisioner changes a target's infrastructure.
type Provisioner interface {
	// Apply plans rel for target, reports the plan through planned, then applies exactly that plan.
	// It returns the target's outputs after the apply. It must be safe to call again for the same
	// target and release after an interrupted call.
	Apply(ctx context.Context, target string, rel ReleaseRef, planned func(PlanSummary)) (ApplyResult, error)
	// Outputs reads the target's current outputs.
	Outputs(ctx context.Context, target string) (map[string]any, error)
}

// ApplyResult is what a target's apply gave: the plan's summary and the outputs (all, and those fit to journal).
type ApplyResult struct {
	Summary PlanSummary
	Mode    string         // how it was applied: "direct" or "plan-first" ("": not said)
	Outputs map[string]any // all outputs, sensitive ones included: never journal these as they are
	Public  map[string]any // the outputs safe to journal and print (sensitive values redacted)
}

// DriftChecker is a Provisioner that can tell whether a target's infrastructure drifted from
// what release rel last applied (a refresh-only plan).
type DriftChecker interface {
	Drift(ctx context.Context, target string, rel ReleaseRef) (DriftReport, error)
}

// DriftReport is one target's drift: whether it drifted, and the resource addresses that did.
type DriftReport struct {
	Drifted   bool     `json:"drifted"`
	Resources []string `json:"resources,omitempty"`
}

// GateRunner evaluates health gates.
type GateRunner interface {
	// Target evaluates req.Gates on one target until each gives a verdict or ctx ends; it reports
	// every measurement through observe. No gates is a pass.
	Target(ctx context.Context, req GateRequest, observe func(Measurement)) Verdict
	// Ring evaluates req.Gates across a bake window that ends at until; with no gates it only waits.
	Ring(ctx context.Context, req GateRequest, until time.Time, observe func(Measurement)) Verdict
}

// GateRequest asks a GateRunner to evaluate gates on a target (or, Target empty, across a ring).
type GateRequest struct {
	Ring    string
	Target  string // empty for ring gates
	Release ReleaseRef
	Outputs map[string]any
	Gates   []string
	// Baseline: per ring, the targets still on their last known good when the gates started
	// (only when one of the executor's CompareGates is among them).
	Baseline map[string][]string
}

// Clock is the executor's only source of time and of timers: the waits between retries and the
// wait for a freeze window to open go through it, so a test moves time instead of sleeping.
type Clock = resilience.Clock

// RealClock is the wall clock.
var RealClock Clock = resilience.Wall

// Executor carries out Decide's commands: Terraform work through per-boundary bulkheads and a
// global limit, gates, bakes; every result is journaled before the state moves on.
type Executor struct {
	Store       Store
	Provisioner Provisioner
	Gates       GateRunner
	Clock       Clock
	Observe     func(Event)    // sees every journaled event (progress display); may be nil
	Boundaries  map[string]int // per-boundary limit on concurrent Terraform runs; 0 or absent: none
	GlobalLimit int            // limit on concurrent Terraform runs across boundaries; 0: none
	// Rates limits how fast Terraform runs start per boundary (runs per second; absent: none), so
	// a ring of many targets cannot burst a cloud's control plane into throttling.
	Rates map[string]float64
	// Preflight proves a boundary's identity when a ring first enters it, before any Terraform run
	// there; the result is journaled (boundary.verified or boundary.refused), and a refusal fails
	// every run of that ring in that boundary. Nil: no preflight.
	Preflight func(ctx context.Context, ring, boundary string) (Identity, string, error)
	// CompareGates are the gates that compare a target with its baseline (the targets the run has
	// not changed yet): only their commands carry the baseline.
	CompareGates []string
	// Drain, when closed, stops the run from starting anything new: Terraform runs under way go on
	// (until ctx ends); gates and bakes stop (they are measured again on resume). Run then returns
	// ErrInterrupted once nothing is under way.
	Drain <-chan struct{}
	// Retry is how a target's Terraform run is tried again after a transient failure.
	Retry RetryPolicy
	// Breaker opens a boundary's circuit after consecutive transient failures there.
	Breaker BreakerPolicy
	// Inbox brings what changed outside this process while the run goes on, read every PollEvery
	// (default 1s) and once before the first round: events other processes journaled for the run
	// after seq `after` (an operator's pause, abort, approval or override; Seq set), and events
	// that only this process can know and must journal (Seq 0: the stop-the-line switch changed).
	// Nil: nothing from outside reaches a running run.
	Inbox     func(ctx context.Context, s *State, after int64) ([]Event, error)
	PollEvery time.Duration
	// Detach journals the first round (the run's start and what it decided) and returns without
	// starting any of it: another process resumes the run and does it (start --wait=false).
	Detach bool

	mu       sync.Mutex
	carrying sync.Once             // Carry's set-up, once per executor
	checked  map[string]*preflight // by ring and boundary
	limiters map[string]*resilience.Limiter
	breakers map[string]*resilience.Breaker[ApplyResult]
	outputs  map[string]map[string]any
	sems     map[string]chan struct{}
	global   chan struct{}
}

type message struct {
	ev     Event
	done   bool   // the worker's last message
	drop   bool   // the worker was interrupted: its outcome is unknown, journal nothing
	target string // on the last message: the target whose operation ended ("" for ring work)
	panic  error  // the worker panicked: a bug; the run stops (its work is re-driven on resume)
}

// ErrInterrupted is returned when ctx ended before the run reached a terminal or waiting state.
var ErrInterrupted = errors.New("interrupted: the run is journaled and resumes when started again")

func (x *Executor) pollEvery() time.Duration {
	if x.PollEvery <= 0 {
		return time.Second
	}
	return x.PollEvery
}

// closed says whether ch (nil: never) is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// spawn runs a worker for target ("" for ring work); its messages come back on msgs, the last
// one marked done.
func spawn(active *int, msgs chan<- message, target string, f func(send func(Event)) message) {
	*active++
	go func() {
		var m message
		defer func() {
			if p := recover(); p != nil {
				m = message{drop: true, panic: fmt.Errorf("internal error (a bug in rollout) working on %q: %v\n%s", target, p, debug.Stack())}
			}
			m.done, m.target = true, target
			msgs <- m
		}()
		send := func(ev Event) { msgs <- message{ev: ev} }
		m = f(send)
	}()
}

func (x *Executor) acquire(ctx context.Context, boundary string) (func(), error) {
	return x.take(ctx, boundary, nil)
}

// acquireOrQueue takes c's slots; when one is taken it says so (target.queued) before it waits,
// and again once it has them (target.dequeued), so that a target waiting for its boundary's slot
// does not look as if Terraform ran on it.
func (x *Executor) acquireOrQueue(ctx context.Context, c Command, send func(Event)) (func(), error) {
	queued := false
	release, err := x.take(ctx, c.Boundary, func(ch chan struct{}) {
		if queued {
			return
		}
		queued = true
		why := fmt.Sprintf("waiting for a slot of boundary %s (maxParallel %d)", c.Boundary, cap(ch))
		if ch == x.global {
			why = fmt.Sprintf("waiting for one of this process's %d Terraform slots", cap(ch))
		}
		send(Event{Type: TargetQueued, Ring: c.Ring, Target: c.Target, Boundary: c.Boundary, Message: why})
	})
	if err == nil && queued {
		send(Event{Type: TargetDequeued, Ring: c.Ring, Target: c.Target, Boundary: c.Boundary})
	}
	return release, err
}

// take takes a slot of the process (GlobalLimit) and of boundary, waiting for each; waiting (when
// not nil) is told before it waits for one that is taken.
func (x *Executor) take(ctx context.Context, boundary string, waiting func(chan struct{})) (func(), error) {
	var got []chan struct{}
	release := func() {
		for _, c := range got {
			<-c
		}
	}
	for _, c := range []chan struct{}{x.global, x.sem(boundary)} {
		if c == nil {
			continue
		}
		select {
		case c <- struct{}{}:
			got = append(got, c)
			continue
		default:
		}
		if waiting != nil {
			waiting(c)
		}
		select {
		case c <- struct{}{}:
			got = append(got, c)
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

func (x *Executor) sem(boundary string) chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.sems[boundary]
}

func (x *Executor) setOutputs(target string, out map[string]any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.outputs[target] = out
}

func (x *Executor) targetOutputs(ctx context.Context, target string) (map[string]any, error) {
	x.mu.Lock()
	out, ok := x.outputs[target]
	x.mu.Unlock()
	if ok {
		return out, nil
	}
	// Resumed run: the apply happened in an earlier process; sensitive outputs were never journaled.
	out, err := x.Provisioner.Outputs(ctx, target)
	if err == nil {
		x.setOutputs(target, out)
	}
	return out, err
}

type preflight struct {
	once sync.Once
	err  error
}

// preflight runs the boundary's preflight once per ring (and per process: a resumed run proves
// its credentials again); the first worker to need it journals the result.
func (x *Executor) preflight(ctx context.Context, c Command, send func(Event)) error {
	if x.Preflight == nil || c.Boundary == "" {
		return nil
	}
	key := c.Ring + "\x00" + c.Boundary
	x.mu.Lock()
	if x.checked == nil {
		x.checked = map[string]*preflight{}
	}
	p, ok := x.checked[key]
	if !ok {
		p = &preflight{}
		x.checked[key] = p
	}
	x.mu.Unlock()
	p.once.Do(func() {
		id, msg, err := x.Preflight(ctx, c.Ring, c.Boundary)
		if ctx.Err() != nil {
			p.err = ctx.Err()
			x.mu.Lock()
			delete(x.checked, key) // interrupted, not refused: a later run checks again
			x.mu.Unlock()
			return
		}
		if err != nil {
			p.err = fmt.Errorf("boundary %s refused: %w", c.Boundary, err)
			send(Event{Type: BoundaryRefused, Ring: c.Ring, Boundary: c.Boundary, Message: err.Error()})
			return
		}
		if msg != "" { // "" : nothing to prove in this boundary
			send(Event{Type: BoundaryVerified, Ring: c.Ring, Boundary: c.Boundary, Identity: &id, Message: msg})
		}
	})
	return p.err
}

// untouchedError is a failure before Terraform ran: the target was not changed.
type untouchedError struct{ error }

func (e untouchedError) Unwrap() error { return e.error }

func (x *Executor) terraform(ctx context.Context, c Command, send func(Event)) (ApplyResult, error) {
	if err := x.preflight(ctx, c, send); err != nil {
		return ApplyResult{}, untouchedError{err}
	}
	refused := false // the boundary's circuit refused the first attempt: nothing was tried
	tell := func(attempt int, err error, d time.Duration) {
		rel := c.Release
		send(Event{Type: TargetRetrying, Ring: c.Ring, Target: c.Target, Release: &rel, Class: Transient,
			Message: fmt.Sprintf("attempt %d of %d failed (%s): %s; trying again in %s", attempt, x.Retry.attempts(), reasonOf(err), strings.Join(strings.Fields(err.Error()), " "), d.Round(time.Millisecond))})
	}
	attempt := 0
	res, n, err := resilience.Retry(ctx, x.Retry.policy(x.Clock), retryable, tell, func() (ApplyResult, error) {
		attempt++
		res, err := x.attempt(ctx, c, send)
		if resilience.IsOpen(err) && attempt == 1 {
			refused = true
			return res, resilience.Permanent(err)
		}
		return res, err
	})
	switch {
	case err == nil || ctx.Err() != nil:
		return res, err
	case refused:
		return res, untouchedError{err}
	case n > 1:
		return res, fmt.Errorf("after %d attempts: %w", n, err)
	}
	return res, err
}

// retryable says whether a failed Terraform run is tried again: a transient failure, or a retry
// the boundary's open circuit refused (it waits, and tries again while attempts remain).
func retryable(err error) bool { return classOf(err) == "transient" || resilience.IsOpen(err) }

// attempt is one Terraform run of a target, through its boundary's rate limit, bulkhead and
// circuit breaker. When the breaker refuses, the error is one resilience.IsOpen recognises.
func (x *Executor) attempt(ctx context.Context, c Command, send func(Event)) (ApplyResult, error) {
	if l := x.limiters[c.Boundary]; l != nil {
		if err := l.Wait(ctx); err != nil {
			return ApplyResult{}, err
		}
	}
	release, err := x.acquireOrQueue(ctx, c, send)
	if err != nil {
		return ApplyResult{}, err
	}
	defer release()
	rel := c.Release
	noteCtx := WithNote(ctx, func(ev Event) {
		ev.Ring, ev.Target = c.Ring, c.Target
		send(ev)
	})
	noteCtx = WithComponentGates(noteCtx, func(ctx context.Context, component string, gates []string, outputs map[string]any) Verdict {
		return x.Gates.Target(ctx, GateRequest{Ring: c.Ring, Target: c.Target, Release: c.Release, Outputs: outputs, Gates: gates}, x.observer(c, send))
	})
	run := func() (ApplyResult, error) {
		return x.Provisioner.Apply(noteCtx, c.Target, c.Release, func(p PlanSummary) {
			send(Event{Type: TargetPlanned, Ring: c.Ring, Target: c.Target, Release: &rel, Summary: &p})
		})
	}
	b := x.breaker(c.Boundary)
	if b == nil {
		return run()
	}
	res, change, err := b.Do(run)
	switch {
	case resilience.IsOpen(err):
		return res, circuitOpen{boundary: c.Boundary, failures: x.Breaker.threshold(), refusal: err}
	case change == resilience.Opened:
		send(Event{Type: BoundaryHalted, Ring: c.Ring, Boundary: c.Boundary,
			Message: fmt.Sprintf("%d consecutive transient failures (last: %s on %s); no new Terraform run there for %s, then one probe", x.Breaker.threshold(), reasonOf(err), c.Target, x.Breaker.openFor())})
	case change == resilience.Closed:
		send(Event{Type: BoundaryResumed, Ring: c.Ring, Boundary: c.Boundary, Message: "a probe on " + c.Target + " passed"})
	}
	return res, err
}

// circuitOpen is a Terraform run the boundary's breaker refused.
type circuitOpen struct {
	boundary string
	failures int
	refusal  error // the breaker's own
}

func (e circuitOpen) Error() string {
	return fmt.Sprintf("boundary %s: circuit open after %d consecutive transient failures; not attempted", e.boundary, e.failures)
}

func (e circuitOpen) Unwrap() error { return e.refusal }

func (x *Executor) breaker(boundary string) *resilience.Breaker[ApplyResult] {
	if x.Breaker.threshold() == 0 || boundary == "" {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	b, ok := x.breakers[boundary]
	if !ok {
		// Only transient failures speak of the boundary; a permanent one is the target's own.
		b = resilience.NewBreaker[ApplyResult](resilience.BreakerSettings{Name: boundary, Trip: uint32(x.Breaker.threshold()),
			OpenFor: x.Breaker.openFor(), Counts: func(err error) bool { return classOf(err) == "transient" }})
		x.breakers[boundary] = b
	}
	return b
}

// RetryPolicy: how often and how long a transient failure is tried again. Waits grow
// exponentially up to Max, each drawn uniformly from zero to that cap (full jitter).
type RetryPolicy struct {
	Attempts   int           // in all, the first included; 0 or 1: no retry
	Initial    time.Duration // the first wait's cap (default 5s)
	Max        time.Duration // the largest cap (default 2m)
	MaxElapsed time.Duration // no new attempt after this long (default 30m)
}

func (r RetryPolicy) attempts() int { return max(r.Attempts, 1) }

func (r RetryPolicy) maxElapsed() time.Duration {
	if r.MaxElapsed <= 0 {
		return 30 * time.Minute
	}
	return r.MaxElapsed
}

// policy is the retry policy for resilience.Retry, waiting on clock.
func (r RetryPolicy) policy(clock Clock) resilience.Policy {
	p := resilience.Policy{Attempts: r.attempts(), Initial: 5 * time.Second, Max: 2 * time.Minute, MaxElapsed: r.maxElapsed(), Clock: clock}
	if r.Initial > 0 {
		p.Initial = r.Initial
	}
	if r.Max > 0 {
		p.Max = r.Max
	}
	return p
}

// BreakerPolicy: when a boundary's circuit opens, and for how long.
type BreakerPolicy struct {
	ConsecutiveFailures int           // transient failures in a row that open it; 0: no breaker
	OpenFor             time.Duration // how long it stays open before one probe (default 1m)
}

func (b BreakerPolicy) threshold() int { return max(b.ConsecutiveFailures, 0) }

func (b BreakerPolicy) openFor() time.Duration {
	if b.OpenFor <= 0 {
		return time.Minute
	}
	return b.OpenFor
}

// classOf is an error's class as its provisioner told it ("transient", "permanent"), or "".
func classOf(err error) string {
	var c interface{ ErrorClass() string }
	if errors.As(err, &c) {
		return c.ErrorClass()
	}
	return ""
}

func reasonOf(err error) string {
	var c interface{ ErrorReason() string }
	if errors.As(err, &c) {
		return c.ErrorReason()
	}
	return classOf(err)
}

func (x *Executor) apply(ctx context.Context, c Command, send func(Event)) message {
	if c.Back {
		ctx = WithRollback(ctx)
	}
	res, err := x.terraform(ctx, c, send)
	if err != nil {
		if ctx.Err() != nil {
			return message{drop: true}
		}
		ev := Event{Type: TargetApplyFailed, Ring: c.Ring, Target: c.Target, Message: err.Error(), Class: ErrorClass(classOf(err))}
		var u interface{ Untouched() bool }
		ev.Untouched = errors.As(err, new(untouchedError)) || errors.As(err, &u) && u.Untouched()
		return message{ev: ev}
	}
	x.setOutputs(c.Target, res.Outputs)
	return message{ev: Event{Type: TargetApplied, Ring: c.Ring, Target: c.Target, Release: &c.Release, Summary: &res.Summary, Outputs: res.Public, ApplyMode: res.Mode}}
}

func (x *Executor) rollback(ctx context.Context, c Command, send func(Event)) message {
	fail := func(msg string) message {
		if ctx.Err() != nil {
			return message{drop: true}
		}
		return message{ev: Event{Type: TargetRollbackFailed, Ring: c.Ring, Target: c.Target, Release: &c.Release, Message: msg}}
	}
	res, err := x.terraform(WithRollback(ctx), c, send)
	if err != nil {
		return fail(err.Error())
	}
	x.setOutputs(c.Target, res.Outputs)
	v := x.Gates.Target(ctx, GateRequest{Ring: c.Ring, Target: c.Target, Release: c.Release, Outputs: res.Outputs, Gates: c.Gates}, x.observer(c, send))
	if !v.Passed() {
		return fail(fmt.Sprintf("after re-applying %s, gate %s: %s", c.Release.Name, v.Gate, v.Message))
	}
	return message{ev: Event{Type: TargetRolledBack, Ring: c.Ring, Target: c.Target, Release: &c.Release, Message: v.Message, Outputs: res.Public, ApplyMode: res.Mode}}
}

func (x *Executor) observer(c Command, send func(Event)) func(Measurement) {
	return func(m Measurement) {
		passed := m.Passed()
		send(Event{Type: GateMeasured, At: m.At, Ring: c.Ring, Target: c.Target, Gate: m.Gate, Passed: &passed, Measured: m.Outcome, Stale: m.Stale, DryRun: m.DryRun, Message: m.Message})
	}
}

func (x *Executor) gate(workCtx, ctx context.Context, c Command, send func(Event)) message {
	if ev, ok := NoGates(c); ok {
		return message{ev: ev}
	}
	rel := c.Release
	ev := Event{Ring: c.Ring, Target: c.Target, Release: &rel}
	out, err := x.targetOutputs(ctx, c.Target)
	var v Verdict
	if err != nil {
		v = Verdict{Gate: "outputs", Message: fmt.Sprintf("read outputs of %s: %v", c.Target, err)}
	} else {
		v = x.Gates.Target(ctx, GateRequest{Ring: c.Ring, Target: c.Target, Release: c.Release, Outputs: out, Gates: c.Gates, Baseline: c.Baseline}, x.observer(c, send))
	}
	switch {
	case workCtx.Err() != nil:
		return message{ev: Event{Type: TargetGateCancelled, Target: c.Target}, drop: true}
	case ctx.Err() != nil:
		ev.Type, ev.Message = TargetGateCancelled, "ring halted"
	case v.Decision == Pass:
		ev.Type, ev.Message = TargetVerified, v.Message
	case v.Decision == Undecided:
		ev.Type, ev.Gate, ev.Message = TargetGateInconclusive, v.Gate, v.Message
	default:
		ev.Type, ev.Gate, ev.Message = TargetGateFailed, v.Gate, v.Message
	}
	return message{ev: ev}
}

func (x *Executor) bake(ctx context.Context, c Command, rel ReleaseRef, send func(Event)) message {
	v := x.Gates.Ring(ctx, GateRequest{Ring: c.Ring, Release: rel, Gates: c.Gates}, c.Until, x.observer(c, send))
	if ctx.Err() != nil {
		return message{drop: true}
	}
	switch {
	case v.Decision == Undecided:
		return message{ev: Event{Type: RingGateInconclusive, Ring: c.Ring, Gate: v.Gate, Message: v.Message}}
	case v.Decision != Pass:
		return message{ev: Event{Type: RingGateFailed, Ring: c.Ring, Gate: v.Gate, Message: v.Message}}
	}
	return message{ev: Event{Type: RingBaked, Ring: c.Ring, Message: v.Message}}
}

// awaitWindow holds a frozen ring until its window opens (c.Until; zero: until it is cancelled,
// when the switch goes off or the glass is broken).
func (x *Executor) awaitWindow(ctx context.Context, c Command) message {
	var at <-chan time.Time
	if !c.Until.IsZero() {
		t := x.Clock.NewTimer(max(c.Until.Sub(x.Clock.Now()), 0))
		defer t.Stop()
		at = t.C()
	}
	select {
	case <-ctx.Done():
		return message{drop: true}
	case <-at:
		return message{ev: Event{Type: RingWindowCheck, Ring: c.Ring}}
	}
}

// driftCheck runs a refresh-only plan of each target at the release it runs, through the same
// bulkheads as any Terraform run, and reports what drifted.
func (x *Executor) driftCheck(ctx context.Context, c Command, rels map[string]ReleaseRef, bounds map[string]string) message {
	dc, ok := x.Provisioner.(DriftChecker)
	if !ok {
		return message{ev: Event{Type: RingDriftChecked, Ring: c.Ring, Drift: DriftError, Message: "this provisioner cannot check drift"}}
	}
	type result struct {
		name string
		rep  DriftReport
		err  error
	}
	results := make([]result, len(c.Targets))
	var wg sync.WaitGroup
	for i, name := range c.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].name = name
			release, err := x.acquire(ctx, bounds[name])
			if err != nil {
				results[i].err = err
				return
			}
			defer release()
			results[i].rep, results[i].err = dc.Drift(ctx, name, rels[name])
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return message{drop: true}
	}
	ev := Event{Type: RingDriftChecked, Ring: c.Ring, Drift: DriftClean}
	var notes []string
	for _, r := range results {
		switch {
		case r.err != nil:
			ev.Drift = DriftError
			ev.Targets = append(ev.Targets, r.name)
			notes = append(notes, fmt.Sprintf("%s: could not check: %v", r.name, r.err))
		case r.rep.Drifted:
			if ev.Drift == DriftClean {
				ev.Drift = Drifted
			}
			ev.Targets = append(ev.Targets, r.name)
			notes = append(notes, fmt.Sprintf("%s: %s drifted", r.name, strings.Join(r.rep.Resources, ", ")))
		}
	}
	if len(notes) == 0 {
		notes = append(notes, fmt.Sprintf("%d target(s) match their state", len(c.Targets)))
	}
	ev.Message = strings.Join(notes, "; ")
	return message{ev: ev}
}

// PlanChecker is a Provisioner that can plan a target without changing it, for a ring whose
// approval a plan may waive: the plan's summary, or why what it would change cannot be told yet
// (a stack component's deferred plan).
type PlanChecker interface {
	PlanSummary(ctx context.Context, target string, rel ReleaseRef) (PlanSummary, string, error)
}

// planCheck plans each of the ring's targets (within their boundaries' bulkheads) and checks each
// plan against the ring's limits: ring.plans_checked passes only when every plan was made, told
// all it would change, and kept within them.
func (x *Executor) planCheck(ctx context.Context, c Command, w Work) message {
	limits, rel, bounds := w.Limits, w.Release, w.Bounds
	pc, ok := x.Provisioner.(PlanChecker)
	failed := func(msg string, targets ...string) message {
		no := false
		return message{ev: Event{Type: RingPlansChecked, Ring: c.Ring, Passed: &no, Message: msg, Targets: targets}}
	}
	if !ok || limits == nil {
		return failed("this provisioner cannot plan for a waiver")
	}
	breaks := make([]string, len(c.Targets))
	var wg sync.WaitGroup
	for i, name := range c.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := x.acquire(ctx, bounds[name])
			if err != nil {
				breaks[i] = fmt.Sprintf("%s: %v", name, err)
				return
			}
			defer release()
			sum, deferred, err := pc.PlanSummary(ctx, name, rel)
			switch {
			case err != nil:
				breaks[i] = fmt.Sprintf("%s: could not plan: %v", name, err)
			case deferred != "":
				breaks[i] = fmt.Sprintf("%s: %s", name, deferred)
			default:
				if why := limits.Check(sum); why != "" {
					breaks[i] = fmt.Sprintf("%s: %s", name, why)
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return message{drop: true}
	}
	var notes, targets []string
	for i, b := range breaks {
		if b != "" {
			notes, targets = append(notes, b), append(targets, c.Targets[i])
		}
	}
	if len(notes) > 0 {
		return failed(fmt.Sprintf("approval needed: not every plan keeps within %s (%s)", limits, strings.Join(notes, "; ")), targets...)
	}
	yes := true
	return message{ev: Event{Type: RingPlansChecked, Ring: c.Ring, Passed: &yes,
		Message: fmt.Sprintf("approval waived: the plans of all %d target(s) keep within %s", len(c.Targets), limits)}}
}

// Package temporal runs the engine on Temporal: a run is a durable workflow driven by the same
// pure rings.Decide as the in-process engine; the work its commands ask for (applies, rollbacks,
// gates, drift checks) is carried out as activities by workers inside each boundary, on one task
// queue per boundary, and every event goes to the fleet's journal through an idempotent activity.
package temporal

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollout-dev/rollout/internal/rings"
)

// Names the workflow, its signal and query and its activities are registered under. Renaming one
// breaks the runs under way: add a new name instead.
const (
	WorkflowName = "rollout.run"
	// SignalActed tells a run that something was journaled for it from outside (an operator's
	// approval, pause, resume, abort, override, acknowledgement; the stop-the-line switch): it
	// reads its inbox at once instead of at the next poll.
	SignalActed = "rollout.acted"
	// QueryProgress answers with the run's Progress.
	QueryProgress = "rollout.progress"

	actLoad   = "rollout.load"
	actAppend = "rollout.append"
	actInbox  = "rollout.inbox"
	actWork   = "rollout.work"
)

// RunInput is what a run's workflow is started with: names and settings, no state and no
// credential (the journal is the state).
type RunInput struct {
	RunID  string
	Prefix string // task queues: PREFIX-BOUNDARY, PREFIX-journal
	// PollEvery is how often the run reads its inbox without a signal (default 30s).
	PollEvery time.Duration
	// Heartbeat is how long a worker may be silent during an activity before Temporal takes it
	// for dead and gives the activity to another worker of the boundary (default 1m).
	Heartbeat time.Duration
	// CompareGates are the gates that compare a target with its baseline (the targets the run
	// has not changed yet): only their commands carry the baseline.
	CompareGates []string `json:",omitempty"`
	// MaxHistory: past this many history events, with nothing under way, the workflow continues as
	// new (it replays the journal) so its history stays small (default 10,000).
	MaxHistory int
}

// BoundaryQueue is the task queue of a boundary's workers.
func BoundaryQueue(prefix, boundary string) string {
	if boundary == "" {
		boundary = "default"
	}
	return prefix + "-" + boundary
}

// JournalQueue is the task queue of the workflow and of the activities that read and write the
// journal (and ring-wide gates): served by `rollout worker --journal`, which holds no cloud
// credential.
func JournalQueue(prefix string) string { return prefix + "-journal" }

// WorkflowID is a run's workflow ID: one workflow per run of a fleet, whoever starts it.
func WorkflowID(fleet, runID string) string { return "rollout/" + fleet + "/" + runID }

// Progress is what the workflow answers QueryProgress with: the run's phase and, per task
// queue, the work it waits on there.
type Progress struct {
	Phase   rings.Phase
	Waiting map[string]int // task queue -> activities scheduled or running there
}

// Run is the workflow of one run.
func Run(ctx workflow.Context, in RunInput) (rings.Phase, error) {
	f := newFlow(ctx, in)
	if err := workflow.SetQueryHandler(ctx, QueryProgress, f.progress); err != nil {
		return "", err
	}
	var evs []rings.Event
	if err := workflow.ExecuteLocalActivity(f.journal(), actLoad, in.RunID).Get(ctx, &evs); err != nil {
		return "", err
	}
	f.s = rings.Replay(evs)
	if f.s.Plan.Kind == "" {
		return "", temporal.NewNonRetryableApplicationError("run "+in.RunID+" is not in the journal", ErrPermanent, nil)
	}
	f.Protocol = rings.NewProtocol(f.s, func() time.Time { return workflow.Now(ctx) }, in.CompareGates, f.command)
	f.Plan(f.s.InFlight())
	f.poll()
	if err := f.commit(); err != nil {
		return "", err
	}
	acted := workflow.GetSignalChannel(ctx, SignalActed)
	f.sel.AddReceive(acted, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		f.pollNow = true
	})
	f.armPoll()
	for !rings.Terminal(f.s.Phase) || f.active > 0 || len(f.queue) > 0 {
		if len(f.queue) == 0 {
			f.sel.Select(ctx)
			for f.sel.HasPending() {
				f.sel.Select(ctx)
			}
		}
		evs := f.queue
		f.queue = nil
		for _, ev := range evs {
			f.Handle(ev)
		}
		if f.pollNow {
			f.pollNow = false
			f.poll()
		}
		if err := f.commit(); err != nil {
			return "", err
		}
		if f.active == 0 && len(f.queue) == 0 && !rings.Terminal(f.s.Phase) && historyLength(ctx) > in.maxHistory() {
			return "", workflow.NewContinueAsNewError(ctx, WorkflowName, in)
		}
	}
	return f.s.Phase, nil
}

// historyLength is the workflow's history length so far (a test's environment keeps none: it
// replaces this).
var historyLength = func(ctx workflow.Context) int { return workflow.GetInfo(ctx).GetCurrentHistoryLength() }

func (in RunInput) maxHistory() int {
	if in.MaxHistory <= 0 {
		return 10000
	}
	return in.MaxHistory
}

// flow is one workflow's run: the state, what is under way, and the round being built (as the
// in-process engine's round.go, with Temporal's activities, timers and selector for goroutines).
type flow struct {
	ctx             workflow.Context
	in              RunInput
	s               *rings.State
	sel             workflow.Selector
	active          int                            // activities and timers under way
	queue           []rings.Event                  // outcomes to fold in the next round
	cancels         map[string]workflow.CancelFunc // "gate/T", "bake/R", "window/R"
	waiting         map[string]int                 // task queue -> activities there
	pollNow         bool
	*rings.Protocol // the round being built (rings/protocol.go)
}

func newFlow(ctx workflow.Context, in RunInput) *flow {
	if in.PollEvery <= 0 {
		in.PollEvery = 30 * time.Second
	}
	if in.Heartbeat <= 0 {
		in.Heartbeat = time.Minute
	}
	return &flow{ctx: ctx, in: in, sel: workflow.NewSelector(ctx), cancels: map[string]workflow.CancelFunc{}, waiting: map[string]int{}}
}

func (f *flow) progress() (Progress, error) {
	p := Progress{Phase: "loading", Waiting: map[string]int{}}
	if f.s != nil {
		p.Phase = f.s.Phase
	}
	for q, n := range f.waiting {
		if n > 0 {
			p.Waiting[q] = n
		}
	}
	return p, nil
}

// journal is the context of the journal's activities: local activities of the worker that runs
// the workflow (it serves the journal queue, so it has the journal), retried until the journal
// answers. Local, they cost no round trip through the server's task queue: a run's rounds are as
// many as its events.
func (f *flow) journal() workflow.Context {
	return workflow.WithLocalActivityOptions(f.ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
}

// worker is the context of work on a task queue: heartbeats, retried (on another worker of the
// queue when one dies) unless the error is permanent.
func (f *flow) worker(ctx workflow.Context, queue string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: 24 * time.Hour,
		HeartbeatTimeout:    f.in.Heartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{ErrPermanent}},
	})
}

// commit journals the round (one idempotent activity), and only then starts what it decided.
func (f *flow) commit() error {
	evs, starts, _ := f.Take()
	if len(evs) > 0 {
		var seqs []int64
		if err := workflow.ExecuteLocalActivity(f.journal(), actAppend, AppendInput{RunID: f.s.RunID, After: f.After(), Events: evs}).Get(f.ctx, &seqs); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if len(seqs) != len(evs) {
			return fmt.Errorf("journal: %d events written, %d numbers returned", len(evs), len(seqs))
		}
		f.Journaled(seqs)
	}
	for _, start := range starts {
		start()
	}
	return nil
}

// poll folds what the inbox brings: events others journaled, and the switch's change. The inbox
// is best effort, as in-process: a failed read is tried again at the next poll.
func (f *flow) poll() {
	var evs []rings.Event
	if err := workflow.ExecuteLocalActivity(f.journal(), actInbox, InboxInput{RunID: f.s.RunID, After: f.After(), Switch: f.s.Switch}).Get(f.ctx, &evs); err == nil {
		f.Fold(evs)
	}
}

// armPoll reads the inbox every PollEvery while the run goes on.
func (f *flow) armPoll() {
	f.sel.AddFuture(workflow.NewTimer(f.ctx, f.in.PollEvery), func(workflow.Future) {
		f.pollNow = true
		f.armPoll()
	})
}

// command is what c starts once its round is journaled (the protocol's Act).
func (f *flow) command(c rings.Command) func() {
	switch c.Kind {
	case rings.CmdApply, rings.CmdRollback:
		w := f.s.Work(c)
		return func() { f.work(w, BoundaryQueue(f.in.Prefix, c.Boundary), "") }
	case rings.CmdGate:
		if ev, ok := rings.NoGates(c); ok { // nothing to measure: no activity
			return func() {
				f.Done(c.Target)
				f.queue = append(f.queue, ev)
			}
		}
		w := f.s.Work(c)
		return func() { f.work(w, BoundaryQueue(f.in.Prefix, c.Boundary), "gate/"+c.Target) }
	case rings.CmdCancelGates:
		return func() { f.cancelGates(c) }
	case rings.CmdBake:
		if len(c.Gates) > 0 {
			w := f.s.Work(c)
			return func() { f.work(w, JournalQueue(f.in.Prefix), "bake/"+c.Ring) }
		}
		return func() { f.timer(c.Until, "bake/"+c.Ring, rings.Event{Type: rings.RingBaked, Ring: c.Ring}) }
	case rings.CmdAwaitWindow:
		if !c.Until.IsZero() { // zero: until the switch goes off or the glass is broken
			return func() { f.timer(c.Until, "window/"+c.Ring, rings.Event{Type: rings.RingWindowCheck, Ring: c.Ring}) }
		}
	case rings.CmdCancelWait, rings.CmdCancelBake:
		key := "window/" + c.Ring
		if c.Kind == rings.CmdCancelBake {
			key = "bake/" + c.Ring
		}
		return func() { f.cancel(key) }
	case rings.CmdDriftCheck:
		w := f.s.Work(c)
		return func() { f.driftCheck(w) }
	case rings.CmdPlanCheck:
		w := f.s.Work(c)
		return func() {
			f.perBoundary(w, func(parts []rings.Event) rings.Event { return rings.MergePlanChecks(w.Command.Ring, parts) })
		}
	}
	return nil
}

func (f *flow) cancel(key string) {
	if cancel, ok := f.cancels[key]; ok {
		cancel()
		delete(f.cancels, key)
	}
}

// work schedules w as an activity on queue; its outcome is folded in a later round. key ("":
// none) lets a later command cancel it.
func (f *flow) work(w rings.Work, queue, key string) {
	f.schedule(w, queue, key, func(out WorkOutput, err error) {
		c := w.Command
		if c.Kind == rings.CmdApply || c.Kind == rings.CmdRollback || c.Kind == rings.CmdGate {
			f.Done(c.Target)
		}
		if err == nil {
			f.queue = append(f.queue, out.Events...)
			return
		}
		if ev, ok := failed(c, err); ok {
			f.queue = append(f.queue, ev)
		}
	})
}

func (f *flow) schedule(w rings.Work, queue, key string, done func(WorkOutput, error)) {
	ctx, cancel := workflow.WithCancel(f.ctx)
	if key != "" {
		f.cancels[key] = cancel
	}
	f.active++
	f.waiting[queue]++
	fut := workflow.ExecuteActivity(f.worker(ctx, queue), actWork, WorkInput{RunID: f.s.RunID, Work: w})
	f.sel.AddFuture(fut, func(fut workflow.Future) {
		f.active--
		f.waiting[queue]--
		if key != "" {
			delete(f.cancels, key)
		}
		var out WorkOutput
		done(out, fut.Get(f.ctx, &out))
	})
}

// failed is the outcome of work that did not end on its own: cancelled (a halted ring's gates;
// a bake or wait ended by a decision) or refused for good by its worker.
func failed(c rings.Command, err error) (rings.Event, bool) {
	if temporal.IsCanceledError(err) {
		if c.Kind == rings.CmdGate {
			return rings.Event{Type: rings.TargetGateCancelled, Ring: c.Ring, Target: c.Target, Message: "ring halted"}, true
		}
		return rings.Event{}, false // its outcome is unknown and wanted by no one
	}
	msg := "worker: " + errMessage(err)
	rel := c.Release
	switch c.Kind {
	case rings.CmdApply:
		return rings.Event{Type: rings.TargetApplyFailed, Ring: c.Ring, Target: c.Target, Message: msg, Class: rings.ErrorClass(ErrPermanent), Untouched: isUntouched(err)}, true
	case rings.CmdRollback:
		return rings.Event{Type: rings.TargetRollbackFailed, Ring: c.Ring, Target: c.Target, Release: &rel, Message: msg}, true
	case rings.CmdGate:
		return rings.Event{Type: rings.TargetGateInconclusive, Ring: c.Ring, Target: c.Target, Release: &rel, Gate: "worker", Message: msg}, true
	case rings.CmdBake:
		return rings.Event{Type: rings.RingGateInconclusive, Ring: c.Ring, Gate: "worker", Message: msg}, true
	}
	return rings.Event{Type: rings.RingDriftChecked, Ring: c.Ring, Drift: rings.DriftError, Targets: c.Targets, Message: msg}, true
}

func errMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

func isUntouched(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == ErrPermanent && app.HasDetails() && func() bool {
		var untouched bool
		return app.Details(&untouched) == nil && untouched
	}()
}

// timer folds ev at until, unless cancelled by key first.
func (f *flow) timer(until time.Time, key string, ev rings.Event) {
	ctx, cancel := workflow.WithCancel(f.ctx)
	f.cancels[key] = cancel
	f.active++
	f.sel.AddFuture(workflow.NewTimer(ctx, max(until.Sub(workflow.Now(f.ctx)), 0)), func(fut workflow.Future) {
		f.active--
		if fut.Get(f.ctx, nil) != nil {
			return // cancelled
		}
		delete(f.cancels, key)
		f.queue = append(f.queue, ev)
	})
}

// cancelGates stops a halted ring's gates: those under way are cancelled (their outcome is then
// "ring halted"); those not under way are cancelled at once.
func (f *flow) cancelGates(c rings.Command) {
	for _, t := range c.Targets {
		if cancel, ok := f.cancels["gate/"+t]; ok {
			cancel()
		} else {
			f.queue = append(f.queue, rings.Event{Type: rings.TargetGateCancelled, Ring: c.Ring, Target: t, Message: "ring halted"})
		}
	}
}

// driftCheck checks a ring's targets, each boundary's by its workers, and folds one outcome.
func (f *flow) driftCheck(w rings.Work) {
	f.perBoundary(w, func(parts []rings.Event) rings.Event {
		return rings.MergeDrift(w.Command.Ring, len(w.Command.Targets), parts)
	})
}

// perBoundary carries out a ring's work over its targets as one activity per boundary (on that
// boundary's queue), and folds merge of their outcomes once all are in.
func (f *flow) perBoundary(w rings.Work, merge func([]rings.Event) rings.Event) {
	byBoundary := map[string][]string{}
	for _, t := range w.Command.Targets {
		b := w.Bounds[t]
		byBoundary[b] = append(byBoundary[b], t)
	}
	bounds := make([]string, 0, len(byBoundary))
	for b := range byBoundary {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds) // the order activities are scheduled in is part of the history
	var parts []rings.Event
	left, cancelled := len(bounds), false
	for _, b := range bounds {
		part := w
		part.Command.Targets = byBoundary[b]
		f.schedule(part, BoundaryQueue(f.in.Prefix, b), "", func(out WorkOutput, err error) {
			left--
			switch {
			case err != nil && temporal.IsCanceledError(err):
				cancelled = true
			case err != nil:
				ev, _ := failed(part.Command, err)
				parts = append(parts, ev)
			default:
				parts = append(parts, out.Events...)
			}
			if left == 0 && !cancelled {
				f.queue = append(f.queue, merge(parts))
			}
		})
	}
}

package rings

import (
	"context"
	"fmt"
	"time"

	"github.com/rollout-dev/rollout/internal/resilience"
)

// Run drives the run from state s (new: first is run.started; resumed: s was replayed from the
// journal) until it is finished or waiting for a person. It returns ErrInterrupted when ctx ends
// first, and the journal's error when an append fails. more are events to fold right after first,
// in the same round (an operator's break-glass given with the start).
//
// The loop works in rounds: the events at hand are folded into the state by Decide, each followed
// by the records its commands imply; the whole round is journaled in one transaction; only then is
// anything acted on (workers started, gates cancelled).
func (x *Executor) Run(ctx context.Context, s *State, first Event, more ...Event) error {
	x.setUp()
	r := x.newDriver(ctx, s)
	defer r.stop()
	// A replayed run re-drives what its journal says was under way when the last process stopped,
	// as it stood before this round: what the round itself decides is started by its own commands,
	// and what the round ended (an abort settles work whose outcome is unknown) is not re-driven.
	var redrive []Command
	if s.Plan.Kind != "" {
		redrive = s.InFlight()
	}
	r.handle(first)
	for _, ev := range more {
		r.handle(ev)
	}
	r.plan(s.StillUnderWay(redrive))
	r.commit()
	if x.Detach {
		return r.failure
	}
	r.poll()
	r.commit()
	r.loop()
	for r.active > 0 { // after a journal failure: let workers end before returning
		if m := <-r.msgs; m.done {
			r.active--
		}
	}
	if r.failure != nil {
		return r.failure
	}
	if !Terminal(s.Phase) && s.Phase != PhaseWaiting && s.Phase != PhasePaused && s.Phase != PhaseBlocked {
		return ErrInterrupted
	}
	return nil
}

// setUp makes the executor's bulkheads, rate limiters and breakers for a run.
func (x *Executor) setUp() {
	if x.Clock == nil {
		x.Clock = RealClock
	}
	x.outputs = map[string]map[string]any{}
	x.sems = map[string]chan struct{}{}
	for b, n := range x.Boundaries {
		if n > 0 {
			x.sems[b] = make(chan struct{}, n)
		}
	}
	if x.GlobalLimit > 0 {
		x.global = make(chan struct{}, x.GlobalLimit)
	}
	x.limiters = map[string]*resilience.Limiter{}
	x.breakers = map[string]*resilience.Breaker[ApplyResult]{}
	for b, r := range x.Rates {
		if r > 0 {
			x.limiters[b] = resilience.NewLimiter(r, 1)
		}
	}
}

// driver drives one run in this process (Run): its state, the workers under way, and the round
// being built. (The Temporal workflow is the other driver of the same Protocol.)
type driver struct {
	x       *Executor
	s       *State
	ctx     context.Context
	workCtx context.Context // Terraform work: it ends only when ctx does
	softCtx context.Context // gates and bakes: they stop at the first drain too
	stop    context.CancelFunc
	msgs    chan message
	active  int
	queue   []Event // events produced locally (no worker), handled in order
	// gateCancel stops a target's gates; waits stop a frozen ring's wait or a bake ("kind/ring").
	gateCancel, waits map[string]context.CancelFunc
	failure           error
	*Protocol         // the round being built (protocol.go)
	tick              <-chan time.Time
	stopTick          func()
}

func (x *Executor) newDriver(ctx context.Context, s *State) *driver {
	workCtx, stopRun := context.WithCancel(ctx)
	softCtx, stopSoft := context.WithCancel(workCtx)
	if x.Drain != nil {
		go func() {
			select {
			case <-x.Drain:
				stopSoft()
			case <-softCtx.Done():
			}
		}()
	}
	r := &driver{x: x, s: s, ctx: ctx, workCtx: workCtx, softCtx: softCtx, msgs: make(chan message, 64),
		gateCancel: map[string]context.CancelFunc{}, waits: map[string]context.CancelFunc{}, stopTick: func() {}}
	r.Protocol = NewProtocol(s, x.Clock.Now, x.CompareGates, r.command)
	r.stop = func() { r.stopTick(); stopSoft(); stopRun() }
	if x.Inbox != nil {
		t := time.NewTicker(x.pollEvery())
		r.tick, r.stopTick = t.C, t.Stop
	}
	return r
}

// handle folds an event of this process into the state, to be journaled with this round.
func (r *driver) handle(ev Event) { r.Handle(ev) }

// loop takes workers' results (and the inbox) round by round until nothing is under way.
func (r *driver) loop() {
	for r.failure == nil && (r.active > 0 || len(r.queue) > 0) {
		if len(r.queue) > 0 {
			evs := r.queue
			r.queue = nil
			for _, ev := range evs {
				r.handle(ev)
			}
			r.commit()
			continue
		}
		var round []message
		select {
		case m := <-r.msgs:
			round = append(round, m)
		case <-r.tick:
			r.poll()
			r.commit()
			continue
		}
	drain:
		for len(round) < 512 {
			select {
			case m := <-r.msgs:
				round = append(round, m)
			default:
				break drain
			}
		}
		// What others journaled (an abort, a pause) is folded before the round's results, which
		// may start more work or end the run: a request that came first is acted on first, however
		// fast the work was.
		r.poll()
		r.take(round)
		r.commit()
	}
}

// take folds a round of workers' messages.
func (r *driver) take(round []message) {
	for _, m := range round {
		if m.panic != nil && r.failure == nil {
			r.failure = m.panic
			r.stop()
		}
		if m.done {
			r.active--
			r.Done(m.target)
			if m.ev.Type == TargetGateCancelled || m.ev.Type == TargetVerified || m.ev.Type == TargetGateFailed || m.ev.Type == TargetGateInconclusive {
				delete(r.gateCancel, m.ev.Target)
			}
		}
		if !m.drop && m.ev.Type != "" {
			r.handle(m.ev)
		}
	}
}

// commit journals the round in one transaction, and only then starts what it decided.
func (r *driver) commit() {
	evs, starts, seen := r.Take()
	if r.failure != nil || len(evs) == 0 && len(starts) == 0 && len(seen) == 0 {
		return
	}
	if len(evs) > 0 {
		if err := r.x.Store.Append(context.WithoutCancel(r.ctx), evs...); err != nil {
			r.failure = fmt.Errorf("journal: %w", err)
			r.stop()
			return
		}
	}
	seqs := make([]int64, len(evs))
	for i, ev := range evs {
		seqs[i] = ev.Seq
	}
	r.Journaled(seqs)
	if r.x.Observe != nil {
		for _, ev := range append(seen, evs...) {
			r.x.Observe(ev)
		}
	}
	if r.softCtx.Err() != nil || closed(r.x.Drain) || r.x.Detach {
		return // interrupted or draining: what the journal says is under way is re-driven on resume
	}
	for _, start := range starts {
		start()
	}
}

// poll folds what the inbox brings. The inbox is best effort: a failed read is tried again at
// the next poll, and the journal keeps everything.
func (r *driver) poll() {
	if r.x.Inbox == nil || r.failure != nil {
		return
	}
	if evs, err := r.x.Inbox(r.ctx, r.s, r.After()); err == nil {
		r.Fold(evs)
	}
}

// plan turns Decide's commands into this round's records and what it starts once journaled.
func (r *driver) plan(cmds []Command) { r.Plan(cmds) }

// command is what c starts once its round is journaled (the protocol's Act).
func (r *driver) command(c Command) func() {
	x, s := r.x, r.s
	switch c.Kind {
	case CmdApply:
		return r.start(c.Target, func(send func(Event)) message { return x.apply(r.workCtx, c, send) })
	case CmdRollback:
		return r.start(c.Target, func(send func(Event)) message { return x.rollback(r.workCtx, c, send) })
	case CmdGate:
		return func() { r.startGate(c) }
	case CmdCancelGates:
		return func() { r.cancelGates(c) }
	case CmdBake:
		return func() {
			bctx, cancel := context.WithCancel(r.softCtx)
			r.waits["bake/"+c.Ring] = cancel
			spawn(&r.active, r.msgs, "", func(send func(Event)) message { return x.bake(bctx, c, s.Plan.Release, send) })
		}
	case CmdAwaitWindow:
		return func() {
			wctx, cancel := context.WithCancel(r.softCtx)
			r.waits["window/"+c.Ring] = cancel
			spawn(&r.active, r.msgs, "", func(send func(Event)) message { return x.awaitWindow(wctx, c) })
		}
	case CmdCancelWait, CmdCancelBake:
		key := "window/" + c.Ring
		if c.Kind == CmdCancelBake {
			key = "bake/" + c.Ring
		}
		return func() {
			if cancel, ok := r.waits[key]; ok {
				cancel()
				delete(r.waits, key)
			}
		}
	case CmdDriftCheck:
		w := s.Work(c) // here, in the round: s is not changing
		return func() {
			spawn(&r.active, r.msgs, "", func(send func(Event)) message { return r.x.driftCheck(r.softCtx, c, w.Current, w.Bounds) })
		}
	case CmdPlanCheck:
		w := s.Work(c)
		return func() {
			spawn(&r.active, r.msgs, "", func(send func(Event)) message { return r.x.planCheck(r.softCtx, c, w) })
		}
	}
	return nil
}

// start runs a worker for a target once the round is journaled.
func (r *driver) start(target string, f func(send func(Event)) message) func() {
	return func() { spawn(&r.active, r.msgs, target, f) }
}

func (r *driver) startGate(c Command) {
	x := r.x
	gctx, cancel := context.WithCancel(r.softCtx)
	r.gateCancel[c.Target] = cancel
	spawn(&r.active, r.msgs, c.Target, func(send func(Event)) message { return x.gate(r.softCtx, gctx, c, send) })
}

func (r *driver) cancelGates(c Command) {
	for _, t := range c.Targets {
		if cancel, ok := r.gateCancel[t]; ok {
			cancel()
		} else {
			r.queue = append(r.queue, Event{Type: TargetGateCancelled, Ring: c.Ring, Target: t, Message: "ring halted"})
		}
	}
}

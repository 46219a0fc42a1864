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
	r := x.newRun(ctx, s)
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

// run is one Run: the state, the workers under way, and the round being built.
type run struct {
	x       *Executor
	s       *State
	ctx     context.Context
	runCtx  context.Context // Terraform work: it ends only when ctx does
	softCtx context.Context // gates and bakes: they stop at the first drain too
	stop    context.CancelFunc
	msgs    chan message
	active  int
	queue   []Event // events produced locally (no worker), handled in order
	// gateCancel stops a target's gates; waits stop a frozen ring's wait or a bake ("kind/ring").
	gateCancel, waits map[string]context.CancelFunc
	busy              map[string]bool // targets with an apply, rollback or gate under way here
	failure           error
	own               map[int64]bool // seqs this process journaled that the inbox has not read past yet
	after             int64          // the inbox reads the journal from after this seq
	seen              []Event        // journaled by others, folded in this round: observed after the commit
	pending           []Event        // this round's events, to journal
	toStart           []func()       // what this round starts once journaled
	tick              <-chan time.Time
	stopTick          func()
}

func (x *Executor) newRun(ctx context.Context, s *State) *run {
	runCtx, stopRun := context.WithCancel(ctx)
	softCtx, stopSoft := context.WithCancel(runCtx)
	if x.Drain != nil {
		go func() {
			select {
			case <-x.Drain:
				stopSoft()
			case <-softCtx.Done():
			}
		}()
	}
	r := &run{x: x, s: s, ctx: ctx, runCtx: runCtx, softCtx: softCtx, msgs: make(chan message, 64),
		gateCancel: map[string]context.CancelFunc{}, waits: map[string]context.CancelFunc{}, busy: map[string]bool{},
		own: map[int64]bool{}, after: s.Seen, stopTick: func() {}}
	r.stop = func() { r.stopTick(); stopSoft(); stopRun() }
	if x.Inbox != nil {
		t := time.NewTicker(x.pollEvery())
		r.tick, r.stopTick = t.C, t.Stop
	}
	return r
}

func (r *run) stamp(ev Event) Event {
	ev.V, ev.RunID = EventVersion, r.s.RunID
	if ev.At.IsZero() {
		ev.At = r.x.Clock.Now()
	}
	return ev
}

func (r *run) record(ev Event) { r.pending = append(r.pending, r.stamp(ev)) }

// handle folds an event of this process into the state, to be journaled with this round.
func (r *run) handle(ev Event) {
	ev = r.stamp(ev)
	r.pending = append(r.pending, ev)
	r.plan(Decide(r.s, ev))
}

// loop takes workers' results (and the inbox) round by round until nothing is under way.
func (r *run) loop() {
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
		r.take(round)
		r.commit()
	}
}

// take folds a round of workers' messages.
func (r *run) take(round []message) {
	for _, m := range round {
		if m.panic != nil && r.failure == nil {
			r.failure = m.panic
			r.stop()
		}
		if m.done {
			r.active--
			delete(r.busy, m.target)
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
func (r *run) commit() {
	evs, starts := r.pending, r.toStart
	r.pending, r.toStart = nil, nil
	if r.failure != nil || len(evs) == 0 && len(starts) == 0 && len(r.seen) == 0 {
		return
	}
	if len(evs) > 0 {
		if err := r.x.Store.Append(context.WithoutCancel(r.ctx), evs...); err != nil {
			r.failure = fmt.Errorf("journal: %w", err)
			r.stop()
			return
		}
	}
	for _, ev := range evs {
		r.own[ev.Seq] = true
	}
	// The inbox needs to read only past what this process wrote right after what it has read:
	// while it holds the lease, others' events are rare, so a poll reads those and not the
	// thousands of events of the rounds since the last one (a gap is read past at the next poll).
	for r.own[r.after+1] {
		r.after++
		delete(r.own, r.after)
	}
	if r.x.Observe != nil {
		for _, ev := range append(r.seen, evs...) {
			r.x.Observe(ev)
		}
	}
	r.seen = nil
	if r.softCtx.Err() != nil || closed(r.x.Drain) || r.x.Detach {
		return // interrupted or draining: what the journal says is under way is re-driven on resume
	}
	for _, start := range starts {
		start()
	}
}

// poll folds what the inbox brings: events others journaled (kept out of this round's append) and
// events for this process to journal.
func (r *run) poll() {
	if r.x.Inbox == nil || r.failure != nil {
		return
	}
	evs, err := r.x.Inbox(r.ctx, r.s, r.after)
	if err != nil {
		return // the inbox is best effort: the next poll tries again, and the journal keeps everything
	}
	for _, ev := range evs {
		if ev.Seq == 0 {
			r.handle(ev)
			continue
		}
		r.after = max(r.after, ev.Seq)
		if r.own[ev.Seq] {
			continue
		}
		r.seen = append(r.seen, ev)
		r.plan(Decide(r.s, ev))
	}
	for seq := range r.own {
		if seq <= r.after {
			delete(r.own, seq)
		}
	}
}

// plan turns Decide's commands into this round's records and what it starts once journaled.
func (r *run) plan(cmds []Command) {
	for _, c := range cmds {
		switch c.Kind {
		case CmdApply, CmdRollback, CmdGate:
			// One operation per target at a time, whatever a decision says: the first one
			// stands, and its result drives the state on.
			if r.busy[c.Target] {
				continue
			}
			r.busy[c.Target] = true
		}
		r.command(c)
	}
}

func (r *run) command(c Command) {
	x, s := r.x, r.s
	if ev, ok := s.Record(c); ok {
		r.record(ev)
	}
	switch c.Kind {
	case CmdApply:
		r.start(c.Target, func(send func(Event)) message { return x.apply(r.runCtx, c, send) })
	case CmdRollback:
		r.start(c.Target, func(send func(Event)) message { return x.rollback(r.runCtx, c, send) })
	case CmdGate:
		r.toStart = append(r.toStart, func() { r.startGate(c) })
	case CmdCancelGates:
		r.toStart = append(r.toStart, func() { r.cancelGates(c) })
	case CmdBake:
		r.toStart = append(r.toStart, func() {
			bctx, cancel := context.WithCancel(r.softCtx)
			r.waits["bake/"+c.Ring] = cancel
			spawn(&r.active, r.msgs, "", func(send func(Event)) message { return x.bake(bctx, c, s.Plan.Release, send) })
		})
	case CmdAwaitWindow:
		r.toStart = append(r.toStart, func() {
			wctx, cancel := context.WithCancel(r.softCtx)
			r.waits["window/"+c.Ring] = cancel
			spawn(&r.active, r.msgs, "", func(send func(Event)) message { return x.awaitWindow(wctx, c) })
		})
	case CmdCancelWait, CmdCancelBake:
		key := "window/" + c.Ring
		if c.Kind == CmdCancelBake {
			key = "bake/" + c.Ring
		}
		r.toStart = append(r.toStart, func() {
			if cancel, ok := r.waits[key]; ok {
				cancel()
				delete(r.waits, key)
			}
		})
	case CmdDriftCheck:
		r.toStart = append(r.toStart, func() { r.startDriftCheck(c) })
	}
}

// start runs a worker for a target once the round is journaled.
func (r *run) start(target string, f func(send func(Event)) message) {
	r.toStart = append(r.toStart, func() { spawn(&r.active, r.msgs, target, f) })
}

func (r *run) startGate(c Command) {
	x := r.x
	if x.WantsBaseline != nil && x.WantsBaseline(c.Gates) {
		c.Baseline = r.s.Untouched() // here, between rounds: s is not changing
	}
	gctx, cancel := context.WithCancel(r.softCtx)
	r.gateCancel[c.Target] = cancel
	spawn(&r.active, r.msgs, c.Target, func(send func(Event)) message { return x.gate(r.softCtx, gctx, c, send) })
}

func (r *run) cancelGates(c Command) {
	for _, t := range c.Targets {
		if cancel, ok := r.gateCancel[t]; ok {
			cancel()
		} else {
			r.queue = append(r.queue, Event{Type: TargetGateCancelled, Ring: c.Ring, Target: t, Message: "ring halted"})
		}
	}
}

func (r *run) startDriftCheck(c Command) {
	w := r.s.Work(c) // here, between rounds: s is not changing
	spawn(&r.active, r.msgs, "", func(send func(Event)) message { return r.x.driftCheck(r.softCtx, c, w.Current, w.Bounds) })
}

package rings

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Work is one command of Decide's that does work, with what carrying it out needs of the run's
// state: the run's release (a bake's ring gates) and, for a drift check, each target's current
// release and boundary. It is what a Temporal worker is given: names and releases, no state.
type Work struct {
	Command Command
	Release ReleaseRef            `json:",omitzero"`
	Current map[string]ReleaseRef `json:",omitempty"`
	Bounds  map[string]string     `json:",omitempty"`
	Limits  *PlanLimits           `json:",omitempty"` // a plan check's: the ring's approval.unlessPlans
}

// Work says what carrying out c needs of s (between rounds: s is not changing).
func (s *State) Work(c Command) Work {
	w := Work{Command: c, Release: s.Plan.Release}
	if r := s.ring(c.Ring); c.Kind == CmdPlanCheck && r != nil {
		w.Limits = r.Plan.UnlessPlans
	}
	if c.Kind == CmdDriftCheck || c.Kind == CmdPlanCheck {
		w.Current, w.Bounds = map[string]ReleaseRef{}, map[string]string{}
		for _, name := range c.Targets {
			if t := s.Targets[name]; t != nil {
				w.Bounds[name] = t.Plan.Boundary
				if t.Current != nil {
					w.Current[name] = *t.Current
				}
			}
		}
	}
	return w
}

// Carry carries out one piece of work on this process, as Run's workers do (an apply, a
// rollback, a target's gates, a ring's bake gates, a drift check) and returns the events it
// produced, in order, its outcome last, each stamped with the executor's clock. ok false: ctx
// ended first and the outcome is unknown (nothing of it may be taken as an outcome).
func (x *Executor) Carry(ctx context.Context, w Work) (evs []Event, ok bool) {
	x.carrying.Do(x.setUp)
	var mu sync.Mutex
	send := func(ev Event) {
		if ev.At.IsZero() {
			ev.At = x.Clock.Now()
		}
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
	}
	c := w.Command
	var m message
	switch c.Kind {
	case CmdApply:
		m = x.apply(ctx, c, send)
	case CmdRollback:
		m = x.rollback(ctx, c, send)
	case CmdGate:
		m = x.gate(ctx, ctx, c, send)
	case CmdBake:
		m = x.bake(ctx, c, w.Release, send)
	case CmdDriftCheck:
		m = x.driftCheck(ctx, c, w.Current, w.Bounds)
	case CmdPlanCheck:
		m = x.planCheck(ctx, c, w)
	default:
		panic(fmt.Sprintf("rings: %s is not work a worker carries out", c.Kind))
	}
	if m.drop || ctx.Err() != nil {
		return nil, false
	}
	if m.ev.Type != "" {
		send(m.ev)
	}
	mu.Lock()
	defer mu.Unlock()
	return evs, true
}

// MergeDrift is one ring's drift check from the checks of parts of its targets (one per
// boundary, each by that boundary's workers) of checked targets in all: the worst outcome, every
// target named, every note.
func MergeDrift(ring string, checked int, parts []Event) Event {
	ev := Event{Type: RingDriftChecked, Ring: ring, Drift: DriftClean}
	rank := map[DriftOutcome]int{DriftClean: 0, Drifted: 1, DriftError: 2}
	var notes []string
	for _, p := range parts {
		if rank[p.Drift] > rank[ev.Drift] {
			ev.Drift = p.Drift
		}
		ev.Targets = append(ev.Targets, p.Targets...)
		if p.Drift != DriftClean {
			notes = append(notes, p.Message)
		}
	}
	if len(notes) == 0 {
		notes = append(notes, fmt.Sprintf("%d target(s) match their state", checked))
	}
	ev.Message = strings.Join(notes, "; ")
	return ev
}

// Record is the event a command journals in the round that decides it, before anything of it is
// carried out (ok false: none). Every engine journals exactly these.
func (s *State) Record(c Command) (ev Event, ok bool) {
	switch c.Kind {
	case CmdRecord:
		return Event{Type: c.Type, Ring: c.Ring, Target: c.Target, Message: c.Message, Targets: c.Targets}, true
	case CmdFinish:
		return Event{Type: RunFinished, Phase: c.Phase, Message: s.Reason}, true
	case CmdAwaitApproval:
		return Event{Type: RingApprovalNeeded, Ring: c.Ring, Message: "run `rollout approve " + s.RunID + " --ring " + c.Ring + "`"}, true
	case CmdApply, CmdRollback:
		if c.Redrive { // a re-driven command was journaled as under way by the process that started it
			return Event{}, false
		}
		typ, rel := TargetApplying, c.Release
		if c.Kind == CmdRollback {
			typ = TargetRollingBack
		}
		return Event{Type: typ, Ring: c.Ring, Target: c.Target, Release: &rel}, true
	case CmdBake:
		return Event{Type: RingBakeStarted, Ring: c.Ring, Message: "until " + c.Until.Format(time.RFC3339)}, true
	}
	return Event{}, false
}

// NoGates is the outcome of a target's gate command with no gate to measure: a pass, at once,
// with nothing to carry out or read (ok false: c is not such a command).
func NoGates(c Command) (Event, bool) {
	if c.Kind != CmdGate || len(c.Gates) > 0 {
		return Event{}, false
	}
	rel := c.Release
	return Event{Type: TargetVerified, Ring: c.Ring, Target: c.Target, Release: &rel, Message: "no gates"}, true
}

// MergePlanChecks is one ring's plan check from the checks of parts of its targets (one per
// boundary, each by that boundary's workers): passed only when every part passed.
func MergePlanChecks(ring string, parts []Event) Event {
	passed := len(parts) > 0
	ev := Event{Type: RingPlansChecked, Ring: ring}
	var notes []string
	for _, p := range parts {
		if p.Passed == nil || !*p.Passed {
			passed = false
		}
		ev.Targets = append(ev.Targets, p.Targets...)
		if p.Message != "" && !slices.Contains(notes, p.Message) {
			notes = append(notes, p.Message)
		}
	}
	ev.Passed, ev.Message = &passed, strings.Join(notes, "; ")
	return ev
}

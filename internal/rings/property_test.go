package rings

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The engine's properties, over random fleets, policies and event orders (pgregory.net/rapid):
// applies, gates, rollbacks and bakes succeeding, failing or coming back inconclusive, operators
// approving, pausing, aborting, freezing and overriding, and the driving process dying at any
// point and a new one resuming from the journal. After every step:
//
//   - no target ever has two operations (apply, gate, rollback) in flight at once;
//   - no ring ever has more than its maxParallel targets in flight;
//   - no target of a later ring is applied while an earlier ring has not passed;
//   - replaying the journal so far gives the live state;
//
// and at the end, once every wait is answered, the run is over (never stuck).
//
// `go test -run TestEngineProperties -rapid.checks=20000 ./internal/rings/` runs it longer.

// world is the outside of the engine: what the executor has under way, and the journal.
type world struct {
	t        *rapid.T
	s        *State
	journal  []Event
	inFlight map[string]CommandKind // by target: the operation under way
	cancel   map[string]bool        // by target: its gate was asked to stop
	bakes    map[string]Until       // by ring: a bake under way
	pending  []Event                // events the executor would deliver next (cancelled gates)
	now      time.Time
	seq      int64
}

// Until is a bake's end.
type Until = time.Time

func randomPlan(t *rapid.T) *Plan {
	rel, old := ReleaseRef{Name: "v2", Digest: "d2"}, ReleaseRef{Name: "v1", Digest: "d1"}
	p := &Plan{Kind: KindRelease, Release: rel}
	n := 0
	for i := range rapid.IntRange(1, 4).Draw(t, "rings") {
		rp := RingPlan{Name: fmt.Sprintf("r%d", i), MaxParallel: rapid.IntRange(1, 3).Draw(t, "maxParallel"),
			MaxFailures: rapid.IntRange(0, 2).Draw(t, "maxFailures"), Rollback: rapid.SampledFrom([]string{"target", "ring", "run"}).Draw(t, "scope")}
		if rapid.Bool().Draw(t, "gates") {
			rp.Gates = []string{"g"}
		}
		if rapid.Bool().Draw(t, "bake") {
			rp.Bake = Duration(time.Minute)
		}
		if i > 0 && rapid.IntRange(0, 3).Draw(t, "approval") == 0 {
			rp.Approval = true
		}
		for range rapid.IntRange(1, 5).Draw(t, "targets") {
			tp := TargetPlan{Name: fmt.Sprintf("t%d", n), Boundary: rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "boundary"), Release: rel}
			if rapid.Bool().Draw(t, "deployed") {
				from := old
				tp.From = &from
			}
			rp.Targets = append(rp.Targets, tp)
			n++
		}
		p.Rings = append(p.Rings, rp)
	}
	return p
}

func newWorld(t *rapid.T, p *Plan) *world {
	w := &world{t: t, s: &State{}, inFlight: map[string]CommandKind{}, cancel: map[string]bool{}, bakes: map[string]Until{},
		now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	w.fold(Event{Type: RunStarted, Plan: p}, nil)
	return w
}

// fold journals an event, folds it into the live state, and carries out what Decide returns;
// redrive, on a resume, is what the replayed journal had under way.
func (w *world) fold(ev Event, redrive []Command) {
	w.now = w.now.Add(time.Second)
	w.seq++
	ev.V, ev.RunID, ev.At, ev.Seq = EventVersion, "run", w.now, w.seq
	w.journal = append(w.journal, ev)
	cmds := Decide(w.s, ev)
	for _, c := range cmds {
		w.carryOut(c, false)
	}
	for _, c := range w.s.StillUnderWay(redrive) {
		w.carryOut(c, true)
	}
	w.check()
}

// record journals what the executor would for a decision (Decide ignores it on replay).
func (w *world) record(ev Event) {
	w.seq++
	ev.V, ev.RunID, ev.At, ev.Seq = EventVersion, "run", w.now, w.seq
	w.journal = append(w.journal, ev)
}

func (w *world) carryOut(c Command, redriven bool) {
	switch c.Kind {
	case CmdApply, CmdGate, CmdRollback:
		if k, busy := w.inFlight[c.Target]; busy {
			if redriven {
				return // the executor keeps the first operation (its busy guard)
			}
			w.t.Fatalf("Decide started %s on %s while its %s was in flight", c.Kind, c.Target, k)
		}
		if c.Kind == CmdApply {
			w.checkEarlierRingsPassed(c)
		}
		w.inFlight[c.Target] = c.Kind
		switch {
		case c.Kind == CmdApply && !c.Redrive:
			w.record(Event{Type: TargetApplying, Ring: c.Ring, Target: c.Target, Release: &c.Release})
		case c.Kind == CmdRollback && !c.Redrive:
			w.record(Event{Type: TargetRollingBack, Ring: c.Ring, Target: c.Target, Release: &c.Release})
		}
	case CmdCancelGates:
		// As the executor: a gate under way is stopped (its worker answers cancelled, unless its
		// verdict was on its way already); for one with no worker, the cancellation is queued.
		for _, t := range c.Targets {
			if w.inFlight[t] == CmdGate {
				w.cancel[t] = true
			} else {
				w.pending = append(w.pending, Event{Type: TargetGateCancelled, Ring: c.Ring, Target: t, Message: "ring halted"})
			}
		}
	case CmdBake:
		w.bakes[c.Ring] = c.Until
		if !redriven {
			w.record(Event{Type: RingBakeStarted, Ring: c.Ring})
		}
	case CmdCancelBake:
		delete(w.bakes, c.Ring)
	case CmdAwaitApproval:
		w.record(Event{Type: RingApprovalNeeded, Ring: c.Ring})
	case CmdRecord:
		w.record(Event{Type: c.Type, Ring: c.Ring, Target: c.Target, Message: c.Message, Targets: c.Targets})
	case CmdFinish:
		w.record(Event{Type: RunFinished, Phase: c.Phase, Message: w.s.Reason})
	}
}

func (w *world) checkEarlierRingsPassed(c Command) {
	for _, r := range w.s.Rings {
		if r.Plan.Name == c.Ring {
			return
		}
		if r.Phase != RPassed {
			w.t.Fatalf("applying %s in ring %s while ring %s is %s", c.Target, c.Ring, r.Plan.Name, r.Phase)
		}
	}
}

// check holds after every event: at most maxParallel targets of a ring in flight, and the journal
// replays to the live state.
func (w *world) check() {
	for _, r := range w.s.Rings {
		n := 0
		for _, tp := range r.Plan.Targets {
			if _, ok := w.inFlight[tp.Name]; ok {
				n++
			}
		}
		if n > max(r.Plan.MaxParallel, 1) {
			w.t.Fatalf("ring %s has %d targets in flight, maxParallel %d; in flight %v\n%s\njournal:\n%s", r.Plan.Name, n, r.Plan.MaxParallel, w.inFlight, project(w.s), dump(w.journal))
		}
	}
	if got, want := project(Replay(w.journal)), project(w.s); got != want {
		w.t.Fatalf("the journal replays to\n%s\nbut the live state is\n%s", got, want)
	}
}

// project is what a report shows of a state, as text to compare.
func project(s *State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s ring %d reason %q paused %v aborted %v\n", s.Phase, s.Ring, s.Reason, s.Paused != nil, s.Aborted != nil)
	for _, r := range s.Rings {
		fmt.Fprintf(&b, "  %s %s failures %d until %s\n", r.Plan.Name, r.Phase, r.Failures, r.BakeUntil.Format(time.TimeOnly))
		for _, tp := range r.Plan.Targets {
			t := s.Targets[tp.Name]
			cur := "-"
			if t.Current != nil {
				cur = t.Current.Name
			}
			fmt.Fprintf(&b, "    %s %s %s\n", tp.Name, t.Phase, cur)
		}
	}
	return b.String()
}

// step draws one thing that happens next, among those that can.
func (w *world) step() {
	var can []func()
	if len(w.pending) > 0 {
		can = append(can, func() { ev := w.pending[0]; w.pending = w.pending[1:]; w.deliver(ev) })
	}
	for _, target := range sortedKeys(w.inFlight) {
		can = append(can, func() { w.complete(target, rapid.IntRange(0, 9).Draw(w.t, "outcome")) })
	}
	for _, ring := range sortedKeys(w.bakes) {
		can = append(can, func() { w.completeBake(ring, rapid.IntRange(0, 9).Draw(w.t, "bake outcome")) })
	}
	can = append(can, w.operatorActs()...)
	can = append(can, w.crash)
	rapid.SampledFrom(can).Draw(w.t, "what happens")()
}

// deliver folds an event a worker returns (its operation is no longer in flight; a queued
// cancellation belongs to no worker).
func (w *world) deliver(ev Event) {
	if ev.Type != TargetGateCancelled || w.inFlight[ev.Target] == CmdGate {
		delete(w.inFlight, ev.Target)
		delete(w.cancel, ev.Target)
	}
	w.fold(ev, nil)
}

// complete ends the operation under way on target: 0-6 success, 7-8 failure, 9 inconclusive.
func (w *world) complete(target string, outcome int) {
	switch w.inFlight[target] {
	case CmdApply:
		if outcome >= 7 {
			w.deliver(Event{Type: TargetApplyFailed, Target: target, Message: "boom"})
		} else {
			w.deliver(Event{Type: TargetApplied, Target: target})
		}
	case CmdGate:
		switch {
		case w.cancel[target] && outcome < 8: // stopped; 8 and 9: the verdict came first
			w.deliver(Event{Type: TargetGateCancelled, Target: target, Message: "ring halted"})
		case outcome == 9:
			w.deliver(Event{Type: TargetGateInconclusive, Target: target, Gate: "g", Message: "no data"})
		case outcome >= 7:
			w.deliver(Event{Type: TargetGateFailed, Target: target, Gate: "g", Message: "unhealthy"})
		default:
			w.deliver(Event{Type: TargetVerified, Target: target})
		}
	case CmdRollback:
		if outcome >= 8 {
			w.deliver(Event{Type: TargetRollbackFailed, Target: target, Message: "boom"})
		} else {
			w.deliver(Event{Type: TargetRolledBack, Target: target})
		}
	}
}

func (w *world) completeBake(ring string, outcome int) {
	delete(w.bakes, ring)
	switch {
	case outcome == 9:
		w.fold(Event{Type: RingGateInconclusive, Ring: ring, Gate: "slo", Message: "no data"}, nil)
	case outcome >= 8:
		w.fold(Event{Type: RingGateFailed, Ring: ring, Gate: "slo", Message: "errors"}, nil)
	default:
		w.fold(Event{Type: RingBaked, Ring: ring}, nil)
	}
}

// operatorActs are the acts an operator could take now.
func (w *world) operatorActs() []func() {
	s := w.s
	if Terminal(s.Phase) {
		return nil
	}
	acts := []func(){
		func() { w.fold(Event{Type: RunPaused, Actor: "op"}, nil) },
		func() { w.fold(Event{Type: RunUnpaused, Actor: "op"}, nil) },
		func() { w.fold(Event{Type: RunAbortRequested, Actor: "op", Message: "stop"}, nil) },
		func() { w.fold(Event{Type: RunAbortRequested, Actor: "op", Message: "undo", Rollback: true}, nil) },
		func() { w.fold(Event{Type: FreezeChanged, Switch: &Switch{Actor: "op", Reason: "incident"}}, nil) },
		func() { w.fold(Event{Type: FreezeChanged}, nil) },
		func() { w.fold(Event{Type: GatesRemeasure, Actor: "op"}, nil) },
	}
	if r := s.Rings[s.Ring]; r.Phase == RApproval {
		acts = append(acts, func() { w.fold(Event{Type: RingApproved, Ring: r.Plan.Name, Actor: "op"}, nil) })
	}
	for _, t := range s.Targets {
		if t.Phase == TInconclusive {
			name := t.Plan.Name
			acts = append(acts, func() {
				w.fold(Event{Type: GateOverridden, Target: name, Gate: "g", Passed: ptr(rapid.Bool().Draw(w.t, "pass")), Actor: "op"}, nil)
			})
		}
	}
	if r := s.Rings[s.Ring]; r.Phase == RInconclusive {
		acts = append(acts, func() {
			w.fold(Event{Type: GateOverridden, Ring: r.Plan.Name, Gate: "slo", Passed: ptrTrue(), Actor: "op"}, nil)
		})
	}
	return acts
}

// crash: the driving process dies; everything it had under way is lost (its outcome unknown), and
// a new process resumes the run from the journal, re-driving what the journal says was under way.
func (w *world) crash() {
	if Terminal(w.s.Phase) {
		return
	}
	w.s = Replay(w.journal)
	w.inFlight, w.cancel, w.bakes, w.pending = map[string]CommandKind{}, map[string]bool{}, map[string]Until{}, nil
	w.fold(Event{Type: RunResumed}, w.s.InFlight())
}

// settle answers every wait and lets every operation succeed, until the run is over.
func (w *world) settle() {
	for i := 0; i < 1000 && !Terminal(w.s.Phase); i++ {
		s := w.s
		r := s.Rings[s.Ring]
		switch {
		case len(w.pending) > 0:
			ev := w.pending[0]
			w.pending = w.pending[1:]
			w.deliver(ev)
		case len(w.inFlight) > 0:
			w.complete(sortedKeys(w.inFlight)[0], 0)
		case len(w.bakes) > 0:
			w.completeBake(sortedKeys(w.bakes)[0], 0)
		case s.Switch != nil:
			w.fold(Event{Type: FreezeChanged}, nil)
		case s.Paused != nil:
			w.fold(Event{Type: RunUnpaused, Actor: "op"}, nil)
		case r.Phase == RApproval:
			w.fold(Event{Type: RingApproved, Ring: r.Plan.Name, Actor: "op"}, nil)
		case r.Phase == RInconclusive:
			w.fold(Event{Type: GateOverridden, Ring: r.Plan.Name, Gate: "slo", Passed: ptrTrue(), Actor: "op"}, nil)
		case len(inconclusiveIn(s)) > 0:
			w.fold(Event{Type: GateOverridden, Target: inconclusiveIn(s)[0], Gate: "g", Passed: ptrTrue(), Actor: "op"}, nil)
		default:
			w.t.Fatalf("the run is stuck: %s, nothing under way and nothing to answer\n%s\njournal:\n%s", s.Phase, project(s), dump(w.journal))
		}
	}
	if !Terminal(w.s.Phase) {
		w.t.Fatalf("the run did not end: %s", project(w.s))
	}
	if err := CheckOneOperationAtATime(w.journal); err != nil {
		w.t.Fatal(err)
	}
}

func dump(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %d %s ring=%s target=%s phase=%s %s\n", ev.Seq, ev.Type, ev.Ring, ev.Target, ev.Phase, ev.Message)
	}
	return b.String()
}

func inconclusiveIn(s *State) []string {
	var out []string
	for _, tp := range s.Rings[s.Ring].Plan.Targets {
		if s.Targets[tp.Name].Phase == TInconclusive {
			out = append(out, tp.Name)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEngineProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t, randomPlan(t))
		for range rapid.IntRange(0, 60).Draw(t, "steps") {
			if Terminal(w.s.Phase) {
				break
			}
			w.step()
		}
		w.settle()
	})
}

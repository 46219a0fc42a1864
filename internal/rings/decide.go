package rings

import (
	"fmt"
	"slices"
	"time"
)

// TargetPhase is where a target is in a run.
type TargetPhase string

// Target phases.
const (
	TPending         TargetPhase = "pending"
	TApplying        TargetPhase = "applying"
	TGating          TargetPhase = "gating"
	TVerified        TargetPhase = "verified"
	TFailed          TargetPhase = "failed"
	TUnverified      TargetPhase = "unverified" // applied, gates stopped because the ring halted
	TRollbackPending TargetPhase = "rollback_pending"
	TRollingBack     TargetPhase = "rolling_back"
	TRolledBack      TargetPhase = "rolled_back"
	TRollbackFailed  TargetPhase = "rollback_failed"
	TRollbackSkipped TargetPhase = "rollback_skipped"
	TInconclusive    TargetPhase = "inconclusive" // applied; its gates were inconclusive: a human decides
)

// RingPhase is where a ring is in a run.
type RingPhase string

// Ring phases.
const (
	RPending  RingPhase = "pending"
	RApproval RingPhase = "awaiting_approval"
	RApplying RingPhase = "applying"
	RBaking   RingPhase = "baking"
	RPassed   RingPhase = "passed"
	RHalted   RingPhase = "halted"
	// RInconclusive: the bake's ring gates were inconclusive; a human decides.
	RInconclusive RingPhase = "inconclusive"
	RFrozen       RingPhase = "frozen"      // it may not start now (a freeze window or the stop-the-line switch)
	RDriftCheck   RingPhase = "drift_check" // its targets' refresh-only plans are under way
	RDrifted      RingPhase = "drifted"     // drift found and the ring blocks on it: a human acknowledges
	RPlanCheck    RingPhase = "plan_check"  // its targets' plans are checked: its approval may be waived
	// RFailed: a manual rollback's ring in which some target could not be returned (a rollback run
	// goes on with its other rings, and ends rollback_failed).
	RFailed RingPhase = "failed"
)

// State is a run as far as its journal tells. It is built only by Decide.
type State struct {
	RunID   string
	Plan    Plan
	Phase   Phase
	Ring    int // index of the current ring
	Rings   []*RingState
	Targets map[string]*TargetState
	Started time.Time
	Updated time.Time
	Reason  string // why the run halted, when it did
	Seen    int64  // the number (Seq) of the last journaled event folded in
	// Operators' acts that hold for the rest of the run: who, when, why.
	Paused     *ApprovalRecord // nothing new starts until unpaused
	Aborted    *ApprovalRecord
	BreakGlass *ApprovalRecord // freeze windows and the switch do not apply any more
	Switch     *Switch         // the stop-the-line switch, as far as the run saw it

	abortRollback  bool       // the abort asked to roll back everything the run changed
	rollbackGroups [][]string // built once when the run halts: targets to roll back, newest ring first
}

// RingState is one ring of a run as far as its journal tells.
type RingState struct {
	Plan      RingPlan
	Phase     RingPhase
	Failures  int
	BakeUntil time.Time
	Approvals []ApprovalRecord
	Started   time.Time
	Ended     time.Time
	Reason    string
	gateFail  bool // halted by a ring gate rather than by target failures
	// Waived: its approval was waived because every plan kept within approval.unlessPlans (the
	// record says which checks passed); PlanCheck: the check was made (passed or not).
	Waived    *ApprovalRecord
	PlanCheck bool
	// Drift is the ring's drift check, once done; DriftAck who acknowledged what it found.
	Drift    *DriftResult
	DriftAck *ApprovalRecord

	count map[TargetPhase]int // targets of the ring by phase
	next  int                 // index in Plan.Targets before which no target is pending
}

// DriftResult is what a ring's drift check found.
type DriftResult struct {
	Outcome DriftOutcome `json:"outcome"`
	Targets []string     `json:"targets,omitempty"`
	Message string       `json:"message,omitempty"`
	At      time.Time    `json:"at"`
}

// ApprovalRecord is who did something to a run, when and why: an approval, a pause, an abort.
type ApprovalRecord struct {
	Actor  string         `json:"actor"`
	At     time.Time      `json:"at"`
	Reason string         `json:"reason,omitempty"`
	Proof  *ApprovalProof `json:"proof,omitempty"` // nil: the name was given, not proven
}

// TargetState is one target of a run as far as its journal tells.
type TargetState struct {
	Plan    TargetPlan
	Ring    int
	Phase   TargetPhase
	Current *ReleaseRef // the release the target runs, as far as this run knows
	Summary *PlanSummary
	// ApplyMode is how its last apply ran (direct or plan-first; "" before any, or when an earlier
	// version journaled it).
	ApplyMode string
	Outputs   map[string]any
	Message   string
	Started   time.Time
	Ended     time.Time
	// Untouched: its apply failed before Terraform ran (its boundary was refused): nothing to undo.
	Untouched bool
	// Queued: its apply or rollback waits for a slot of its boundary (maxParallel) or of the
	// process; its phase stays applying or rolling back.
	Queued bool

	gate string // the inconclusive gate
}

// Decide folds one event into the run's state and returns the commands to start because of it.
// It does no I/O and reads no clock: time comes in ev.At. Replaying a journal is calling Decide
// for each event in order and ignoring the commands; InFlight then says what to re-drive. Each
// event type has its handler (handlers.go); a type without one (a record Decide itself implied,
// or one of a later version) changes nothing.
func Decide(s *State, ev Event) []Command {
	s.Seen = max(s.Seen, ev.Seq)
	if ev.Type == RunStarted && ev.Plan != nil && s.Plan.Kind == "" {
		s.init(ev)
		s.Switch = ev.Switch
		return s.startRing(0, ev.At)
	}
	if s.Plan.Kind == "" || Terminal(s.Phase) {
		return nil
	}
	s.Updated = ev.At
	h := handlers[ev.Type]
	if h == nil {
		return nil
	}
	return h(s, ev, s.Targets[ev.Target])
}

func record(typ EventType, ring, msg string) Command {
	return Command{Kind: CmdRecord, Type: typ, Ring: ring, Message: msg}
}

func (s *State) init(ev Event) {
	s.RunID, s.Plan, s.Phase, s.Started, s.Updated = ev.RunID, *ev.Plan, PhaseRunning, ev.At, ev.At
	s.Targets = map[string]*TargetState{}
	for i, rp := range s.Plan.Rings {
		s.Rings = append(s.Rings, &RingState{Plan: rp, Phase: RPending, count: map[TargetPhase]int{TPending: len(rp.Targets)}})
		for _, tp := range rp.Targets {
			current := tp.From
			if tp.Runs != nil {
				current = tp.Runs
			}
			s.Targets[tp.Name] = &TargetState{Plan: tp, Ring: i, Phase: TPending, Current: current}
		}
	}
}

// set moves a target to a phase, keeping its ring's counts: every phase change goes through here,
// so that scheduling reads counts instead of scanning the ring's targets on every event.
func (s *State) set(t *TargetState, phase TargetPhase) {
	r := s.Rings[t.Ring]
	r.count[t.Phase]--
	r.count[phase]++
	t.Phase, t.Queued = phase, false
}

// inFlight counts targets with Terraform work or gates under way, in one ring or (r nil) all.
func (s *State) inFlight(r *RingState, phases ...TargetPhase) int {
	n := 0
	for _, ring := range s.Rings {
		if r == nil || ring == r {
			for _, p := range phases {
				n += ring.count[p]
			}
		}
	}
	return n
}

// RingNamed is the run's ring of that name, or nil.
func (s *State) RingNamed(name string) *RingState { return s.ring(name) }

func (s *State) ring(name string) *RingState {
	for _, r := range s.Rings {
		if r.Plan.Name == name {
			return r
		}
	}
	return nil
}

func approved(r *RingState) bool {
	if r.Waived != nil {
		return true
	}
	who := map[string]bool{}
	for _, a := range r.Approvals {
		if len(r.Plan.Approvers) == 0 || slices.Contains(r.Plan.Approvers, a.Actor) {
			who[a.Actor] = true
		}
	}
	return len(who) >= max(r.Plan.Quorum, 1)
}

func (s *State) startRing(i int, at time.Time) []Command {
	s.Ring = i
	s.Rings[i].Started = at
	return s.enterRing(at)
}

// enterRing takes the current ring through what stands before its first apply, in order: a pause,
// its freeze calendar and the stop-the-line switch, its approval, its drift check. Each either
// holds the ring (the run pauses, is blocked, or waits) or lets it on to the next; called again
// when what held it changes.
func (s *State) enterRing(at time.Time) []Command {
	r := s.Rings[s.Ring]
	if s.Paused != nil {
		s.Phase = PhasePaused
		return nil
	}
	var cmds []Command
	if len(r.Plan.Targets) == 0 { // a ring opened for targets still to come: nothing to apply or approve
		r.Phase, r.Reason, s.Phase = RApplying, "", PhaseRunning
		return append(cmds, s.progress(at)...)
	}
	if why, until := s.frozen(r, at); why != "" {
		again := r.Phase == RFrozen && r.Reason == why
		r.Phase, r.Reason, s.Phase = RFrozen, why, PhaseBlocked
		if !again {
			msg := why
			if !until.IsZero() {
				msg += "; it may start at " + until.UTC().Format(time.RFC3339)
			}
			cmds = append(cmds, record(RingFrozen, r.Plan.Name, msg))
		}
		if r.Plan.Freeze != nil && r.Plan.Freeze.Wait {
			cmds = append(cmds, Command{Kind: CmdAwaitWindow, Ring: r.Plan.Name, Until: until})
		}
		return cmds
	}
	if r.Phase == RFrozen {
		r.Reason = ""
		cmds = append(cmds, Command{Kind: CmdCancelWait, Ring: r.Plan.Name})
	}
	if r.Plan.Approval && !approved(r) {
		if r.Plan.UnlessPlans != nil && !r.PlanCheck {
			r.Phase, s.Phase = RPlanCheck, PhaseRunning
			return append(cmds, Command{Kind: CmdPlanCheck, Ring: r.Plan.Name, Targets: ringTargets(r)})
		}
		r.Phase, s.Phase = RApproval, PhaseWaiting
		return append(cmds, Command{Kind: CmdAwaitApproval, Ring: r.Plan.Name})
	}
	if mode := r.Plan.DriftCheck; mode == DriftBlock || mode == DriftWarn {
		if r.Drift == nil {
			if deployed := s.deployed(r); len(deployed) > 0 {
				r.Phase, s.Phase = RDriftCheck, PhaseRunning
				return append(cmds, Command{Kind: CmdDriftCheck, Ring: r.Plan.Name, Targets: deployed})
			}
		} else if r.Drift.Outcome != DriftClean && mode == DriftBlock && r.DriftAck == nil {
			r.Phase, s.Phase = RDrifted, PhaseWaiting
			r.Reason = fmt.Sprintf("drift check: %s (%s)", r.Drift.Outcome, r.Drift.Message)
			return append(cmds, record(RingPaused, r.Plan.Name, r.Reason+fmt.Sprintf(
				": acknowledge with `rollout drift ack %s --ring %s --reason TEXT`, or reconcile it and `rollout resume %s` to check again, or `rollout abort %s`", s.RunID, r.Plan.Name, s.RunID, s.RunID)))
		}
	}
	r.Phase, r.Reason, s.Phase = RApplying, "", PhaseRunning
	cmds = append(cmds, record(RingStarted, r.Plan.Name, ""))
	return append(cmds, s.progress(at)...)
}

// ringTargets are the names of the ring's targets.
func ringTargets(r *RingState) []string {
	out := make([]string, 0, len(r.Plan.Targets))
	for _, tp := range r.Plan.Targets {
		out = append(out, tp.Name)
	}
	return out
}

// deployed lists the ring's targets that run some release already: a drift check looks at them
// (a first deployment has nothing to drift from).
func (s *State) deployed(r *RingState) []string {
	var out []string
	for _, tp := range r.Plan.Targets {
		if s.Targets[tp.Name].Current != nil {
			out = append(out, tp.Name)
		}
	}
	return out
}

// frozen says why the ring may not start at t (empty: it may), and until when.
func (s *State) frozen(r *RingState, at time.Time) (string, time.Time) {
	if s.BreakGlass != nil || s.Plan.Kind == KindRollback { // a rollback is never frozen
		return "", time.Time{}
	}
	if s.Switch != nil {
		return fmt.Sprintf("the stop-the-line switch is on (by %s: %s)", s.Switch.Actor, s.Switch.Reason), time.Time{}
	}
	return r.Plan.Freeze.Blocked(at)
}

// setSwitch folds the stop-the-line switch as seen now; a ring it held is entered again.
func (s *State) setSwitch(sw *Switch, at time.Time) []Command {
	was := s.Switch
	s.Switch = sw
	if was != nil && sw == nil && s.Phase == PhaseBlocked {
		return s.enterRing(at)
	}
	return nil
}

// quiet says whether nothing of the run is under way: no Terraform run, gate, bake or drift check.
func (s *State) quiet() bool {
	r := s.Rings[s.Ring]
	return s.inFlight(nil, TApplying, TGating, TRollingBack) == 0 && r.Phase != RBaking && r.Phase != RDriftCheck
}

// abort ends the run on an operator's word: nothing new starts, gates and bakes stop, Terraform
// runs under way finish; then the run is aborted, or (Outcome "rollback") everything it changed
// is rolled back first, newest ring first. A rollback already under way goes on to its end.
func (s *State) abort(ev Event) []Command {
	if s.Aborted != nil || s.Phase == PhaseRollingBack {
		return nil
	}
	s.Aborted = &ApprovalRecord{Actor: ev.Actor, At: ev.At, Reason: ev.Message}
	why := fmt.Sprintf("aborted by %s: %s", ev.Actor, ev.Message)
	r := s.Rings[s.Ring]
	var cmds []Command
	switch r.Phase {
	case RFrozen:
		cmds = append(cmds, Command{Kind: CmdCancelWait, Ring: r.Plan.Name})
	case RBaking:
		cmds = append(cmds, Command{Kind: CmdCancelBake, Ring: r.Plan.Name})
	}
	s.Paused = nil
	if ev.Rollback {
		s.abortRollback = true
		cmds = append(cmds, s.halt(r, ev.At, why)...)
		s.Reason = why
		return cmds
	}
	r.Phase, r.Reason, r.Ended = RHalted, why, ev.At
	s.Phase, s.Reason = PhaseAborting, why
	cmds = append(cmds, record(RingHalted, r.Plan.Name, why))
	if gating := s.targetsIn(r, TGating); len(gating) > 0 {
		cmds = append(cmds, Command{Kind: CmdCancelGates, Ring: r.Plan.Name, Targets: gating})
	}
	return append(cmds, s.progress(ev.At)...)
}

func (s *State) nextRing(at time.Time) []Command {
	if s.Ring+1 < len(s.Rings) {
		return s.startRing(s.Ring+1, at)
	}
	outcome := PhaseSucceeded
	if s.Plan.Kind == KindRollback && s.inFlight(nil, TFailed) > 0 {
		outcome = PhaseRollbackFailed
	}
	return s.finish(outcome)
}

func (s *State) finish(outcome Phase) []Command {
	s.Phase = outcome
	return []Command{{Kind: CmdFinish, Phase: outcome}}
}

// targetFailed applies the ring's failure budget to one more failed target.
func (s *State) targetFailed(t *TargetState, at time.Time) []Command {
	r := s.Rings[t.Ring]
	r.Failures++
	if r.Phase != RApplying || s.Phase == PhaseRollingBack || s.Phase == PhaseAborting {
		return s.progress(at)
	}
	if r.Failures > r.Plan.MaxFailures {
		return s.halt(r, at, fmt.Sprintf("failed targets (%d) > maxFailures (%d); last: %s: %s", r.Failures, r.Plan.MaxFailures, t.Plan.Name, t.Message))
	}
	// Within the budget: the ring goes on, and the failed target alone returns to its last known good.
	var cmds []Command
	if r.Plan.Rollback != RollbackNone {
		cmds = s.rollbackOne(t)
	}
	return append(cmds, s.progress(at)...)
}

func (s *State) rollbackOne(t *TargetState) []Command {
	if t.Untouched {
		s.set(t, TRollbackSkipped)
		t.Message = "Terraform never ran there (" + t.Message + "): nothing to undo"
		return []Command{{Kind: CmdRecord, Type: TargetRollbackSkip, Target: t.Plan.Name, Message: t.Message}}
	}
	if t.Plan.From == nil {
		s.set(t, TRollbackSkipped)
		t.Message = "no last known good release to return to (first deployment): left as is"
		return []Command{{Kind: CmdRecord, Type: TargetRollbackSkip, Target: t.Plan.Name, Message: t.Message}}
	}
	s.set(t, TRollingBack)
	return []Command{{Kind: CmdRollback, Ring: s.Rings[t.Ring].Plan.Name, Target: t.Plan.Name, Boundary: t.Plan.Boundary, Release: *t.Plan.From, Gates: s.Rings[t.Ring].Plan.Gates}}
}

// halt stops the ring from starting anything new; once what is in flight settles, the rollback
// its scope asks for begins (see progressRollback).
func (s *State) halt(r *RingState, at time.Time, reason string) []Command {
	r.Phase, r.Reason, r.Ended = RHalted, reason, at
	s.Reason = fmt.Sprintf("ring %s halted: %s", r.Plan.Name, reason)
	s.Phase = PhaseRollingBack
	cmds := []Command{record(RingHalted, r.Plan.Name, reason)}
	if gating := s.targetsIn(r, TGating); len(gating) > 0 {
		cmds = append(cmds, Command{Kind: CmdCancelGates, Ring: r.Plan.Name, Targets: gating})
	}
	return append(cmds, s.progress(at)...)
}

func (s *State) targetsIn(r *RingState, phases ...TargetPhase) []string {
	var out []string
	for _, tp := range r.Plan.Targets {
		if slices.Contains(phases, s.Targets[tp.Name].Phase) {
			out = append(out, tp.Name)
		}
	}
	return out
}

// progress starts what the state allows now: targets within maxParallel, the bake once a ring's
// targets are done, the next ring once it passed, or the next step of a rollback.
func (s *State) progress(at time.Time) []Command {
	switch s.Phase {
	case PhaseRollingBack:
		return s.progressRollback()
	case PhaseAborting:
		if s.inFlight(nil, TApplying, TGating, TRollingBack) == 0 {
			return s.finish(PhaseAborted)
		}
		return nil
	case PhaseRunning:
	default:
		return nil
	}
	r := s.Rings[s.Ring]
	if r.Phase != RApplying {
		return nil
	}
	if s.Paused != nil { // nothing new starts; the run is paused once what is under way settled
		if s.quiet() {
			s.Phase = PhasePaused
		}
		return nil
	}
	var cmds []Command
	active := s.inFlight(r, TApplying, TGating, TRollingBack)
	paused := r.count[TInconclusive] > 0 // no new target starts while a gate awaits a human
	for ; !paused && r.next < len(r.Plan.Targets) && active < max(r.Plan.MaxParallel, 1); r.next++ {
		t := s.Targets[r.Plan.Targets[r.next].Name]
		if t.Phase != TPending {
			continue
		}
		s.set(t, TApplying)
		t.Started = at
		cmds = append(cmds, Command{Kind: CmdApply, Ring: r.Plan.Name, Target: t.Plan.Name, Boundary: t.Plan.Boundary, Release: t.Plan.Release, Back: s.Plan.Kind == KindRollback})
		active++
	}
	if active > 0 {
		return cmds
	}
	if paused {
		s.Phase = PhaseWaiting
		names := s.targetsIn(r, TInconclusive)
		first := s.Targets[names[0]]
		return append(cmds, record(RingPaused, r.Plan.Name, fmt.Sprintf("gates inconclusive on %v%s", names, s.decideHint(r.Plan.Name, names[0], first.gate))))
	}
	if r.count[TPending] > 0 {
		return cmds
	}
	if r.Plan.Bake > 0 || len(r.Plan.RingGates) > 0 {
		r.Phase, r.BakeUntil = RBaking, at.Add(r.Plan.Bake.D())
		return append(cmds, Command{Kind: CmdBake, Ring: r.Plan.Name, Until: r.BakeUntil, Gates: r.Plan.RingGates})
	}
	if failed := s.targetsIn(r, TFailed); s.Plan.Kind == KindRollback && len(failed) > 0 {
		r.Phase, r.Ended = RFailed, at
		r.Reason = fmt.Sprintf("%d of %d target(s) could not be rolled back; first %s: %s", len(failed), len(r.Plan.Targets), failed[0], s.Targets[failed[0]].Message)
		if s.Reason == "" {
			s.Reason = "ring " + r.Plan.Name + ": " + r.Reason
		}
		cmds = append(cmds, record(RingHalted, r.Plan.Name, r.Reason))
		return append(cmds, s.nextRing(at)...)
	}
	r.Phase, r.Ended = RPassed, at
	cmds = append(cmds, record(RingPassed, r.Plan.Name, ""))
	return append(cmds, s.nextRing(at)...)
}

func (s *State) progressRollback() []Command {
	if s.inFlight(nil, TApplying, TGating) > 0 {
		return nil // wait for forward work in flight to settle
	}
	var cmds []Command
	if s.rollbackGroups == nil {
		cmds = s.buildRollback()
	}
	for _, group := range s.rollbackGroups {
		r := s.Rings[s.Targets[group[0]].Ring]
		// Every rollback of the ring counts against its maxParallel, its group's and one started
		// before the halt (a failed target within the budget) alike.
		active := r.count[TRollingBack]
		for _, name := range group {
			if t := s.Targets[name]; t.Phase == TRollbackPending && active < max(r.Plan.MaxParallel, 1) {
				cmds = append(cmds, s.rollbackOne(t)...)
				if t.Phase == TRollingBack {
					active++
				}
			}
		}
		if active > 0 {
			return cmds // one ring's group at a time, newest ring first
		}
	}
	if s.inFlight(nil, TRollingBack) > 0 {
		return cmds
	}
	outcome := PhaseRolledBack
	switch {
	case s.inFlight(nil, TRollbackFailed) > 0 || s.Plan.Kind == KindRollback:
		outcome = PhaseRollbackFailed
	case s.Aborted != nil: // an abort is an operator's act, not a failed gate: the run is aborted
		outcome = PhaseAborted
		s.Reason = fmt.Sprintf("aborted by %s: %s; what the run changed was rolled back", s.Aborted.Actor, s.Aborted.Reason)
	}
	return append(cmds, s.finish(outcome)...)
}

// buildRollback fixes which targets the halt rolls back, by the halted ring's scope:
// target: the failed targets (the whole ring when a ring gate failed); ring: every target of the
// ring this run changed; run: every target this run changed, newest ring first.
func (s *State) buildRollback() []Command {
	r := s.Rings[s.Ring]
	changed := func(ri int, onlyFailed bool) []string {
		var out []string
		for _, tp := range s.Rings[ri].Plan.Targets {
			switch s.Targets[tp.Name].Phase {
			case TFailed:
				out = append(out, tp.Name)
			case TVerified, TUnverified, TInconclusive:
				if !onlyFailed {
					out = append(out, tp.Name)
				}
			}
		}
		return out
	}
	s.rollbackGroups = [][]string{}
	scope := r.Plan.Rollback
	if s.abortRollback {
		scope = "run"
	}
	switch scope {
	case RollbackNone:
	case "target":
		s.rollbackGroups = append(s.rollbackGroups, changed(s.Ring, !r.gateFail))
	case "run":
		for i := s.Ring; i >= 0; i-- {
			s.rollbackGroups = append(s.rollbackGroups, changed(i, false))
		}
	default: // ring
		s.rollbackGroups = append(s.rollbackGroups, changed(s.Ring, false))
	}
	s.rollbackGroups = slices.DeleteFunc(s.rollbackGroups, func(g []string) bool { return len(g) == 0 })
	var names []string
	for _, g := range s.rollbackGroups {
		for _, n := range g {
			s.set(s.Targets[n], TRollbackPending)
			names = append(names, n)
		}
	}
	return []Command{{Kind: CmdRecord, Type: RollbackPlanned, Ring: r.Plan.Name, Targets: names,
		Message: fmt.Sprintf("rollback scope %s: %d target(s)", r.Plan.Rollback, len(names))}}
}

// InFlight returns the commands that the state says are under way: after a replay, the executor
// re-drives them (an apply whose outcome is unknown is planned and applied again, which Terraform
// makes safe on the same snapshot).
func (s *State) InFlight() []Command {
	if s.Plan.Kind == "" || Terminal(s.Phase) {
		return nil
	}
	var cmds []Command
	for _, r := range s.Rings {
		var cancel []string
		for _, tp := range r.Plan.Targets {
			t := s.Targets[tp.Name]
			switch t.Phase {
			case TApplying:
				cmds = append(cmds, Command{Kind: CmdApply, Ring: r.Plan.Name, Target: tp.Name, Boundary: tp.Boundary, Release: tp.Release, Redrive: true, Back: s.Plan.Kind == KindRollback})
			case TGating:
				if r.Phase == RHalted {
					cancel = append(cancel, tp.Name)
				} else {
					cmds = append(cmds, Command{Kind: CmdGate, Ring: r.Plan.Name, Target: tp.Name, Boundary: tp.Boundary, Release: tp.Release, Gates: r.Plan.Gates})
				}
			case TRollingBack:
				cmds = append(cmds, Command{Kind: CmdRollback, Ring: r.Plan.Name, Target: tp.Name, Boundary: tp.Boundary, Release: *tp.From, Gates: r.Plan.Gates, Redrive: true})
			}
		}
		if len(cancel) > 0 {
			cmds = append(cmds, Command{Kind: CmdCancelGates, Ring: r.Plan.Name, Targets: cancel})
		}
		switch r.Phase {
		case RBaking:
			cmds = append(cmds, Command{Kind: CmdBake, Ring: r.Plan.Name, Until: r.BakeUntil, Gates: r.Plan.RingGates})
		case RApproval:
			cmds = append(cmds, Command{Kind: CmdAwaitApproval, Ring: r.Plan.Name})
		case RDriftCheck:
			cmds = append(cmds, Command{Kind: CmdDriftCheck, Ring: r.Plan.Name, Targets: s.deployed(r)})
		case RPlanCheck:
			cmds = append(cmds, Command{Kind: CmdPlanCheck, Ring: r.Plan.Name, Targets: ringTargets(r)})
		}
		// A frozen ring is entered again by run.resumed itself (the window may have opened).
	}
	return cmds
}

// StillUnderWay keeps the commands of InFlight, taken before some events were folded, whose work
// the state still has under way: a target still applying, gating or rolling back, a ring still
// baking or checking drift. Work those events settled (an abort ends applies whose outcome is
// unknown) is not re-driven.
func (s *State) StillUnderWay(cmds []Command) []Command {
	if Terminal(s.Phase) {
		return nil
	}
	var out []Command
	for _, c := range cmds {
		keep := false
		switch c.Kind {
		case CmdApply:
			keep = s.targetIn(c.Target, TApplying)
		case CmdRollback:
			keep = s.targetIn(c.Target, TRollingBack)
		case CmdGate:
			keep = s.targetIn(c.Target, TGating) && s.ring(c.Ring).Phase != RHalted
		case CmdCancelGates:
			keep = true
		case CmdBake:
			keep = s.ring(c.Ring).Phase == RBaking
		case CmdAwaitApproval:
			keep = s.ring(c.Ring).Phase == RApproval
		case CmdDriftCheck:
			keep = s.ring(c.Ring).Phase == RDriftCheck
		case CmdPlanCheck:
			keep = s.ring(c.Ring).Phase == RPlanCheck
		}
		if keep {
			out = append(out, c)
		}
	}
	return out
}

func (s *State) targetIn(name string, phase TargetPhase) bool {
	t := s.Targets[name]
	return t != nil && t.Phase == phase
}

// Replay folds a journal into a fresh state.
func Replay(events []Event) *State {
	s := &State{}
	for _, ev := range events {
		Decide(s, ev)
	}
	return s
}

// decideHint tells the operator how to decide an inconclusive gate.
func (s *State) decideHint(ring, target, gate string) string {
	who := "--ring " + ring
	if target != "" {
		who = "--target " + target
	}
	if gate == "" {
		gate = "G"
	}
	return fmt.Sprintf(": decide with `rollout gate override %s %s --gate %s --verdict pass|fail --reason TEXT`, or measure again with `rollout resume %s`", s.RunID, who, gate, s.RunID)
}

// override applies a human verdict on an inconclusive gate: pass continues the ring, fail counts
// as a failed gate (the ring's failure budget, then rollback, as for any failure).
func (s *State) override(ev Event) []Command {
	pass := ev.Passed != nil && *ev.Passed
	why := fmt.Sprintf("gate %s overridden to %s by %s: %s", ev.Gate, verdictWord(pass), ev.Actor, ev.Message)
	if ev.Target == "" {
		r := s.ring(ev.Ring)
		if r == nil || r.Phase != RInconclusive {
			return nil
		}
		s.Phase = PhaseRunning
		if pass {
			r.Phase, r.Ended, r.Reason = RPassed, ev.At, why
			return append([]Command{record(RingPassed, r.Plan.Name, why)}, s.nextRing(ev.At)...)
		}
		r.Phase, r.gateFail = RBaking, true
		return s.halt(r, ev.At, why)
	}
	t := s.Targets[ev.Target]
	if t == nil || t.Phase != TInconclusive {
		return nil
	}
	if s.Phase == PhaseWaiting || s.Phase == PhasePaused {
		s.Phase = PhaseRunning
	}
	t.Message, t.Ended = why, ev.At
	if pass {
		s.set(t, TVerified)
		return s.progress(ev.At)
	}
	s.set(t, TFailed)
	return s.targetFailed(t, ev.At)
}

// Untouched lists, per ring, the targets this run has not changed yet (still on their last known
// good): the baseline a canary can be compared with.
func (s *State) Untouched() map[string][]string {
	out := map[string][]string{}
	for _, r := range s.Rings {
		if r.count[TPending] == 0 {
			continue
		}
		out[r.Plan.Name] = s.targetsIn(r, TPending)
	}
	return out
}

// verdictWord is an override's verdict as operators give it.
func verdictWord(pass bool) string {
	if pass {
		return "pass"
	}
	return "fail"
}

package rings

import "fmt"

// handlers says what each event does to a run; every handler gets the event's target (nil when
// it names none, or one the run does not have).
var handlers = map[EventType]func(s *State, ev Event, t *TargetState) []Command{
	RunFinished:            (*State).onRunFinished,
	RingApproved:           (*State).onRingApproved,
	RunResumed:             (*State).onRunResumed,
	FreezeChanged:          (*State).onFreezeChanged,
	FreezeBroken:           (*State).onFreezeBroken,
	RingWindowCheck:        (*State).onWindowCheck,
	RunPaused:              (*State).onPaused,
	RunUnpaused:            (*State).onUnpaused,
	RunAbortRequested:      func(s *State, ev Event, _ *TargetState) []Command { return s.abort(ev) },
	RingDriftChecked:       (*State).onDriftChecked,
	DriftAcknowledged:      (*State).onDriftAcknowledged,
	RingPlansChecked:       (*State).onPlansChecked,
	TargetPlanned:          (*State).onPlanned,
	TargetQueued:           func(s *State, ev Event, t *TargetState) []Command { return s.onQueued(t, true) },
	TargetDequeued:         func(s *State, ev Event, t *TargetState) []Command { return s.onQueued(t, false) },
	TargetApplied:          (*State).onApplied,
	TargetApplyFailed:      (*State).onApplyFailed,
	TargetVerified:         (*State).onVerified,
	TargetGateFailed:       (*State).onGateFailed,
	TargetGateCancelled:    (*State).onGateCancelled,
	TargetGateInconclusive: (*State).onGateInconclusive,
	RingGateInconclusive:   (*State).onRingGateInconclusive,
	GateOverridden:         func(s *State, ev Event, _ *TargetState) []Command { return s.override(ev) },
	GatesRemeasure:         (*State).onRemeasure,
	RingBaked:              (*State).onBaked,
	RingBakeEnded:          (*State).onBakeEnded,
	RingGateFailed:         (*State).onRingGateFailed,
	TargetRolledBack:       (*State).onRolledBack,
	TargetRollbackFailed:   (*State).onRollbackFailed,
}

// onRunFinished: written by the executor after Decide finished the run, or by an operator ending a
// run from outside (a manual rollback of an unfinished run): either way the run is over.
func (s *State) onRunFinished(ev Event, t *TargetState) []Command {
	// Written by the executor after Decide finished the run, or by an operator ending a run
	// from outside (a manual rollback of an unfinished run): either way the run is over.
	if ev.Phase != "" {
		s.Phase = ev.Phase
		if ev.Message != "" && s.Reason == "" {
			s.Reason = ev.Message
		}
	}
	return nil
}

// onRingApproved counts an approval; a ring that waited for it enters once the quorum is met.
func (s *State) onRingApproved(ev Event, t *TargetState) []Command {
	r := s.ring(ev.Ring)
	if r == nil {
		return nil
	}
	r.Approvals = append(r.Approvals, ApprovalRecord{Actor: ev.Actor, At: ev.At, Reason: ev.Message, Proof: ev.Proof})
	if r.Phase == RApproval && approved(r) && s.Phase == PhaseWaiting {
		return s.enterRing(ev.At)
	}
	return nil
}

// onRunResumed: a process drives the run again. A ring the switch or a window held may start now;
// a drift not acknowledged is checked again; an abort under way settles what the dead process had
// under way (its outcome is unknown).
func (s *State) onRunResumed(ev Event, t *TargetState) []Command {
	cmds := s.setSwitch(ev.Switch, ev.At)
	switch s.Phase {
	case PhaseBlocked: // the window may have opened since
		if len(cmds) == 0 {
			cmds = s.enterRing(ev.At)
		}
	case PhaseWaiting: // drift not acknowledged: it may have been reconciled since; check again
		if r := s.Rings[s.Ring]; r.Phase == RDrifted && r.DriftAck == nil {
			r.Drift, r.Phase = nil, RPending
			cmds = append(cmds, s.enterRing(ev.At)...)
		}
	case PhaseAborting: // work that was under way when the last process died stays as it is
		for _, t := range s.Targets {
			if t.Phase == TApplying || t.Phase == TGating {
				s.set(t, TUnverified)
				t.Message, t.Ended = "the run was aborted while this target was "+string(t.Phase)+"; its outcome is unknown", ev.At
			}
		}
		cmds = append(cmds, s.progress(ev.At)...)
	}
	return cmds
}

// onFreezeChanged folds the stop-the-line switch as the driving process saw it change.
func (s *State) onFreezeChanged(ev Event, t *TargetState) []Command {
	return s.setSwitch(ev.Switch, ev.At)
}

// onFreezeBroken: freeze windows and the switch hold the run no more.
func (s *State) onFreezeBroken(ev Event, t *TargetState) []Command {
	s.BreakGlass = &ApprovalRecord{Actor: ev.Actor, At: ev.At, Reason: ev.Message}
	if s.Phase == PhaseBlocked {
		return s.enterRing(ev.At)
	}
	return nil
}

// onWindowCheck: the time a frozen ring waited for; it is entered again.
func (s *State) onWindowCheck(ev Event, t *TargetState) []Command {
	if r := s.ring(ev.Ring); r == nil || r != s.Rings[s.Ring] || r.Phase != RFrozen || s.Phase != PhaseBlocked {
		return nil
	}
	return s.enterRing(ev.At)
}

// onPaused holds the run: nothing new starts; it is paused once what is under way settled.
func (s *State) onPaused(ev Event, t *TargetState) []Command {
	if s.Paused != nil || s.Phase == PhaseRollingBack || s.Phase == PhaseAborting {
		return nil
	}
	s.Paused = &ApprovalRecord{Actor: ev.Actor, At: ev.At, Reason: ev.Message}
	var cmds []Command
	if r := s.Rings[s.Ring]; r.Phase == RFrozen {
		cmds = append(cmds, Command{Kind: CmdCancelWait, Ring: r.Plan.Name})
	}
	if s.Phase != PhaseRunning || s.quiet() {
		s.Phase = PhasePaused
	}
	return cmds
}

// onUnpaused lets a paused run go on from where it stood.
func (s *State) onUnpaused(ev Event, t *TargetState) []Command {
	if s.Paused == nil {
		return nil
	}
	s.Paused = nil
	if s.Phase == PhaseRunning {
		return s.progress(ev.At)
	}
	if s.Phase != PhasePaused {
		return nil
	}
	s.Phase = PhaseRunning
	switch r := s.Rings[s.Ring]; r.Phase {
	case RPending, RFrozen, RApproval, RDrifted:
		return s.enterRing(ev.At)
	case RInconclusive:
		s.Phase = PhaseWaiting
		return nil
	}
	return s.progress(ev.At)
}

// onDriftChecked takes a ring's drift check, and enters the ring (which may stop on the drift).
func (s *State) onDriftChecked(ev Event, t *TargetState) []Command {
	r := s.ring(ev.Ring)
	if r == nil || r.Phase != RDriftCheck {
		return nil
	}
	r.Drift = &DriftResult{Outcome: ev.Drift, Targets: ev.Targets, Message: ev.Message, At: ev.At}
	r.Phase = RPending
	return s.enterRing(ev.At)
}

// onPlansChecked takes a ring's plan check: passed, its approval is waived (the checks it passed
// are the record); not, the ring waits for its approval as it would have.
func (s *State) onPlansChecked(ev Event, t *TargetState) []Command {
	r := s.ring(ev.Ring)
	if r == nil || r.Phase != RPlanCheck {
		return nil
	}
	r.PlanCheck, r.Phase = true, RPending
	if ev.Passed != nil && *ev.Passed {
		r.Waived = &ApprovalRecord{Actor: "plan checks", At: ev.At, Reason: ev.Message}
	}
	return s.enterRing(ev.At)
}

// onDriftAcknowledged lets a ring stopped on drift go on.
func (s *State) onDriftAcknowledged(ev Event, t *TargetState) []Command {
	r := s.ring(ev.Ring)
	if r == nil || r.Drift == nil || r.DriftAck != nil {
		return nil
	}
	r.DriftAck = &ApprovalRecord{Actor: ev.Actor, At: ev.At, Reason: ev.Message}
	if r.Phase == RDrifted && s.Phase == PhaseWaiting {
		return s.enterRing(ev.At)
	}
	return nil
}

// onPlanned keeps a target's plan summary.
func (s *State) onPlanned(ev Event, t *TargetState) []Command {
	if t != nil {
		t.Summary = ev.Summary
	}
	return nil
}

// onApplied: a target runs the release; its gates start (unless its ring halted meanwhile).
func (s *State) onApplied(ev Event, t *TargetState) []Command {
	if t == nil || t.Phase != TApplying {
		return nil
	}
	rel := t.Plan.Release
	t.Current, t.Summary, t.Outputs, t.ApplyMode = &rel, ev.Summary, ev.Outputs, ev.ApplyMode
	if s.Rings[t.Ring].Phase == RHalted || s.Phase == PhaseAborting {
		s.set(t, TUnverified)
		t.Ended = ev.At
		return s.progress(ev.At)
	}
	s.set(t, TGating)
	return []Command{{Kind: CmdGate, Ring: s.Rings[t.Ring].Plan.Name, Target: t.Plan.Name, Boundary: t.Plan.Boundary, Release: rel, Gates: s.Rings[t.Ring].Plan.Gates}}
}

// onApplyFailed counts a failed target against its ring's budget.
func (s *State) onApplyFailed(ev Event, t *TargetState) []Command {
	if t == nil || t.Phase != TApplying {
		return nil
	}
	s.set(t, TFailed)
	t.Message, t.Ended, t.Untouched = ev.Message, ev.At, ev.Untouched
	return s.targetFailed(t, ev.At)
}

// onVerified: a target passed its gates, and frees its slot.
func (s *State) onVerified(ev Event, t *TargetState) []Command {
	if t == nil || t.Phase != TGating {
		return nil
	}
	s.set(t, TVerified)
	t.Ended = ev.At
	return s.progress(ev.At)
}

// onGateFailed counts a target whose gate failed against its ring's budget.
func (s *State) onGateFailed(ev Event, t *TargetState) []Command {
	if t == nil || t.Phase != TGating {
		return nil
	}
	s.set(t, TFailed)
	t.Message, t.Ended = fmt.Sprintf("gate %s: %s", ev.Gate, ev.Message), ev.At
	return s.targetFailed(t, ev.At)
}

// onGateCancelled: a target's gates stopped because its ring halted.
func (s *State) onGateCancelled(ev Event, t *TargetState) []Command {
	if t == nil || t.Phase != TGating {
		return nil
	}
	s.set(t, TUnverified)
	t.Ended = ev.At
	return s.progress(ev.At)
}

// onGateInconclusive: a human decides; no new target of the ring starts meanwhile.
func (s *State) onGateInconclusive(ev Event, t *TargetState) []Command {
	if t == nil || t.Phase != TGating {
		return nil
	}
	s.set(t, TInconclusive)
	t.Message, t.Ended, t.gate = fmt.Sprintf("gate %s inconclusive: %s", ev.Gate, ev.Message), ev.At, ev.Gate
	return s.progress(ev.At)
}

// onRingGateInconclusive: the bake's ring gates could not decide; a human does.
func (s *State) onRingGateInconclusive(ev Event, t *TargetState) []Command {
	r := s.ring(ev.Ring)
	if r == nil || r.Phase != RBaking {
		return nil
	}
	r.Phase, r.Reason = RInconclusive, fmt.Sprintf("ring gate %s inconclusive: %s", ev.Gate, ev.Message)
	s.Phase = PhaseWaiting
	return []Command{record(RingPaused, r.Plan.Name, r.Reason+s.decideHint(r.Plan.Name, "", ev.Gate))}
}

// onRemeasure: an operator asks for inconclusive gates to be measured again.
func (s *State) onRemeasure(ev Event, t *TargetState) []Command {
	r := s.Rings[s.Ring]
	if s.Phase != PhaseWaiting || (r.Phase != RInconclusive && r.count[TInconclusive] == 0) {
		return nil
	}
	s.Phase = PhaseRunning
	var cmds []Command
	if r.Phase == RInconclusive {
		r.Phase, r.Reason, r.BakeUntil = RBaking, "", ev.At.Add(r.Plan.Bake.D())
		return []Command{{Kind: CmdBake, Ring: r.Plan.Name, Until: r.BakeUntil, Gates: r.Plan.RingGates}}
	}
	for _, name := range s.targetsIn(r, TInconclusive) {
		t := s.Targets[name]
		s.set(t, TGating)
		t.Message = ""
		cmds = append(cmds, Command{Kind: CmdGate, Ring: r.Plan.Name, Target: name, Boundary: t.Plan.Boundary, Release: t.Plan.Release, Gates: r.Plan.Gates})
	}
	return cmds
}

// onBaked: the ring held through its bake; the next ring starts.
func (s *State) onBaked(ev Event, t *TargetState) []Command {
	r := s.ring(ev.Ring)
	if r == nil || r.Phase != RBaking {
		return nil
	}
	r.Phase, r.Ended = RPassed, ev.At
	return append([]Command{record(RingPassed, r.Plan.Name, "")}, s.nextRing(ev.At)...)
}

// onQueued: a target's Terraform run waits for a slot (queued), or got it; nothing else changes.
func (s *State) onQueued(t *TargetState, queued bool) []Command {
	if t != nil && (t.Phase == TApplying || t.Phase == TRollingBack) {
		t.Queued = queued
	}
	return nil
}

// onBakeEnded: an operator ended the ring's bake early, with a reason; it passes as if the bake
// had run out (its ring gates are not measured again), and the next ring starts, through its own
// approval and freeze as always.
func (s *State) onBakeEnded(ev Event, t *TargetState) []Command {
	r := s.ring(ev.Ring)
	if r == nil || r.Phase != RBaking || s.Phase != PhaseRunning {
		return nil
	}
	r.Phase, r.Ended = RPassed, ev.At
	cmds := []Command{{Kind: CmdCancelBake, Ring: r.Plan.Name}, record(RingPassed, r.Plan.Name, "bake ended early by "+ev.Actor+": "+ev.Message)}
	return append(cmds, s.nextRing(ev.At)...)
}

// onRingGateFailed halts the ring.
func (s *State) onRingGateFailed(ev Event, t *TargetState) []Command {
	r := s.ring(ev.Ring)
	if r == nil || r.Phase != RBaking {
		return nil
	}
	r.gateFail = true
	return s.halt(r, ev.At, fmt.Sprintf("ring gate %s failed: %s", ev.Gate, ev.Message))
}

// onRolledBack: a target returned to its last known good.
func (s *State) onRolledBack(ev Event, t *TargetState) []Command {
	if t == nil || t.Phase != TRollingBack {
		return nil
	}
	s.set(t, TRolledBack)
	t.Current, t.Ended, t.ApplyMode = ev.Release, ev.At, ev.ApplyMode
	if t.Current == nil {
		t.Current = t.Plan.From
	}
	return s.progress(ev.At)
}

// onRollbackFailed: a target could not be returned; while the ring applies, that halts it.
func (s *State) onRollbackFailed(ev Event, t *TargetState) []Command {
	if t == nil || t.Phase != TRollingBack {
		return nil
	}
	s.set(t, TRollbackFailed)
	t.Message, t.Ended = ev.Message, ev.At
	if r := s.Rings[t.Ring]; s.Phase == PhaseRunning && r.Phase == RApplying {
		return s.halt(r, ev.At, fmt.Sprintf("rolling back %s failed: %s", t.Plan.Name, ev.Message))
	}
	return s.progress(ev.At)
}

package runs

import (
	"fmt"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// Tone is how a line of a run's log feels: a front end colours it, or not.
type Tone int

const (
	Plain Tone = iota
	Bold
	Good
	Warn
	Bad
)

// Describe is one event of a run told for a person (a progress log, a dashboard's live log), with
// its tone; "" for events that tell a person nothing new.
func Describe(ev rings.Event) (string, Tone) {
	switch {
	case strings.HasPrefix(string(ev.Type), "target.") || strings.HasPrefix(string(ev.Type), "gate.") || strings.HasPrefix(string(ev.Type), "component."):
		return describeTarget(ev)
	case strings.HasPrefix(string(ev.Type), "ring.") || strings.HasPrefix(string(ev.Type), "boundary.") || ev.Type == rings.RollbackPlanned:
		return describeRing(ev)
	}
	return describeRun(ev)
}

// describeTarget tells what happened to a target (or its gates).
func describeTarget(ev rings.Event) (string, Tone) {
	who := ev.Target
	if who == "" {
		who = "ring " + ev.Ring
	}
	switch ev.Type {
	case rings.TargetApplying:
		return fmt.Sprintf("  %s: applying %s", who, relName(ev.Release)), Plain
	case rings.TargetQueued:
		return fmt.Sprintf("  %s: queued, %s", who, ev.Message), Plain
	case rings.TargetDequeued:
		return "", Plain
	case rings.TargetPlanned:
		return fmt.Sprintf("  %s: plan %s", who, PlanText(ev.Summary)), Plain
	case rings.TargetApplied:
		return fmt.Sprintf("  %s: applied %s", who, relName(ev.Release)), Plain
	case rings.TargetApplyFailed:
		return fmt.Sprintf("  %s: apply failed: %s", who, ev.Message), Bad
	case rings.GateMeasured:
		if ev.Passed != nil && !*ev.Passed {
			return fmt.Sprintf("  %s: gate %s: %s", who, ev.Gate, cut(ev.Message, 160)), Warn
		}
	case rings.TargetVerified:
		return fmt.Sprintf("  %s: gates passed", who), Good
	case rings.TargetGateFailed:
		return fmt.Sprintf("  %s: gate %s failed: %s", who, ev.Gate, ev.Message), Bad
	case rings.TargetGateCancelled:
		return fmt.Sprintf("  %s: gates stopped (%s)", who, ev.Message), Plain
	case rings.TargetRollingBack:
		return fmt.Sprintf("  %s: rolling back to %s", who, relName(ev.Release)), Warn
	case rings.TargetRolledBack:
		return fmt.Sprintf("  %s: rolled back to %s, gates passed", who, relName(ev.Release)), Good
	case rings.TargetRollbackFailed:
		return fmt.Sprintf("  %s: ROLLBACK FAILED: %s", who, ev.Message), Bad
	case rings.TargetRollbackSkip:
		return fmt.Sprintf("  %s: not rolled back: %s", who, ev.Message), Warn
	case rings.TargetGateInconclusive:
		return fmt.Sprintf("  %s: gate %s inconclusive: %s", who, ev.Gate, ev.Message), Warn
	case rings.GateOverridden:
		what := ev.Target
		if what == "" {
			what = "ring " + ev.Ring
		}
		return fmt.Sprintf("  %s: gate %s overridden to %s by %s: %s", what, ev.Gate, overrideVerdict(ev), ev.Actor, ev.Message), Plain
	case rings.TargetOrphansKilled, rings.TargetLockReleased:
		return fmt.Sprintf("  %s: %s", who, ev.Message), Warn
	case rings.TargetRetrying:
		return fmt.Sprintf("  %s: %s", who, ev.Message), Warn
	case rings.ComponentApplied:
		return fmt.Sprintf("  %s/%s: applied %s%s", who, ev.Component, relName(ev.Release), summary(ev.Summary)), Plain
	case rings.ComponentUnchanged:
		return fmt.Sprintf("  %s/%s: unchanged (runs %s)", who, ev.Component, relName(ev.Release)), Plain
	case rings.ComponentFailed:
		return fmt.Sprintf("  %s/%s: FAILED: %s", who, ev.Component, ev.Message), Bad
	case rings.ComponentDestroyed:
		return fmt.Sprintf("  %s/%s: destroyed (the release has no such component)", who, ev.Component), Warn
	}
	return "", Plain
}

// summary is a plan's counts, for a line.
func summary(s *rings.PlanSummary) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf(" (+%d ~%d -%d)", s.Add, s.Change, s.Destroy)
}

// describeRing tells what happened to a ring or a boundary it entered.
func describeRing(ev rings.Event) (string, Tone) {
	switch ev.Type {
	case rings.RingStarted:
		return "ring " + ev.Ring + " started " + ev.Message, Bold
	case rings.RingApprovalNeeded:
		return "ring " + ev.Ring + " needs approval: " + ev.Message, Warn
	case rings.RingApproved:
		return fmt.Sprintf("ring %s approved by %s: %s", ev.Ring, ev.Actor, ev.Message), Good
	case rings.RingBakeStarted:
		return fmt.Sprintf("ring %s baking %s", ev.Ring, ev.Message), Plain
	case rings.RingBakeEnded:
		return fmt.Sprintf("ring %s: bake ended early by %s: %s", ev.Ring, ev.Actor, ev.Message), Warn
	case rings.RingBaked, rings.RingPassed:
		if ev.Type == rings.RingBaked {
			return "", Plain
		}
		return "ring " + ev.Ring + " passed", Good
	case rings.RingGateFailed:
		return fmt.Sprintf("ring %s gate %s failed: %s", ev.Ring, ev.Gate, ev.Message), Bad
	case rings.RingHalted:
		return fmt.Sprintf("ring %s halted: %s", ev.Ring, ev.Message), Bad
	case rings.RollbackPlanned:
		return fmt.Sprintf("rolling back (%s): %s", ev.Message, strings.Join(ev.Targets, ", ")), Warn
	case rings.RingGateInconclusive:
		return fmt.Sprintf("ring %s gate %s inconclusive: %s", ev.Ring, ev.Gate, ev.Message), Warn
	case rings.RingPaused:
		return fmt.Sprintf("ring %s paused: %s", ev.Ring, ev.Message), Warn
	case rings.BoundaryHalted:
		return fmt.Sprintf("ring %s: boundary %s halted (circuit open): %s", ev.Ring, ev.Boundary, ev.Message), Bad
	case rings.BoundaryResumed:
		return fmt.Sprintf("ring %s: boundary %s resumed: %s", ev.Ring, ev.Boundary, ev.Message), Good
	case rings.BoundaryVerified:
		return fmt.Sprintf("ring %s entered boundary %s", ev.Ring, ev.Message), Plain
	case rings.BoundaryRefused:
		return fmt.Sprintf("ring %s: boundary %s refused: %s", ev.Ring, ev.Boundary, ev.Message), Bad
	case rings.RingFrozen:
		return fmt.Sprintf("ring %s frozen: %s", ev.Ring, ev.Message), Warn
	case rings.RingDriftChecked:
		if ev.Drift == rings.DriftClean {
			return fmt.Sprintf("ring %s drift check: %s", ev.Ring, ev.Message), Plain
		}
		return fmt.Sprintf("ring %s drift check: %s: %s", ev.Ring, ev.Drift, ev.Message), Warn
	case rings.DriftAcknowledged:
		return fmt.Sprintf("ring %s drift acknowledged by %s: %s", ev.Ring, ev.Actor, ev.Message), Plain
	case rings.RingPlansChecked:
		if ev.Passed != nil && *ev.Passed {
			return fmt.Sprintf("ring %s: %s", ev.Ring, ev.Message), Good
		}
		return fmt.Sprintf("ring %s: %s", ev.Ring, ev.Message), Warn
	}
	return "", Plain
}

// describeRun tells what happened to the run, and the operators' acts on it.
func describeRun(ev rings.Event) (string, Tone) {
	switch ev.Type {
	case rings.RunStarted:
		if ev.Plan.Kind == rings.KindRollback {
			return fmt.Sprintf("run %s started: rollback over %d ring(s) (%s)", ev.RunID, len(ev.Plan.Rings), ev.Message), Plain
		}
		return fmt.Sprintf("run %s started: %s %s over %d ring(s)", ev.RunID, ev.Plan.Kind, ev.Plan.Release.Name, len(ev.Plan.Rings)), Plain
	case rings.RunResumed:
		return fmt.Sprintf("run %s resumed by %s", ev.RunID, ev.Actor), Plain
	case rings.GatesRemeasure:
		return fmt.Sprintf("inconclusive gates measured again (asked by %s)", ev.Actor), Plain
	case rings.RunPaused:
		return fmt.Sprintf("run paused by %s: %s (nothing new starts; work under way finishes)", ev.Actor, ev.Message), Warn
	case rings.RunUnpaused:
		return fmt.Sprintf("run unpaused by %s", ev.Actor), Plain
	case rings.NotifyFailed:
		return "notification failed: " + ev.Message, Warn
	case rings.RunAbortRequested:
		what := "stop"
		if ev.Rollback {
			what = "roll back everything this run changed"
		}
		return fmt.Sprintf("run aborted by %s (%s): %s", ev.Actor, what, ev.Message), Bad
	case rings.FreezeChanged:
		if ev.Switch != nil {
			return fmt.Sprintf("stop-the-line switch turned on by %s: %s", ev.Switch.Actor, ev.Switch.Reason), Warn
		}
		return "stop-the-line switch turned off", Plain
	case rings.FreezeBroken:
		return fmt.Sprintf("BREAK GLASS by %s: freeze windows and the switch no longer hold this run: %s", ev.Actor, ev.Message), Warn
	case rings.RunFinished:
		return "run finished: " + string(ev.Phase), toneOf(ev.Phase)

	}
	return "", Plain
}

// tones are the tones of run, ring and target phases that are not Plain.
var tones = map[string]Tone{}

func init() {
	set := func(t Tone, phases ...string) {
		for _, p := range phases {
			tones[p] = t
		}
	}
	set(Good, string(rings.PhaseSucceeded), string(rings.TVerified), string(rings.RPassed))
	set(Bad, string(rings.TFailed), string(rings.RHalted), string(rings.PhaseRollbackFailed)) // rings.RFailed is "failed" too
	set(Warn, string(rings.PhaseWaiting), string(rings.PhasePaused), string(rings.PhaseBlocked), string(rings.PhaseAborted),
		string(rings.RFrozen), string(rings.RDrifted), string(rings.RApproval), string(rings.PhaseRolledBack),
		string(rings.PhaseRollingBack), string(rings.TUnverified), string(rings.TRollbackSkipped), string(rings.TInconclusive))
}

// toneOf is the tone of a run's, ring's or target's phase.
func toneOf[P ~string](phase P) Tone { return tones[string(phase)] }

// ToneOf is the tone a front end gives a phase.
func ToneOf(phase string) Tone { return toneOf(strings.Fields(phase + " ")[0]) }

// RingDone counts a ring's targets that are done (verified, failed, rolled back, ...).
func RingDone(s *rings.State, r *rings.RingState) int {
	n := 0
	for _, tp := range r.Plan.Targets {
		switch s.Targets[tp.Name].Phase {
		case rings.TPending, rings.TApplying, rings.TGating, rings.TRollbackPending, rings.TRollingBack:
		default:
			n++
		}
	}
	return n
}

// RingLine is what a ring is doing, and its targets by phase.
func RingLine(s *rings.State, r *rings.RingState) (string, string) {
	counts := map[rings.TargetPhase]int{}
	for _, tp := range r.Plan.Targets {
		counts[s.Targets[tp.Name].Phase]++
	}
	var parts []string
	for _, ph := range []rings.TargetPhase{rings.TVerified, rings.TApplying, rings.TGating, rings.TFailed, rings.TUnverified,
		rings.TRollbackPending, rings.TRollingBack, rings.TRolledBack, rings.TRollbackFailed, rings.TRollbackSkipped, rings.TInconclusive, rings.TPending} {
		if counts[ph] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[ph], ph))
		}
	}
	detail := string(r.Phase)
	switch r.Phase {
	case rings.RApproval:
		detail = fmt.Sprintf("awaiting approval (%d of %d)", len(r.Approvals), max(r.Plan.Quorum, 1))
	case rings.RFrozen:
		detail = "frozen"
	}
	return detail, strings.Join(parts, " · ")
}

func relName(r *rings.ReleaseRef) string {
	if r == nil {
		return "-"
	}
	return r.Name
}

// PlanText is a plan summary in a few characters: +add ~change -destroy, replacements and
// deletions called out.
func PlanText(p *rings.PlanSummary) string {
	if p == nil {
		return "-"
	}
	s := fmt.Sprintf("+%d ~%d -%d", p.Add, p.Change, p.Destroy)
	if len(p.Replaced) > 0 {
		s += fmt.Sprintf(" REPLACES %s", strings.Join(p.Replaced, ","))
	}
	if len(p.Deleted) > 0 {
		s += fmt.Sprintf(" DELETES %s", strings.Join(p.Deleted, ","))
	}
	return s
}

func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// overrideVerdict is a gate override's verdict as the operator gave it.
func overrideVerdict(ev rings.Event) string {
	if ev.Passed != nil && *ev.Passed {
		return "pass"
	}
	return "fail"
}

// LiveView is a run as a live display shows it: the terminal's progress bars and the live-site
// view draw the same thing.
type LiveView struct {
	Title string // kind and release
	Phase rings.Phase
	Since time.Time
	Rings []LiveRing
}

// LiveRing is one ring of a LiveView.
type LiveRing struct {
	Name      string
	Detail    string    // what it is doing (see RingLine)
	Counts    string    // its targets by phase
	BakeUntil time.Time // when baking: the bake's end
	Current   bool      // the ring the run is at
	Done      int       // targets done (verified, failed, rolled back, ...)
	Total     int
}

// Live is the live view of a run's state; nil before the run's plan is known.
func Live(s *rings.State) *LiveView {
	if s.Plan.Kind == "" {
		return nil
	}
	v := &LiveView{Title: fmt.Sprintf("%s %s", s.Plan.Kind, s.Plan.Release.Name), Phase: s.Phase, Since: s.Started}
	for i, r := range s.Rings {
		lr := LiveRing{Name: r.Plan.Name, Current: i == s.Ring && !rings.Terminal(s.Phase), Done: RingDone(s, r), Total: len(r.Plan.Targets)}
		lr.Detail, lr.Counts = RingLine(s, r)
		if r.Phase == rings.RBaking {
			lr.BakeUntil = r.BakeUntil
		}
		v.Rings = append(v.Rings, lr)
	}
	return v
}

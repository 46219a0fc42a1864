package runs

import (
	"context"
	"errors"
	"fmt"
	"github.com/agext/levenshtein"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/proof"
	"github.com/rollout-dev/rollout/internal/rings"
)

// The operators' acts. An act that only needs journaling (approve, pause, drift ack, an abort for
// another process to carry out) is appended without the fleet's lease: the process driving the
// run, if any, reads it from the journal. An act that moves the run on here (resume, gate
// override, an abort nobody else drives) takes the lease and drives the run, as start does.

// Act is who acts and why; an approval may carry the proof of who gives it.
type Act struct {
	As, Reason string
	Proof      proof.Given
}

func (a Act) who() string { return Actor(a.As) }

// ErrNotPaused: an unpause of a run that is not paused.
var ErrNotPaused = errors.New("not paused")

// journalAct records an act on a run: act checks the replayed run and returns the event (nil:
// nothing to record) and what to tell the operator.
func (f *Fleet) journalAct(ctx context.Context, id string, act func(run journal.Run, s *rings.State) (*rings.Event, string, error)) error {
	run, err := f.reader.Run(ctx, id)
	if err != nil {
		return err
	}
	s, _, err := f.Replay(ctx, run.ID)
	if err != nil {
		return err
	}
	ev, msg, err := act(run, s)
	if err != nil {
		return err
	}
	if ev != nil {
		ev.V, ev.RunID, ev.At = rings.EventVersion, run.ID, f.now()
		if err := f.writer.Append(ctx, *ev); err != nil {
			return err
		}
		f.nudge(ctx, run.ID)
	}
	f.notef("%s", msg)
	return nil
}

// Approve approves a ring that waits for approval, by an approver it allows. A ring that enters a
// boundary declaring its approvers' keys counts only a proven approval (see approve.go).
func (f *Fleet) Approve(ctx context.Context, id, ring string, a Act) error {
	if strings.TrimSpace(a.Reason) == "" {
		return errors.New("--reason is required: it is journaled with the approval (who approved what, and why)")
	}
	return f.journalAct(ctx, id, func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
		r := s.RingNamed(ring)
		switch {
		case rings.Terminal(s.Phase):
			return nil, "", fmt.Errorf("run %s is over (%s): there is nothing to approve", run.ID, s.Phase)
		case r == nil || !r.Plan.Approval:
			return nil, "", fmt.Errorf("run %s has no ring %q that requires approval%s", run.ID, ring, didYouMean(ring, ringNames(s)))
		}
		who, pr, err := f.approver(ctx, run, s, r, a)
		if err != nil {
			return nil, "", err
		}
		if len(r.Plan.Approvers) > 0 && !slices.Contains(r.Plan.Approvers, who) {
			return nil, "", fmt.Errorf("%s may not approve ring %s: its approvers are %v", who, ring, r.Plan.Approvers)
		}
		if slices.ContainsFunc(r.Approvals, func(ap rings.ApprovalRecord) bool { return ap.Actor == who }) {
			return nil, "", fmt.Errorf("%s approved ring %s of run %s already: each approver counts once toward the quorum (%d)", who, ring, run.ID, max(r.Plan.Quorum, 1))
		}
		how := "unverified: the name was given, not proven"
		if pr != nil {
			how = "proven by " + pr.Method + " " + pr.Key
		}
		return &rings.Event{Type: rings.RingApproved, Ring: ring, Actor: who, Message: a.Reason, Proof: pr},
			fmt.Sprintf("ring %s of run %s approved by %s (%s); continue with: rollout resume %s", ring, run.ID, who, how, run.ID), nil
	})
}

// EndBake ends a baking ring's bake early, with a reason: the ring passes now and the next ring
// starts, through its own approval and freeze as always. Who may end it: whoever may approve the
// ring when it names its approvers. A ring whose approvals must be proven (a boundary listing its
// approvers' keys) is not offered this: its bake runs out.
func (f *Fleet) EndBake(ctx context.Context, id, ring string, a Act) error {
	if strings.TrimSpace(a.Reason) == "" {
		return errors.New("--reason is required: it is journaled with who ended the bake early")
	}
	return f.journalAct(ctx, id, func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
		r := s.RingNamed(ring)
		who := a.who()
		switch {
		case rings.Terminal(s.Phase):
			return nil, "", fmt.Errorf("run %s is over (%s): no bake to end", run.ID, s.Phase)
		case r == nil:
			return nil, "", fmt.Errorf("run %s has no ring %q%s", run.ID, ring, didYouMean(ring, ringNames(s)))
		case r.Phase != rings.RBaking:
			return nil, "", fmt.Errorf("ring %s of run %s is not baking (it is %s)", ring, run.ID, r.Phase)
		case s.Paused != nil:
			return nil, "", fmt.Errorf("run %s is paused (by %s): resume it first", run.ID, s.Paused.Actor)
		case len(r.Plan.Verifiers) > 0:
			return nil, "", fmt.Errorf("ring %s enters a boundary whose approvals must be proven: its bake is not ended early by a name given; it ends %s", ring, r.BakeUntil.Format(time.RFC3339))
		case len(r.Plan.Approvers) > 0 && !slices.Contains(r.Plan.Approvers, who):
			return nil, "", fmt.Errorf("%s may not end ring %s's bake: its approvers are %v", who, ring, r.Plan.Approvers)
		}
		return &rings.Event{Type: rings.RingBakeEnded, Ring: ring, Actor: who, Message: a.Reason},
			fmt.Sprintf("ring %s of run %s: bake ended early by %s; the process driving the run goes on (none does: rollout resume %s)", ring, run.ID, who, run.ID), nil
	})
}

// configRings are the names of a configuration's rings, in order.
func configRings(cfg *config.Config) []string {
	var out []string
	for _, r := range cfg.Rings {
		out = append(out, r.Name)
	}
	return out
}

// ringNames are the names of a run's rings.
func ringNames(s *rings.State) []string {
	var out []string
	for _, r := range s.Rings {
		out = append(out, r.Plan.Name)
	}
	return out
}

// didYouMean is " (did you mean X?)" for the candidate nearest in spelling to name, when one is
// near enough; else the candidates, when there are any.
func didYouMean(name string, candidates []string) string {
	best, dist := "", max(2, len(name)*2/5)+1
	for _, c := range candidates {
		if d := levenshtein.Distance(name, c, nil); d < dist {
			best, dist = c, d
		}
	}
	switch {
	case best != "":
		return fmt.Sprintf(" (did you mean %q?)", best)
	case len(candidates) > 0:
		return " (its rings: " + strings.Join(candidates, ", ") + ")"
	}
	return ""
}

// Pause holds a run: nothing new starts; what is under way finishes.
func (f *Fleet) Pause(ctx context.Context, id string, a Act) error {
	return f.journalAct(ctx, id, func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
		switch {
		case rings.Terminal(s.Phase):
			return nil, "", fmt.Errorf("run %s is already over (%s)", run.ID, s.Phase)
		case s.Phase == rings.PhaseRollingBack || s.Phase == rings.PhaseAborting:
			return nil, "", fmt.Errorf("run %s is %s: that goes on to its end (it cannot be paused)", run.ID, s.Phase)
		case s.Paused != nil:
			return nil, fmt.Sprintf("run %s is already paused (by %s at %s)", run.ID, s.Paused.Actor, s.Paused.At.Format("2006-01-02 15:04:05Z07:00")), nil
		}
		who := a.who()
		return &rings.Event{Type: rings.RunPaused, Actor: who, Message: a.Reason},
			fmt.Sprintf("run %s paused by %s: nothing new starts; work under way finishes. Continue with: rollout resume %s", run.ID, who, run.ID), nil
	})
}

// AckDrift acknowledges the drift that stopped a ring.
func (f *Fleet) AckDrift(ctx context.Context, id, ring string, a Act) error {
	if a.Reason == "" {
		return errors.New("--reason is required: the journal keeps why the drift was accepted")
	}
	return f.journalAct(ctx, id, func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
		if r := s.RingNamed(ring); r == nil {
			return nil, "", fmt.Errorf("run %s has no ring %q%s", run.ID, ring, didYouMean(ring, ringNames(s)))
		} else if r.Drift == nil || r.Phase != rings.RDrifted {
			return nil, "", fmt.Errorf("ring %q of run %s is not stopped on drift", ring, run.ID)
		}
		who := a.who()
		return &rings.Event{Type: rings.DriftAcknowledged, Ring: ring, Actor: who, Message: a.Reason},
			fmt.Sprintf("drift of ring %s acknowledged by %s; continue with: rollout resume %s", ring, who, run.ID), nil
	})
}

// Abort ends a run for good (with rollback: after returning what it changed). If no other process
// drives the run, this one takes the fleet and carries it out (the returned id is then the run's,
// whose report says how it ended); otherwise the abort is journaled for that process ("").
func (f *Fleet) Abort(ctx context.Context, id string, rollback bool, a Act) (string, error) {
	if a.Reason == "" {
		return "", errors.New("--reason is required: say why, for the journal and the report")
	}
	ev := rings.Event{Type: rings.RunAbortRequested, Actor: a.who(), Message: a.Reason, Rollback: rollback}
	runID, err := f.continueRun(ctx, id, "abort", func(s *rings.State) (rings.Event, []rings.Event, error) {
		if s.Aborted != nil {
			return rings.Event{}, nil, fmt.Errorf("run %s was already aborted by %s", s.RunID, s.Aborted.Actor)
		}
		// Replayed from the journal, so no process runs it: the abort is folded first (it must not
		// start what a resume would, such as a ring a freeze held), then what the journal says was
		// under way is driven to an end here.
		return ev, nil, nil
	})
	var held *journal.LeaseHeldError
	if !errors.As(err, &held) {
		return runID, err
	}
	// Another process holds the fleet: if it drives this run, it reads the abort from the journal.
	return "", f.journalAbort(ctx, id, ev, fmt.Sprintf("%s (pid %d, %s) holds the fleet and carries it out if it drives this run, else the next resume of the run does",
		held.Holder.Name, held.Holder.PID, held.Holder.Doing))
}

// RequestAbort journals an abort without carrying it out here (the dashboard's abort, which runs
// no Terraform): the process that drives the run carries it out, else the next resume does.
func (f *Fleet) RequestAbort(ctx context.Context, id string, rollback bool, a Act) error {
	if a.Reason == "" {
		return errors.New("give a reason: it is journaled with the abort")
	}
	ev := rings.Event{Type: rings.RunAbortRequested, Actor: a.who(), Message: a.Reason, Rollback: rollback}
	return f.journalAbort(ctx, id, ev, "the process that drives the run carries it out, else the next resume of the run does")
}

func (f *Fleet) journalAbort(ctx context.Context, id string, ev rings.Event, who string) error {
	return f.journalAct(ctx, id, func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
		switch {
		case rings.Terminal(s.Phase):
			return nil, "", fmt.Errorf("run %s is already over (%s)", run.ID, s.Phase)
		case s.Aborted != nil:
			return nil, "", fmt.Errorf("run %s was already aborted by %s", run.ID, s.Aborted.Actor)
		}
		return &ev, fmt.Sprintf("run %s: abort journaled; %s. Follow with: rollout status %s --wait", run.ID, who, run.ID), nil
	})
}

// Unpause lifts a pause without driving the run here (the dashboard's resume): the process that
// drives the run, if any, reads it from the journal and starts what the pause held back.
func (f *Fleet) Unpause(ctx context.Context, id string, a Act) error {
	return f.journalAct(ctx, id, func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
		if s.Paused == nil {
			return nil, "", fmt.Errorf("run %s is %w", run.ID, ErrNotPaused)
		}
		who := a.who()
		return &rings.Event{Type: rings.RunUnpaused, Actor: who, Message: a.Reason},
			fmt.Sprintf("run %s unpaused by %s", run.ID, who), nil
	})
}

// Driver is the process that holds the fleet's lease, so drives its run (nil: none does); on
// Temporal, the workflow of the fleet's unfinished run, when it runs (PID 0).
func (f *Fleet) Driver(ctx context.Context) (*journal.Holder, error) {
	if f.OnTemporal() {
		return f.workflowDriver(ctx)
	}
	l, err := f.lease.Lease(ctx)
	if err != nil || l == nil || !l.Live(thisHost()) {
		return nil, err
	}
	return &l.Holder, nil
}

// DriveInBackground hands a run that no process drives to a background `rollout resume RUN --as
// WHO` on this machine (its log: .rollout/runs/RUN.log), as start --detach does: it carries out
// what the journal asks (an approval, an abort, an unpause) with the identities of this machine's
// environment.
func (f *Fleet) DriveInBackground(ctx context.Context, id string, a Act) (string, error) {
	return f.driveInBackground(ctx, id, a, false, false)
}

// RollbackInBackground hands a rollback of run (its targets to their last known good) to a
// background `rollout rollback --run RUN --yes` on this machine: the dashboard's rollback. The
// command passes the door as from a terminal; its log is .rollout/runs/rollback-RUN.log.
func (f *Fleet) RollbackInBackground(ctx context.Context, id string, a Act) (string, error) {
	run, err := f.reader.Run(ctx, id)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(a.Reason) == "" {
		return "", errors.New("a rollback needs a reason: it is journaled with who rolled back")
	}
	return f.inBackground("rollback-"+run.ID, "rollback", "--run="+run.ID, "--reason="+a.Reason, "--as="+a.who(), "--yes")
}

// RetryInBackground hands a retry of run's release (start --retry) to a background process on this
// machine: the dashboard's retry. The run must be the release's newest, rolled back or aborted;
// the release is tried again with the content it was recorded with.
func (f *Fleet) RetryInBackground(ctx context.Context, id string, a Act) (string, error) {
	run, err := f.reader.Run(ctx, id)
	if err != nil {
		return "", err
	}
	newest, found, err := f.reader.RunForRelease(ctx, run.Release.Name)
	switch {
	case err != nil:
		return "", err
	case !found || newest.ID != run.ID:
		return "", fmt.Errorf("run %s is not the newest attempt of release %s: retry that one", run.ID, run.Release.Name)
	case strings.TrimSpace(a.Reason) == "":
		return "", errors.New("a retry needs a reason: it is journaled with who tried the release again")
	}
	rel, err := f.releases.Release(ctx, run.Release.Name)
	if err != nil {
		return "", err
	}
	args := []string{"start", "--release=" + run.Release.Name, "--retry", "--reason=" + a.Reason, "--as=" + a.who(), "--detach"}
	given := f.givenVars(rel)
	for _, k := range slices.Sorted(maps.Keys(given)) {
		args = append(args, "--var="+k+"="+fmt.Sprint(given[k]))
	}
	return f.inBackground("retry-"+run.ID, args...)
}

// givenVars are the variables a release was recorded with beyond rollout.yaml's release.vars (what
// --var gave it), secrets left out: they come from the environment again.
func (f *Fleet) givenVars(rel journal.Release) map[string]any {
	out := map[string]any{}
	for k, v := range rel.Vars {
		if cfg, ok := f.cfg.Release.Vars[k]; (ok && jsonEqual(cfg, v)) || v == secretMarker {
			continue
		}
		out[k] = v
	}
	return out
}

// ResumeInBackground is resume --detach: the run is handed to a background `rollout resume` (which
// unpauses it, measures inconclusive gates again, or breaks the glass as asked) and this returns at
// once; on Temporal, the run's workflow is told.
func (f *Fleet) ResumeInBackground(ctx context.Context, id string, breakGlassToo bool, a Act) (string, error) {
	if breakGlassToo && a.Reason == "" {
		return "", errors.New("--break-glass needs --reason: the journal keeps why the freeze was overridden")
	}
	if f.OnTemporal() {
		return f.Resume(ctx, id, breakGlassToo, a)
	}
	return f.driveInBackground(ctx, id, a, true, breakGlassToo)
}

func (f *Fleet) driveInBackground(ctx context.Context, id string, a Act, resume, breakGlassToo bool) (string, error) {
	if !f.OnTemporal() { // on Temporal the run's workflow is started, or told, below
		if d, err := f.Driver(ctx); err != nil || d != nil {
			if err == nil {
				err = fmt.Errorf("%s (pid %d, %s) drives the fleet already", d.Name, d.PID, d.Doing)
			}
			return "", err
		}
	}
	run, err := f.reader.Run(ctx, id)
	if err != nil {
		return "", err
	}
	s, _, err := f.Replay(ctx, run.ID)
	if err != nil {
		return "", err
	}
	switch {
	case rings.Terminal(s.Phase):
		return "", fmt.Errorf("run %s already finished: %s", run.ID, s.Phase)
	case s.Paused != nil && s.Aborted == nil && !resume: // a resume would unpause it
		return "", fmt.Errorf("run %s is paused (by %s): resume it to go on", run.ID, s.Paused.Actor)
	}
	if f.OnTemporal() {
		return f.driveOnTemporal(ctx, run.ID)
	}
	args := []string{"--as=" + a.who()} // one argument: a name that begins with "-" stays a name
	if breakGlassToo {
		args = append(args, "--break-glass", "--reason="+a.Reason)
	}
	log, err := f.detachRun(run.ID, args...)
	if err == nil && resume {
		f.notef("run %s goes on in the background (log: %s); follow it with: rollout status %s --wait", run.ID, log, run.ID)
	}
	return log, err
}

// Override gives the verdict (pass or fail) of a gate that was inconclusive on a target (or,
// target "", a ring gate), and drives the run on here.
func (f *Fleet) Override(ctx context.Context, id, target, ring, gate, verdict string, a Act) (string, error) {
	switch {
	case (target == "") == (ring == ""):
		return "", errors.New("give --target T for a target gate, or --ring R for a ring gate")
	case verdict != "pass" && verdict != "fail":
		return "", fmt.Errorf("--verdict must be pass or fail, got %q", verdict)
	case a.Reason == "":
		return "", errors.New("--reason is required: the journal keeps why a gate was overridden")
	}
	who, pass := a.who(), verdict == "pass"
	return f.continueRun(ctx, id, "gate override", func(s *rings.State) (rings.Event, []rings.Event, error) {
		if err := inconclusive(s, target, ring, gate); err != nil {
			return rings.Event{}, nil, err
		}
		// The verdict goes through the engine like any event, and the run continues here.
		return rings.Event{Type: rings.GateOverridden, Target: target, Ring: ring, Gate: gate, Passed: &pass, Actor: who, Message: a.Reason}, nil, nil
	})
}

// Resume continues a run here: a paused run is unpaused; inconclusive gates are measured again; a
// ring a freeze held starts if the freeze is over (or the glass is broken); an interrupted run
// re-drives what was under way.
func (f *Fleet) Resume(ctx context.Context, id string, breakGlassToo bool, a Act) (string, error) {
	if breakGlassToo && a.Reason == "" {
		return "", errors.New("--break-glass needs --reason: the journal keeps why the freeze was overridden")
	}
	who := a.who()
	return f.continueRun(ctx, id, "resume", func(s *rings.State) (rings.Event, []rings.Event, error) {
		first := rings.Event{Type: rings.RunResumed, Actor: who}
		var more []rings.Event
		if s.Paused != nil {
			more = append(more, rings.Event{Type: rings.RunUnpaused, Actor: who})
		} else if r := s.Rings[s.Ring]; s.Phase == rings.PhaseWaiting && (r.Phase == rings.RInconclusive || len(inconclusiveTargets(s)) > 0) {
			first.Type = rings.GatesRemeasure
		}
		return first, append(more, breakGlass(breakGlassToo, who, a.Reason)...), nil
	})
}

// continueRun takes the fleet's lease, replays the run, and drives it on from the event first
// returns (which may refuse).
func (f *Fleet) continueRun(ctx context.Context, runID, doing string, first func(*rings.State) (rings.Event, []rings.Event, error)) (string, error) {
	var id string
	err := f.withLease(ctx, doing+" "+runID, func(ctx context.Context) error {
		run, err := f.reader.Run(ctx, runID)
		if err != nil {
			return err
		}
		s, _, err := f.Replay(ctx, run.ID)
		if err != nil {
			return err
		}
		if rings.Terminal(s.Phase) {
			return fmt.Errorf("run %s already finished: %s", run.ID, s.Phase)
		}
		ev, more, err := first(s)
		if err != nil {
			return err
		}
		if err := f.requireDeclared(planTargets(s.Plan)); err != nil {
			return err
		}
		f.notef("%s: run %s of release %s (phase %s)", doing, run.ID, run.Release.Name, s.Phase)
		id = run.ID
		return f.execute(ctx, s, ev, more...)
	})
	return id, err
}

// inconclusive checks that the run waits on this gate being inconclusive.
func inconclusive(s *rings.State, target, ring, gate string) error {
	if s.Phase != rings.PhaseWaiting {
		return fmt.Errorf("run %s is %s, not waiting on an inconclusive gate", s.RunID, s.Phase)
	}
	if target != "" {
		t := s.Targets[target]
		if t == nil || t.Phase != rings.TInconclusive {
			return fmt.Errorf("target %s of run %s has no inconclusive gate", target, s.RunID)
		}
		if !strings.HasPrefix(t.Message, "gate "+gate+" inconclusive") {
			return fmt.Errorf("target %s: %s (not gate %s)", target, t.Message, gate)
		}
		return nil
	}
	for _, r := range s.Rings {
		if r.Plan.Name == ring && r.Phase == rings.RInconclusive {
			return nil
		}
	}
	return fmt.Errorf("ring %s of run %s has no inconclusive ring gate", ring, s.RunID)
}

func inconclusiveTargets(s *rings.State) []string {
	var out []string
	for _, tp := range s.Rings[s.Ring].Plan.Targets {
		if s.Targets[tp.Name].Phase == rings.TInconclusive {
			out = append(out, tp.Name)
		}
	}
	return out
}

// Switch is the fleet's stop-the-line switch (nil: off).
func (f *Fleet) Switch(ctx context.Context) (*rings.Switch, error) { return f.switches.Switch(ctx) }

// SetSwitch turns the stop-the-line switch on (a reason is required) or off.
func (f *Fleet) SetSwitch(ctx context.Context, on bool, a Act) error {
	if on && a.Reason == "" {
		return errors.New("--reason is required to stop the line")
	}
	who := a.who()
	if err := f.switches.SetSwitch(ctx, on, rings.Switch{Actor: who, Reason: a.Reason, At: f.now()}); err != nil {
		return err
	}
	state := "off"
	if on {
		state = "on"
	}
	f.notef("stop-the-line switch %s (by %s)", state, who)
	if f.OnTemporal() { // the unfinished run's workflow looks at the switch now, not at its next poll
		if s, err := f.unfinishedRun(ctx); err == nil && s != nil {
			f.nudge(ctx, s.RunID)
		}
	}
	return nil
}

package runs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/proc"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/rings"
)

// StartRequest asks to promote a release, or to resume its run.
type StartRequest struct {
	Release      string
	Vars         map[string]any // over release.vars
	Detach       bool           // hand the run to a background process and return
	Reviewed     string         // a saved plan (plan --save) the run's applies must match
	AllowDestroy bool           // with Reason: plans may destroy protected resource types
	BreakGlass   bool           // with Reason: freeze windows and the stop-the-line switch do not hold
	Reason       string
	NewJournal   bool   // the journal is empty on purpose though the fleet's local files show earlier runs
	ApplyMode    string // auto, plan-first or direct ("": defaults.applyMode)
	Evidence     string // a directory of attestations the fleet's promotion policy requires
	// Retry (with Reason): a new attempt of a release whose run was rolled back or aborted.
	Retry bool
	As    string // who retries, or promotes into Ring
	// Ring (with Reason): promote the release into this ring alone, the hotfix path: a new run of
	// kind promote, through the ring's approval and the promotion policy like any promotion.
	Ring string
}

// Start promotes a release through the rings, or resumes its run when it has one (after a crash,
// an approval or an interruption): it never starts a second run of a release. It returns the
// run's id ("" when nothing was started); the run's report says how it ended or why it waits.
func (f *Fleet) Start(ctx context.Context, r StartRequest) (string, error) {
	if err := config.ValidName("release", r.Release); err != nil {
		return "", fmt.Errorf("--release: %w", err)
	}
	if err := r.check(); err != nil {
		return "", err
	}
	f.detach = r.Detach
	var s *rings.State
	err := f.withLease(ctx, "start --release "+r.Release, func(ctx context.Context) error {
		var err error
		s, err = f.startLocked(ctx, r)
		return err
	})
	var held *journal.LeaseHeldError
	if r.Detach && errors.As(err, &held) {
		// Idempotent: the run of this release may be the one that process drives.
		if run, found, ferr := f.reader.RunForRelease(ctx, r.Release); ferr == nil && found {
			f.notef("run %s of release %s is in progress: %s (pid %d on %s) is %s", run.ID, r.Release, held.Holder.Name, held.Holder.PID, held.Holder.Host, held.Holder.Doing)
			return run.ID, nil
		}
	}
	if err != nil || s == nil {
		return "", err
	}
	if r.Detach && !Settled(s.Phase) && !f.OnTemporal() { // on Temporal, the workflow goes on
		log, err := f.detachRun(s.RunID)
		if err != nil {
			return "", err
		}
		f.notef("run %s goes on in the background (log: %s); follow it with: rollout status %s --wait", s.RunID, log, s.RunID)
	}
	return s.RunID, nil
}

func (r StartRequest) check() error {
	switch {
	case r.BreakGlass && r.Reason == "":
		return errors.New("--break-glass needs --reason: the journal keeps why the freeze was overridden")
	case r.AllowDestroy && r.Reason == "":
		return errors.New("--allow-destroy needs --reason: the journal keeps why protected resources may be destroyed")
	case r.ApplyMode != "" && config.CheckApplyMode(r.ApplyMode) != nil:
		return fmt.Errorf("--apply-mode: %w", config.CheckApplyMode(r.ApplyMode))
	case r.ApplyMode == config.ApplyDirect && r.Reviewed != "":
		return errors.New("--apply-mode direct applies without a plan first, and --reviewed holds each apply to its reviewed plan: use auto")
	case r.Retry && strings.TrimSpace(r.Reason) == "":
		return errors.New("--retry needs --reason: the journal keeps why a release that was rolled back is tried again")
	case r.Ring != "" && strings.TrimSpace(r.Reason) == "":
		return errors.New("--ring needs --reason: the journal keeps why a release went into one ring past the others")
	case r.Ring != "" && r.Retry:
		return errors.New("--ring and --retry: a promotion into one ring is a new run already; give one")
	}
	return nil
}

// retryOf checks that run, the newest of its release, may be retried, and says what the retry is.
func retryOf(run journal.Run, s *rings.State, r StartRequest) (*rings.RetryInfo, int, error) {
	switch {
	case !rings.Terminal(s.Phase):
		return nil, 0, fmt.Errorf("run %s of release %s is not over (%s): resume it (rollout resume %s) or abort it first", run.ID, r.Release, s.Phase, run.ID)
	case s.Phase != rings.PhaseRolledBack && s.Phase != rings.PhaseAborted:
		return nil, 0, fmt.Errorf("run %s of release %s ended %s: only a release that was rolled back or aborted is retried", run.ID, r.Release, s.Phase)
	}
	return &rings.RetryInfo{Run: run.ID, Phase: s.Phase, Actor: Actor(r.As), Reason: r.Reason}, max(s.Plan.Attempt, 1) + 1, nil
}

// startLocked starts or resumes the release's run, under the fleet's lease.
func (f *Fleet) startLocked(ctx context.Context, r StartRequest) (*rings.State, error) {
	if r.Ring != "" {
		return f.promoteLocked(ctx, r)
	}
	if r.Retry && len(r.Vars) == 0 { // a new attempt of the same content: the values it was given
		if rel, err := f.releases.Release(ctx, r.Release); err == nil {
			r.Vars = f.givenVars(rel)
		}
	}
	run, found, err := f.reader.RunForRelease(ctx, r.Release)
	if err != nil {
		return nil, err
	}
	var s *rings.State
	if found {
		// The same name must still mean the same content, whether resuming or asking again.
		if _, err := f.prepareRelease(ctx, r.Release, r.Vars); err != nil {
			return nil, err
		}
		if s, _, err = f.Replay(ctx, run.ID); err != nil {
			return nil, err
		}
	}
	who := holder("").Name
	more := breakGlass(r.BreakGlass, Actor(""), r.Reason)
	var retry *rings.RetryInfo
	attempt := 0
	switch {
	case r.Retry && !found:
		return nil, fmt.Errorf("release %s has no run to retry: start it (rollout start --release %s)", r.Release, r.Release)
	case r.Retry:
		if retry, attempt, err = retryOf(run, s, r); err != nil {
			return nil, err
		}
		found = false // a new run of the same release
	case found && rings.Terminal(s.Phase):
		f.notef("run %s of release %s already finished: %s %s", run.ID, r.Release, s.Phase, s.Reason)
		return s, nil
	case found && s.Plan.Kind != "":
		if err := f.requireDeclared(planTargets(s.Plan)); err != nil {
			return nil, err
		}
		if r.Reviewed != "" || r.AllowDestroy || r.ApplyMode != "" {
			return nil, fmt.Errorf("run %s of release %s was started already, with the review and apply mode it had then: --reviewed, --allow-destroy and --apply-mode apply to a new run", run.ID, r.Release)
		}
		f.notef("resuming run %s of release %s (phase %s)", run.ID, r.Release, s.Phase)
		return s, f.execute(ctx, s, rings.Event{Type: rings.RunResumed, Actor: who}, more...)
	}
	// A new run, or one whose start was never journaled (a crash right after creating it).
	plan, err := f.newRunPlan(ctx, r, run, found)
	if err != nil {
		return nil, err
	}
	plan.Attempt, plan.RetryOf = attempt, retry
	if !found {
		run = journal.Run{ID: newID(r.Release), Kind: rings.KindRelease, Release: plan.Release, Created: f.now()}
		if err := f.writer.CreateRun(ctx, run); err != nil {
			return nil, err
		}
	}
	s = &rings.State{RunID: run.ID}
	f.notef("run %s: release %s (digest %s, module %s)", run.ID, r.Release, short(plan.Release.Digest), short(plan.Release.ModuleDigest()))
	if retry != nil {
		f.notef("attempt %d of release %s, after run %s ended %s; why: %s", attempt, r.Release, retry.Run, retry.Phase, retry.Reason)
	}
	return s, f.execute(ctx, s, rings.Event{Type: rings.RunStarted, Plan: plan, Actor: who}, more...)
}

// promoteLocked starts a run that promotes the release into one ring (start --ring): always a new
// run, of kind promote; a resumed one goes on with rollout resume RUN.
func (f *Fleet) promoteLocked(ctx context.Context, r StartRequest) (*rings.State, error) {
	if names := configRings(f.cfg); !slices.Contains(names, r.Ring) {
		return nil, fmt.Errorf("--ring %s: no such ring in %s%s", r.Ring, f.cfg.File, didYouMean(r.Ring, names))
	}
	plan, err := f.newRunPlan(ctx, r, journal.Run{}, false)
	if err != nil {
		return nil, err
	}
	run := journal.Run{ID: newID(r.Release), Kind: rings.KindPromote, Release: plan.Release, Created: f.now()}
	if err := f.writer.CreateRun(ctx, run); err != nil {
		return nil, err
	}
	f.notef("run %s: release %s into ring %s alone (digest %s), for %s: %s", run.ID, r.Release, r.Ring, short(plan.Release.Digest), plan.Requested.Actor, r.Reason)
	s := &rings.State{RunID: run.ID}
	return s, f.execute(ctx, s, rings.Event{Type: rings.RunStarted, Plan: plan, Actor: holder("").Name}, breakGlass(r.BreakGlass, Actor(""), r.Reason)...)
}

// newRunPlan checks what a new run needs and fixes its plan; the release is bound to its name
// only once nothing else can stop the run.
func (f *Fleet) newRunPlan(ctx context.Context, r StartRequest, run journal.Run, found bool) (*rings.Plan, error) {
	if err := f.checkNotEmptied(ctx, r.NewJournal); err != nil {
		return nil, err
	}
	if other, err := f.unfinishedRun(ctx); err != nil {
		return nil, err
	} else if other != nil && other.RunID != run.ID {
		return nil, fmt.Errorf("run %s of release %s is not finished (%s): finish it first (rollout start --release %s), or roll it back (rollout rollback --run %s --reason TEXT)",
			other.RunID, other.Plan.Release.Name, other.Phase, other.Plan.Release.Name, other.RunID)
	}
	if err := f.requireDeclared(f.configuredTargets()); err != nil {
		return nil, err
	}
	plan, release, err := f.newPlan(ctx, r.Release, r.Vars)
	if err != nil {
		return nil, err
	}
	if r.Ring != "" { // the hotfix path: this ring alone
		i := slices.IndexFunc(plan.Rings, func(rp rings.RingPlan) bool { return rp.Name == r.Ring })
		plan.Kind, plan.Rings = rings.KindPromote, plan.Rings[i:i+1]
		plan.Requested = &rings.Requested{Actor: Actor(r.As), Reason: r.Reason}
	}
	if plan.Review, err = reviewFor(r, plan); err != nil {
		return nil, err
	}
	if plan.Evidence, err = f.acceptEvidence(ctx, plan.Release, r.Evidence); err != nil {
		return nil, err
	}
	if err := f.door(ctx, plan, plan.Evidence); err != nil {
		return nil, err
	}
	if plan.ApplyMode, err = f.applyMode(r.ApplyMode); err != nil {
		return nil, err
	}
	if err := f.ready(ctx, *plan, nil); err != nil {
		return nil, err
	}
	return plan, f.bindRelease(ctx, release)
}

// breakGlass is the event of --break-glass --reason, if given.
func breakGlass(on bool, who, reason string) []rings.Event {
	if !on {
		return nil
	}
	return []rings.Event{{Type: rings.FreezeBroken, Actor: who, Message: reason}}
}

// reviewFor is the plan review a new run is held to: the saved plan's digests (it must be of
// this release and module, and cover every target), and who allowed destroying protected types.
func reviewFor(r StartRequest, plan *rings.Plan) (*rings.Review, error) {
	var rv *rings.Review
	if r.Reviewed != "" {
		saved, err := ReadSavedPlan(r.Reviewed)
		if err != nil {
			return nil, err
		}
		if saved.Release != plan.Release {
			return nil, fmt.Errorf("%s reviewed release %s (module %s), not %s (module %s)", r.Reviewed,
				saved.Release.Name, short(saved.Release.Digest), plan.Release.Name, short(plan.Release.Digest))
		}
		rv = &rings.Review{Digests: map[string]string{}}
		var missing []string
		for _, name := range planTargets(*plan) {
			tp, ok := saved.Targets[name]
			if !ok || tp.Digest == "" {
				missing = append(missing, name)
				continue
			}
			rv.Digests[name] = tp.Digest
			for _, c := range tp.Components { // a stack: each component's reviewed plan (none when deferred)
				if c.Digest != "" {
					rv.Digests[provision.UnitKey(name, c.Name)] = c.Digest
				}
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s has no reviewed plan for %s: plan and review again", r.Reviewed, strings.Join(missing, ", "))
		}
	}
	if r.AllowDestroy {
		if rv == nil {
			rv = &rings.Review{}
		}
		rv.AllowDestroy = Actor("") + ": " + r.Reason
	}
	return rv, nil
}

// newPlan fixes a run's plan from the configuration: the release (prepared, not bound: the caller
// binds it once nothing else can stop the run), and per target the last known good a rollback
// returns it to and what it runs now.
func (f *Fleet) newPlan(ctx context.Context, name string, extra map[string]any) (*rings.Plan, journal.Release, error) {
	release, err := f.prepareRelease(ctx, name, extra)
	if err != nil {
		return nil, release, err
	}
	rel := release.Ref()
	plan := &rings.Plan{Kind: rings.KindRelease, Release: rel}
	// Each target's release events, read once; a release a run rolled back on any of them is no
	// target's last known good, wherever it passed.
	evs, failed := map[string][]rings.Event{}, map[string]bool{}
	for _, r := range f.cfg.Rings {
		for _, target := range r.Targets {
			if evs[target], err = journal.ReleaseEvents(ctx, f.reader, target); err != nil {
				return nil, release, err
			}
			journal.RolledBack(evs[target], failed)
		}
	}
	if err := f.forgive(ctx, failed); err != nil {
		return nil, release, err
	}
	for _, r := range f.cfg.Rings {
		rp := rings.RingPlan{Name: r.Name, MaxParallel: r.MaxParallel, MaxFailures: r.MaxFailures, Gates: r.Gates,
			Bake: rings.Duration(r.Bake.D()), RingGates: r.RingGates, Rollback: r.Rollback, Approval: r.Approval.Required, UnlessPlans: r.Approval.UnlessPlans,
			Approvers: r.Approval.Approvers, Quorum: r.Approval.Quorum, Verifiers: r.Approval.Verifiers, Freeze: f.cfg.RingFreeze(r), DriftCheck: r.DriftCheck}
		for _, target := range r.Targets {
			t := f.cfg.Target(target)
			lkg, runs := journal.Pick(evs[target], name, failed)
			rp.Targets = append(rp.Targets, rings.TargetPlan{Name: target, Boundary: t.Boundary, Release: rel, From: lkg, Runs: runs})
		}
		plan.Rings = append(plan.Rings, rp)
	}
	return plan, release, nil
}

// detachRun hands a journaled run to a background `rollout resume RUN` on this machine, in its own
// session (it outlives this process and its terminal), logging to .rollout/runs/RUN.log, and
// waits until that process drives it.
func (f *Fleet) detachRun(runID string, more ...string) (string, error) {
	return f.inBackground(runID, append([]string{"resume", runID}, more...)...)
}

// inBackground runs `rollout ARGS` on this machine in its own session, with this fleet's
// configuration, journal, binary and secret variables, logging to .rollout/runs/LOG.log, and waits
// until it drives a run (or ended). Every value in args is one argument (--flag=value).
func (f *Fleet) inBackground(logName string, command ...string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(f.stateDir, "runs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, logName+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	defer log.Close()
	args := append(command, "--config", f.cfg.File, "--no-color")
	if f.opts.State != "" {
		args = append(args, "--state", f.opts.State)
	}
	if bin := cmp.Or(f.bin, f.opts.TFBin); bin != "" {
		args = append(args, "--tf-bin", bin)
	}
	if ev := f.opts.Events; ev != "" && ev != "-" {
		path, err := filepath.Abs(ev)
		if err != nil {
			return "", err
		}
		args = append(args, "--events", path)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), f.secretEnviron()...) // its secret variables, never on its command line
	cmd.Dir = f.cfg.Root
	cmd.Stdout, cmd.Stderr = log, log
	proc.Detach(cmd)
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start the background rollout %s: %w", command[0], err)
	}
	f.awaitDriver(cmd)
	return logPath, nil
}

// awaitDriver waits until the background process holds the fleet's lease (so that a `status`
// right after this returns sees the run driven), or until it exited.
func (f *Fleet) awaitDriver(cmd *exec.Cmd) {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l, err := f.lease.Lease(context.Background()); err == nil && l != nil && l.Holder.PID == cmd.Process.Pid && l.Holder.Host == thisHost() {
			return
		}
		select {
		case <-exited:
			return // it ended already: the report says where the run stands, its log why
		case <-time.After(20 * time.Millisecond):
		}
	}
	// slow to start: the report says whether anything drives the run
}

// applyMode is a new run's apply mode: the one asked for, else defaults.applyMode. Direct with
// protected resource types is refused: their check needs each plan before its apply.
func (f *Fleet) applyMode(asked string) (string, error) {
	mode := cmp.Or(asked, f.cfg.Defaults.ApplyMode, config.ApplyAuto)
	if mode == config.ApplyDirect && len(f.cfg.Protect) > 0 {
		return "", errors.New("--apply-mode direct applies without a plan first, and protect: in rollout.yaml needs each plan before its apply: use auto")
	}
	return mode, config.CheckApplyMode(mode)
}

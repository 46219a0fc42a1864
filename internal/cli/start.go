package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

type startOptions struct {
	Release      string
	Vars         []string
	Wait         bool
	Detach       bool
	NewJournal   bool   // the journal is empty on purpose though the fleet's local files show earlier runs
	Reviewed     string // a saved plan (rollout plan --save) the run's applies must match
	AllowDestroy bool
	Glass        breakGlass
}

func newStartCmd(io IO, g globals) *cobra.Command {
	o := &startOptions{}
	cmd := &cobra.Command{
		Use:   "start --release NAME [--var k=v ...]",
		Short: "Promote a release through the rings; called again for the same release, resume its run",
		Long: `Promote a release ring by ring: in each ring, plan and apply at most maxParallel targets at
once, evaluate each target's gates after its apply, bake the ring with its ring gates, and move
on only when the ring passed. A gate failure beyond maxFailures halts the ring and rolls back per
its rollback scope (target, ring or run) to each target's last known good release; exit 2.

The release is immutable: its name is bound to the module tree's digest and variables the first
time it is started. Starting the same release again resumes its run (after a crash, an approval
or an interruption); it never starts a second one.

--detach (or --wait=false) journals the run's start and hands it to a background process on this
machine (its log in .rollout/runs/RUN.log), then returns once that process drives the run: exit 0,
or 3/4 when the run waits for an approval or is blocked by a freeze before anything started. Follow it with rollout status RUN
--wait; started again while that process runs, it says so and exits 0.

--reviewed FILE holds every apply of this release to the plan saved by rollout plan --save: a
target whose plan differs (something changed since the review) fails without being applied.
Plans that destroy or replace a resource of a type listed under protect: are refused unless
--allow-destroy --reason TEXT. A ring frozen by a window or the stop-the-line switch blocks the
run (exit 4) unless --break-glass --reason TEXT; both are journaled with who and why.`,
		Example: `  rollout start --release v42 --var image=registry.example/app:42
  rollout start --release v42 --detach && rollout status --wait --timeout 2h
  rollout plan --release v42 --save v42.plan.json && rollout start --release v42 --reviewed v42.plan.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("detach") && cmd.Flags().Changed("wait") {
				return &ExitErr{Code: ExitError, Err: errors.New("--detach and --wait say the same thing: give one")}
			}
			if o.Detach {
				o.Wait = false
			}
			return startRun(cmd.Context(), io, g, o)
		},
	}
	cmd.Flags().StringVar(&o.Release, "release", "", "the release name, e.g. v42 (required)")
	cmd.Flags().StringArrayVar(&o.Vars, "var", nil, "a release variable name=value, over release.vars (repeatable)")
	cmd.Flags().BoolVar(&o.NewJournal, "new-journal", false, "begin a new history although the fleet's local files show earlier runs (their journal was lost)")
	cmd.Flags().BoolVar(&o.Detach, "detach", false, "start the run in the background and return once a process drives it")
	cmd.Flags().BoolVar(&o.Wait, "wait", true, "drive the run here until it ends or waits (--wait=false is --detach)")
	cmd.Flags().StringVar(&o.Reviewed, "reviewed", "", "apply only plans matching this saved plan (rollout plan --save FILE)")
	cmd.Flags().BoolVar(&o.AllowDestroy, "allow-destroy", false, "permit destroying protected resource types (needs --reason; journaled)")
	o.Glass.flags(cmd)
	_ = cmd.MarkFlagRequired("release")
	return cmd
}

func startRun(ctx context.Context, io IO, g globals, o *startOptions) error {
	if err := config.ValidName("release", o.Release); err != nil {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("--release: %w", err)}
	}
	f, err := openFleet(ctx, g, true)
	if err != nil {
		return err
	}
	defer f.Close()
	extra, err := parseVars(o.Vars)
	if err != nil {
		return err
	}
	if err := o.Glass.check(); err != nil {
		return err
	}
	if o.AllowDestroy && o.Glass.reason == "" {
		return &ExitErr{Code: ExitError, Err: errors.New("--allow-destroy needs --reason: the journal keeps why protected resources may be destroyed")}
	}
	who := holder("").Name
	more := o.Glass.events(actor(""))
	f.detach = !o.Wait
	var s *rings.State
	err = f.withLease(ctx, "start --release "+o.Release, func(ctx context.Context) error {
		run, found, err := f.store.RunForRelease(ctx, o.Release)
		if err != nil {
			return err
		}
		if found {
			// The same name must still mean the same content, whether resuming or asking again.
			if _, err := f.prepareRelease(ctx, o.Release, extra); err != nil {
				return err
			}
			if s, _, err = f.replay(ctx, run.ID); err != nil {
				return err
			}
		}
		var first rings.Event
		switch {
		case found && rings.Terminal(s.Phase):
			fmt.Fprintf(io.Err, "run %s of release %s already finished: %s %s\n", run.ID, o.Release, s.Phase, s.Reason)
			return nil
		case found && s.Plan.Kind != "":
			if err := f.requireDeclared(planTargets(s.Plan)); err != nil {
				return err
			}
			if o.Reviewed != "" || o.AllowDestroy {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s of release %s was started already, with the review it had then: --reviewed and --allow-destroy apply to a new run", run.ID, o.Release)}
			}
			fmt.Fprintf(io.Err, "resuming run %s of release %s (phase %s)\n", run.ID, o.Release, s.Phase)
			first = rings.Event{Type: rings.RunResumed, Actor: who}
		default: // a new run, or one whose start was never journaled (a crash right after creating it)
			if err := f.checkNotEmptied(ctx, o.NewJournal); err != nil {
				return err
			}
			if other, err := f.unfinishedRun(ctx); err != nil {
				return err
			} else if other != nil && other.RunID != run.ID {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s of release %s is not finished (%s): finish it first (rollout start --release %s), or roll it back (rollout rollback --run %s)",
					other.RunID, other.Plan.Release.Name, other.Phase, other.Plan.Release.Name, other.RunID)}
			}
			if err := f.requireDeclared(f.configuredTargets()); err != nil {
				return err
			}
			plan, release, err := f.newPlan(ctx, o.Release, extra)
			if err != nil {
				return err
			}
			if plan.Review, err = reviewFor(o, plan); err != nil {
				return err
			}
			if err := f.ready(ctx, *plan); err != nil {
				return err
			}
			if err := f.bindRelease(ctx, release); err != nil {
				return err
			}
			if !found {
				run = journal.Run{ID: newID(o.Release), Kind: rings.KindRelease, Release: plan.Release, Created: time.Now()}
				if err := f.store.CreateRun(ctx, run); err != nil {
					return err
				}
			}
			s = &rings.State{RunID: run.ID}
			first = rings.Event{Type: rings.RunStarted, Plan: plan, Actor: who}
			fmt.Fprintf(io.Err, "run %s: release %s (digest %s, module %s)\n", run.ID, o.Release, short(plan.Release.Digest), short(plan.Release.ModuleDigest()))
		}
		s.RunID = run.ID
		return f.execute(ctx, io, g, s, first, more...)
	})
	var held *journal.LeaseHeldError
	if !o.Wait && errors.As(err, &held) {
		// Idempotent: the run of this release may be the one that process drives.
		if run, found, ferr := f.store.RunForRelease(ctx, o.Release); ferr == nil && found {
			fmt.Fprintf(io.Err, "run %s of release %s is in progress: %s (pid %d on %s) is %s\n", run.ID, o.Release, held.Holder.Name, held.Holder.PID, held.Holder.Host, held.Holder.Doing)
			_, rerr := report(ctx, io.Out, io.Err, newStyle(io, g), g, f, run.ID)
			return rerr
		}
	}
	if err != nil {
		return err
	}
	if s != nil && !o.Wait && !settled(s.Phase) {
		log, err := detach(g, f, s.RunID)
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Err, "run %s goes on in the background (log: %s); follow it with: rollout status %s --wait\n", s.RunID, log, s.RunID)
		_, err = report(ctx, io.Out, io.Err, newStyle(io, g), g, f, s.RunID)
		return err
	}
	return finishReport(ctx, io, g, f, s)
}

// reviewFor is the plan review a new run is held to: the saved plan's digests (it must be of
// this release and module, and cover every target), and who allowed destroying protected types.
func reviewFor(o *startOptions, plan *rings.Plan) (*rings.Review, error) {
	var rv *rings.Review
	if o.Reviewed != "" {
		saved, err := readSavedPlan(o.Reviewed)
		if err != nil {
			return nil, &ExitErr{Code: ExitError, Err: err}
		}
		if saved.Release != plan.Release {
			return nil, &ExitErr{Code: ExitError, Err: fmt.Errorf("%s reviewed release %s (module %s), not %s (module %s)", o.Reviewed,
				saved.Release.Name, short(saved.Release.Digest), plan.Release.Name, short(plan.Release.Digest))}
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
		}
		if len(missing) > 0 {
			return nil, &ExitErr{Code: ExitError, Err: fmt.Errorf("%s has no reviewed plan for %s: plan and review again", o.Reviewed, strings.Join(missing, ", "))}
		}
	}
	if o.AllowDestroy {
		if rv == nil {
			rv = &rings.Review{}
		}
		rv.AllowDestroy = actor("") + ": " + o.Glass.reason
	}
	return rv, nil
}

func short(s string) string { return s[:min(12, len(s))] }

// detach hands a journaled run to a background `rollout resume RUN` on this machine, in its own
// session (it outlives this process and its terminal), logging to .rollout/runs/RUN.log.
func detach(g globals, f *fleet, runID string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(f.stateDir, "runs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, runID+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	defer log.Close()
	args := []string{"resume", runID, "--config", f.cfg.File, "--no-color"}
	if st := g.state(); st != "" {
		args = append(args, "--state", st)
	}
	if f.bin != "" {
		args = append(args, "--tf-bin", f.bin)
	}
	if ev := g.v.GetString("events"); ev != "" && ev != "-" {
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start the background run: %w", err)
	}
	awaitDriver(f, cmd)
	return logPath, nil
}

// awaitDriver waits until the background process holds the fleet's lease (so that a `status`
// right after this returns sees the run driven), or until it exited, which its log explains.
func awaitDriver(f *fleet, cmd *exec.Cmd) {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l, err := f.store.Lease(context.Background()); err == nil && l != nil && l.Holder.PID == cmd.Process.Pid && l.Holder.Host == thisHost() {
			return
		}
		select {
		case <-exited:
			return // it ended already: the report that follows says where the run stands, its log why
		case <-time.After(20 * time.Millisecond):
		}
	}
	// slow to start: the report says whether anything drives the run
}

// configuredTargets lists the configuration's targets in ring order.
func (f *fleet) configuredTargets() []string {
	var out []string
	for _, r := range f.cfg.Rings {
		out = append(out, r.Targets...)
	}
	return out
}

func planTargets(p rings.Plan) []string {
	var out []string
	for _, r := range p.Rings {
		for _, t := range r.Targets {
			out = append(out, t.Name)
		}
	}
	return out
}

// unfinishedRun returns a release run that is neither finished nor absent, if any.
func (f *fleet) unfinishedRun(ctx context.Context) (*rings.State, error) {
	runs, err := f.store.Runs(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.Kind != rings.KindRelease {
			continue
		}
		s, _, err := f.replay(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		if s.Plan.Kind != "" && !rings.Terminal(s.Phase) {
			return s, nil
		}
	}
	return nil, nil
}

// newPlan fixes a run's plan from the configuration: the release (prepared, not bound: the caller
// binds it once nothing else can stop the run), and per target the last known good a rollback
// returns it to.
func (f *fleet) newPlan(ctx context.Context, name string, extra map[string]any) (*rings.Plan, journal.Release, error) {
	release, err := f.prepareRelease(ctx, name, extra)
	if err != nil {
		return nil, release, err
	}
	rel := release.Ref()
	plan := &rings.Plan{Kind: rings.KindRelease, Release: rel}
	for _, r := range f.cfg.Rings {
		rp := rings.RingPlan{Name: r.Name, MaxParallel: r.MaxParallel, MaxFailures: r.MaxFailures, Gates: r.Gates,
			Bake: rings.Duration(r.Bake.D()), RingGates: r.RingGates, Rollback: r.Rollback, Approval: r.Approval.Required,
			Approvers: r.Approval.Approvers, Quorum: r.Approval.Quorum, Freeze: f.cfg.RingFreeze(r), DriftCheck: r.DriftCheck}
		for _, target := range r.Targets {
			t := f.cfg.Target(target)
			lkg, runs, err := journal.Releases(ctx, f.store, target, name)
			if err != nil {
				return nil, release, err
			}
			rp.Targets = append(rp.Targets, rings.TargetPlan{Name: target, Boundary: t.Boundary, Release: rel, From: lkg, Runs: runs})
		}
		plan.Rings = append(plan.Rings, rp)
	}
	return plan, release, nil
}

// finishReport prints the finished (or waiting) run's report, status to stderr, and returns the
// error its outcome maps to.
func finishReport(ctx context.Context, io IO, g globals, f *fleet, s *rings.State) error {
	if s == nil {
		return nil
	}
	rep, err := report(ctx, io.Out, io.Err, newStyle(io, g), g, f, s.RunID)
	if err != nil {
		return err
	}
	return reportErr(rep)
}

// reportErr maps a report's outcome to the CI contract.
func reportErr(rep *Report) error {
	if rep.ExitCode == ExitOK {
		return nil
	}
	if rep.ExitCode == ExitError {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s stopped in phase %s", rep.Run, firstNonEmpty(rep.Phase, "(never started)"))}
	}
	return &ExitErr{Code: rep.ExitCode}
}

// report prints a run's report: JSON to out with --output json, else a table to text.
func report(ctx context.Context, out, text io.Writer, st style, g globals, f *fleet, id string) (*Report, error) {
	need := needAll
	if g.json() {
		need = needJSON
	}
	rep, raw, err := f.runReport(ctx, id, need)
	if err != nil {
		return nil, err
	}
	switch {
	case g.json() && raw != nil:
		return rep, writeRawJSON(out, raw)
	case g.json():
		return rep, writeJSON(out, rep)
	}
	printReport(text, *rep, st)
	return rep, nil
}

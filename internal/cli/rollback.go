package cli

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

type rollbackOptions struct {
	Run, Ring, Target, To string
}

var timeNow = time.Now

func newRollbackCmd(io IO, g globals) *cobra.Command {
	o := &rollbackOptions{}
	cmd := &cobra.Command{
		Use: "rollback [--run RUN] [--ring R | --target T] [--to RELEASE]",
		Example: `  rollout rollback
  rollout rollback --run v42-1a2b3c --ring commercial
  rollout rollback --target eu-1 --to v40`,
		Short: "Return what a run changed to each target's last known good release (or --to a release)",
		Long: `Undo a release run: every target the run changed goes back to the release it ran before the
run (its last known good), newest ring first, through plan, apply and the ring's target gates.
--run picks the run (default: the newest release run), --ring or --target narrows it, --to names
the release to return to instead. A target already at the release it would return to is left
alone. If the run was not finished, it is ended first, so that starting its release again does
not re-apply it. Exit 0 when every rollback passed its gates, 6 when one failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return rollbackRun(cmd.Context(), io, g, o) },
	}
	cmd.Flags().StringVar(&o.Run, "run", "", "the run to undo (default: the newest release run)")
	cmd.Flags().StringVar(&o.Ring, "ring", "", "only this ring's targets")
	cmd.Flags().StringVar(&o.Target, "target", "", "only this target")
	cmd.Flags().StringVar(&o.To, "to", "", "return to this recorded release instead of each target's last known good")
	cmd.MarkFlagsMutuallyExclusive("ring", "target")
	return cmd
}

func rollbackRun(ctx context.Context, io IO, g globals, o *rollbackOptions) error {
	if o.To != "" {
		if err := config.ValidName("release", o.To); err != nil {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("--to: %w", err)}
		}
	}
	f, err := openFleet(ctx, g, true)
	if err != nil {
		return err
	}
	defer f.Close()
	var s *rings.State
	err = f.withLease(ctx, "rollback", func(ctx context.Context) error {
		var src journal.Run
		if o.Run != "" {
			if src, err = f.store.Run(ctx, o.Run); err != nil {
				return &ExitErr{Code: ExitError, Err: err}
			}
		} else if src, err = f.latestRun(ctx, rings.KindRelease); err != nil {
			return err
		}
		if src.Kind != rings.KindRelease && o.To == "" {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s is itself a rollback: undoing it would re-apply what it removed; name a release run, or say where to go with --to", src.ID)}
		}
		from, _, err := f.replay(ctx, src.ID)
		if err != nil {
			return err
		}
		if o.Ring != "" && !slices.ContainsFunc(from.Rings, func(r *rings.RingState) bool { return r.Plan.Name == o.Ring }) {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s has no ring %q", src.ID, o.Ring)}
		}
		if o.Target != "" && from.Targets[o.Target] == nil {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s has no target %q", src.ID, o.Target)}
		}
		var to *rings.ReleaseRef
		if o.To != "" {
			r, err := f.store.Release(ctx, o.To)
			if err != nil {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("--to: %w (hint: rollout history lists the releases runs used)", err)}
			}
			ref := r.Ref()
			to = &ref
		}
		current := map[string]*rings.ReleaseRef{}
		for name := range from.Targets {
			if current[name], err = journal.Current(ctx, f.store, name); err != nil {
				return err
			}
		}
		plan, skipped := rollbackPlan(from, current, o, to)
		for _, msg := range skipped {
			fmt.Fprintln(io.Err, msg)
		}
		if len(plan.Rings) == 0 {
			fmt.Fprintf(io.Err, "nothing to roll back in run %s\n", src.ID)
			return nil
		}
		if err := f.requireDeclared(planTargets(*plan)); err != nil {
			return err
		}
		if err := f.ready(ctx, *plan); err != nil {
			return err
		}
		if !rings.Terminal(from.Phase) {
			if err := f.store.Append(ctx, rings.Event{V: rings.EventVersion, RunID: src.ID, At: timeNow(), Type: rings.RunFinished,
				Outcome: rings.PhaseRolledBack, Message: "ended by a manual rollback", Actor: holder(src.ID).Name}); err != nil {
				return err
			}
		}
		id := newID("rollback")
		if err := f.store.CreateRun(ctx, journal.Run{ID: id, Kind: rings.KindRollback, Release: plan.Release, Created: timeNow()}); err != nil {
			return err
		}
		s = &rings.State{RunID: id}
		fmt.Fprintf(io.Err, "run %s: rolling back run %s (release %s)\n", id, src.ID, src.Release.Name)
		return f.execute(ctx, io, g, s, rings.Event{Type: rings.RunStarted, Plan: plan, Actor: holder(id).Name, Message: "undo " + src.ID})
	})
	if err != nil {
		return err
	}
	return finishReport(ctx, io, g, f, s)
}

// rollbackPlan lists what to return where: the source run's changed targets, newest ring first,
// leaving out those already at their destination (current: what each target runs now).
func rollbackPlan(src *rings.State, current map[string]*rings.ReleaseRef, o *rollbackOptions, to *rings.ReleaseRef) (*rings.Plan, []string) {
	plan := &rings.Plan{Kind: rings.KindRollback, Release: src.Plan.Release}
	var skipped []string
	for i := len(src.Rings) - 1; i >= 0; i-- {
		r := src.Rings[i]
		if o.Ring != "" && r.Plan.Name != o.Ring {
			continue
		}
		rp := rings.RingPlan{Name: r.Plan.Name, MaxParallel: r.Plan.MaxParallel, Gates: r.Plan.Gates, Rollback: rings.RollbackNone}
		for _, tp := range r.Plan.Targets {
			if o.Target != "" && tp.Name != o.Target {
				continue
			}
			t := src.Targets[tp.Name]
			dest := to
			if dest == nil {
				dest = tp.From
			}
			switch {
			case t.Phase == rings.TPending && to == nil:
				continue // the run never touched it
			case dest == nil:
				skipped = append(skipped, fmt.Sprintf("%s: no last known good release before run %s (first deployment): left as is; --to names one", tp.Name, src.RunID))
				continue
			case current[tp.Name] != nil && *current[tp.Name] == *dest:
				skipped = append(skipped, fmt.Sprintf("%s: already at %s", tp.Name, dest.Name))
				continue
			}
			rp.Targets = append(rp.Targets, rings.TargetPlan{Name: tp.Name, Boundary: tp.Boundary, Release: *dest, From: current[tp.Name]})
		}
		if len(rp.Targets) > 0 {
			rp.MaxFailures = len(rp.Targets)
			plan.Rings = append(plan.Rings, rp)
		}
	}
	return plan, skipped
}

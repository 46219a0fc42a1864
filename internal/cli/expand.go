package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

func newExpandCmd(io IO, g globals) *cobra.Command {
	var only []string
	cmd := &cobra.Command{
		Use:     "expand [--target T ...]",
		Example: `  rollout env add --boundary local-eu --name eu-2 --ring commercial && rollout expand --target eu-2`,
		Short:   "Bring targets never deployed up to the release their ring runs, through plan, apply and gates",
		Long: `Find the targets that no run has deployed yet (added with rollout env add, say), or only those
given, and bring each up to the release its ring runs now (its targets' last known good, the one
most of them run), in ring order, through plan, apply and the ring's target gates, as a run of
kind expand. Existing targets are not touched. A target whose ring has no release yet is left
for the ring's first release. A failed target is reported, not rolled back (it has nothing to return to),
and counts against the ring's maxFailures.
Exit codes as for start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return expandRun(cmd.Context(), io, g, only) },
	}
	cmd.Flags().StringArrayVar(&only, "target", nil, "only this target (repeatable)")
	return cmd
}

func expandRun(ctx context.Context, io IO, g globals, only []string) error {
	f, err := openFleet(ctx, g, true)
	if err != nil {
		return err
	}
	defer f.Close()
	var s *rings.State
	err = f.withLease(ctx, "expand", func(ctx context.Context) error {
		if other, err := f.unfinishedRun(ctx); err != nil {
			return err
		} else if other != nil {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s of release %s is not finished (%s): finish it first, then expand", other.RunID, other.Plan.Release.Name, other.Phase)}
		}
		for _, name := range only {
			if f.cfg.Target(name) == nil {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("--target %s: no such target", name)}
			}
		}
		plan := &rings.Plan{Kind: rings.KindExpand}
		for _, r := range f.cfg.Rings {
			release, counts := (*rings.ReleaseRef)(nil), map[rings.ReleaseRef]int{}
			var fresh []string
			for _, name := range r.Targets {
				cur, err := journal.Current(ctx, f.store, name)
				if err != nil {
					return err
				}
				if cur == nil {
					if len(only) == 0 || slices.Contains(only, name) {
						fresh = append(fresh, name)
					}
					continue
				}
				lkg, err := journal.LastKnownGood(ctx, f.store, name, "")
				if err != nil {
					return err
				}
				if lkg != nil {
					counts[*lkg]++
					if release == nil || counts[*lkg] > counts[*release] {
						l := *lkg
						release = &l
					}
				}
			}
			if len(fresh) == 0 {
				continue
			}
			if release == nil {
				fmt.Fprintf(io.Err, "ring %s runs no release yet: %v wait for its first release\n", r.Name, fresh)
				continue
			}
			rp := rings.RingPlan{Name: r.Name, MaxParallel: r.MaxParallel, MaxFailures: r.MaxFailures, Gates: r.Gates, Rollback: rings.RollbackNone, Freeze: f.cfg.RingFreeze(r)}
			for _, name := range fresh {
				rp.Targets = append(rp.Targets, rings.TargetPlan{Name: name, Boundary: f.cfg.Target(name).Boundary, Release: *release})
			}
			if plan.Release.Name == "" {
				plan.Release = *release
			}
			plan.Rings = append(plan.Rings, rp)
		}
		if len(plan.Rings) == 0 {
			fmt.Fprintln(io.Err, "nothing to expand: every target has been deployed")
			return nil
		}
		if err := f.requireDeclared(planTargets(*plan)); err != nil {
			return err
		}
		id := newID("expand")
		if err := f.store.CreateRun(ctx, journal.Run{ID: id, Kind: rings.KindExpand, Release: plan.Release, Created: timeNow()}); err != nil {
			return err
		}
		s = &rings.State{RunID: id}
		fmt.Fprintf(io.Err, "run %s: expanding %d target(s)\n", id, len(planTargets(*plan)))
		return f.execute(ctx, io, g, s, rings.Event{Type: rings.RunStarted, Plan: plan, Actor: holder(id).Name})
	})
	if err != nil || s == nil {
		return err
	}
	return finishReport(ctx, io, g, f, s)
}

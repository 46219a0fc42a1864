package runs

import (
	"context"
	"fmt"
	"slices"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Expand brings the targets no run has deployed yet (or only those given) up to the release their
// ring runs now (the last known good most of its targets have), ring by ring, through plan, apply
// and the ring's target gates, as a run of kind expand. It returns the run's id ("" when there was
// nothing to expand).
func (f *Fleet) Expand(ctx context.Context, only []string) (string, error) {
	id := ""
	err := f.withLease(ctx, "expand", func(ctx context.Context) error {
		if other, err := f.unfinishedRun(ctx); err != nil {
			return err
		} else if other != nil {
			return fmt.Errorf("run %s of release %s is not finished (%s): finish it first, then expand", other.RunID, other.Plan.Release.Name, other.Phase)
		}
		for _, name := range only {
			if f.cfg.Target(name) == nil {
				return fmt.Errorf("--target %s: no such target", name)
			}
		}
		failed, err := f.failedReleases(ctx, f.configuredTargets())
		if err != nil {
			return err
		}
		plan := &rings.Plan{Kind: rings.KindExpand}
		for _, r := range f.cfg.Rings {
			release, counts := (*rings.ReleaseRef)(nil), map[rings.ReleaseRef]int{}
			var fresh []string
			for _, name := range r.Targets {
				cur, err := journal.Current(ctx, f.reader, name)
				if err != nil {
					return err
				}
				if cur == nil {
					if len(only) == 0 || slices.Contains(only, name) {
						fresh = append(fresh, name)
					}
					continue
				}
				lkg, err := journal.LastKnownGood(ctx, f.reader, name, "", failed)
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
				f.notef("ring %s runs no release yet: %v wait for its first release", r.Name, fresh)
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
			f.notef("nothing to expand: every target has been deployed")
			return nil
		}
		if err := f.requireDeclared(planTargets(*plan)); err != nil {
			return err
		}
		if plan.ApplyMode, err = f.applyMode(""); err != nil {
			return err
		}
		if err := f.door(ctx, plan, nil); err != nil {
			return err
		}
		if err := f.ready(ctx, *plan, nil); err != nil {
			return err
		}
		id = newID("expand")
		if err := f.writer.CreateRun(ctx, journal.Run{ID: id, Kind: rings.KindExpand, Release: plan.Release, Created: f.now()}); err != nil {
			return err
		}
		f.notef("run %s: expanding %d target(s)", id, len(planTargets(*plan)))
		return f.execute(ctx, &rings.State{RunID: id}, rings.Event{Type: rings.RunStarted, Plan: plan, Actor: holder(id).Name})
	})
	return id, err
}

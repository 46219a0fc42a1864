package runs

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

// RollbackRequest asks to undo a release run, or part of it.
type RollbackRequest struct {
	Run, Ring, Target string
	To                string // return to this recorded release instead of each target's last known good
	// Reason is journaled with who rolled back (As, or the CI actor, or the OS user): required.
	Reason, As string
}

// RollbackPreview is what a rollback would do, changing nothing: each target's return, and what
// it leaves alone and why.
type RollbackPreview struct {
	Run     string            `json:"run"` // the run it undoes
	Moves   []RollbackMove    `json:"moves"`
	Skipped []string          `json:"skipped,omitempty"`
	Release *rings.ReleaseRef `json:"to,omitempty"` // --to
}

// RollbackMove is one target's return.
type RollbackMove struct {
	Ring   string            `json:"ring"`
	Target string            `json:"target"`
	From   *rings.ReleaseRef `json:"from,omitempty"` // what it runs now
	To     rings.ReleaseRef  `json:"to"`
}

// PreviewRollback says what Rollback would do with r, changing nothing (rollback --dry-run, and
// what a person confirms).
func (f *Fleet) PreviewRollback(ctx context.Context, r RollbackRequest) (*RollbackPreview, error) {
	src, _, plan, skipped, err := f.rollbackPlanOf(ctx, r)
	if err != nil {
		return nil, err
	}
	p := &RollbackPreview{Run: src.ID, Skipped: skipped}
	if r.To != "" {
		p.Release = &plan.Release
	}
	for _, rp := range plan.Rings {
		for _, tp := range rp.Targets {
			p.Moves = append(p.Moves, RollbackMove{Ring: rp.Name, Target: tp.Name, From: tp.From, To: tp.Release})
		}
	}
	return p, nil
}

// Rollback returns what a run changed to each target's last known good (or To), newest ring
// first, through plan, apply and the ring's target gates, as a run of kind rollback. An unfinished
// run is ended first, so that starting its release again does not re-apply it. It returns the
// rollback run's id ("" when there was nothing to roll back).
func (f *Fleet) Rollback(ctx context.Context, r RollbackRequest) (string, error) {
	if r.Reason == "" {
		return "", errors.New("--reason is required: it is journaled with who rolled back")
	}
	id := ""
	err := f.withLease(ctx, "rollback", func(ctx context.Context) error {
		var err error
		id, err = f.rollbackLocked(ctx, r)
		return err
	})
	return id, err
}

// rollbackPlanOf is what rolling back as r asks means now: the run undone, its replayed state,
// the rollback's plan, and the targets it leaves alone (and why).
func (f *Fleet) rollbackPlanOf(ctx context.Context, r RollbackRequest) (journal.Run, *rings.State, *rings.Plan, []string, error) {
	fail := func(err error) (journal.Run, *rings.State, *rings.Plan, []string, error) {
		return journal.Run{}, nil, nil, nil, err
	}
	if r.To != "" {
		if err := config.ValidName("release", r.To); err != nil {
			return fail(fmt.Errorf("--to: %w", err))
		}
	}
	srcID, err := f.promotingRun(ctx, r.Run)
	if err != nil {
		return fail(err)
	}
	src, err := f.reader.Run(ctx, srcID)
	if err != nil {
		return fail(err)
	}
	if !rings.Promotes(src.Kind) && r.To == "" {
		return fail(fmt.Errorf("run %s is itself a rollback: undoing it would re-apply what it removed; name a release run, or say where to go with --to", src.ID))
	}
	from, _, err := f.Replay(ctx, src.ID)
	if err != nil {
		return fail(err)
	}
	if r.Ring != "" && !slices.ContainsFunc(from.Rings, func(x *rings.RingState) bool { return x.Plan.Name == r.Ring }) {
		return fail(fmt.Errorf("run %s has no ring %q%s", src.ID, r.Ring, didYouMean(r.Ring, ringNames(from))))
	}
	if r.Target != "" && from.Targets[r.Target] == nil {
		return fail(fmt.Errorf("run %s has no target %q", src.ID, r.Target))
	}
	var to *rings.ReleaseRef
	if r.To != "" {
		rel, err := f.releases.Release(ctx, r.To)
		if err != nil {
			return fail(fmt.Errorf("--to: %w (hint: rollout history lists the releases runs used)", err))
		}
		ref := rel.Ref()
		to = &ref
	}
	current := map[string]*rings.ReleaseRef{}
	for name := range from.Targets {
		if current[name], err = journal.Current(ctx, f.reader, name); err != nil {
			return fail(err)
		}
	}
	plan, skipped := rollbackPlan(from, current, r, to)
	return src, from, plan, skipped, nil
}

func (f *Fleet) rollbackLocked(ctx context.Context, r RollbackRequest) (string, error) {
	src, from, plan, skipped, err := f.rollbackPlanOf(ctx, r)
	if err != nil {
		return "", err
	}
	for _, msg := range skipped {
		f.notef("%s", msg)
	}
	if len(plan.Rings) == 0 {
		f.notef("nothing to roll back in run %s", src.ID)
		return "", nil
	}
	if err := f.requireDeclared(planTargets(*plan)); err != nil {
		return "", err
	}
	if plan.ApplyMode, err = f.applyMode(""); err != nil {
		return "", err
	}
	if err := f.door(ctx, plan, nil); err != nil {
		return "", err
	}
	if err := f.ready(ctx, *plan, nil); err != nil {
		return "", err
	}
	if !rings.Terminal(from.Phase) {
		if err := f.writer.Append(ctx, rings.Event{V: rings.EventVersion, RunID: src.ID, At: f.now(), Type: rings.RunFinished,
			Phase: rings.PhaseRolledBack, Message: "ended by a manual rollback", Actor: holder(src.ID).Name}); err != nil {
			return "", err
		}
	}
	id := newID("rollback")
	if err := f.writer.CreateRun(ctx, journal.Run{ID: id, Kind: rings.KindRollback, Release: plan.Release, Created: f.now()}); err != nil {
		return "", err
	}
	f.notef("run %s: rolling back run %s (release %s)", id, src.ID, src.Release.Name)
	return id, f.execute(ctx, &rings.State{RunID: id}, rings.Event{Type: rings.RunStarted, Plan: plan, Actor: Actor(r.As), Message: "undo " + src.ID + ": " + r.Reason})
}

// rollbackPlan lists what to return where: the source run's changed targets, newest ring first,
// leaving out those already at their destination (current: what each target runs now).
func rollbackPlan(src *rings.State, current map[string]*rings.ReleaseRef, o RollbackRequest, to *rings.ReleaseRef) (*rings.Plan, []string) {
	plan := &rings.Plan{Kind: rings.KindRollback, Release: src.Plan.Release}
	if to != nil {
		plan.Release = *to // what approvals of the rollback name
	}
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
	if dest, one := oneDestination(plan); to == nil && one {
		plan.Release = dest // history and the report name the release the rollback applies
	}
	return plan, skipped
}

// oneDestination is the release every target of plan goes to, when they all go to one.
func oneDestination(plan *rings.Plan) (rings.ReleaseRef, bool) {
	var dest *rings.ReleaseRef
	for _, r := range plan.Rings {
		for _, t := range r.Targets {
			if dest != nil && *dest != t.Release {
				return rings.ReleaseRef{}, false
			}
			rel := t.Release
			dest = &rel
		}
	}
	if dest == nil {
		return rings.ReleaseRef{}, false
	}
	return *dest, true
}

// promotingRun is the run named, else the newest run that promoted a release (into every ring,
// or one).
func (f *Fleet) promotingRun(ctx context.Context, named string) (string, error) {
	if named != "" {
		return f.RunID(ctx, named, "")
	}
	all, err := f.reader.Runs(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range all {
		if rings.Promotes(r.Kind) {
			return r.ID, nil
		}
	}
	return "", errors.New("no run in this fleet's journal yet (hint: rollout start --release NAME)")
}

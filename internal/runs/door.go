package runs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// The door: every path that makes a run change what runs in a ring (start, expand, rollback of a
// run, a ring or a target, rollback --to; the dashboard's acts and the Temporal workflow carry
// out the plans these make) passes this one check before anything is journaled. A target whose
// destination is a release it already ran here and verified (returning to its last known good) is
// the fast path: the run's own message says why. Any other destination is a promotion into that
// ring, and needs what a promotion needs: the ring's approval (the run waits for it, proven where
// the boundary says so), and, under the fleet's promotion policy, evidence for that release
// accepted by this fleet (now, or when its own release run started). docs/security.md has the
// table.

// door holds plan to what its promotions need: it sets the approval of each ring into which a
// target is promoted, and refuses a release without the evidence the promotion policy requires.
// accepted is the evidence accepted for plan.Release by the caller (start), if any.
func (f *Fleet) door(ctx context.Context, plan *rings.Plan, accepted []rings.EvidenceRef) error {
	needEvidence := map[rings.ReleaseRef][]string{}
	for i := range plan.Rings {
		rp := &plan.Rings[i]
		promoted, err := f.promotions(ctx, plan.Kind, rp.Targets)
		if err != nil {
			return err
		}
		if len(promoted) == 0 {
			continue
		}
		if r := f.ring(rp.Name); r != nil && r.Approval.Required {
			rp.Approval, rp.Approvers, rp.Quorum, rp.Verifiers = true, r.Approval.Approvers, r.Approval.Quorum, r.Approval.Verifiers
			rp.UnlessPlans = r.Approval.UnlessPlans
		}
		for _, tp := range promoted {
			needEvidence[tp.Release] = append(needEvidence[tp.Release], rp.Name+"/"+tp.Name)
		}
	}
	if f.cfg.Promotion == nil {
		return nil
	}
	var problems []string
	for _, rel := range slices.SortedFunc(maps.Keys(needEvidence), func(a, b rings.ReleaseRef) int { return strings.Compare(a.Name, b.Name) }) {
		if rel == plan.Release && len(accepted) > 0 {
			continue
		}
		ok, err := f.evidenceAccepted(ctx, rel)
		if err != nil {
			return err
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("release %s into %s: no evidence of it was accepted by this fleet (start it with: rollout start --release %s --evidence DIR)",
				rel.Name, strings.Join(needEvidence[rel], ", "), rel.Name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("this fleet's promotion policy (promotion: in rollout.yaml) refuses, and nothing was journaled:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// promotions are the targets whose destination is not a release they ran and verified here: all
// of a release run's (it applies its release to every target, read from no history).
func (f *Fleet) promotions(ctx context.Context, kind string, targets []rings.TargetPlan) ([]rings.TargetPlan, error) {
	if rings.Promotes(kind) {
		return targets, nil
	}
	var out []rings.TargetPlan
	for _, tp := range targets {
		evs, err := f.reader.TargetEvents(ctx, tp.Name, rings.TargetVerified, rings.TargetRolledBack)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(evs, func(ev rings.Event) bool { return ev.Release != nil && *ev.Release == tp.Release }) {
			out = append(out, tp)
		}
	}
	return out, nil
}

// evidenceAccepted says whether this fleet accepted evidence for rel when its release run started.
func (f *Fleet) evidenceAccepted(ctx context.Context, rel rings.ReleaseRef) (bool, error) {
	run, found, err := f.reader.RunForRelease(ctx, rel.Name)
	if err != nil || !found {
		return false, err
	}
	s, _, err := f.Replay(ctx, run.ID)
	if err != nil {
		return false, err
	}
	return s.Plan.Release == rel && len(s.Plan.Evidence) > 0, nil
}

// ring is the configured ring of that name, or nil.
func (f *Fleet) ring(name string) *config.Ring {
	for _, r := range f.cfg.Rings {
		if r.Name == name {
			return r
		}
	}
	return nil
}

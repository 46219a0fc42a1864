package runs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/rings"
)

// PlanRequest asks what applying a release would change, per target.
type PlanRequest struct {
	Release string
	Vars    map[string]any
	Detail  bool   // each resource change with its attributes before and after
	Save    string // write the plans for review to this file (and bind the release's name)
}

// TargetPlan is one target's plan of a release.
type TargetPlan struct {
	Ring    string             `json:"ring"`
	Target  string             `json:"target"`
	Release rings.ReleaseRef   `json:"release"`
	Current *rings.ReleaseRef  `json:"lastKnownGood,omitempty"`
	Plan    *rings.PlanSummary `json:"plan,omitempty"`
	Changes bool               `json:"changes"`
	Digest  string             `json:"digest,omitempty"` // of what the plan changes (with Save)
	// Detail: each resource change with the attributes that change, before and after, secrets
	// masked (with Save or Detail).
	Detail []provision.ResourceChange `json:"detail,omitempty"`
	// Components: a stack's, each planned, unchanged or deferred (see provision.ComponentPlan);
	// Plan and Changes are then theirs together.
	Components []provision.ComponentPlan `json:"components,omitempty"`
	Error      string                    `json:"error,omitempty"`
}

// SavedPlan is what plan --save writes and start --reviewed reads.
type SavedPlan struct {
	V       int                   `json:"v"`
	Release rings.ReleaseRef      `json:"release"`
	Saved   time.Time             `json:"saved"`
	Targets map[string]TargetPlan `json:"targets"`
}

// ReadSavedPlan reads a plan saved by plan --save.
func ReadSavedPlan(path string) (*SavedPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--reviewed: %w", err)
	}
	var sp SavedPlan
	if err := json.Unmarshal(data, &sp); err != nil || sp.V != 1 || sp.Release.Digest == "" {
		return nil, fmt.Errorf("--reviewed: %s is not a plan saved by rollout plan --save", path)
	}
	return &sp, nil
}

// Plan plans a release on every target, ring by ring, without changing anything. A plan binds
// the release's name only when it is saved for review: a plan that fails (a missing variable,
// say) must not keep the name from meaning the corrected release. The plans come back in ring
// order whatever happened; err says when any target could not be planned.
func (f *Fleet) Plan(ctx context.Context, r PlanRequest) ([]TargetPlan, error) {
	if err := config.ValidName("release", r.Release); err != nil {
		return nil, fmt.Errorf("--release: %w", err)
	}
	var out []TargetPlan
	var bound journal.Release
	err := f.withLease(ctx, "plan --release "+r.Release, func(ctx context.Context) error {
		if err := f.requireDeclared(f.configuredTargets()); err != nil {
			return err
		}
		plan, release, err := f.newPlan(ctx, r.Release, r.Vars)
		if err != nil {
			return err
		}
		bound = release
		for _, ring := range plan.Rings {
			out = append(out, f.planRing(ctx, ring, r.Detail || r.Save != "")...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	failed := 0
	for _, tp := range out {
		if tp.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		return out, fmt.Errorf("%d target(s) could not be planned", failed)
	}
	if r.Save != "" && len(out) > 0 {
		if err := f.bindRelease(ctx, bound); err != nil {
			return out, err
		}
		if err := savePlan(r.Save, out); err != nil {
			return out, err
		}
		f.notef("plans of %d target(s) saved to %s; apply exactly these with: rollout start --release %s --reviewed %s", len(out), r.Save, r.Release, r.Save)
	}
	return out, nil
}

// planRing plans one ring's targets, up to its maxParallel at once.
func (f *Fleet) planRing(ctx context.Context, r rings.RingPlan, review bool) []TargetPlan {
	var mu sync.Mutex
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(r.MaxParallel, 1))
	results := make([]TargetPlan, len(r.Targets))
	for i, t := range r.Targets {
		eg.Go(func() error {
			if st, err := f.prov.StackOf(ctx, t.Release.ModuleDigest()); err != nil || st != nil {
				tp := f.planStack(ctx, r.Name, t, st, review, err)
				mu.Lock()
				results[i] = tp
				mu.Unlock()
				return nil
			}
			var rv provision.Reviewed
			var err error
			if review {
				rv, err = f.prov.PlanReview(ctx, t.Name, t.Release)
			} else {
				rv.Summary, rv.Changes, err = f.prov.Plan(ctx, t.Name, t.Release)
			}
			tp := TargetPlan{Ring: r.Name, Target: t.Name, Release: t.Release, Current: t.From, Plan: &rv.Summary, Changes: rv.Changes,
				Digest: rv.Digest, Detail: f.maskDetail(rv.Detail)}
			if err != nil {
				tp.Plan, tp.Error = nil, err.Error()
			}
			mu.Lock()
			results[i] = tp
			mu.Unlock()
			return nil
		})
	}
	_ = eg.Wait()
	return results
}

// planStack is a target's plan of a stack: each component's, and their sum.
func (f *Fleet) planStack(ctx context.Context, ring string, t rings.TargetPlan, st *provision.Stack, review bool, err error) TargetPlan {
	tp := TargetPlan{Ring: ring, Target: t.Name, Release: t.Release, Current: t.From}
	if err == nil {
		tp.Components, err = f.prov.PlanStack(ctx, t.Name, t.Release, st, review)
	}
	if err != nil {
		tp.Error = err.Error()
	}
	sum, h := rings.PlanSummary{}, sha256.New()
	for i, c := range tp.Components {
		tp.Components[i].Detail = f.maskDetail(c.Detail)
		if c.Plan != nil {
			sum = sum.Plus(*c.Plan)
		}
		tp.Changes = tp.Changes || c.Changes || c.Deferred != ""
		fmt.Fprintf(h, "%s=%s\n", c.Name, c.Digest)
	}
	if tp.Error == "" {
		tp.Plan = &sum
		if review {
			tp.Digest = hex.EncodeToString(h.Sum(nil))
		}
	}
	return tp
}

// savePlan writes plans for review (0600: a plan may show what a reviewer alone should see).
func savePlan(path string, plans []TargetPlan) error {
	sp := SavedPlan{V: 1, Release: plans[0].Release, Saved: time.Now().UTC(), Targets: map[string]TargetPlan{}}
	for _, tp := range plans {
		sp.Targets[tp.Target] = tp
	}
	data, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}

// maskDetail masks, in a plan's detail, every value holding a secret this process knows (a secret
// release variable's value, given to this command), beyond what Terraform marks sensitive.
func (f *Fleet) maskDetail(changes []provision.ResourceChange) []provision.ResourceChange {
	mask := func(v any) any {
		if s, ok := v.(string); ok && f.redact.String(s) != s {
			return "(sensitive)"
		}
		return v
	}
	for i := range changes {
		for j, a := range changes[i].Attributes {
			changes[i].Attributes[j].Before, changes[i].Attributes[j].After = mask(a.Before), mask(a.After)
		}
	}
	return changes
}

// DetailLines tells a target's resource changes for a reviewer, a line each: the change, then each
// attribute that changes, before -> after.
func DetailLines(changes []provision.ResourceChange) []string {
	sign := map[string]string{"create": "+", "update": "~", "replace": "-/+", "delete": "-", "read": "<="}
	var out []string
	for _, c := range changes {
		out = append(out, fmt.Sprintf("  %s %s (%s)", sign[c.Action], c.Address, c.Action))
		for _, a := range c.Attributes {
			out = append(out, fmt.Sprintf("      %s: %s -> %s", a.Path, jsonText(a.Before), jsonText(a.After)))
		}
	}
	return out
}

func jsonText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if strings.HasPrefix(x, "(") && strings.HasSuffix(x, ")") {
			return x // (sensitive), (known after apply)
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

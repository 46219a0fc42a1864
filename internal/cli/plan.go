package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/rings"
)

type planOptions struct {
	Release string
	Vars    []string
	Save    string
	Detail  bool
}

func newPlanCmd(io IO, g globals) *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use: "plan --release NAME [--var k=v ...]",
		Example: `  rollout plan --release v42
  rollout plan --release v42 --var image=registry.example/app:42 --save v42.plan.json`,
		Short: "Show, per target in ring order, what applying a release would change",
		Long: `Plan a release on every target, in ring order, without changing anything: additions, changes
and destructions per target, with replacements and deletions called out by resource address.
A plan does not bind the release's name (start does), unless it is saved for review: then the
name is bound to what was planned (module tree and variables), so that start applies exactly that.

--detail shows, per target, each resource change and every attribute that changes, before and
after, with values Terraform marks sensitive masked as Terraform masks them.
--save FILE writes the plans for review: per target, the summary, the same detail, and a digest of
every change the plan would make. rollout start --reviewed FILE then applies a target only if its plan at
that time has the same digest (nothing changed since the review).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return planRun(cmd.Context(), io, g, o) },
	}
	cmd.Flags().StringVar(&o.Release, "release", "", "the release name (required)")
	cmd.Flags().StringArrayVar(&o.Vars, "var", nil, "a release variable name=value (repeatable)")
	cmd.Flags().StringVar(&o.Save, "save", "", "write the plans for review (changes and digests) to FILE, for start --reviewed FILE")
	cmd.Flags().BoolVar(&o.Detail, "detail", false, "show each resource change and its attributes before and after (secrets masked)")
	_ = cmd.MarkFlagRequired("release")
	return cmd
}

type targetPlan struct {
	Ring    string             `json:"ring"`
	Target  string             `json:"target"`
	Release rings.ReleaseRef   `json:"release"`
	Current *rings.ReleaseRef  `json:"lastKnownGood,omitempty"`
	Plan    *rings.PlanSummary `json:"plan,omitempty"`
	Changes bool               `json:"changes"`
	Digest  string             `json:"digest,omitempty"` // of what the plan changes (with --save)
	// Detail: each resource change with the attributes that change, before and after, secrets
	// masked (with --save or --detail).
	Detail []provision.ResourceChange `json:"detail,omitempty"`
	Error  string                     `json:"error,omitempty"`
}

// savedPlan is what plan --save writes and start --reviewed reads.
type savedPlan struct {
	V       int                   `json:"v"`
	Release rings.ReleaseRef      `json:"release"`
	Saved   time.Time             `json:"saved"`
	Targets map[string]targetPlan `json:"targets"`
}

func readSavedPlan(path string) (*savedPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--reviewed: %w", err)
	}
	var sp savedPlan
	if err := json.Unmarshal(data, &sp); err != nil || sp.V != 1 || sp.Release.Digest == "" {
		return nil, fmt.Errorf("--reviewed: %s is not a plan saved by rollout plan --save", path)
	}
	return &sp, nil
}

func planRun(ctx context.Context, io IO, g globals, o *planOptions) error {
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
	var out []targetPlan
	var bound journal.Release
	err = f.withLease(ctx, "plan --release "+o.Release, func(ctx context.Context) error {
		if err := f.requireDeclared(f.configuredTargets()); err != nil {
			return err
		}
		// A plan binds the release's name only when it is saved for review: a plan that fails (a
		// missing variable, say) must not keep the name from meaning the corrected release.
		plan, release, err := f.newPlan(ctx, o.Release, extra)
		if err != nil {
			return err
		}
		bound = release
		p := f.prov
		var mu sync.Mutex
		for _, r := range plan.Rings {
			eg, ctx := errgroup.WithContext(ctx)
			eg.SetLimit(max(r.MaxParallel, 1))
			results := make([]targetPlan, len(r.Targets))
			for i, t := range r.Targets {
				eg.Go(func() error {
					var rv provision.Reviewed
					var err error
					if o.Save != "" || o.Detail {
						rv, err = p.PlanReview(ctx, t.Name, t.Release)
					} else {
						rv.Summary, rv.Changes, err = p.Plan(ctx, t.Name, t.Release)
					}
					tp := targetPlan{Ring: r.Name, Target: t.Name, Release: t.Release, Current: t.From, Plan: &rv.Summary, Changes: rv.Changes,
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
			out = append(out, results...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	failed := 0
	for _, tp := range out {
		if tp.Error != "" {
			failed++
		}
	}
	if o.Save != "" && failed == 0 && len(out) > 0 {
		if err := f.bindRelease(ctx, bound); err != nil {
			return err
		}
		sp := savedPlan{V: 1, Release: out[0].Release, Saved: timeNow().UTC(), Targets: map[string]targetPlan{}}
		for _, tp := range out {
			sp.Targets[tp.Target] = tp
		}
		data, err := json.MarshalIndent(sp, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.Save, append(data, '\n'), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(io.Err, "plans of %d target(s) saved to %s; apply exactly these with: rollout start --release %s --reviewed %s\n", len(out), o.Save, o.Release, o.Save)
	}
	if g.json() {
		if err := writeJSON(io.Out, out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RING\tTARGET\tNOW\tPLAN OF "+o.Release)
		for _, tp := range out {
			detail := planText(tp.Plan)
			if tp.Error != "" {
				detail = "ERROR: " + tp.Error
			} else if !tp.Changes {
				detail = "no changes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", tp.Ring, tp.Target, relName(tp.Current), detail)
		}
		tw.Flush()
		if o.Detail {
			printDetail(io.Out, out)
		}
	}
	if failed > 0 {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("%d target(s) could not be planned", failed)}
	}
	return nil
}

// printDetail writes each target's resource changes and their attributes, as a reviewer reads them.
func printDetail(w io.Writer, plans []targetPlan) {
	sign := map[string]string{"create": "+", "update": "~", "replace": "-/+", "delete": "-", "read": "<="}
	for _, tp := range plans {
		if len(tp.Detail) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (ring %s):\n", tp.Target, tp.Ring)
		for _, c := range tp.Detail {
			fmt.Fprintf(w, "  %s %s (%s)\n", sign[c.Action], c.Address, c.Action)
			for _, a := range c.Attributes {
				fmt.Fprintf(w, "      %s: %s -> %s\n", a.Path, jsonText(a.Before), jsonText(a.After))
			}
		}
	}
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

// maskDetail masks, in a plan's detail, every value holding a secret this process knows (a secret
// release variable's value, given to this command), beyond what Terraform marks sensitive.
func (f *fleet) maskDetail(changes []provision.ResourceChange) []provision.ResourceChange {
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

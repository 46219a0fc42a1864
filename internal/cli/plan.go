package cli

import (
	"context"
	"fmt"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/rollout-dev/rollout/internal/rings"
)

type planOptions struct {
	Release string
	Vars    []string
}

func newPlanCmd(io IO, g globals) *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan --release NAME [--var k=v ...]",
		Short: "Show, per target in ring order, what applying a release would change",
		Long: `Plan a release on every target, in ring order, without changing anything: additions, changes
and destructions per target, with replacements and deletions called out by resource address.
It records the release (name, module digest, variables) as start would, so a later start of the
same name applies exactly what was planned.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return planRun(cmd.Context(), io, g, o) },
	}
	cmd.Flags().StringVar(&o.Release, "release", "", "the release name (required)")
	cmd.Flags().StringArrayVar(&o.Vars, "var", nil, "a release variable name=value (repeatable)")
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
	Error   string             `json:"error,omitempty"`
}

func planRun(ctx context.Context, io IO, g globals, o *planOptions) error {
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
	err = f.withLease(ctx, "plan --release "+o.Release, func(ctx context.Context) error {
		if err := f.requireDeclared(f.configuredTargets()); err != nil {
			return err
		}
		plan, err := f.newPlan(ctx, o.Release, extra)
		if err != nil {
			return err
		}
		p := f.provisioner()
		var mu sync.Mutex
		for _, r := range plan.Rings {
			eg, ctx := errgroup.WithContext(ctx)
			eg.SetLimit(max(r.MaxParallel, 1))
			results := make([]targetPlan, len(r.Targets))
			for i, t := range r.Targets {
				eg.Go(func() error {
					sum, changes, err := p.Plan(ctx, t.Name, t.Release)
					tp := targetPlan{Ring: r.Name, Target: t.Name, Release: t.Release, Current: t.From, Plan: &sum, Changes: changes}
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
	}
	if failed > 0 {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("%d target(s) could not be planned", failed)}
	}
	return nil
}

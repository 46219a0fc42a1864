package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/runs"
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

func planRun(ctx context.Context, io IO, g globals, o *planOptions) error {
	vars, err := parseVars(o.Vars)
	if err != nil {
		return err
	}
	f, done, err := open(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	out, err := f.Plan(ctx, runs.PlanRequest{Release: o.Release, Vars: vars, Detail: o.Detail, Save: o.Save})
	if out == nil {
		return err
	}
	if perr := printPlans(io, g, o, out); perr != nil {
		return errors.Join(err, perr)
	}
	return err
}

func printPlans(io IO, g globals, o *planOptions, out []runs.TargetPlan) error {
	if g.json() {
		return writeJSON(io.Out, map[string]any{"v": 1, "release": o.Release, "targets": out})
	}
	tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tTARGET\tNOW\tPLAN OF "+o.Release)
	for _, tp := range out {
		detail := planText(tp.Plan)
		if tp.Error != "" {
			detail = "ERROR: " + tp.Error
		} else if !tp.Changes {
			detail = "no changes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", tp.Ring, tp.Target, relName(tp.Current), clean(detail))
		for _, c := range tp.Components { // a stack: each component's plan
			fmt.Fprintf(tw, "\t  /%s\t\t%s\n", clean(c.Name), clean(componentPlanText(c)))
		}
	}
	tw.Flush()
	if o.Detail {
		printDetail(io.Out, out)
	}
	return nil
}

// componentPlanText is one component's plan for a person.
func componentPlanText(c provision.ComponentPlan) string {
	switch {
	case c.Error != "":
		return "ERROR: " + c.Error
	case c.Unchanged:
		return "unchanged (not run)"
	case c.Deferred != "" && c.Plan != nil:
		return planText(c.Plan) + " with today's inputs; deferred: " + c.Deferred
	case c.Deferred != "":
		return "deferred: " + c.Deferred
	case !c.Changes:
		return "no changes"
	}
	return planText(c.Plan)
}

// printDetail writes each target's resource changes and their attributes, as a reviewer reads them.
func printDetail(w io.Writer, plans []runs.TargetPlan) {
	for _, tp := range plans {
		for _, c := range tp.Components {
			if len(c.Detail) > 0 {
				fmt.Fprintf(w, "\n%s/%s (ring %s):\n", tp.Target, c.Name, tp.Ring)
				for _, line := range runs.DetailLines(c.Detail) {
					fmt.Fprintln(w, clean(line))
				}
			}
		}
		if len(tp.Detail) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (ring %s):\n", tp.Target, tp.Ring)
		for _, line := range runs.DetailLines(tp.Detail) {
			fmt.Fprintln(w, clean(line))
		}
	}
}

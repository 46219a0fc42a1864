package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newDriftCmd(io IO, g globals) *cobra.Command {
	var ringNames []string
	cmd := &cobra.Command{
		Use: "drift [--ring R ...]",
		Example: `  rollout drift
  rollout drift --ring sovereign --output json`,
		Short: "Find infrastructure changed outside Terraform: a refresh-only plan of every deployed target, in parallel",
		Long: `Run a refresh-only plan (-refresh-only -detailed-exitcode) of every target (or those of the
named rings) at the release it runs now, in parallel, and show which targets drifted and which
resources. Nothing is changed. Targets never deployed are skipped.

Exit 0 when nothing drifted, 2 when something did (as terraform plan -detailed-exitcode does),
1 when a target could not be checked. A ring with driftCheck: block runs the same check before
its first apply and stops the run on drift until someone runs rollout drift ack.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return driftRun(cmd.Context(), io, g, ringNames) },
	}
	cmd.Flags().StringArrayVar(&ringNames, "ring", nil, "check only this ring's targets (repeatable)")
	cmd.AddCommand(newDriftAckCmd(io, g))
	return cmd
}

func driftRun(ctx context.Context, io IO, g globals, ringNames []string) error {
	f, done, err := open(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	lines, err := f.Drift(ctx, ringNames)
	if err != nil {
		return err
	}
	drifted, failed := 0, 0
	for _, l := range lines {
		if l.Drifted {
			drifted++
		}
		if l.Error != "" {
			failed++
		}
	}
	if g.json() {
		if err := writeJSON(io.Out, map[string]any{"v": 1, "targets": lines}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RING\tTARGET\tRELEASE\tDRIFT")
		for _, l := range lines {
			what := "none"
			switch {
			case l.Skipped != "":
				what = "- (" + l.Skipped + ")"
			case l.Error != "":
				what = "ERROR: " + clean(l.Error)
			case l.Drifted && len(l.Resources) > 0:
				what = "DRIFTED: " + strings.Join(l.Resources, ", ")
			case l.Drifted:
				what = "DRIFTED (outputs)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Ring, l.Target, relName(l.Release), what)
		}
		tw.Flush()
	}
	switch {
	case failed > 0:
		return fail("%d target(s) could not be checked", failed)
	case drifted > 0:
		fmt.Fprintf(io.Err, "%d target(s) drifted\n", drifted)
		return &ExitErr{Code: ExitGateFailed}
	}
	return nil
}

package cli

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newFleetCmd(io IO, g globals) *cobra.Command {
	return &cobra.Command{
		Use: "fleet",
		Example: `  rollout fleet
  rollout fleet --output json`,
		Short: "What runs where: every target, ring by ring, with the release it runs across all runs",
		Long: `Every target of the fleet, ring by ring: its boundary and region, the release it runs as the
journal says across all runs (since when, and the run that put it there), its last gates'
verdict, and flags: failedElsewhere (it runs a release a run rolled back somewhere: its last
known good is older), newerPending (a newer release has not reached it), neverDeployed.
It reads the journal only; nothing is changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return act(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) error {
				view, err := f.FleetView(ctx)
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(io.Out, map[string]any{"v": 1, "targets": view})
				}
				tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RING\tTARGET\tBOUNDARY\tREGION\tRELEASE\tSINCE\tRUN\tSTATE\tGATES\tDRIFT\tFLAGS")
				for _, t := range view {
					since := "-"
					if t.Since != nil {
						since = t.Since.Local().Format("2006-01-02 15:04")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(t.Ring), clean(t.Target), clean(t.Boundary), clean(t.Region),
						relName(t.Release), since, clean(t.Run), cmp.Or(t.State, "-"), cmp.Or(t.Verdict, "-"), cmp.Or(t.Drift, "-"), strings.Join(t.Flags, ","))
				}
				return tw.Flush()
			})
		},
	}
}

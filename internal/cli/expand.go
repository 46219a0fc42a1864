package cli

import (
	"context"

	"github.com/spf13/cobra"
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
	f, done, err := open(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	id, err := f.Expand(ctx, only)
	if err != nil {
		return err
	}
	return showReport(ctx, io, g, f, id, io.Err)
}

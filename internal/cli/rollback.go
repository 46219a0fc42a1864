package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

type rollbackOptions struct {
	Run, Ring, Target, To string
}

func newRollbackCmd(io IO, g globals) *cobra.Command {
	o := &rollbackOptions{}
	cmd := &cobra.Command{
		Use: "rollback [--run RUN] [--ring R | --target T] [--to RELEASE]",
		Example: `  rollout rollback
  rollout rollback --run v42-1a2b3c --ring commercial
  rollout rollback --target eu-1 --to v40`,
		Short: "Return what a run changed to each target's last known good release (or --to a release)",
		Long: `Undo a release run: every target the run changed goes back to the release it ran before the
run (its last known good), newest ring first, through plan, apply and the ring's target gates.
--run picks the run (default: the newest release run), --ring or --target narrows it, --to names
the release to return to instead. A target already at the release it would return to is left
alone. If the run was not finished, it is ended first, so that starting its release again does
not re-apply it. Exit 0 when every rollback passed its gates, 6 when one failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return rollbackRun(cmd.Context(), io, g, o) },
	}
	cmd.Flags().StringVar(&o.Run, "run", "", "the run to undo (default: the newest release run)")
	cmd.Flags().StringVar(&o.Ring, "ring", "", "only this ring's targets")
	cmd.Flags().StringVar(&o.Target, "target", "", "only this target")
	cmd.Flags().StringVar(&o.To, "to", "", "return to this recorded release instead of each target's last known good")
	cmd.MarkFlagsMutuallyExclusive("ring", "target")
	return cmd
}

func rollbackRun(ctx context.Context, io IO, g globals, o *rollbackOptions) error {
	f, done, err := open(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	id, err := f.Rollback(ctx, runs.RollbackRequest{Run: o.Run, Ring: o.Ring, Target: o.Target, To: o.To})
	if err != nil {
		return err
	}
	return showReport(ctx, io, g, f, id, io.Err)
}

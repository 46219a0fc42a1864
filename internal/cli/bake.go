package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newBakeCmd(io IO, g globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bake", Short: "A ring's bake: end it early, with a reason",
		Example: `  rollout bake end v42-1a2b3c --ring canary --reason "error budget clean for 20 minutes, sev2 waiting on it"`}
	cmd.AddCommand(newBakeEndCmd(io, g))
	return cmd
}

func newBakeEndCmd(io IO, g globals) *cobra.Command {
	o := &operatorOptions{}
	var ring string
	cmd := &cobra.Command{
		Use:     "end RUN --ring R --reason TEXT [--as NAME]",
		Example: `  rollout bake end v42-1a2b3c --ring canary --reason "error budget clean for 20 minutes"`,
		Short:   "End a baking ring's bake now: the ring passes and the next ring starts (through its own approval)",
		Long: `End the bake of a ring that is baking, now, with a reason journaled with who ended it: the ring
passes as if its bake had run out (its ring gates are not measured again) and the next ring starts,
through its own approval, freeze windows and drift check as always. The process driving the run
(this machine or another) reads it within a second; if none does, rollout resume RUN goes on.
When the ring names its approvers, only they may end its bake; a ring entering a boundary whose
approvals must be proven is not offered this (its bake runs out).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ring == "" {
				return fail("--ring is required: the ring whose bake ends")
			}
			return actOnRun(cmd.Context(), io, g, args[0], func(ctx context.Context, f *runs.Fleet) error {
				return f.EndBake(ctx, args[0], ring, runs.Act{As: o.As, Reason: o.Reason})
			})
		},
	}
	operatorFlags(cmd, o, "ends the bake")
	cmd.Flags().StringVar(&ring, "ring", "", "the baking ring (required)")
	return cmd
}

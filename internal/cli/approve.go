package cli

import (
	"fmt"
	"os"
	"os/user"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/rings"
)

type approveOptions struct {
	Ring, As, Reason string
}

func newApproveCmd(io IO, g globals) *cobra.Command {
	o := &approveOptions{}
	cmd := &cobra.Command{
		Use:   "approve RUN --ring R [--as NAME] [--reason TEXT]",
		Short: "Approve a ring that waits for approval; then continue with rollout resume RUN (or rollout start --release)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := openFleet(ctx, g, false)
			if err != nil {
				return err
			}
			defer f.Close()
			run, err := f.store.Run(ctx, args[0])
			if err != nil {
				return &ExitErr{Code: ExitError, Err: err}
			}
			s, _, err := f.replay(ctx, run.ID)
			if err != nil {
				return err
			}
			var ring *rings.RingState
			for _, r := range s.Rings {
				if r.Plan.Name == o.Ring {
					ring = r
				}
			}
			if ring == nil || !ring.Plan.Approval {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s has no ring %q that requires approval", run.ID, o.Ring)}
			}
			who := actor(o.As)
			if len(ring.Plan.Approvers) > 0 && !slices.Contains(ring.Plan.Approvers, who) {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("%s may not approve ring %s: its approvers are %v", who, o.Ring, ring.Plan.Approvers)}
			}
			if err := f.store.Append(ctx, rings.Event{V: rings.EventVersion, RunID: run.ID, At: timeNow(), Type: rings.RingApproved,
				Ring: o.Ring, Actor: who, Message: o.Reason}); err != nil {
				return err
			}
			fmt.Fprintf(io.Err, "ring %s of run %s approved by %s; continue with: rollout resume %s\n", o.Ring, run.ID, who, run.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Ring, "ring", "", "the ring to approve (required)")
	cmd.Flags().StringVar(&o.As, "as", "", "who approves (default: the CI actor, else the OS user)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why, for the journal")
	_ = cmd.MarkFlagRequired("ring")
	return cmd
}

// actor is who an operator command acts as: --as, else the CI actor, else the OS user.
func actor(as string) string {
	who := firstNonEmpty(as, os.Getenv("GITHUB_ACTOR"), os.Getenv("BUILD_REQUESTEDFOR"))
	if u, err := user.Current(); who == "" && err == nil {
		who = u.Username
	}
	return who
}

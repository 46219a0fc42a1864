package cli

import (
	"fmt"
	"os"
	"os/user"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

type approveOptions struct {
	Ring, As, Reason string
}

func newApproveCmd(io IO, g globals) *cobra.Command {
	o := &approveOptions{}
	cmd := &cobra.Command{
		Use: "approve RUN --ring R [--as NAME] [--reason TEXT]",
		Example: `  rollout approve v42-1a2b3c --ring sovereign --reason "CAB 1234" --as ops-lead
  rollout resume v42-1a2b3c`,
		Short: "Approve a ring that waits for approval; then continue with rollout resume RUN (or rollout start --release)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return journalAct(cmd.Context(), io, g, args[0], func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
				ring := s.RingNamed(o.Ring)
				if ring == nil || !ring.Plan.Approval {
					return nil, "", fmt.Errorf("run %s has no ring %q that requires approval", run.ID, o.Ring)
				}
				who := actor(o.As)
				if len(ring.Plan.Approvers) > 0 && !slices.Contains(ring.Plan.Approvers, who) {
					return nil, "", fmt.Errorf("%s may not approve ring %s: its approvers are %v", who, o.Ring, ring.Plan.Approvers)
				}
				return &rings.Event{Type: rings.RingApproved, Ring: o.Ring, Actor: who, Message: o.Reason},
					fmt.Sprintf("ring %s of run %s approved by %s; continue with: rollout resume %s", o.Ring, run.ID, who, run.ID), nil
			})
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

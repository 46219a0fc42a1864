package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

type operatorOptions struct {
	As, Reason string
	Rollback   bool
}

// operatorFlags binds --as and --reason.
func operatorFlags(cmd *cobra.Command, o *operatorOptions, what string) {
	cmd.Flags().StringVar(&o.As, "as", "", "who "+what+" (default: the CI actor, else the OS user)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why, for the journal and the report")
}

// openRun replays a named run for an operator command.
func openRun(ctx context.Context, f *fleet, id string) (journal.Run, *rings.State, error) {
	run, err := f.store.Run(ctx, id)
	if err != nil {
		return run, nil, &ExitErr{Code: ExitError, Err: err}
	}
	s, _, err := f.replay(ctx, run.ID)
	return run, s, err
}

// journalAct records an operator's act on a run without taking the fleet's lease (the process
// driving the run, if any, reads it from the journal): act checks the replayed run and returns
// the event (nil: nothing to record) and what to tell the operator.
func journalAct(ctx context.Context, io IO, g globals, id string, act func(run journal.Run, s *rings.State) (*rings.Event, string, error)) error {
	f, err := openJournal(ctx, g) // approvers and everything else checked are in the run's plan
	if err != nil {
		return err
	}
	defer f.Close()
	run, s, err := openRun(ctx, f, id)
	if err != nil {
		return err
	}
	ev, msg, err := act(run, s)
	if err != nil {
		return &ExitErr{Code: ExitError, Err: err}
	}
	if ev != nil {
		ev.V, ev.RunID, ev.At = rings.EventVersion, run.ID, timeNow()
		if err := f.store.Append(ctx, *ev); err != nil {
			return err
		}
	}
	fmt.Fprintln(io.Err, msg)
	return nil
}

func newPauseCmd(io IO, g globals) *cobra.Command {
	o := &operatorOptions{}
	cmd := &cobra.Command{
		Use: "pause RUN [--reason TEXT] [--as NAME]",
		Example: `  rollout pause v42-1a2b3c --reason "looking at a latency graph"
  rollout resume v42-1a2b3c`,
		Short: "Hold a run: nothing new starts; Terraform runs and gates under way finish; continue with rollout resume",
		Long: `Pause a run from anywhere: the process driving it (this machine or another, through the shared
journal) reads the pause within a second, starts no new target, ring, bake or drift check, lets
Terraform runs, gates and a bake under way finish, and then stops with the run paused (exit 3).
A failure meanwhile still halts the ring and rolls back as configured. A rollback under way
cannot be paused (abort stops a run). Continue with rollout resume RUN.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return journalAct(cmd.Context(), io, g, args[0], func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
				switch {
				case rings.Terminal(s.Phase):
					return nil, "", fmt.Errorf("run %s is already over (%s)", run.ID, s.Phase)
				case s.Phase == rings.PhaseRollingBack || s.Phase == rings.PhaseAborting:
					return nil, "", fmt.Errorf("run %s is %s: that goes on to its end (it cannot be paused)", run.ID, s.Phase)
				case s.Paused != nil:
					return nil, fmt.Sprintf("run %s is already paused (by %s at %s)", run.ID, s.Paused.Actor, s.Paused.At.Format("2006-01-02 15:04:05Z07:00")), nil
				}
				who := actor(o.As)
				return &rings.Event{Type: rings.RunPaused, Actor: who, Message: o.Reason},
					fmt.Sprintf("run %s paused by %s: nothing new starts; work under way finishes. Continue with: rollout resume %s", run.ID, who, run.ID), nil
			})
		},
	}
	operatorFlags(cmd, o, "pauses")
	return cmd
}

func newAbortCmd(io IO, g globals) *cobra.Command {
	o := &operatorOptions{}
	cmd := &cobra.Command{
		Use: "abort RUN --reason TEXT [--rollback] [--as NAME]",
		Example: `  rollout abort v42-1a2b3c --reason "wrong image"
  rollout abort v42-1a2b3c --reason "customer impact" --rollback`,
		Short: "End a run for good: stop it, or with --rollback return everything it changed to its last known good",
		Long: `Abort a run. Nothing new starts, gates and bakes stop, and Terraform runs under way finish;
then the run ends as aborted (exit 1), its targets left as they are. With --rollback, every target
the run changed is then rolled back to its last known good, newest ring first, through the same
apply and gates as any rollback; the run ends aborted (exit 1), or rollback_failed (exit 6) if a
rollback fails. An abort never starts anything new: a ring held by a freeze or an approval stays
untouched.

If another process drives the run, it carries the abort out (it reads the journal every second);
otherwise this command takes the fleet's lease and does it here. A rollback already under way
goes on to its end.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if o.Reason == "" {
				return &ExitErr{Code: ExitError, Err: errors.New("--reason is required: say why, for the journal and the report")}
			}
			ev := rings.Event{Type: rings.RunAbortRequested, Actor: actor(o.As), Message: o.Reason}
			if o.Rollback {
				ev.Outcome = "rollback"
			}
			err := continueRun(ctx, io, g, args[0], "abort", func(s *rings.State) (rings.Event, []rings.Event, error) {
				if s.Aborted != nil {
					return rings.Event{}, nil, fmt.Errorf("run %s was already aborted by %s", s.RunID, s.Aborted.Actor)
				}
				// Replayed from the journal, so no process runs it: the abort is folded first (it must
				// not start what a resume would, such as a ring a freeze held), then what the journal
				// says was under way is driven to an end here.
				return ev, nil, nil
			})
			var held *journal.LeaseHeldError
			if !errors.As(err, &held) {
				return err
			}
			// Another process holds the fleet: if it drives this run, it reads the abort from the journal.
			return journalAct(ctx, io, g, args[0], func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
				if rings.Terminal(s.Phase) {
					return nil, "", fmt.Errorf("run %s is already over (%s)", run.ID, s.Phase)
				}
				return &ev, fmt.Sprintf("run %s: abort journaled; %s (pid %d, %s) holds the fleet and carries it out if it drives this run, else the next resume of the run does. Follow with: rollout status %s --wait",
					run.ID, held.Holder.Name, held.Holder.PID, held.Holder.Doing, run.ID), nil
			})
		},
	}
	operatorFlags(cmd, o, "aborts")
	cmd.Flags().BoolVar(&o.Rollback, "rollback", false, "then roll back every target the run changed")
	return cmd
}

func newFreezeCmd(io IO, g globals) *cobra.Command {
	cmd := &cobra.Command{
		Use: "freeze on|off|status",
		Example: `  rollout freeze on --reason "incident 4711"
  rollout freeze status --output json
  rollout freeze off`,
		Short: "The fleet's stop-the-line switch: while on, no ring of any run starts (exit 4) unless --break-glass",
		Long: `Turn the fleet's stop-the-line switch on or off, or show it. While it is on, no ring of any run
starts: a run that would start one stops, blocked (exit 4), or waits when its freeze calendar
says whenFrozen: wait. Work under way and rollbacks are never stopped by it. Running runs see a
change within a second. rollout start/resume --break-glass --reason TEXT overrides it for one
run, and the journal keeps who did so and why.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"on", "off", "status"},
		RunE: func(cmd *cobra.Command, args []string) error {
			o := cmd.Flags()
			as, _ := o.GetString("as")
			reason, _ := o.GetString("reason")
			ctx := cmd.Context()
			f, err := openJournal(ctx, g)
			if err != nil {
				return err
			}
			defer f.Close()
			sw, err := f.store.Switch(ctx)
			if err != nil {
				return err
			}
			switch args[0] {
			case "status":
				if g.json() {
					return writeJSON(io.Out, map[string]any{"on": sw != nil, "switch": sw})
				}
				if sw == nil {
					fmt.Fprintln(io.Out, "stop-the-line switch: off")
				} else {
					fmt.Fprintf(io.Out, "stop-the-line switch: ON since %s by %s: %s\n", sw.At.Format("2006-01-02 15:04:05Z07:00"), sw.Actor, sw.Reason)
				}
				if sw != nil {
					return &ExitErr{Code: ExitBlocked}
				}
				return nil
			case "on", "off":
				if args[0] == "on" && reason == "" {
					return &ExitErr{Code: ExitError, Err: errors.New("--reason is required to stop the line")}
				}
				who := actor(as)
				if err := f.store.SetSwitch(ctx, args[0] == "on", rings.Switch{Actor: who, Reason: reason, At: timeNow()}); err != nil {
					return err
				}
				fmt.Fprintf(io.Err, "stop-the-line switch %s (by %s)\n", args[0], who)
				return nil
			}
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("want on, off or status, got %q", args[0])}
		},
	}
	cmd.Flags().String("as", "", "who (default: the CI actor, else the OS user)")
	cmd.Flags().String("reason", "", "why (required for on)")
	return cmd
}

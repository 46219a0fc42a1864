package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newStatusCmd(io IO, g globals) *cobra.Command {
	var wait bool
	var timeout, every time.Duration
	cmd := &cobra.Command{
		Use: "status [RUN] [--wait [--timeout D]]",
		Example: `  rollout status                      # the newest run
  rollout status v42-1a2b3c --wait --timeout 2h --output json`,
		Short: "Show a run (default: the newest): rings, targets, releases, gate verdicts, timings",
		Long: `Show a run: its phase and why, each ring's phase and bake, each target's state, the release it
runs, its plan summary, its last gate measurements and how long each step took. The exit code is
the one the run's outcome maps to (0 done, 1 aborted, 2 rolled back, 3 waiting or paused,
4 blocked by a freeze, 6 rollback failed; 0 while it is still in progress).
A run in progress that no live process drives (its driver died, or an approval came after the
run stopped to wait for it) waits for a driver: exit 3, with next: rollout resume RUN.
With --wait it first blocks until the run is finished, waiting, paused or blocked (another job or
agent drives it), reading the journal every --every; it returns at once when no live process
drives the run (exit 3); after --timeout it prints the report as it stands and gives up with
exit 8.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, done, err := openJournal(ctx, io, g)
			if err != nil {
				return err
			}
			defer done()
			named := ""
			if len(args) == 1 {
				named = args[0]
			}
			id, err := f.RunID(ctx, named, "")
			if err != nil {
				return err
			}
			if wait {
				if err := f.Wait(ctx, id, timeout, every); errors.Is(err, runs.ErrWaitTimeout) {
					// The report as it stands, then the distinct code: the run goes on elsewhere.
					if rerr := showReport(ctx, io, g, f, id, io.Out); rerr != nil && !isExitErr(rerr) {
						return rerr
					}
					return &ExitErr{Code: ExitWaitTimeout, Err: err}
				} else if err != nil {
					return err
				}
			}
			// in progress: 0 while driven, 3 when no process drives it
			return showReport(ctx, io, g, f, id, io.Out)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "block until the run is finished or waiting")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Hour, "with --wait: give up after this long (exit 8)")
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "with --wait: how often to read the journal")
	return cmd
}

type historyOptions struct{ Target string }

func newHistoryCmd(io IO, g globals) *cobra.Command {
	o := &historyOptions{}
	cmd := &cobra.Command{
		Use: "history [--target T]",
		Example: `  rollout history
  rollout history --target eu-1 --output json`,
		Short: "List runs, or which release a target had, when, and the outcome",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, done, err := openJournal(ctx, io, g)
			if err != nil {
				return err
			}
			defer done()
			if o.Target != "" {
				return targetHistory(cmd.Context(), io, g, f, o.Target)
			}
			return runHistory(cmd.Context(), io, g, f)
		},
	}
	cmd.Flags().StringVar(&o.Target, "target", "", "show one target's history")
	return cmd
}

func runHistory(ctx context.Context, io IO, g globals, f *runs.Fleet) error {
	out, err := f.History(ctx)
	if err != nil {
		return err
	}
	if g.json() {
		if out == nil {
			out = []runs.RunLine{}
		}
		return writeJSON(io.Out, map[string]any{"v": 1, "runs": out})
	}
	tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tKIND\tRELEASE\tOUTCOME\tSTARTED\tTOOK\tWHY")
	for _, l := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(l.Run), clean(l.Kind), clean(l.Release.Name), clean(string(l.Phase)), l.Started.Local().Format("2006-01-02 15:04:05"),
			l.Updated.Sub(l.Started).Round(100*time.Millisecond), truncate(l.Reason, 80))
	}
	return tw.Flush()
}

func targetHistory(ctx context.Context, io IO, g globals, f *runs.Fleet, target string) error {
	h, err := f.TargetHistory(ctx, target)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(io.Out, struct {
			V int `json:"v"`
			*runs.TargetHistory
		}{1, h})
	}
	fmt.Fprintf(io.Out, "target %s: last known good %s\n", clean(target), relName(h.LastKnownGood))
	tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tRUN\tEVENT\tRELEASE\tDETAIL")
	for _, l := range h.Events {
		event := string(l.Event)
		if l.Component != "" {
			event += " " + clean(l.Component)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.At.Local().Format("2006-01-02 15:04:05"), clean(l.Run), event, relName(l.Release), truncate(l.Message, 100))
	}
	return tw.Flush()
}

package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
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
drives the run (exit 3); after --timeout it gives up with exit 1.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := openJournal(ctx, g)
			if err != nil {
				return err
			}
			defer f.Close()
			id := ""
			if len(args) == 1 {
				r, err := f.store.Run(ctx, args[0])
				if err != nil {
					return &ExitErr{Code: ExitError, Err: err}
				}
				id = r.ID
			} else {
				r, err := f.latestRun(ctx, "")
				if err != nil {
					return err
				}
				id = r.ID
			}
			if wait {
				if err := waitForRun(ctx, f, id, timeout, every); err != nil {
					return err
				}
			}
			return showRun(ctx, io, g, f, id)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "block until the run is finished or waiting")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Hour, "with --wait: give up after this long (exit 1)")
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "with --wait: how often to read the journal")
	return cmd
}

// waitForRun polls the journal until the run is finished or waiting.
func waitForRun(ctx context.Context, f *fleet, id string, timeout, every time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		s, _, err := f.replay(ctx, id)
		if err != nil {
			return err
		}
		if settled(s.Phase) {
			return nil
		}
		if lease, err := f.store.Lease(ctx); err == nil && !lease.Live(thisHost()) {
			return nil // nothing drives it: waiting longer changes nothing (the report says so, exit 3)
		}
		if time.Now().After(deadline) {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s is still %s after %s (--timeout)", id, s.Phase, timeout)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(every, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// settled says whether a run in this phase stays as it is until a person (or a clock) acts:
// finished, waiting, paused or blocked by a freeze.
func settled(phase string) bool {
	return rings.Terminal(phase) || phase == rings.PhaseWaiting || phase == rings.PhasePaused || phase == rings.PhaseBlocked
}

func showRun(ctx context.Context, io IO, g globals, f *fleet, id string) error {
	rep, err := report(ctx, io.Out, io.Out, style{}, g, f, id)
	if err != nil {
		return err
	}
	return reportErr(rep) // in progress: 0 while driven, 3 when no process drives it
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
			f, err := openJournal(ctx, g)
			if err != nil {
				return err
			}
			defer f.Close()
			if o.Target != "" {
				return targetHistory(cmd.Context(), io, g, f, o.Target)
			}
			return runHistory(cmd.Context(), io, g, f)
		},
	}
	cmd.Flags().StringVar(&o.Target, "target", "", "show one target's history")
	return cmd
}

type runLine struct {
	Run     string           `json:"run"`
	Kind    string           `json:"kind"`
	Release rings.ReleaseRef `json:"release"`
	Phase   string           `json:"phase"`
	Reason  string           `json:"reason,omitempty"`
	Started time.Time        `json:"started"`
	Updated time.Time        `json:"updated"`
}

func runHistory(ctx context.Context, io IO, g globals, f *fleet) error {
	runs, err := f.store.Runs(ctx)
	if err != nil {
		return err
	}
	var out []runLine
	for _, r := range runs {
		rep, _, err := f.runReport(ctx, r.ID, needHead) // a finished run's kept report: no replay
		if err != nil {
			return err
		}
		rel := r.Release
		if rep.Release.Name == rel.Name && rep.Release.Module != "" {
			rel = rep.Release // the run's plan also names the release's module tree
		}
		out = append(out, runLine{Run: r.ID, Kind: r.Kind, Release: rel, Phase: rep.Phase, Reason: rep.Reason, Started: r.Created, Updated: rep.Updated})
	}
	if g.json() {
		return writeJSON(io.Out, out)
	}
	tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tKIND\tRELEASE\tOUTCOME\tSTARTED\tTOOK\tWHY")
	for _, l := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(l.Run), clean(l.Kind), clean(l.Release.Name), clean(l.Phase), l.Started.Local().Format("2006-01-02 15:04:05"),
			l.Updated.Sub(l.Started).Round(100*time.Millisecond), truncate(l.Reason, 80))
	}
	return tw.Flush()
}

type targetLine struct {
	At      time.Time         `json:"at"`
	Run     string            `json:"run"`
	Event   rings.EventType   `json:"event"`
	Release *rings.ReleaseRef `json:"release,omitempty"`
	Message string            `json:"message,omitempty"`
}

func targetHistory(ctx context.Context, io IO, g globals, f *fleet, target string) error {
	evs, err := f.store.TargetEvents(ctx, target, rings.TargetApplying, rings.TargetApplied, rings.TargetApplyFailed,
		rings.TargetVerified, rings.TargetGateFailed, rings.TargetRollingBack, rings.TargetRolledBack,
		rings.TargetRollbackFailed, rings.TargetRollbackSkip)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		// No history: a target of the fleet not deployed yet, or a name that means nothing here.
		if cfg, err := config.Load(g.configPath()); err == nil && cfg.Target(target) == nil {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("target %q is not declared in %s and has no history in its journal (hint: rollout validate lists the targets)", target, cfg.File)}
		}
	}
	out := []targetLine{}
	for _, ev := range evs {
		out = append(out, targetLine{At: ev.At, Run: ev.RunID, Event: ev.Type, Release: ev.Release, Message: ev.Message})
	}
	lkg, err := journal.LastKnownGood(ctx, f.store, target, "")
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(io.Out, struct {
			Target        string            `json:"target"`
			LastKnownGood *rings.ReleaseRef `json:"lastKnownGood"`
			Events        []targetLine      `json:"events"`
		}{target, lkg, out})
	}
	fmt.Fprintf(io.Out, "target %s: last known good %s\n", target, relName(lkg))
	tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tRUN\tEVENT\tRELEASE\tDETAIL")
	for _, l := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.At.Local().Format("2006-01-02 15:04:05"), clean(l.Run), l.Event, relName(l.Release), truncate(l.Message, 100))
	}
	return tw.Flush()
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/rings"
)

func newGateCmd(io IO, g globals) *cobra.Command {
	cmd := &cobra.Command{Use: "gate", Short: "Decide gates that were inconclusive", Example: `  rollout gate override v42-1a2b3c --target eu-1 --gate latency --verdict pass --reason "dashboard lag"`}
	cmd.AddCommand(newGateOverrideCmd(io, g))
	return cmd
}

type overrideOptions struct {
	Target, Ring, Gate, Verdict, Reason, As string
}

func newGateOverrideCmd(io IO, g globals) *cobra.Command {
	o := &overrideOptions{}
	cmd := &cobra.Command{
		Use: "override RUN (--target T | --ring R) --gate G --verdict pass|fail --reason TEXT [--as NAME]",
		Example: `  rollout gate override v42-1a2b3c --target eu-1 --gate latency --verdict pass --reason "dashboard lag"
  rollout gate override v42-1a2b3c --ring canary --gate error-rate --verdict fail --reason "errors are real"`,
		Short: "Give the verdict of a gate that was inconclusive; recorded with who and why",
		Long: `An inconclusive gate (no data where noData: inconclusive, or neither its success nor its
failure condition held) pauses its ring: the run waits (exit 3). A human then decides: pass
continues the ring as if the gate had passed; fail counts as a failed gate (the ring's failure
budget, then its rollback). The verdict, who gave it and why are journaled and shown in the report,
and the run continues in this process (it takes the fleet's lease, as start does); exit codes as
for start.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (o.Target == "") == (o.Ring == "") {
				return &ExitErr{Code: ExitError, Err: errors.New("give --target T for a target gate, or --ring R for a ring gate")}
			}
			if o.Verdict != "pass" && o.Verdict != "fail" {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("--verdict must be pass or fail, got %q", o.Verdict)}
			}
			if o.Reason == "" {
				return &ExitErr{Code: ExitError, Err: errors.New("--reason is required: the journal keeps why a gate was overridden")}
			}
			who := actor(o.As)
			return continueRun(cmd.Context(), io, g, args[0], "gate override", func(s *rings.State) (rings.Event, []rings.Event, error) {
				if err := inconclusive(s, o.Target, o.Ring, o.Gate); err != nil {
					return rings.Event{}, nil, err
				}
				// The verdict goes through the engine like any event, and the run continues here.
				return rings.Event{Type: rings.GateOverridden, Target: o.Target, Ring: o.Ring, Gate: o.Gate, Outcome: o.Verdict, Actor: who, Message: o.Reason}, nil, nil
			})
		},
	}
	cmd.Flags().StringVar(&o.Target, "target", "", "the target whose gate was inconclusive")
	cmd.Flags().StringVar(&o.Ring, "ring", "", "the ring whose ring gate was inconclusive")
	cmd.Flags().StringVar(&o.Gate, "gate", "", "the gate (required)")
	cmd.Flags().StringVar(&o.Verdict, "verdict", "", "pass or fail (required)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why (required; journaled)")
	cmd.Flags().StringVar(&o.As, "as", "", "who decides (default: the CI actor, else the OS user)")
	_ = cmd.MarkFlagRequired("gate")
	_ = cmd.MarkFlagRequired("verdict")
	return cmd
}

// inconclusive checks that the run waits on this gate being inconclusive.
func inconclusive(s *rings.State, target, ring, gate string) error {
	if s.Phase != rings.PhaseWaiting {
		return fmt.Errorf("run %s is %s, not waiting on an inconclusive gate", s.RunID, s.Phase)
	}
	if target != "" {
		t := s.Targets[target]
		if t == nil || t.Phase != rings.TInconclusive {
			return fmt.Errorf("target %s of run %s has no inconclusive gate", target, s.RunID)
		}
		if !strings.HasPrefix(t.Message, "gate "+gate+" inconclusive") {
			return fmt.Errorf("target %s: %s (not gate %s)", target, t.Message, gate)
		}
		return nil
	}
	for _, r := range s.Rings {
		if r.Plan.Name == ring && r.Phase == rings.RInconclusive {
			return nil
		}
	}
	return fmt.Errorf("ring %s of run %s has no inconclusive ring gate", ring, s.RunID)
}

func newResumeCmd(io IO, g globals) *cobra.Command {
	var as string
	var glass breakGlass
	cmd := &cobra.Command{
		Use: "resume RUN [--as NAME] [--break-glass --reason TEXT]",
		Example: `  rollout resume v42-1a2b3c
  rollout resume v42-1a2b3c --break-glass --reason "sev1 fix, approved by VP"`,
		Short: "Continue a run: paused, waiting, blocked by a freeze, or interrupted; inconclusive gates are measured again",
		Long: `Continue a run in this process: a paused run is unpaused; a run waiting on inconclusive gates
measures them again; a run blocked by a freeze window or the stop-the-line switch starts its ring
if the freeze is over (or with --break-glass, recorded with who and why), else stops again with
exit 4; an interrupted run re-drives what was under way.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			who := actor(as)
			if err := glass.check(); err != nil {
				return err
			}
			return continueRun(cmd.Context(), io, g, args[0], "resume", func(s *rings.State) (rings.Event, []rings.Event, error) {
				first := rings.Event{Type: rings.RunResumed, Actor: who}
				var more []rings.Event
				if s.Paused != nil {
					more = append(more, rings.Event{Type: rings.RunUnpaused, Actor: who})
				} else if r := s.Rings[s.Ring]; s.Phase == rings.PhaseWaiting && (r.Phase == rings.RInconclusive || len(inconclusiveTargets(s)) > 0) {
					first.Type = rings.GatesRemeasure
				}
				return first, append(more, glass.events(who)...), nil
			})
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "who resumes (default: the CI actor, else the OS user)")
	glass.flags(cmd)
	return cmd
}

// breakGlass is --break-glass --reason: freeze windows and the stop-the-line switch do not hold
// the run any more, and the journal says who decided so and why.
type breakGlass struct {
	on     bool
	reason string
}

func (b *breakGlass) flags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&b.on, "break-glass", false, "start rings despite freeze windows and the stop-the-line switch (needs --reason; journaled)")
	cmd.Flags().StringVar(&b.reason, "reason", "", "why (with --break-glass or --allow-destroy)")
}

func (b *breakGlass) check() error {
	if b.on && b.reason == "" {
		return &ExitErr{Code: ExitError, Err: errors.New("--break-glass needs --reason: the journal keeps why the freeze was overridden")}
	}
	return nil
}

func (b *breakGlass) events(who string) []rings.Event {
	if !b.on {
		return nil
	}
	return []rings.Event{{Type: rings.FreezeBroken, Actor: who, Message: b.reason}}
}

func inconclusiveTargets(s *rings.State) []string {
	var out []string
	for _, tp := range s.Rings[s.Ring].Plan.Targets {
		if s.Targets[tp.Name].Phase == rings.TInconclusive {
			out = append(out, tp.Name)
		}
	}
	return out
}

// continueRun takes the fleet's lease, replays the run, and drives it on from the event first
// returns (which may refuse), printing progress and the report as start does.
func continueRun(ctx context.Context, io IO, g globals, runID, doing string, first func(*rings.State) (rings.Event, []rings.Event, error)) error {
	f, err := openFleet(ctx, g, true)
	if err != nil {
		return err
	}
	defer f.Close()
	var s *rings.State
	err = f.withLease(ctx, doing+" "+runID, func(ctx context.Context) error {
		run, err := f.store.Run(ctx, runID)
		if err != nil {
			return &ExitErr{Code: ExitError, Err: err}
		}
		if s, _, err = f.replay(ctx, run.ID); err != nil {
			return err
		}
		if rings.Terminal(s.Phase) {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s already finished: %s", run.ID, s.Phase)}
		}
		ev, more, err := first(s)
		if err != nil {
			return &ExitErr{Code: ExitError, Err: err}
		}
		if err := f.requireDeclared(planTargets(s.Plan)); err != nil {
			return err
		}
		fmt.Fprintf(io.Err, "%s: run %s of release %s (phase %s)\n", doing, run.ID, run.Release.Name, s.Phase)
		return f.execute(ctx, io, g, s, ev, more...)
	})
	if err != nil {
		return err
	}
	return finishReport(ctx, io, g, f, s)
}

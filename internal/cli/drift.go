package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

// driftLine is one target's drift, as `rollout drift` prints it.
type driftLine struct {
	Ring      string            `json:"ring"`
	Target    string            `json:"target"`
	Release   *rings.ReleaseRef `json:"release,omitempty"` // what it runs: the release the check plans
	Drifted   bool              `json:"drifted"`
	Resources []string          `json:"resources,omitempty"`
	Error     string            `json:"error,omitempty"`
	Skipped   string            `json:"skipped,omitempty"`
}

func newDriftCmd(io IO, g globals) *cobra.Command {
	var ringNames []string
	cmd := &cobra.Command{
		Use: "drift [--ring R ...]",
		Example: `  rollout drift
  rollout drift --ring sovereign --output json`,
		Short: "Find infrastructure changed outside Terraform: a refresh-only plan of every deployed target, in parallel",
		Long: `Run a refresh-only plan (-refresh-only -detailed-exitcode) of every target (or those of the
named rings) at the release it runs now, in parallel, and show which targets drifted and which
resources. Nothing is changed. Targets never deployed are skipped.

Exit 0 when nothing drifted, 2 when something did (as terraform plan -detailed-exitcode does),
1 when a target could not be checked. A ring with driftCheck: block runs the same check before
its first apply and stops the run on drift until someone runs rollout drift ack.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return driftRun(cmd.Context(), io, g, ringNames) },
	}
	cmd.Flags().StringArrayVar(&ringNames, "ring", nil, "check only this ring's targets (repeatable)")
	cmd.AddCommand(newDriftAckCmd(io, g))
	return cmd
}

func driftRun(ctx context.Context, io IO, g globals, ringNames []string) error {
	f, err := openFleet(ctx, g, true)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, name := range ringNames {
		if !slices.ContainsFunc(f.cfg.Rings, func(r *config.Ring) bool { return r.Name == name }) {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("--ring %s: no such ring in %s", name, f.cfg.File)}
		}
	}
	var lines []driftLine
	err = f.withLease(ctx, "drift", func(ctx context.Context) error {
		p := f.prov
		eg, ctx := errgroup.WithContext(ctx)
		eg.SetLimit(max(f.cfg.Defaults.MaxParallel, 1))
		for _, r := range f.cfg.Rings {
			if len(ringNames) > 0 && !slices.Contains(ringNames, r.Name) {
				continue
			}
			for _, name := range r.Targets {
				cur, err := journal.Current(ctx, f.store, name)
				if err != nil {
					return err
				}
				lines = append(lines, driftLine{Ring: r.Name, Target: name, Release: cur})
			}
		}
		for i := range lines {
			l := &lines[i]
			if l.Release == nil {
				l.Skipped = "never deployed"
				continue
			}
			eg.Go(func() error {
				rep, err := p.Drift(ctx, l.Target, *l.Release)
				if err != nil {
					l.Error = err.Error()
					return nil
				}
				l.Drifted, l.Resources = rep.Drifted, rep.Resources
				return nil
			})
		}
		return eg.Wait()
	})
	if err != nil {
		return err
	}
	drifted, failed := 0, 0
	for _, l := range lines {
		if l.Drifted {
			drifted++
		}
		if l.Error != "" {
			failed++
		}
	}
	if g.json() {
		if err := writeJSON(io.Out, lines); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RING\tTARGET\tRELEASE\tDRIFT")
		for _, l := range lines {
			what := "none"
			switch {
			case l.Skipped != "":
				what = "- (" + l.Skipped + ")"
			case l.Error != "":
				what = "ERROR: " + l.Error
			case l.Drifted && len(l.Resources) > 0:
				what = "DRIFTED: " + strings.Join(l.Resources, ", ")
			case l.Drifted:
				what = "DRIFTED (outputs)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Ring, l.Target, relName(l.Release), what)
		}
		tw.Flush()
	}
	switch {
	case failed > 0:
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("%d target(s) could not be checked", failed)}
	case drifted > 0:
		fmt.Fprintf(io.Err, "%d target(s) drifted\n", drifted)
		return &ExitErr{Code: ExitGateFailed}
	}
	return nil
}

func newDriftAckCmd(io IO, g globals) *cobra.Command {
	o := &operatorOptions{}
	var ring string
	cmd := &cobra.Command{
		Use:     "ack RUN --ring R --reason TEXT [--as NAME]",
		Example: `  rollout drift ack v42-1a2b3c --ring commercial --reason "hotfix 77 was applied by hand, known"`,
		Short:   "Acknowledge the drift that stopped a ring (driftCheck: block); then rollout resume RUN",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Reason == "" {
				return &ExitErr{Code: ExitError, Err: errors.New("--reason is required: the journal keeps why the drift was accepted")}
			}
			return journalAct(cmd.Context(), io, g, args[0], func(run journal.Run, s *rings.State) (*rings.Event, string, error) {
				if r := s.RingNamed(ring); r == nil || r.Drift == nil || r.Phase != rings.RDrifted {
					return nil, "", fmt.Errorf("ring %q of run %s is not stopped on drift", ring, run.ID)
				}
				who := actor(o.As)
				return &rings.Event{Type: rings.DriftAcknowledged, Ring: ring, Actor: who, Message: o.Reason},
					fmt.Sprintf("drift of ring %s acknowledged by %s; continue with: rollout resume %s", ring, who, run.ID), nil
			})
		},
	}
	operatorFlags(cmd, o, "acknowledges")
	cmd.Flags().StringVar(&ring, "ring", "", "the ring stopped on drift (required)")
	_ = cmd.MarkFlagRequired("ring")
	return cmd
}

package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	goio "io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/runs"
)

type rollbackOptions struct {
	Run, Ring, Target, To string
	Reason, As            string
	Yes, DryRun           bool
}

func newRollbackCmd(io IO, g globals) *cobra.Command {
	o := &rollbackOptions{}
	cmd := &cobra.Command{
		Use: "rollback --reason TEXT [--run RUN] [--ring R | --target T] [--to RELEASE] [--dry-run | --yes]",
		Example: `  rollout rollback --dry-run
  rollout rollback --reason "errors after v42" --as oncall        # shows what it will change, asks
  rollout rollback --run v42-1a2b3c --ring commercial --reason "INC-7" --yes   # a pipeline
  rollout rollback --target eu-1 --to v40 --reason "INC-7" --yes`,
		Short: "Return what a run changed to each target's last known good release (or --to a release)",
		Long: `Undo a release run: every target the run changed goes back to the release it ran before the
run (its last known good), newest ring first, through plan, apply and the ring's target gates.
--run picks the run (default: the newest release run), --ring or --target narrows it, --to names
the release to return to instead. A target already at the release it would return to is left
alone. If the run was not finished, it is ended first, so that starting its release again does
not re-apply it. Exit 0 when every rollback passed its gates, 6 when one failed.

A rollback changes what runs: it needs --reason (journaled with who: --as, else the CI actor or
the user), shows what it will change and asks on a terminal; --yes says yes (pipelines: without
a terminal and without --yes it is refused, exit 1); --dry-run prints what it would change and
changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return rollbackRun(cmd.Context(), io, g, o) },
	}
	cmd.Flags().StringVar(&o.Run, "run", "", "the run to undo (default: the newest release run)")
	cmd.Flags().StringVar(&o.Ring, "ring", "", "only this ring's targets")
	cmd.Flags().StringVar(&o.Target, "target", "", "only this target")
	cmd.Flags().StringVar(&o.To, "to", "", "return to this recorded release instead of each target's last known good")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why (required; journaled with who)")
	cmd.Flags().StringVar(&o.As, "as", "", "who rolls back (default: the CI actor, else the OS user)")
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "do not ask (pipelines)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "print what it would change, and change nothing")
	cmd.MarkFlagsMutuallyExclusive("ring", "target")
	cmd.MarkFlagsMutuallyExclusive("yes", "dry-run")
	return cmd
}

func rollbackRun(ctx context.Context, io IO, g globals, o *rollbackOptions) error {
	f, done, err := open(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	req := runs.RollbackRequest{Run: o.Run, Ring: o.Ring, Target: o.Target, To: o.To, Reason: o.Reason, As: o.As}
	if !o.DryRun && o.Reason == "" {
		return errors.New("--reason is required: it is journaled with who rolled back (--dry-run shows what it would change)")
	}
	if o.DryRun || !o.Yes {
		p, err := f.PreviewRollback(ctx, req)
		if err != nil {
			return err
		}
		if o.DryRun {
			if g.json() {
				return writeJSON(io.Out, struct {
					V      int  `json:"v"`
					DryRun bool `json:"dryRun"`
					*runs.RollbackPreview
				}{1, true, p})
			}
			printRollback(io.Out, p)
			return nil
		}
		if len(p.Moves) > 0 {
			if err := confirmRollback(io, p, " (or --dry-run to see what it would change)"); err != nil {
				return err
			}
		}
	}
	id, err := f.Rollback(ctx, req)
	if err != nil {
		return err
	}
	return showReport(ctx, io, g, f, id, io.Err)
}

// printRollback tells what a rollback would change, a line per target.
func printRollback(w goio.Writer, p *runs.RollbackPreview) {
	fmt.Fprintf(w, "rolling back run %s would change %d target(s):\n", clean(p.Run), len(p.Moves))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tTARGET\tNOW\tBACK TO")
	for _, m := range p.Moves {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(m.Ring), clean(m.Target), relName(m.From), clean(m.To.Name))
	}
	tw.Flush()
	for _, s := range p.Skipped {
		fmt.Fprintln(w, "  left alone: "+clean(s))
	}
}

// confirmRollback shows what will change and asks, on a terminal; elsewhere it refuses without
// --yes: a pipeline says so explicitly.
func confirmRollback(io IO, p *runs.RollbackPreview, hint string) error {
	in, ok := io.In.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) || !io.ErrTTY {
		return fmt.Errorf("rolling back would change %d target(s) of run %s and there is no terminal to ask on: give --yes%s", len(p.Moves), p.Run, hint)
	}
	printRollback(io.Err, p)
	fmt.Fprint(io.Err, "Roll back? [y/N] ")
	answer, _ := bufio.NewReader(io.In).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return errors.New("not rolled back")
	}
	return nil
}

// confirmAbortRollback shows which targets an abort with rollback returns (those the run changed:
// each to its last known good) and asks, on a terminal; elsewhere it refuses without --yes.
func confirmAbortRollback(ctx context.Context, io IO, f *runs.Fleet, id string) error {
	rep, _, err := f.Report(ctx, id, runs.NeedAll)
	if err != nil {
		return err
	}
	p := &runs.RollbackPreview{Run: rep.Run}
	for _, r := range rep.Rings {
		for _, t := range r.Targets {
			if t.Phase != rings.TPending && t.From != nil {
				p.Moves = append(p.Moves, runs.RollbackMove{Ring: r.Name, Target: t.Name, From: t.Release, To: *t.From})
			}
		}
	}
	if len(p.Moves) == 0 {
		return nil
	}
	return confirmRollback(io, p, "")
}

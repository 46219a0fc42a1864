package cli

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

type startOptions struct {
	Release      string
	Vars         []string
	Wait         bool
	Detach       bool
	Reviewed     string
	AllowDestroy bool
	NewJournal   bool
	ApplyMode    string
	Evidence     string
	Retry        bool
	Ring         string
	As           string
	Glass        breakGlass
}

func newStartCmd(io IO, g globals) *cobra.Command {
	o := &startOptions{}
	cmd := &cobra.Command{
		Use:   "start --release NAME [--var k=v ...]",
		Short: "Promote a release through the rings; called again for the same release, resume its run",
		Long: `Promote a release ring by ring: in each ring, plan and apply at most maxParallel targets at
once, evaluate each target's gates after its apply, bake the ring with its ring gates, and move
on only when the ring passed. A gate failure beyond maxFailures halts the ring and rolls back per
its rollback scope (target, ring or run) to each target's last known good release; exit 2.

The release is immutable: its name is bound to the module tree's digest and variables the first
time it is started. Starting the same release again resumes its run (after a crash, an approval
or an interruption); it never starts a second one. A release whose run was rolled back or aborted
is tried again only with --retry --reason TEXT: a new run of the same content (the values it was
recorded with), journaled as its next attempt with who and why, through each ring's approval as any promotion. Until a retry
succeeds, the release is no target's last known good.

--ring R --reason TEXT promotes the release into ring R alone, past the rings before it: the
hotfix path (Cloud Deploy's --to-target). A new run of kind promote, journaled with who and why,
through the ring's approval, freeze windows, drift check and the promotion policy like any
promotion; its gates and rollback as the ring says. rollout rollback --run RUN undoes it.

--detach (or --wait=false) journals the run's start and hands it to a background process on this
machine (its log in .rollout/runs/RUN.log), then returns once that process drives the run: exit 0,
or 3/4 when the run waits for an approval or is blocked by a freeze before anything started. Follow it with rollout status RUN
--wait; started again while that process runs, it says so and exits 0.

Each target is applied with one Terraform apply that plans and applies (direct), unless something
needs its plan first: a reviewed plan (--reviewed) or protected resource types (protect:); those
targets get plan -out, then apply of that plan (plan-first). defaults.applyMode or --apply-mode
plan-first plans every target first; direct refuses a run that would need a plan first. The report
says how each target was applied (applyMode).

--reviewed FILE holds every apply of this release to the plan saved by rollout plan --save: a
target whose plan differs (something changed since the review) fails without being applied.
Plans that destroy or replace a resource of a type listed under protect: are refused unless
--allow-destroy --reason TEXT. A ring frozen by a window or the stop-the-line switch blocks the
run (exit 4) unless --break-glass --reason TEXT; both are journaled with who and why.`,
		Example: `  rollout start --release v42 --var image=registry.example/app:42
  rollout start --release v42 --detach && rollout status --wait --timeout 2h
  rollout start --release v42 --apply-mode plan-first
  rollout start --release v42.1 --ring prod-eu --reason "sev1 hotfix, INC-4711"
  rollout start --release v42 --retry --reason "the failing gate was a monitoring outage (INC-881)"
  rollout plan --release v42 --save v42.plan.json && rollout start --release v42 --reviewed v42.plan.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("detach") && cmd.Flags().Changed("wait") {
				return &ExitErr{Code: ExitError, Err: errors.New("--detach and --wait say the same thing: give one")}
			}
			if o.Detach {
				o.Wait = false
			}
			return startRun(cmd.Context(), io, g, o)
		},
	}
	cmd.Flags().StringVar(&o.Release, "release", "", "the release name, e.g. v42 (required)")
	cmd.Flags().StringArrayVar(&o.Vars, "var", nil, "a release variable name=value, over release.vars (repeatable)")
	cmd.Flags().BoolVar(&o.NewJournal, "new-journal", false, "begin a new history although the fleet's local files show earlier runs (their journal was lost)")
	cmd.Flags().BoolVar(&o.Detach, "detach", false, "start the run in the background and return once a process drives it")
	cmd.Flags().BoolVar(&o.Wait, "wait", true, "drive the run here until it ends or waits (--wait=false is --detach)")
	cmd.Flags().StringVar(&o.Reviewed, "reviewed", "", "apply only plans matching this saved plan (rollout plan --save FILE)")
	cmd.Flags().BoolVar(&o.AllowDestroy, "allow-destroy", false, "permit destroying protected resource types (needs --reason; journaled)")
	cmd.Flags().StringVar(&o.ApplyMode, "apply-mode", "", "auto, plan-first or direct (default: defaults.applyMode, else auto)")
	cmd.Flags().StringVar(&o.Evidence, "evidence", "", "a directory of attestations (rollout evidence) that the fleet's promotion policy requires")
	cmd.Flags().BoolVar(&o.Retry, "retry", false, "a new attempt of a release whose run was rolled back or aborted (needs --reason; journaled)")
	cmd.Flags().StringVar(&o.Ring, "ring", "", "promote into this ring alone, past the others: the hotfix path (needs --reason; journaled)")
	cmd.Flags().StringVar(&o.As, "as", "", "who retries or promotes into --ring (default: the CI actor, else the OS user)")
	o.Glass.flags(cmd)
	_ = cmd.MarkFlagRequired("release")
	return cmd
}

func startRun(ctx context.Context, io IO, g globals, o *startOptions) error {
	vars, err := parseVars(o.Vars)
	if err != nil {
		return err
	}
	f, done, err := open(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	id, err := f.Start(ctx, runs.StartRequest{Release: o.Release, Vars: vars, Detach: !o.Wait, Reviewed: o.Reviewed,
		AllowDestroy: o.AllowDestroy, BreakGlass: o.Glass.on, Reason: o.Glass.reason, NewJournal: o.NewJournal, ApplyMode: o.ApplyMode, Evidence: o.Evidence,
		Retry: o.Retry, Ring: o.Ring, As: o.As})
	if err != nil {
		return err
	}
	return showReport(ctx, io, g, f, id, io.Err)
}

// parseVars reads --var k=v flags.
func parseVars(kvs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fail("--var %q: want name=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

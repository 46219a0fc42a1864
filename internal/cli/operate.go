package cli

import (
	"context"
	"fmt"
	stdio "io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/proof"
	"github.com/rollout-dev/rollout/internal/runs"
)

// The operators' acts: journaled for whoever drives the run (approve, pause, drift ack, freeze),
// or carried out here (resume, gate override, an abort nobody else drives), as the run service
// decides.

type operatorOptions struct {
	As, Reason string
	Rollback   bool
	Yes        bool
}

// operatorFlags binds --as and --reason.
func operatorFlags(cmd *cobra.Command, o *operatorOptions, what string) {
	cmd.Flags().StringVar(&o.As, "as", "", "who "+what+" (default: the CI actor, else the OS user)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why, for the journal and the report")
}

// act opens the fleet's journal alone and journals an act.
func act(ctx context.Context, io IO, g globals, do func(ctx context.Context, f *runs.Fleet) error) error {
	f, done, err := openJournal(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	return do(ctx, f)
}

// actOnRun is act for an operator's act on one run (approve, pause, drift ack): with --output
// json, the run's report as the act left it goes to stdout (the act's note stays on stderr).
func actOnRun(ctx context.Context, io IO, g globals, run string, do func(ctx context.Context, f *runs.Fleet) error) error {
	return act(ctx, io, g, func(ctx context.Context, f *runs.Fleet) error {
		if err := do(ctx, f); err != nil || !g.json() {
			return err
		}
		id, err := f.RunID(ctx, run, "")
		if err != nil {
			return err
		}
		rep, raw, err := f.Report(ctx, id, runs.NeedJSON)
		switch { // the act succeeded (exit 0), whatever the run's own exit code says
		case err != nil:
			return err
		case raw != nil:
			return writeRawJSON(io.Out, raw)
		}
		return writeJSON(io.Out, rep)
	})
}

// drive opens the fleet to drive a run here, and shows the run's report when it is done.
func drive(ctx context.Context, io IO, g globals, do func(ctx context.Context, f *runs.Fleet) (string, error)) error {
	f, done, err := open(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	id, err := do(ctx, f)
	if err != nil {
		return err
	}
	return showReport(ctx, io, g, f, id, io.Err)
}

func freezeStatus(ctx context.Context, io IO, g globals, f *runs.Fleet) error {
	sw, err := f.Switch(ctx)
	if err != nil {
		return err
	}
	if g.json() {
		if err := writeJSON(io.Out, map[string]any{"v": 1, "on": sw != nil, "switch": sw}); err != nil {
			return err
		}
	} else if sw == nil {
		fmt.Fprintln(io.Out, "stop-the-line switch: off")
	} else {
		fmt.Fprintf(io.Out, "stop-the-line switch: ON since %s by %s: %s\n", sw.At.Format("2006-01-02 15:04:05Z07:00"), clean(sw.Actor), clean(sw.Reason))
	}
	if sw != nil {
		return &ExitErr{Code: ExitBlocked}
	}
	return nil
}

type approveOptions struct {
	Ring, As, Reason        string
	SSHSignature, TokenFile string
	Text                    bool
}

type overrideOptions struct {
	Target, Ring, Gate, Verdict, Reason, As string
}

// breakGlass is --break-glass --reason: freeze windows and the stop-the-line switch do not hold
// the run any more, and the journal says who decided so and why.
type breakGlass struct {
	on     bool
	reason string
}

func (b *breakGlass) flags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&b.on, "break-glass", false, "start rings despite freeze windows and the stop-the-line switch (needs --reason; journaled)")
	cmd.Flags().StringVar(&b.reason, "reason", "", "why, journaled (with --break-glass; for start also --allow-destroy or --retry)")
}

func newApproveCmd(io IO, g globals) *cobra.Command {
	o := &approveOptions{}
	cmd := &cobra.Command{
		Use: "approve RUN --ring R --reason TEXT [--as NAME | --ssh-signature FILE | --id-token-file FILE]",
		Example: `  rollout approve v42-1a2b3c --ring canary --reason "CAB 1234" --as ops-lead
  # a ring entering a boundary that lists its approvers' keys: sign what you approve
  rollout approve v42-1a2b3c --ring sovereign --reason "CAB 1234" --text > approval.txt
  ssh-keygen -Y sign -f ~/.ssh/id_ed25519 -n rollout-approval approval.txt
  rollout approve v42-1a2b3c --ring sovereign --reason "CAB 1234" --ssh-signature approval.txt.sig
  # in a pipeline, with its OIDC ID token (audience as the boundary's entry says)
  rollout approve v42-1a2b3c --ring sovereign --reason "release gate" --id-token-file "$ID_TOKEN_FILE"
  rollout resume v42-1a2b3c`,
		Short: "Approve a ring that waits for approval; then continue with rollout resume RUN (or rollout start --release)",
		Long: `Approve a ring that waits for approval. Where the ring enters a boundary whose approvers are
listed with their keys (boundaries.B.approvers), the approval counts only when proven: an SSH
signature (ssh-keygen -Y sign -n rollout-approval, the format of git's signed commits; it works
offline) over the approval's text, which --text prints (run, ring, release and its digest, reason),
by a listed key; or a pipeline's OIDC ID token (GitHub Actions, Azure DevOps, GitLab) from the
listed issuer, for its audience, subject and claims. The approval is journaled under the listed
name with its proof (the key's fingerprint, or issuer and subject); a proof given once never counts
again. Elsewhere --as NAME (default: the CI actor, else the OS user) is journaled as unverified.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Text { // what an approver signs: text, whatever --output says
				return act(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) error {
					text, err := f.ApprovalText(ctx, args[0], o.Ring, o.Reason)
					if err == nil {
						_, err = fmt.Fprint(io.Out, text)
					}
					return err
				})
			}
			return actOnRun(cmd.Context(), io, g, args[0], func(ctx context.Context, f *runs.Fleet) error {
				given, err := o.proof(io)
				if err != nil {
					return &ExitErr{Code: ExitError, Err: err}
				}
				return f.Approve(ctx, args[0], o.Ring, runs.Act{As: o.As, Reason: o.Reason, Proof: given})
			})
		},
	}
	cmd.Flags().StringVar(&o.Ring, "ring", "", "the ring to approve (required)")
	cmd.Flags().StringVar(&o.As, "as", "", "who approves (default: the CI actor, else the OS user; with a proof, the name it proves)")
	cmd.Flags().StringVar(&o.Reason, "reason", "", "why, for the journal (part of what is signed)")
	cmd.Flags().BoolVar(&o.Text, "text", false, "print the approval's text to sign (ssh-keygen -Y sign -n rollout-approval) and journal nothing")
	cmd.Flags().StringVar(&o.SSHSignature, "ssh-signature", "", "a file holding the SSH signature of the approval's text (ssh-keygen -Y sign's .sig)")
	cmd.Flags().StringVar(&o.TokenFile, "id-token-file", "", "a file holding the pipeline's OIDC ID token ('-': standard input)")
	_ = cmd.MarkFlagRequired("ring")
	return cmd
}

// proof reads the proof the approver gives.
func (o *approveOptions) proof(io IO) (proof.Given, error) {
	var g proof.Given
	var err error
	if o.SSHSignature != "" {
		if g.SSHSignature, err = os.ReadFile(o.SSHSignature); err != nil {
			return g, fmt.Errorf("--ssh-signature: %w", err)
		}
	}
	if o.TokenFile != "" {
		var b []byte
		if o.TokenFile == "-" {
			b, err = stdio.ReadAll(io.In)
		} else {
			b, err = os.ReadFile(o.TokenFile)
		}
		if err != nil {
			return g, fmt.Errorf("--id-token-file: %w", err)
		}
		g.IDToken = strings.TrimSpace(string(b))
	}
	return g, nil
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
			return actOnRun(cmd.Context(), io, g, args[0], func(ctx context.Context, f *runs.Fleet) error {
				return f.Pause(ctx, args[0], runs.Act{As: o.As, Reason: o.Reason})
			})
		},
	}
	operatorFlags(cmd, o, "pauses")
	return cmd
}

func newAbortCmd(io IO, g globals) *cobra.Command {
	o := &operatorOptions{}
	cmd := &cobra.Command{
		Use: "abort RUN --reason TEXT [--rollback [--yes]] [--as NAME]",
		Example: `  rollout abort v42-1a2b3c --reason "wrong image"
  rollout abort v42-1a2b3c --reason "customer impact" --rollback          # shows what it returns, asks
  rollout abort v42-1a2b3c --reason "customer impact" --rollback --yes    # a pipeline`,
		Short: "End a run for good: stop it, or with --rollback return everything it changed to its last known good",
		Long: `Abort a run. Nothing new starts, gates and bakes stop, and Terraform runs under way finish;
then the run ends as aborted (exit 7), its targets left as they are. With --rollback, every target
the run changed is then rolled back to its last known good, newest ring first, through the same
apply and gates as any rollback; the run ends aborted (exit 7), or rollback_failed (exit 6) if a
rollback fails. An abort never starts anything new: a ring held by a freeze or an approval stays
untouched.

If another process drives the run, it carries the abort out (it reads the journal every second);
otherwise this command takes the fleet's lease and does it here. A rollback already under way
goes on to its end.

With --rollback it changes what runs: it shows which targets it returns and asks on a terminal;
--yes says yes, and without a terminal it is refused (exit 1) unless --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return drive(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) (string, error) {
				if o.Rollback && !o.Yes && o.Reason != "" {
					if err := confirmAbortRollback(ctx, io, f, args[0]); err != nil {
						return "", err
					}
				}
				return f.Abort(ctx, args[0], o.Rollback, runs.Act{As: o.As, Reason: o.Reason})
			})
		},
	}
	operatorFlags(cmd, o, "aborts")
	cmd.Flags().BoolVar(&o.Rollback, "rollback", false, "then roll back every target the run changed")
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "with --rollback: do not ask (pipelines)")
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
			as, _ := cmd.Flags().GetString("as")
			reason, _ := cmd.Flags().GetString("reason")
			return act(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) error {
				if args[0] == "status" {
					return freezeStatus(ctx, io, g, f)
				}
				if args[0] != "on" && args[0] != "off" {
					return fail("want on, off or status, got %q", args[0])
				}
				if err := f.SetSwitch(ctx, args[0] == "on", runs.Act{As: as, Reason: reason}); err != nil || !g.json() {
					return err
				}
				sw, err := f.Switch(ctx)
				if err != nil {
					return err
				}
				return writeJSON(io.Out, map[string]any{"v": 1, "on": sw != nil, "switch": sw})
			})
		},
	}
	cmd.Flags().String("as", "", "who (default: the CI actor, else the OS user)")
	cmd.Flags().String("reason", "", "why (required for on)")
	return cmd
}

func newResumeCmd(io IO, g globals) *cobra.Command {
	var as string
	var glass breakGlass
	var detach bool
	cmd := &cobra.Command{
		Use: "resume RUN [--as NAME] [--break-glass --reason TEXT] [--detach]",
		Example: `  rollout resume v42-1a2b3c
  rollout resume v42-1a2b3c --detach && rollout status v42-1a2b3c --wait --timeout 2h
  rollout resume v42-1a2b3c --break-glass --reason "sev1 fix, approved by VP"`,
		Short: "Continue a run: paused, waiting, blocked by a freeze, or interrupted; inconclusive gates are measured again",
		Long: `Continue a run in this process: a paused run is unpaused; a run waiting on inconclusive gates
measures them again; a run blocked by a freeze window or the stop-the-line switch starts its ring
if the freeze is over (or with --break-glass, recorded with who and why), else stops again with
exit 4; an interrupted run re-drives what was under way.

--detach hands the run to a background rollout resume on this machine (log:
.rollout/runs/RUN.log) and returns at once, exit 0, with the run's report as it is then; follow it
with rollout status RUN --wait. Refused while another process drives the fleet.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if detach {
				return actOnRun(cmd.Context(), io, g, args[0], func(ctx context.Context, f *runs.Fleet) error {
					_, err := f.ResumeInBackground(ctx, args[0], glass.on, runs.Act{As: as, Reason: glass.reason})
					return err
				})
			}
			return drive(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) (string, error) {
				return f.Resume(ctx, args[0], glass.on, runs.Act{As: as, Reason: glass.reason})
			})
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "who resumes (default: the CI actor, else the OS user)")
	cmd.Flags().BoolVar(&detach, "detach", false, "hand the run to a background process and return at once")
	glass.flags(cmd)
	return cmd
}

func newGateCmd(io IO, g globals) *cobra.Command {
	cmd := &cobra.Command{Use: "gate", Short: "Decide gates that were inconclusive", Example: `  rollout gate override v42-1a2b3c --target eu-1 --gate latency --verdict pass --reason "dashboard lag"`}
	cmd.AddCommand(newGateOverrideCmd(io, g))
	return cmd
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
			return drive(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) (string, error) {
				return f.Override(ctx, args[0], o.Target, o.Ring, o.Gate, o.Verdict, runs.Act{As: o.As, Reason: o.Reason})
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

func newDriftAckCmd(io IO, g globals) *cobra.Command {
	o := &operatorOptions{}
	var ring string
	cmd := &cobra.Command{
		Use:     "ack RUN --ring R --reason TEXT [--as NAME]",
		Example: `  rollout drift ack v42-1a2b3c --ring commercial --reason "hotfix 77 was applied by hand, known"`,
		Short:   "Acknowledge the drift that stopped a ring (driftCheck: block); then rollout resume RUN",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return actOnRun(cmd.Context(), io, g, args[0], func(ctx context.Context, f *runs.Fleet) error {
				return f.AckDrift(ctx, args[0], ring, runs.Act{As: o.As, Reason: o.Reason})
			})
		},
	}
	operatorFlags(cmd, o, "acknowledges")
	cmd.Flags().StringVar(&ring, "ring", "", "the ring stopped on drift (required)")
	_ = cmd.MarkFlagRequired("ring")
	return cmd
}

package runs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/proof"
	"github.com/rollout-dev/rollout/internal/rings"
)

// ApprovalText is what an approver of a ring of a run signs (ssh-keygen -Y sign -n
// rollout-approval), with the reason they will give.
func (f *Fleet) ApprovalText(ctx context.Context, id, ring, reason string) (string, error) {
	if reason == "" {
		return "", errors.New("--reason is required: it is part of what is signed")
	}
	run, err := f.reader.Run(ctx, id)
	if err != nil {
		return "", err
	}
	return proof.Text(run.ID, ring, run.Release, reason), nil
}

// approver is who approves, and how that was proven. A ring whose boundaries declare their
// approvers' keys needs a proof that one of them gives this approval (signed over this run, ring,
// release and reason), never given before; elsewhere the name given (or the CI actor, or the OS
// user) is journaled as unverified.
func (f *Fleet) approver(ctx context.Context, run journal.Run, s *rings.State, r *rings.RingState, a Act) (string, *rings.ApprovalProof, error) {
	given := len(a.Proof.SSHSignature) > 0 || a.Proof.IDToken != ""
	switch {
	case len(r.Plan.Verifiers) == 0 && given:
		return "", nil, fmt.Errorf("ring %s enters no boundary that lists its approvers' keys, so the proof cannot be checked: approve with --as NAME", r.Plan.Name)
	case len(r.Plan.Verifiers) == 0:
		return a.who(), nil, nil
	case !given:
		return "", nil, fmt.Errorf("ring %s enters a boundary whose approvals must be proven (%v): sign the approval's text "+
			"(rollout approve %s --ring %s --reason TEXT --text > approval.txt; ssh-keygen -Y sign -f KEY -n %s approval.txt) and give --ssh-signature approval.txt.sig, "+
			"or give a pipeline's ID token with --id-token-file", r.Plan.Name, r.Plan.Approvers, run.ID, r.Plan.Name, proof.Namespace)
	}
	text := proof.Text(run.ID, r.Plan.Name, run.Release, a.Reason)
	name, pr, err := proof.Verify(ctx, a.Proof, text, r.Plan.Verifiers, proof.Options{Now: f.now})
	if err != nil {
		return "", nil, err
	}
	if a.As != "" && a.As != name {
		return "", nil, fmt.Errorf("--as %s, but the proof is %s's", a.As, name)
	}
	for _, other := range s.Rings {
		for _, ap := range other.Approvals {
			if ap.Proof != nil && ap.Proof.Digest == pr.Digest {
				return "", nil, fmt.Errorf("this proof was given already (approval of ring %s by %s at %s): a replayed approval does not count",
					other.Plan.Name, ap.Actor, ap.At.UTC().Format("2006-01-02 15:04:05Z"))
			}
		}
	}
	if pr.Method == "oidc" { // an ID token names no run: within its lifetime it must not approve another
		if err := f.proofUnused(ctx, run.ID, pr.Digest); err != nil {
			return "", nil, err
		}
	}
	return name, pr, nil
}

// proofUnused refuses a proof that approved a ring of another run created in the last day (longer
// than any ID token lives).
func (f *Fleet) proofUnused(ctx context.Context, runID, digest string) error {
	all, err := f.reader.Runs(ctx)
	if err != nil {
		return err
	}
	for _, r := range all {
		if r.ID == runID || f.now().Sub(r.Created) > 24*time.Hour {
			continue
		}
		evs, err := f.reader.EventsAfter(ctx, r.ID, 0)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Type == rings.RingApproved && ev.Proof != nil && ev.Proof.Digest == digest {
				return fmt.Errorf("this ID token approved ring %s of run %s already (by %s): a replayed approval does not count; get a new token", ev.Ring, r.ID, ev.Actor)
			}
		}
	}
	return nil
}

package runs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/evidence"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/rings"
)

// WriteEvidence writes a signed in-toto attestation for every ring (or the one named) × boundary
// that the run finished, into dir as RUN.RING.BOUNDARY.intoto.json, and the release's descriptor
// (RELEASE.release: what the release digest, the attestations' subject, is the SHA-256 of).
func (f *Fleet) WriteEvidence(ctx context.Context, id, ring, keyPath, dir string) ([]string, error) {
	key, err := evidence.LoadSigner(keyPath)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	rep, _, err := f.Report(ctx, id, NeedAll)
	if err != nil {
		return nil, err
	}
	evs, err := f.EventsAfter(ctx, rep.Run, 0)
	if err != nil {
		return nil, err
	}
	preds := f.predicates(rep, ring, freezes(evs), f.stackOf(ctx, rep.Release))
	if len(preds) == 0 {
		return nil, fmt.Errorf("run %s has no finished ring%s to attest", rep.Run, map[bool]string{true: " " + ring}[ring != ""])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files, err := f.writeDescriptor(ctx, rep.Release, dir)
	if err != nil {
		return nil, err
	}
	for _, p := range preds {
		path, err := writeAttestation(ctx, p, key, dir)
		if err != nil {
			return nil, err
		}
		files = append(files, path)
	}
	return files, nil
}

func writeAttestation(ctx context.Context, p evidence.Predicate, key dsse.SignerVerifier, dir string) (string, error) {
	st, err := evidence.Statement(p)
	if err != nil {
		return "", err
	}
	env, err := evidence.Sign(ctx, st, key)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s.%s.%s.intoto.json", p.Run, p.Ring, p.Boundary))
	return path, os.WriteFile(path, env, 0o644)
}

func (f *Fleet) writeDescriptor(ctx context.Context, ref rings.ReleaseRef, dir string) ([]string, error) {
	rel, err := f.releases.Release(ctx, ref.Name)
	if err != nil {
		return nil, err
	}
	d, err := descriptor(rel)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, ref.Name+".release")
	return []string{path}, os.WriteFile(path, d, 0o644)
}

// predicates are what the run did in each finished ring × boundary.
func (f *Fleet) predicates(rep *Report, only string, frozen map[string][]evidence.Freeze, stack []evidence.Component) []evidence.Predicate {
	var out []evidence.Predicate
	for _, r := range rep.Rings {
		if (only != "" && r.Name != only) || r.Ended == nil {
			continue
		}
		by := map[string][]TargetReport{}
		for _, t := range r.Targets {
			by[t.Boundary] = append(by[t.Boundary], t)
		}
		for _, b := range slices.Sorted(maps.Keys(by)) {
			p := evidence.Predicate{Fleet: filepath.Base(f.cfg.Root), Run: rep.Run, Release: rep.Release, Ring: r.Name, RingPhase: string(r.Phase),
				Boundary: b, Approvals: r.Approvals, ApprovalWaived: r.ApprovalWaived, BreakGlass: rep.BreakGlass, Freezes: frozen[r.Name], Ended: *r.Ended}
			if r.Started != nil {
				p.Started = *r.Started
			}
			for _, br := range r.Boundaries {
				if br.Boundary == b && br.Identity != nil {
					p.Identity = br.Identity
				}
			}
			for _, t := range by[b] {
				p.Targets = append(p.Targets, attested(t, rep.Review))
			}
			p.Components = stack
			out = append(out, p)
		}
	}
	return out
}

// freezes are the run's ring.frozen records, by ring.
func freezes(evs []rings.Event) map[string][]evidence.Freeze {
	out := map[string][]evidence.Freeze{}
	for _, ev := range evs {
		if ev.Type == rings.RingFrozen {
			out[ev.Ring] = append(out[ev.Ring], evidence.Freeze{At: ev.At, Reason: ev.Message})
		}
	}
	return out
}

func attested(t TargetReport, rv *rings.Review) evidence.Target {
	at := evidence.Target{Name: t.Name, Phase: string(t.Phase), Plan: t.Plan}
	if t.Release != nil {
		at.Release = t.Release.Name
	}
	if rv != nil && rv.Digests[t.Name] != "" {
		at.PlanDigest = rv.Digests[t.Name] // the reviewed plan's (show -json), which the apply matched
	} else if t.Plan != nil {
		at.PlanDigest = t.Plan.Digest // the planned changes as Terraform reported them
	}
	for _, g := range t.Gates {
		at.Gates = append(at.Gates, evidence.Gate{Gate: g.Gate, Passed: g.Passed, Measurements: g.Measurements, Last: cmp.Or(g.Outcome, g.Message), At: g.At})
	}
	for _, c := range t.Components {
		tc := evidence.TargetComponent{Name: c.Name, State: c.State, Release: c.Release}
		if d := rv.Digest(provision.UnitKey(t.Name, c.Name)); d != "" {
			tc.PlanDigest = d
		} else if c.Plan != nil {
			tc.PlanDigest = c.Plan.Digest
		}
		at.Components = append(at.Components, tc)
	}
	return at
}

// stackOf is a stack release's components for evidence (nil: one root module, or a bundle this
// journal lacks).
func (f *Fleet) stackOf(ctx context.Context, rel rings.ReleaseRef) []evidence.Component {
	b, err := f.releases.Bundle(ctx, rel.ModuleDigest())
	if err != nil {
		return nil
	}
	st, err := f.stackInBundle(b, rel.ModuleDigest())
	if err != nil || st == nil {
		return nil
	}
	var out []evidence.Component
	for _, c := range st.Components {
		out = append(out, evidence.Component{Name: c.Name, Module: c.Module})
	}
	return out
}

// acceptEvidence checks, before a new run of rel is journaled, the evidence that the fleet's
// promotion policy requires: for each required ring and boundary, an attestation in dir about
// this release, signed by a trusted key, of the ring having passed there with every target
// verified, not older than maxAge. It names everything missing at once.
func (f *Fleet) acceptEvidence(ctx context.Context, rel rings.ReleaseRef, dir string) ([]rings.EvidenceRef, error) {
	pol := f.cfg.Promotion
	switch {
	case pol == nil && dir == "":
		return nil, nil
	case pol == nil:
		return nil, errors.New("--evidence: this fleet has no promotion policy (promotion: in rollout.yaml) to check it against")
	case dir == "":
		return nil, fmt.Errorf("release %s needs evidence that it passed %s (promotion: in rollout.yaml): give --evidence DIR (rollout evidence RUN --out DIR on the fleet that ran it)", rel.Name, requiredText(pol.Requires))
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.intoto.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("--evidence %s holds no attestation (*.intoto.json)", dir)
	}
	var out []rings.EvidenceRef
	var problems []string
	for _, req := range pol.Requires {
		refs, why := f.meet(ctx, req, rel, files)
		out, problems = append(out, refs...), append(problems, why...)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("release %s may not start here: its evidence does not meet the promotion policy (nothing was journaled):\n  %s", rel.Name, strings.Join(problems, "\n  "))
	}
	return out, nil
}

func requiredText(reqs []config.Requirement) string {
	var parts []string
	for _, r := range reqs {
		parts = append(parts, fmt.Sprintf("ring %s in %s", r.Ring, strings.Join(r.Boundaries, ", ")))
	}
	return strings.Join(parts, "; ")
}

// meet finds, for each boundary of a requirement, the attestation that meets it, or says why none
// does.
func (f *Fleet) meet(ctx context.Context, req config.Requirement, rel rings.ReleaseRef, files []string) ([]rings.EvidenceRef, []string) {
	var trusted []dsse.SignerVerifier
	for _, t := range req.Trust {
		v, err := evidence.LoadVerifier(t)
		if err != nil {
			return nil, []string{fmt.Sprintf("ring %s: trusted key %v", req.Ring, err)}
		}
		trusted = append(trusted, v)
	}
	verified := map[string]*evidence.Verified{}
	refused := map[string]string{}
	for _, file := range files {
		b, err := evidence.ReadFile(file)
		if err == nil {
			verified[file], err = evidence.Verify(ctx, b, trusted...)
		}
		if err != nil {
			delete(verified, file)
			refused[filepath.Base(file)] = err.Error()
		}
	}
	var refs []rings.EvidenceRef
	var problems []string
	for _, b := range req.Boundaries {
		ref, why := f.meetOne(req, b, rel, verified)
		if why == "" {
			refs = append(refs, *ref)
			continue
		}
		if len(refused) > 0 {
			why += fmt.Sprintf(" (refused: %v)", refused)
		}
		problems = append(problems, fmt.Sprintf("ring %s in %s: %s", req.Ring, b, why))
	}
	return refs, problems
}

func (f *Fleet) meetOne(req config.Requirement, boundary string, rel rings.ReleaseRef, verified map[string]*evidence.Verified) (*rings.EvidenceRef, string) {
	why := "no attestation signed by a trusted key"
	for _, file := range slices.Sorted(maps.Keys(verified)) {
		v := verified[file]
		p := v.Predicate
		if p.Ring != req.Ring || p.Boundary != boundary {
			continue
		}
		if v.Subject != rel.Digest || p.Release.Name != rel.Name {
			why = fmt.Sprintf("%s is about release %s (digest %s), not %s (digest %s)", filepath.Base(file), p.Release.Name, short(v.Subject), rel.Name, short(rel.Digest))
			continue
		}
		if bad := notPassed(p); bad != "" {
			why = filepath.Base(file) + ": " + bad
			continue
		}
		if age := f.now().Sub(p.Ended); f.cfg.Promotion.MaxAge > 0 && age > f.cfg.Promotion.MaxAge {
			why = fmt.Sprintf("%s is expired: the ring ended %s ago, more than promotion.maxAge (%s)", filepath.Base(file), age.Round(time.Hour), f.cfg.Promotion.MaxAge)
			continue
		}
		return &rings.EvidenceRef{Fleet: p.Fleet, Run: p.Run, Ring: p.Ring, Boundary: boundary, Ended: p.Ended, KeyID: v.KeyID, Digest: v.Digest, File: filepath.Base(file)}, ""
	}
	return nil, why
}

// notPassed says why an attested ring did not pass ("": it did, every target verified).
func notPassed(p evidence.Predicate) string {
	if p.RingPhase != string(rings.RPassed) {
		return fmt.Sprintf("the ring %s (run %s), it did not pass", p.RingPhase, p.Run)
	}
	for _, t := range p.Targets {
		if t.Phase != string(rings.TVerified) {
			return fmt.Sprintf("target %s ended %s (run %s)", t.Name, t.Phase, p.Run)
		}
	}
	if len(p.Targets) == 0 {
		return "it attests no target"
	}
	return ""
}

package runs

import (
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/evidence"
	"github.com/rollout-dev/rollout/internal/resilience"
	"github.com/rollout-dev/rollout/internal/rings"
)

// TestEvidenceMustShowThePassedRing: an attestation counts for a requirement only when it is of
// the required ring and boundary, about this release, the ring passed with every target
// verified, and it is not older than maxAge; otherwise the refusal says which.
func TestEvidenceMustShowThePassedRing(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f := &Fleet{cfg: &config.Config{Promotion: &config.Promotion{MaxAge: 14 * 24 * time.Hour}}}
	f.opts.Clock = resilience.NewManualClock(now)
	rel := rings.ReleaseRef{Name: "v1", Digest: strings.Repeat("a", 64)}
	req := config.Requirement{Ring: "commercial", Boundaries: []string{"aws"}}
	att := func(edit func(*evidence.Verified)) map[string]*evidence.Verified {
		v := &evidence.Verified{Subject: rel.Digest, KeyID: "k", Digest: "d", Predicate: evidence.Predicate{Fleet: "com", Run: "v1-1", Release: rel,
			Ring: "commercial", RingPhase: "passed", Boundary: "aws", Ended: now.Add(-time.Hour),
			Targets: []evidence.Target{{Name: "eu-1", Phase: "verified"}}}}
		if edit != nil {
			edit(v)
		}
		return map[string]*evidence.Verified{"/e/a.intoto.json": v}
	}
	if ref, why := f.meetOne(req, "aws", rel, att(nil)); why != "" || ref.Run != "v1-1" || ref.File != "a.intoto.json" {
		t.Fatalf("good evidence: %+v %q", ref, why)
	}
	for what, c := range map[string]struct {
		edit func(*evidence.Verified)
		want string
	}{
		"ring halted":     {func(v *evidence.Verified) { v.Predicate.RingPhase = "halted" }, "the ring halted (run v1-1), it did not pass"},
		"target failed":   {func(v *evidence.Verified) { v.Predicate.Targets[0].Phase = "rolled_back" }, "target eu-1 ended rolled_back"},
		"another release": {func(v *evidence.Verified) { v.Subject = strings.Repeat("b", 64) }, "is about release v1 (digest bbbbbbbbbbbb), not v1"},
		"another ring":    {func(v *evidence.Verified) { v.Predicate.Ring = "canary" }, "no attestation signed by a trusted key"},
		"expired":         {func(v *evidence.Verified) { v.Predicate.Ended = now.Add(-15 * 24 * time.Hour) }, "is expired"},
	} {
		if _, why := f.meetOne(req, "aws", rel, att(c.edit)); !strings.Contains(why, c.want) {
			t.Errorf("%s: want %q, got %q", what, c.want, why)
		}
	}
}

// TestPredicatesPerRingAndBoundary: a finished ring gives one predicate per boundary with its own
// targets, the ring's approvals and freezes; an unfinished ring gives none.
func TestPredicatesPerRingAndBoundary(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f := &Fleet{cfg: &config.Config{Root: "/fleets/payments"}}
	rep := &Report{Run: "v1-1", Release: rings.ReleaseRef{Name: "v1", Digest: "d"}, Rings: []RingReport{
		{Name: "commercial", Phase: rings.RPassed, Started: &at, Ended: &at, Approvals: []rings.ApprovalRecord{{Actor: "ops-lead", At: at}},
			Targets: []TargetReport{{Name: "eu-1", Boundary: "aws", Phase: rings.TVerified, Plan: &rings.PlanSummary{Digest: "p1"}}, {Name: "us-1", Boundary: "azure", Phase: rings.TVerified}}},
		{Name: "sovereign", Phase: rings.RApplying, Targets: []TargetReport{{Name: "cn-1", Boundary: "azure-china"}}},
	}}
	frozen := freezes([]rings.Event{{Type: rings.RingFrozen, Ring: "commercial", At: at, Message: "deny window year-end"}, {Type: rings.RingStarted, Ring: "commercial"}})
	ps := f.predicates(rep, "", frozen, nil)
	if len(ps) != 2 || ps[0].Boundary != "aws" || ps[1].Boundary != "azure" || ps[0].Fleet != "payments" {
		t.Fatalf("predicates: %+v", ps)
	}
	if p := ps[0]; len(p.Targets) != 1 || p.Targets[0].Name != "eu-1" || p.Targets[0].PlanDigest != "p1" || p.Approvals[0].Actor != "ops-lead" ||
		len(p.Freezes) != 1 || p.Freezes[0].Reason != "deny window year-end" {
		t.Fatalf("aws: %+v", p)
	}
	if ps := f.predicates(rep, "sovereign", nil, nil); len(ps) != 0 {
		t.Fatalf("an unfinished ring was attested: %+v", ps)
	}
}

// A stack's target is attested component by component: what each ran at the end and its plan's
// digest (the reviewed one where the run was held to a review).
func TestEvidenceCarriesEachComponent(t *testing.T) {
	tr := TargetReport{Name: "eu-1", Phase: rings.TVerified, Components: []ComponentReport{
		{Name: "app", State: "applied", Release: "v2", Plan: &rings.PlanSummary{Digest: "planned"}},
		{Name: "network", State: "unchanged", Release: "v1"},
	}}
	at := attested(tr, &rings.Review{Digests: map[string]string{"eu-1@app": "reviewed"}})
	if len(at.Components) != 2 || at.Components[0].PlanDigest != "reviewed" || at.Components[1].Release != "v1" || at.Components[1].State != "unchanged" {
		t.Fatalf("components: %+v", at.Components)
	}
	if at := attested(tr, nil); at.Components[0].PlanDigest != "planned" {
		t.Fatalf("unreviewed: %+v", at.Components)
	}
}

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

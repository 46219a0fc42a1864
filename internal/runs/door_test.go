package runs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/rings"
)

// doorFleet is a fleet of one ring "sov" (approval required from ana) with a journal in which
// target t1 ran and verified v1; with policy, a promotion policy too.
func doorFleet(t *testing.T, policy bool) (*Fleet, *journal.DB) {
	t.Helper()
	db, err := journal.OpenSQLite(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := &config.Config{Rings: []*config.Ring{{Name: "sov", Approval: config.Approval{Required: true, Approvers: []string{"ana"}, Quorum: 1}}}}
	if policy {
		cfg.Promotion = &config.Promotion{Requires: []config.Requirement{{Ring: "commercial", Boundaries: []string{"b"}}}}
	}
	f := &Fleet{cfg: cfg, db: db, stores: storesOf(db, db)}
	ctx := context.Background()
	v1 := rings.ReleaseRef{Name: "v1", Digest: strings.Repeat("1", 64)}
	if err := db.CreateRun(ctx, journal.Run{ID: "v1-1", Kind: rings.KindRelease, Release: v1, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	plan := &rings.Plan{Kind: rings.KindRelease, Release: v1, Evidence: []rings.EvidenceRef{{Ring: "commercial", Boundary: "b"}},
		Rings: []rings.RingPlan{{Name: "sov", Targets: []rings.TargetPlan{{Name: "t1", Boundary: "b", Release: v1}}}}}
	for _, ev := range []rings.Event{{Type: rings.RunStarted, Plan: plan}, {Type: rings.TargetVerified, Ring: "sov", Target: "t1", Release: &v1}} {
		ev.V, ev.RunID, ev.At = rings.EventVersion, "v1-1", time.Now()
		if err := db.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	return f, db
}

func rollbackTo(rel rings.ReleaseRef, targets ...string) *rings.Plan {
	rp := rings.RingPlan{Name: "sov"}
	for _, name := range targets {
		rp.Targets = append(rp.Targets, rings.TargetPlan{Name: name, Boundary: "b", Release: rel})
	}
	return &rings.Plan{Kind: rings.KindRollback, Release: rel, Rings: []rings.RingPlan{rp}}
}

// Returning a target to a release it ran and verified here is the fast path; any other
// destination makes its ring wait for the ring's approval.
func TestTheDoorAsksForApprovalOfPromotionsOnly(t *testing.T) {
	f, _ := doorFleet(t, false)
	v1, v2 := rings.ReleaseRef{Name: "v1", Digest: strings.Repeat("1", 64)}, rings.ReleaseRef{Name: "v2", Digest: strings.Repeat("2", 64)}
	back := rollbackTo(v1, "t1")
	if err := f.door(context.Background(), back, nil); err != nil || back.Rings[0].Approval {
		t.Fatalf("back to v1, which t1 verified: %v, approval %v", err, back.Rings[0].Approval)
	}
	for name, p := range map[string]*rings.Plan{"to v2": rollbackTo(v2, "t1"), "v1 to a new target": rollbackTo(v1, "t1", "t2")} {
		if err := f.door(context.Background(), p, nil); err != nil || !p.Rings[0].Approval || p.Rings[0].Approvers[0] != "ana" {
			t.Fatalf("%s: %v, ring plan %+v", name, err, p.Rings[0])
		}
	}
}

// Under a promotion policy, a promotion needs evidence this fleet accepted for that release.
func TestTheDoorHoldsPromotionsToThePolicy(t *testing.T) {
	f, _ := doorFleet(t, true)
	v1, v2 := rings.ReleaseRef{Name: "v1", Digest: strings.Repeat("1", 64)}, rings.ReleaseRef{Name: "v2", Digest: strings.Repeat("2", 64)}
	if err := f.door(context.Background(), rollbackTo(v1, "t2"), nil); err != nil {
		t.Fatalf("v1 into a new target, v1's evidence accepted here: %v", err)
	}
	err := f.door(context.Background(), rollbackTo(v2, "t1"), nil)
	if err == nil || !strings.Contains(err.Error(), "release v2 into sov/t1: no evidence of it was accepted by this fleet") {
		t.Fatalf("v2, never attested here: %v", err)
	}
	if err := f.door(context.Background(), rollbackTo(v2, "t1"), []rings.EvidenceRef{{Ring: "commercial"}}); err != nil {
		t.Fatalf("v2 with evidence accepted now (start): %v", err)
	}
	// Another release under v1's name but another digest is not what was attested.
	other := rings.ReleaseRef{Name: "v1", Digest: strings.Repeat("9", 64)}
	if err := f.door(context.Background(), rollbackTo(other, "t1"), nil); err == nil {
		t.Fatal("a release of v1's name and another digest passed on v1's evidence")
	}
}

// The descriptor of a recorded release is the one its digest was made from: the name's for new
// releases, the first one's (without the name) for releases recorded before.
func TestARecordedReleaseKeepsItsDescriptor(t *testing.T) {
	module, vars := strings.Repeat("a", 64), map[string]any{"x": "1"}
	v2, _ := provision.ReleaseDescriptor("v7", module, vars)
	v1, _ := provision.ReleaseDescriptorV1(module, vars)
	for _, c := range []struct {
		rel  journal.Release
		want []byte
	}{
		{journal.Release{Name: "v7", Digest: sha256hex(v2), Module: module, Vars: vars}, v2},
		{journal.Release{Name: "v7", Digest: sha256hex(v1), Module: module, Vars: vars}, v1},
	} {
		if got, err := descriptor(c.rel); err != nil || string(got) != string(c.want) {
			t.Errorf("descriptor of %s: %q %v, want %q", c.rel.Digest[:8], got, err, c.want)
		}
	}
	a, _ := provision.ReleaseDigest("v1", module, vars)
	b, _ := provision.ReleaseDigest("v9", module, vars)
	if a == b {
		t.Fatal("two names for the same content have one digest")
	}
}

// A new release's providers are locked through the mirror of the boundaries that have targets:
// the user's CLI configuration unless every one of them has a mirror.
func TestTheLockMirrorIsTheTargetsBoundaries(t *testing.T) {
	cfg := &config.Config{Boundaries: map[string]*config.Boundary{"a": {ProviderMirror: "/m/a"}, "b": {ProviderMirror: "/m/b"}, "idle": {}},
		Targets: []*config.Target{{Name: "t1", Boundary: "b"}, {Name: "t2", Boundary: "a"}}}
	f := &Fleet{cfg: cfg}
	if got := f.lockMirror(); got != "/m/a" {
		t.Fatalf("every used boundary mirrored: %q", got)
	}
	cfg.Targets = append(cfg.Targets, &config.Target{Name: "t3", Boundary: "idle"})
	if got := f.lockMirror(); got != "" {
		t.Fatalf("a used boundary without a mirror: %q", got)
	}
}

// Import installs provider packages into a mirror only when the release's lock file records
// their hashes, and never over other bytes.
func TestImportInstallsOnlyLockedProviders(t *testing.T) {
	src := t.TempDir()
	pkg := filepath.Join(src, "registry.opentofu.org", "hashicorp", "time", "0.14.2", "linux_amd64")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(pkg, "terraform-provider-time_v0.14.2")
	os.WriteFile(bin, []byte("the provider"), 0o755)
	h, err := provision.PackageHash(pkg)
	if err != nil {
		t.Fatal(err)
	}
	lock := []byte("provider \"registry.opentofu.org/hashicorp/time\" {\n  version = \"0.14.2\"\n  hashes = [\n    \"" + h + "\",\n  ]\n}\n")
	data, err := tarGz(src)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fleet{}
	mirror := t.TempDir()
	if err := f.installProviders(data, nil, mirror); err == nil || !strings.Contains(err.Error(), "no lock file") {
		t.Fatalf("providers without a lock file: %v", err)
	}
	if err := f.installProviders(data, []byte(strings.Replace(string(lock), h, "h1:AAAA", 1)), mirror); err == nil || !strings.Contains(err.Error(), "does not record") {
		t.Fatalf("a package whose hash the lock does not record: %v", err)
	}
	if err := f.installProviders(data, lock, mirror); err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(mirror, "registry.opentofu.org", "hashicorp", "time", "0.14.2", "linux_amd64", "terraform-provider-time_v0.14.2")
	os.WriteFile(installed, []byte("another fleet's"), 0o755)
	if err := f.installProviders(data, lock, mirror); err == nil || !strings.Contains(err.Error(), "nothing was replaced") {
		t.Fatalf("over other bytes: %v", err)
	}
	if b, _ := os.ReadFile(installed); string(b) != "another fleet's" {
		t.Fatal("a mirror's file was replaced")
	}
}

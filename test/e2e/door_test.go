//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// Expand is a promotion into the new targets: a ring that needs approval waits for it before a
// new target is applied (expand deployed them with no approval).
func TestExpandPassesTheRingsApproval(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true, approvers: [ana]}\n"))
	f.must(3, "start", "--release", "v1")
	run := f.status().Run
	f.must(0, "approve", run, "--ring", "only", "--as", "ana", "--reason", "reviewed")
	f.must(0, "resume", run)
	f.write("environments/more.yaml", "targets:\n"+targetsYAML("new", "local-a", "main", 1, "    vars: {apply_seconds: 0}\n"))
	r := f.must(3, "expand")
	if !strings.Contains(r.stderr, "approval") {
		t.Fatalf("expand into a ring that needs approval: %s", r.stderr)
	}
	if v := f.deployedVersion("new-1"); v != "" {
		t.Fatalf("new-1 runs %q before the ring's approval", v)
	}
	exp := f.status().Run
	f.must(0, "approve", exp, "--ring", "only", "--as", "ana", "--reason", "new stamp")
	f.must(0, "resume", exp)
	if v := f.deployedVersion("new-1"); v != "v1" {
		t.Fatalf("new-1 runs %q after approval", v)
	}
}

// rollback --to a release no run of this fleet verified in the ring is a promotion: it waits for
// the ring's approval; returning to the ring's last known good does not.
func TestRollbackToAnotherReleaseIsAPromotion(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true, approvers: [ana]}\n"))
	for _, rel := range []string{"v1", "v2"} {
		f.must(3, "start", "--release", rel)
		run := f.status().Run
		f.must(0, "approve", run, "--ring", "only", "--as", "ana", "--reason", "ok")
		f.must(0, "resume", run)
	}
	// v3 is recorded (its run was aborted before its approval) but never ran here.
	f.must(3, "start", "--release", "v3")
	f.must(7, "abort", f.status().Run, "--reason", "not now")
	r := f.must(3, "rollback", "--to", "v3", "--reason", "e2e", "--yes")
	if !strings.Contains(r.stderr, "approval") || f.deployedVersion("t-1") != "v2" {
		t.Fatalf("rollback --to v3: t-1 runs %q\n%s", f.deployedVersion("t-1"), r.stderr)
	}
	f.must(7, "abort", f.status().Run, "--reason", "not this way")
	// Back to v1, which the ring ran and verified: the fast path, no approval.
	f.must(0, "rollback", "--to", "v1", "--reason", "e2e", "--yes")
	if v := f.deployedVersion("t-1"); v != "v1" {
		t.Fatalf("t-1 runs %q after rollback --to v1", v)
	}
}

// Every command of the door's table (docs/security.md) against a ring that needs both an
// approval and evidence (a promotion policy): each that would promote is refused or waits, and
// nothing is applied until both are given; the fast path back to a release the ring verified
// needs neither.
func TestEveryPathIntoARingPassesTheDoor(t *testing.T) {
	t.Parallel()
	com := newFleet(t, fleetSpec{rings: "  - name: commercial\n    targets: {labels: {tier: main}}\n    gates: [healthz]\n",
		targets: "targets:\n" + targetsYAML("main", "local-a", "main", 1, "")})
	keys := t.TempDir()
	com.must(0, "evidence", "keygen", "--out", filepath.Join(keys, "com"))
	evidenceOf := func(release string) string {
		com.must(0, "start", "--release", release)
		dir := t.TempDir()
		com.must(0, "evidence", com.status().Run, "--key", filepath.Join(keys, "com.key"), "--out", dir)
		return dir
	}
	good1, good2 := evidenceOf("v1"), evidenceOf("v2")
	archive := func(release string) string {
		p := filepath.Join(t.TempDir(), release+".tgz")
		com.must(0, "release", "export", release, "--out", p)
		return p
	}
	com.must(0, "plan", "--release", "v3", "--save", filepath.Join(t.TempDir(), "v3.plan")) // v3: recorded, never run
	v3 := archive("v3")

	sov := newFleet(t, fleetSpec{rings: "  - name: sov\n    targets: {labels: {tier: sov}}\n    gates: [healthz]\n    approval: {required: true, approvers: [ana]}\n",
		targets: "targets:\n" + targetsYAML("sov", "local-a", "sov", 1, "")})
	cfg := readFile(t, filepath.Join(sov.dir, "rollout.yaml"))
	cfg = strings.NewReplacer(sov.deployed, com.deployed, sov.url, com.url).Replace(cfg)
	sov.write("rollout.yaml", cfg+"promotion:\n  requires:\n    - ring: commercial\n      boundaries: [local-a]\n      trust: ["+filepath.Join(keys, "com.pub")+"]\n")
	sov.deployed, sov.url = com.deployed, com.url
	newOne := ""                         // what new-1 (added for expand) should run
	nothing := func(what, want string) { // sov-1 runs want, new-1 newOne
		t.Helper()
		if v, n := sov.deployedVersion("sov-1"), sov.deployedVersion("new-1"); v != want || n != newOne {
			t.Fatalf("%s: sov-1 runs %q (want %q), new-1 %q (want %q)", what, v, want, n, newOne)
		}
	}
	refused := func(code int, want string, args ...string) {
		t.Helper()
		if r := sov.must(code, args...); !strings.Contains(r.stderr+r.stdout, want) {
			t.Fatalf("rollout %s: want %q in:\n%s", strings.Join(args, " "), want, r.stderr)
		}
	}
	// start: evidence first, then the ring's approval.
	refused(1, "needs evidence", "start", "--release", "v1")
	nothing("start without evidence", "")
	refused(3, "approval", "start", "--release", "v1", "--evidence", good1)
	nothing("start before its approval", "")
	run := sov.status().Run
	sov.must(0, "approve", run, "--ring", "sov", "--as", "ana", "--reason", "CAB 1")
	sov.must(0, "resume", run)
	nothing("v1 approved", "v1")

	// expand: the new target is a promotion into the ring (v1's evidence was accepted here).
	sov.write("environments/more.yaml", "targets:\n"+targetsYAML("new", "local-a", "sov", 1, ""))
	refused(3, "approval", "expand")
	nothing("expand before its approval", "v1")
	sov.must(7, "abort", sov.status().Run, "--reason", "not today")

	// start of v2 with its evidence: waits; rollback --to a release never attested here: refused.
	refused(3, "approval", "start", "--release", "v2", "--evidence", good2)
	nothing("v2 before its approval", "v1")
	sov.must(7, "abort", sov.status().Run, "--reason", "later")
	sov.must(0, "release", "import", v3)
	refused(1, "promotion policy", "rollback", "--to", "v3", "--ring", "sov", "--reason", "e2e", "--yes")
	nothing("rollback --to an unattested release", "v1")
	// rollback --to v2, attested and accepted here but never run in the ring: a promotion.
	refused(3, "approval", "rollback", "--to", "v2", "--ring", "sov", "--reason", "e2e", "--yes")
	nothing("rollback --to before its approval", "v1")
	rb := sov.status().Run
	sov.must(0, "approve", rb, "--ring", "sov", "--as", "ana", "--reason", "hotfix")
	sov.must(0, "resume", rb)
	newOne = "v2" // the ring's targets, new-1 among them since v2's run was planned
	nothing("rollback --to approved", "v2")
	// Back to v1, which sov-1 ran and verified: the fast path for it; new-1 never ran v1, so for it
	// this is a promotion, which waits for the ring's approval.
	refused(3, "approval", "rollback", "--to", "v1", "--ring", "sov", "--reason", "e2e", "--yes")
	nothing("a rollback with one target promoted, before its approval", "v2")
}

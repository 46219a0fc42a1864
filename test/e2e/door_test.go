//go:build e2e

package e2e

import (
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
	f.must(1, "abort", f.status().Run, "--reason", "not now")
	r := f.must(3, "rollback", "--to", "v3")
	if !strings.Contains(r.stderr, "approval") || f.deployedVersion("t-1") != "v2" {
		t.Fatalf("rollback --to v3: t-1 runs %q\n%s", f.deployedVersion("t-1"), r.stderr)
	}
	f.must(1, "abort", f.status().Run, "--reason", "not this way")
	// Back to v1, which the ring ran and verified: the fast path, no approval.
	f.must(0, "rollback", "--to", "v1")
	if v := f.deployedVersion("t-1"); v != "v1" {
		t.Fatalf("t-1 runs %q after rollback --to v1", v)
	}
}

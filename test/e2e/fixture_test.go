//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A journal written by the previous version of rollout (commit 4dd02a4: schema version 3, bake in
// nanoseconds, release digests of the module tree alone, no release module column) opens, shows,
// resumes and rolls back with this one: testdata/journal-4dd02a4 holds that fleet as the old
// binary left it, its second release waiting for approval in its second ring.
func TestJournalOfThePreviousVersionResumes(t *testing.T) {
	t.Parallel()
	src := filepath.Join("testdata", "journal-4dd02a4")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "dot-rollout"), filepath.Join(dir, ".rollout")); err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, dir: dir}
	rep := f.status()
	if rep.Phase != "waiting" || !strings.HasPrefix(rep.Run, "v2-") {
		t.Fatalf("the old journal's newest run: %s %s", rep.Run, rep.Phase)
	}
	conforming(t, f.must(3, "status", "--output", "json").stdout)
	var runs []struct{ Run, Phase string }
	if err := json.Unmarshal(field(f.must(0, "history", "--output", "json").stdout, "runs"), &runs); err != nil || len(runs) != 2 || runs[1].Phase != "succeeded" {
		t.Fatalf("history of the old journal: %v %+v", err, runs)
	}
	f.must(0, "approve", rep.Run, "--ring", "second", "--as", "ops-lead", "--reason", "resumed by the new version")
	f.must(0, "resume", rep.Run)
	if got := f.status(rep.Run).targets()["b-1"]; got != [2]string{"verified", "v2"} {
		t.Fatalf("b-1 after the resume: %v", got)
	}
	// Back to v1, a release recorded by the old version, whose snapshot comes from the journal.
	f.must(0, "rollback", "--target", "b-1", "--reason", "e2e", "--yes")
	if got := f.status().targets()["b-1"]; got != [2]string{"verified", "v1"} {
		t.Fatalf("b-1 after rolling back to the old version's v1: %v", got)
	}
	f.must(3, "start", "--release", "v3") // waits for its approval, as v2 did
	f.checkTruth()
}

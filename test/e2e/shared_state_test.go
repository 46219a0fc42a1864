//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testsupport/pgtest"
)

// sharedFleet is a fleet whose journal is a fresh PostgreSQL database and whose targets keep
// their Terraform state outside any working copy (as a remote backend would).
func sharedFleet(t *testing.T, bake string) *fleet {
	admin := pgtest.URL(t)
	if admin == "" {
		t.Skip("PostgreSQL: skipped (ROLLOUT_TEST_POSTGRES not set)")
	}
	tfstate := t.TempDir()
	var targets strings.Builder
	targets.WriteString("targets:\n")
	for _, n := range []string{"canary-1", "main-1", "main-2"} {
		tier := strings.Split(n, "-")[0]
		fmt.Fprintf(&targets, "  - name: %s\n    boundary: local-a\n    labels: {tier: %s}\n    backend: {type: local, config: {path: %q}}\n",
			n, tier, filepath.Join(tfstate, n+".tfstate"))
	}
	spec := twoRings(bake)
	spec.targets = targets.String()
	f := newFleet(t, spec)
	f.env = []string{"ROLLOUT_STATE=" + pgtest.FreshDatabase(t, admin)}
	f.tfstate = tfstate
	return f
}

// A run started from one working copy is killed, resumed from a second, fresh working copy
// through the shared journal, and rolled back from a third whose module was since edited: the
// rollback applies the release's recorded code, taken from the journal's bundle.
func TestSharedStateAcrossWorkingCopies(t *testing.T) {
	t.Parallel()
	a := sharedFleet(t, "6s")
	a.must(0, "start", "--release", "v1")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	first := a.command(ctx, "start", "--release", "v2")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	a.waitFor("v2's canary ring to bake", 2*time.Minute, func(rep report) bool {
		return rep.Run != "" && strings.HasPrefix(rep.Run, "v2-") && len(rep.Rings) > 0 && rep.Rings[0].Phase == "baking"
	})
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()

	b := a.workingCopy()
	r := b.must(0, "start", "--release", "v2")
	if !strings.Contains(r.stderr, "resuming run v2-") {
		t.Fatalf("the second working copy did not resume the run: %s", r.stderr)
	}
	for _, n := range []string{"canary-1", "main-1", "main-2"} {
		if v := b.deployedVersion(n); v != "v2" {
			t.Fatalf("%s runs %q after the resume from the second copy", n, v)
		}
	}

	c := a.workingCopy()
	main := filepath.Join(c.dir, "terraform", "stamp", "main.tf")
	src, _ := os.ReadFile(main)
	if err := os.WriteFile(main, append(src, []byte("\n# edited after v1 and v2 were released\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must(0, "rollback", "--reason", "e2e", "--yes")
	for _, n := range []string{"canary-1", "main-1", "main-2"} {
		if v := c.deployedVersion(n); v != "v1" {
			t.Fatalf("%s runs %q after the rollback from the third copy", n, v)
		}
	}
	snaps, _ := os.ReadDir(filepath.Join(c.dir, ".rollout", "releases"))
	if len(snaps) != 1 {
		t.Fatalf("the third copy should hold exactly the one snapshot it took from the journal, has %d", len(snaps))
	}
	hist := c.must(0, "history", "--output", "json")
	if strings.Count(hist.stdout, `"run"`) != 3 {
		t.Fatalf("the shared history should list 3 runs (v1, v2, the rollback):\n%s", hist.stdout)
	}
}

// A holder paused (SIGSTOP) past its lease's expiry is taken over; when it wakes, its writes are
// refused and it stops, while its successor finishes the run.
func TestPausedHolderIsFencedOff(t *testing.T) {
	t.Parallel()
	a := sharedFleet(t, "4s")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	first := a.command(ctx, "start", "--release", "v1")
	var firstErr strings.Builder
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	a.waitFor("the canary ring to bake", 2*time.Minute, func(rep report) bool {
		return len(rep.Rings) > 0 && rep.Rings[0].Phase == "baking"
	})
	if err := first.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	b := a.workingCopy()
	var r result
	deadline := time.Now().Add(time.Minute)
	for {
		r = b.run("start", "--release", "v1") // refused (5) until the paused holder's lease expires
		if r.code != 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.code != 0 || !strings.Contains(r.stderr, "resuming run") {
		t.Fatalf("the successor: exit %d\n%s", r.code, lastLines(r.stderr, 30))
	}
	_ = first.Process.Signal(syscall.SIGCONT)
	_ = first.Wait()
	if code := first.ProcessState.ExitCode(); code == 0 || !strings.Contains(firstErr.String(), "taken over") {
		t.Fatalf("the woken holder: exit %d, stderr:\n%s", code, lastLines(firstErr.String(), 20))
	}
	rep := b.status()
	if rep.Phase != "succeeded" || rep.Rings[0].Phase != "passed" || rep.Rings[1].Phase != "passed" {
		t.Fatalf("run after the takeover: %s, rings %s %s", rep.Phase, rep.Rings[0].Phase, rep.Rings[1].Phase)
	}
	for n, st := range rep.targets() {
		if st != [2]string{"verified", "v1"} || b.deployedVersion(n) != "v1" {
			t.Fatalf("%s after the takeover: %v", n, st)
		}
	}
}

// Moving a fleet from its SQLite journal to PostgreSQL: export, import, and the same history,
// status and last known good come back; doctor checks both.
func TestMoveJournalToPostgres(t *testing.T) {
	t.Parallel()
	admin := pgtest.URL(t)
	if admin == "" {
		t.Skip("PostgreSQL: skipped (ROLLOUT_TEST_POSTGRES not set)")
	}
	f := newFleet(t, twoRings("0s"))
	f.must(0, "start", "--release", "v1")
	f.must(0, "start", "--release", "v2")
	d := f.must(0, "state", "doctor")
	v := regexp.MustCompile(`schema   version (\d+) \(this rollout knows (\d+)\)`).FindStringSubmatch(d.stdout)
	if v == nil || v[1] != v[2] || !strings.Contains(d.stdout, "lease    free") || !strings.Contains(d.stdout, "runs     2 (0 unfinished)") {
		t.Fatalf("doctor on SQLite:\n%s", d.stdout)
	}
	export := filepath.Join(t.TempDir(), "fleet.ndjson")
	f.must(0, "state", "export", "--to", export)

	pg := &fleet{t: t, dir: f.dir, deployed: f.deployed, url: f.url, env: []string{"ROLLOUT_STATE=" + pgtest.FreshDatabase(t, admin)}}
	pg.must(0, "state", "migrate")
	pg.must(0, "state", "import", "--from", export)
	pg.must(1, "state", "import", "--from", export) // not into a journal that has runs
	for _, args := range [][]string{{"history", "--output", "json"}, {"history", "--target", "main-2", "--output", "json"}, {"status", "--output", "json"}} {
		if a, b := f.must(0, args...).stdout, pg.must(0, args...).stdout; a != b {
			t.Fatalf("rollout %v differs after the move:\nSQLite:\n%s\nPostgreSQL:\n%s", args, a, b)
		}
	}
	if r := pg.must(0, "start", "--release", "v2"); !strings.Contains(r.stderr, "already finished") {
		t.Fatalf("v2 on PostgreSQL: %s", r.stderr)
	}
	var again strings.Builder
	r := pg.must(0, "state", "export")
	again.WriteString(r.stdout)
	want, _ := os.ReadFile(export)
	if again.String() != string(want) {
		t.Fatal("the PostgreSQL journal exports differently from the SQLite one it was imported from")
	}
}

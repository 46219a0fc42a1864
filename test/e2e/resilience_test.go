//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGINT during an apply: nothing new starts, the apply under way finishes within the grace
// period and is journaled, the lease is released, and the message says how to resume.
func TestInterruptLetsTheRunningApplyFinish(t *testing.T) {
	f := newFleet(t, fleetSpec{targets: "targets:\n" + targetsYAML("s", "local-a", "commercial", 2, "    vars: {apply_seconds: 2}\n"),
		rings: "  - name: only\n    targets: {boundaries: [local-a]}\n    maxParallel: 1\n    gates: [healthz]\n"})
	cmd, errb := startUntilApplying(t, f, "v1", "s-1")
	begin := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	took := time.Since(begin)
	out := errb.String()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out, "stopping: nothing new starts") ||
		!strings.Contains(out, "continue with rollout resume") {
		t.Fatalf("exit %d after %s:\n%s", code, took, lastLines(out, 20))
	}
	// s-1's apply finished (it was not cut short), s-2 never started.
	if v := f.deployedVersion("s-1"); v != "v1" {
		t.Fatalf("s-1 runs %q: the apply under way should have finished", v)
	}
	if v := f.deployedVersion("s-2"); v != "" {
		t.Fatalf("s-2 runs %q: nothing new may start after the signal", v)
	}
	if st := f.status().targets(); st["s-1"][0] != "gating" || st["s-2"][0] != "pending" {
		t.Fatalf("journal after the interrupt: %v", st)
	}
	// The lease was released: resuming needs no wait for it to expire.
	r := f.must(0, "resume", f.status().Run)
	if !strings.Contains(r.stderr, "resume: run") || f.deployedVersion("s-2") != "v1" {
		t.Fatalf("resume:\n%s", lastLines(r.stderr, 20))
	}
}

// With a short grace, a slow apply is interrupted (terraform-exec sends it SIGINT), dropped from
// the journal as of unknown outcome, and re-planned on resume.
func TestInterruptAfterTheGracePeriod(t *testing.T) {
	f := newFleet(t, fleetSpec{targets: "targets:\n" + targetsYAML("s", "local-a", "commercial", 1, "    vars: {apply_seconds: 30}\n"),
		rings: "  - name: only\n    targets: {boundaries: [local-a]}\n    maxParallel: 1\n"})
	f.write("rollout.yaml", strings.Replace(readFile(t, f.dir+"/rollout.yaml"), "defaults:\n", "defaults:\n  shutdownGrace: 1s\n", 1))
	cmd, errb := startUntilApplying(t, f, "v1", "s-1")
	begin := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if took := time.Since(begin); took > 20*time.Second || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("exit %d after %s (grace 1s):\n%s", cmd.ProcessState.ExitCode(), took, lastLines(errb.String(), 20))
	}
	if st := f.status().targets(); st["s-1"][0] != "applying" {
		t.Fatalf("the interrupted apply's outcome is unknown: it stays applying in the journal, got %v", st)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// status --wait blocks while another process drives the run, then exits with the run's code; a
// timeout gives up with exit 1.
func TestStatusWait(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{targets: "targets:\n" + targetsYAML("w", "local-a", "commercial", 1, "    vars: {apply_seconds: 3}\n"),
		rings: "  - name: only\n    targets: {boundaries: [local-a]}\n    gates: [healthz]\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := f.command(ctx, "start", "--release", "v1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	f.waitFor("the run to exist", time.Minute, func(rep report) bool { return rep.Run != "" && rep.Phase == "running" })
	if r := f.run("status", "--wait", "--timeout", "200ms", "--every", "50ms"); r.code != 8 || !strings.Contains(r.stderr, "still running after 200ms") {
		t.Fatalf("timeout: exit %d %s", r.code, r.stderr)
	}
	r := f.run("status", "--wait", "--every", "100ms", "--output", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"phase":"succeeded"`) {
		t.Fatalf("wait: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// startUntilApplying starts a release in the background and returns once target is applying.
func startUntilApplying(t *testing.T, f *fleet, release, target string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := f.command(ctx, "start", "--release", release)
	errb := &bytes.Buffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("start --release %s:\n%s", release, lastLines(errb.String(), 40))
		}
	})
	f.waitFor(target+" applying", 2*time.Minute, func(rep report) bool { return rep.targets()[target][0] == "applying" })
	return cmd, errb
}

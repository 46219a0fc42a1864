//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/testsupport/promtest"
)

// TestPrometheusSeesTheTargetsChange: a real Prometheus scrapes `rollout serve` while another
// process drives a run, and PromQL sees a target applying, then every target verified, the run
// succeeded and each apply's duration.
func TestPrometheusSeesTheTargetsChange(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(3, "2", ""))
	f.must(0, "validate")
	addr, stderr := f.serve(t)
	prom := promtest.Scrape(t, addr, "rollout")

	done := make(chan result, 1)
	go func() { done <- f.run("start", "--release", "v1") }()
	prom.WaitFor(t, `sum(rollout_targets{phase="applying"})`, "1")
	prom.WaitFor(t, `sum(rollout_targets{phase="verified"})`, "3")
	if r := <-done; r.code != 0 {
		t.Fatalf("start: exit %d\n%s", r.code, r.stderr)
	}
	prom.WaitFor(t, `rollout_runs{phase="succeeded"}`, "1")
	prom.WaitFor(t, `sum(rollout_apply_duration_seconds_count{boundary="local-a"})`, "3")
	prom.WaitFor(t, `sum(rollout_gate_verdicts{gate="healthz",verdict="pass"})`, "3")
	prom.WaitFor(t, `rollout_oldest_approval_wait_seconds`, "0")
	if !strings.Contains(stderr.String(), "its metrics at http://"+addr+"/metrics") {
		t.Errorf("serve said: %s", stderr.String())
	}
}

// serve runs `rollout serve` for the fleet on a free port, with args, until the test ends; it
// returns its address once it answers, and what it says on stderr.
func (f *fleet) serve(t *testing.T, args ...string) (string, *strings.Builder) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := f.command(ctx, append([]string{"serve", "--listen", addr}, args...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	waitHTTP(t, "http://"+addr+"/healthz")
	return addr, &errb
}

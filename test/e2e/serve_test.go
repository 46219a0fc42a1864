package e2e

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/testsupport/promtest"
)

// TestPrometheusSeesTheTargetsChange: a real Prometheus scrapes `rollout serve` while another
// process drives a run, and PromQL sees a target applying, then every target verified, the run
// succeeded and each apply's duration.
func TestPrometheusSeesTheTargetsChange(t *testing.T) {
	f := newFleet(t, oneRing(3, "2", ""))
	f.must(0, "validate")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := f.command(ctx, "serve", "--listen", addr)
	var errb strings.Builder
	serve.Stderr = &errb
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = serve.Wait() }()
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
	if !strings.Contains(errb.String(), "its metrics at http://"+addr+"/metrics") {
		t.Errorf("serve said: %s", errb.String())
	}
}

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testsupport/promtest"
)

// promFleet: one ring of two stamps whose bake is judged by a Prometheus query over the fleet's
// error ratio, from a real Prometheus scraping an exporter the test controls.
func promFleet(t *testing.T, noData string) (*fleet, *promtest.Exporter, *promtest.Server) {
	exp := promtest.NewExporter(t)
	exp.Set(`app_error_ratio{stamp="p-1"}`, 0.001)
	exp.Set(`app_error_ratio{stamp="p-2"}`, 0.002)
	prom := promtest.Start(t, exp)
	gates := defaultGates + fmt.Sprintf(`  slo:
    prometheus:
      address: %q
      query: max(app_error_ratio{stamp=~"p-.*"})
    successCondition: result < 0.05
    noData: %s
    interval: 200ms
`, prom.URL, noData)
	f := newFleet(t, fleetSpec{gates: gates, targets: "targets:\n" + targetsYAML("p", "local-a", "commercial", 2, ""),
		rings: "  - name: main\n    targets: {boundaries: [local-a]}\n    maxParallel: 2\n    gates: [healthz]\n    bake: 3s\n    ringGates: [slo]\n"})
	return f, exp, prom
}

func TestPrometheusRingGate(t *testing.T) {
	t.Parallel()
	f, exp, prom := promFleet(t, "fail")
	f.must(0, "start", "--release", "v1") // healthy through the bake: promoted

	// v2: the exporter turns unhealthy during the bake; the ring gate fails and the ring rolls back.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := f.command(ctx, "start", "--release", "v2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the v2 bake", time.Minute, func(r report) bool {
		return r.Kind != "" && len(r.Rings) > 0 && r.Rings[0].Phase == "baking" && r.Run != "" && strings.HasPrefix(r.Run, "v2")
	})
	exp.Set(`app_error_ratio{stamp="p-2"}`, 0.3)
	prom.WaitFor(t, `app_error_ratio{stamp="p-2"}`, "0.3")
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("v2: exit %d (%v), want 2 (rolled back)", code, err)
	}
	rep := f.status()
	if rep.Phase != "rolled_back" || !strings.Contains(rep.Reason, "ring gate slo failed") || !strings.Contains(rep.Reason, "result < 0.05 does not hold") {
		t.Fatalf("v2: %s: %s", rep.Phase, rep.Reason)
	}
	for _, s := range []string{"p-1", "p-2"} {
		if v := f.deployedVersion(s); v != "v1" {
			t.Fatalf("%s runs %s after the rollback", s, v)
		}
	}
}

// A silent metric with noData: inconclusive pauses the ring (exit 3) instead of passing it; a
// human's recorded verdict, then resume, finishes the run.
func TestInconclusiveGateWaitsForAHuman(t *testing.T) {
	t.Parallel()
	f, exp, prom := promFleet(t, "inconclusive")
	exp.Silence()
	prom.WaitForNoData(t, `app_error_ratio`)
	r := f.must(3, "start", "--release", "v1")
	if !strings.Contains(r.stderr, "ring main paused: ring gate slo inconclusive") || !strings.Contains(r.stderr, "rollout gate override") {
		t.Fatalf("want the pause and the way out on stderr:\n%s", lastLines(r.stderr, 20))
	}
	rep := f.status()
	if rep.Phase != "waiting" || rep.Rings[0].Phase != "inconclusive" || rep.ExitCode != 3 {
		t.Fatalf("%s %s %d", rep.Phase, rep.Rings[0].Phase, rep.ExitCode)
	}
	// The metrics come back: measuring again (resume) passes the ring.
	exp.Set(`app_error_ratio{stamp="p-1"}`, 0.001)
	prom.WaitFor(t, `app_error_ratio{stamp="p-1"}`, "0.001")
	r = f.must(0, "resume", rep.Run)
	if !strings.Contains(r.stderr, "inconclusive gates measured again") {
		t.Fatalf("resume:\n%s", lastLines(r.stderr, 20))
	}
	if rep := f.status(); rep.Phase != "succeeded" {
		t.Fatalf("after resume: %s", rep.Phase)
	}

	// v2, silent again: a human passes the gate instead, with a reason that stays in the journal.
	exp.Silence()
	prom.WaitForNoData(t, `app_error_ratio`)
	f.must(3, "start", "--release", "v2")
	rep = f.status()
	f.must(1, "gate", "override", rep.Run, "--ring", "main", "--gate", "slo", "--verdict", "pass") // no reason: refused
	r = f.must(0, "gate", "override", rep.Run, "--ring", "main", "--gate", "slo", "--verdict", "pass", "--as", "oncall", "--reason", "metrics pipeline outage, checked dashboards")
	if !strings.Contains(r.stderr, "gate slo overridden to pass by oncall: metrics pipeline outage") {
		t.Fatalf("the override is not in the run's story:\n%s", lastLines(r.stderr, 20))
	}
	if rep := f.status(); rep.Phase != "succeeded" {
		t.Fatalf("after the override: %s", rep.Phase)
	}
}

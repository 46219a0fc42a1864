package healthgate

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
)

// flaky is a provider whose answers the test scripts: ok until fail is set.
type flaky struct {
	calls atomic.Int32
	fail  atomic.Bool
}

func (f *flaky) Measure(context.Context) Measurement {
	f.calls.Add(1)
	if f.fail.Load() {
		return Measurement{At: time.Now(), Outcome: Error, Message: "HTTP 503"}
	}
	return Measurement{At: time.Now(), Outcome: OK, Message: "result 0.001"}
}

func TestGuardStaleThenErrorThenBreaker(t *testing.T) {
	e := &Endpoints{TripAfter: 4, OpenFor: time.Hour}
	p := &flaky{}
	g := &guarded{inner: p, key: "prometheus http://p", ep: e.get("prometheus http://p", 1000), maxStaleness: time.Hour, budget: 500 * time.Millisecond}
	ctx := context.Background()
	if m := g.Measure(ctx); m.Outcome != OK || m.Stale {
		t.Fatalf("%+v", m)
	}
	p.fail.Store(true)
	m := g.Measure(ctx) // retried (3 tries), then the last good one stands in
	if m.Outcome != OK || !m.Stale || !strings.Contains(m.Message, "stale, taken") || !strings.Contains(m.Message, "now: HTTP 503") {
		t.Fatalf("stale: %+v", m)
	}
	if got := p.calls.Load(); got != 4 {
		t.Fatalf("calls %d, want 1 + 3 tries", got)
	}
	// Too old to stand in: the error is the measurement.
	g.maxStaleness = time.Nanosecond
	if m := g.Measure(ctx); m.Outcome != Error || m.Stale {
		t.Fatalf("beyond maxStaleness: %+v", m)
	}
	// 4 errors in a row opened the breaker: the endpoint is not asked again.
	before := p.calls.Load()
	m = g.Measure(ctx)
	if m.Outcome != Error || !strings.Contains(m.Message, "circuit open after repeated errors; not asked") || p.calls.Load() != before {
		t.Fatalf("open breaker: %+v, calls %d -> %d", m, before, p.calls.Load())
	}
	// The breaker is per endpoint, shared by every gate evaluation using it.
	other := &guarded{inner: &flaky{}, key: "prometheus http://p", ep: e.get("prometheus http://p", 1000), budget: 50 * time.Millisecond}
	if m := other.Measure(ctx); !strings.Contains(m.Message, "circuit open") {
		t.Fatalf("another gate on the same endpoint: %+v", m)
	}
}

func TestGuardRateLimitsAnEndpoint(t *testing.T) {
	e := &Endpoints{}
	ep := e.get("k", 20) // 20/s, burst 20
	p := &flaky{}
	begin := time.Now()
	for range 30 { // 20 at once, then 10 more at 20/s: at least 450ms
		g := &guarded{inner: p, key: "k", ep: ep, budget: time.Second}
		g.Measure(context.Background())
	}
	if el := time.Since(begin); el < 450*time.Millisecond {
		t.Fatalf("30 queries at 20/s took %s", el)
	}
}

func TestCloudGatesNameABoundaryOfTheirCloud(t *testing.T) {
	c := &config.Config{Root: "/f", File: "/f/rollout.yaml", Boundaries: map[string]*config.Boundary{
		"g": {Name: "g", Cloud: "gcp"}, "a": {Name: "a", Cloud: "aws"}}, Gates: map[string]*config.Gate{
		"alarms":  {CloudWatch: &config.CloudWatchCheck{Boundary: "g"}},
		"metrics": {GCPMonitoring: &config.GCPMonitoringCheck{Boundary: "g"}},
		"azure":   {AzureMonitor: &config.AzureMonitorCheck{Boundary: "nope"}},
	}}
	got := CheckBoundaries(c).Error()
	for _, want := range []string{`gates.alarms.cloudwatch.boundary: "g" is not an aws boundary`, `gates.azure.azure-monitor.boundary: "nope" is not an azure boundary`} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in %s", want, got)
		}
	}
	if strings.Contains(got, "gates.metrics") {
		t.Errorf("a gcp-monitoring gate on a gcp boundary was refused: %s", got)
	}
}

package healthgate

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/promtest"
)

func cond(t *testing.T, src string) *config.Condition {
	t.Helper()
	c, err := config.CompileCondition(src, true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// promGate is a prometheus gate with a fast policy.
func promGate(t *testing.T, addr, query, success, failure string, tweak func(*config.Gate)) *config.Gate {
	g := &config.Gate{Name: "errors", Prometheus: &config.PrometheusCheck{Address: addr, Query: query},
		SuccessCondition: success, Success: cond(t, success), FailureCondition: failure,
		Interval: config.Duration(50 * time.Millisecond), Timeout: config.Duration(5 * time.Second),
		Consecutive: 1, FailureLimit: 1, InconclusiveLimit: 1, ConsecutiveErrorLimit: 2, NoData: config.NoDataFail}
	if failure != "" {
		g.Failure = cond(t, failure)
	}
	if tweak != nil {
		tweak(g)
	}
	return g
}

func runGate(t *testing.T, g *config.Gate, target string) (rings.Verdict, []rings.Measurement) {
	t.Helper()
	r := &Runner{Config: &config.Config{Gates: map[string]*config.Gate{g.Name: g}, Targets: []*config.Target{{Name: target, Boundary: "b", Region: "r"}}}}
	var ms []rings.Measurement
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v := r.Target(ctx, rings.GateRequest{Ring: "canary", Target: target, Release: rings.ReleaseRef{Name: "v2"}, Gates: []string{g.Name}},
		func(m rings.Measurement) { ms = append(ms, m) })
	return v, ms
}

// TestPrometheusAgainstARealServer: a real Prometheus scrapes an exporter the test controls; the
// gate's templated PromQL sees the target healthy, unhealthy, silent.
func TestPrometheusAgainstARealServer(t *testing.T) {
	exp := promtest.NewExporter(t)
	exp.Set(`app_error_ratio{target="canary-1"}`, 0.001)
	exp.Set(`app_error_ratio{target="other"}`, 0.9)
	exp.Set(`app_latency_ms{target="canary-1",route="/a"}`, 120)
	exp.Set(`app_latency_ms{target="canary-1",route="/b"}`, 180)
	for target, v := range map[string]float64{"c-1": 0.02, "b-1": 0.015, "b-2": 0.018, "quiet-c": 0.004, "quiet-b": 0.001} {
		exp.Set(fmt.Sprintf(`app_errs{target=%q}`, target), v)
	}
	prom := promtest.Start(t, exp)
	query := `app_error_ratio{target="{{ .Target.Name }}"}`

	t.Run("healthy", func(t *testing.T) {
		v, ms := runGate(t, promGate(t, prom.URL, query, "result < 0.01", "", nil), "canary-1")
		if !v.Passed() || len(ms) == 0 || !strings.Contains(ms[0].Message, `query app_error_ratio{target="canary-1"} = [0.001]: successCondition result < 0.01 holds`) {
			t.Fatalf("%+v %+v", v, ms)
		}
	})
	t.Run("a vector, judged as a list", func(t *testing.T) {
		v, ms := runGate(t, promGate(t, prom.URL, `app_latency_ms{target="{{ .Target.Name }}"}`, "all(result, {# < 300})", "", nil), "canary-1")
		if !v.Passed() || !strings.Contains(ms[0].Message, `route="/a"`) {
			t.Fatalf("%+v %+v", v, ms)
		}
		v, _ = runGate(t, promGate(t, prom.URL, `app_latency_ms{target="{{ .Target.Name }}"}`, "all(result, {# < 150})", "", nil), "canary-1")
		if v.Passed() {
			t.Fatal("a 180ms route passed a 150ms limit")
		}
	})
	t.Run("a range query", func(t *testing.T) {
		v, ms := runGate(t, promGate(t, prom.URL, query, "all(result, {# < 0.01})", "", func(g *config.Gate) {
			g.Prometheus.Range, g.Prometheus.Step = config.Duration(2*time.Second), config.Duration(500*time.Millisecond)
		}), "canary-1")
		if !v.Passed() || !strings.Contains(ms[0].Message, "successCondition all(result, {# < 0.01}) holds") {
			t.Fatalf("%+v %+v", v, ms)
		}
	})
	t.Run("a single-value condition over several series is an error, not a pass", func(t *testing.T) {
		v, ms := runGate(t, promGate(t, prom.URL, `app_latency_ms`, "result < 300", "", nil), "canary-1")
		if v.Passed() || ms[0].Outcome != "error" || !strings.Contains(ms[0].Message, "needs a single value, and the query returned 2") {
			t.Fatalf("%+v %+v", v, ms)
		}
	})
	t.Run("canary versus baseline", func(t *testing.T) {
		compare := func(maxRatio, floor float64, minSamples int) *config.Gate {
			return &config.Gate{Name: "vs-baseline", Compare: &config.CompareCheck{Prometheus: &config.PrometheusCheck{Address: prom.URL,
				Query: `app_errs{target="{{ .Target.Name }}"}`}, MaxRatio: maxRatio, Floor: floor, MinSamples: minSamples},
				Interval: config.Duration(50 * time.Millisecond), Timeout: config.Duration(5 * time.Second), NoData: config.NoDataFail}
		}
		run := func(g *config.Gate, canary string, baseline ...string) (rings.Verdict, []rings.Measurement) {
			r := &Runner{Config: &config.Config{Gates: map[string]*config.Gate{g.Name: g}}}
			for _, n := range append([]string{canary}, baseline...) {
				r.Config.Targets = append(r.Config.Targets, &config.Target{Name: n})
			}
			var ms []rings.Measurement
			v := r.Target(context.Background(), rings.GateRequest{Ring: "main", Target: canary, Gates: []string{g.Name},
				Baseline: map[string][]string{"main": baseline, "other": {"c-1"}}}, func(m rings.Measurement) { ms = append(ms, m) })
			return v, ms
		}
		// 0.02 against a baseline of 0.0165: more than 1.2x, within 1.5x.
		if v, ms := run(compare(1.2, 0, 1), "c-1", "b-1", "b-2"); v.Passed() || !strings.Contains(ms[0].Message, "canary 0.02 vs baseline 0.0165 (2 target(s))") {
			t.Fatalf("1.2x: %+v %+v", v, ms)
		}
		if v, _ := run(compare(1.5, 0, 1), "c-1", "b-1", "b-2"); !v.Passed() {
			t.Fatalf("1.5x: %+v", v)
		}
		// 4x a tiny baseline, under the absolute floor: a pass.
		if v, _ := run(compare(1.2, 0.01, 1), "quiet-c", "quiet-b"); !v.Passed() {
			t.Fatalf("floor: %+v", v)
		}
		// Too few samples on a side is no data, which is not a pass.
		if v, ms := run(compare(1.2, 0.01, 2), "c-1", "b-1"); v.Passed() || ms[0].Outcome != "no_data" || !strings.Contains(ms[0].Message, "too few samples to compare: canary 1, baseline 1") {
			t.Fatalf("min samples: %+v %+v", v, ms)
		}
		if v, ms := run(compare(1.2, 0.01, 1), "c-1"); v.Passed() || !strings.Contains(ms[0].Message, "baseline 0 (from 0 target(s)") {
			t.Fatalf("no baseline: %+v %+v", v, ms)
		}
	})
	t.Run("between the conditions: inconclusive", func(t *testing.T) {
		exp.Set(`app_error_ratio{target="canary-1"}`, 0.03)
		prom.WaitFor(t, `app_error_ratio{target="canary-1"}`, "0.03")
		v, ms := runGate(t, promGate(t, prom.URL, query, "result < 0.01", "result > 0.05", nil), "canary-1")
		if v.Passed() || !(v.Decision == Undecided) || ms[0].Outcome != "inconclusive" {
			t.Fatalf("%+v %+v", v, ms)
		}
	})
	t.Run("unhealthy", func(t *testing.T) {
		exp.Set(`app_error_ratio{target="canary-1"}`, 0.2)
		prom.WaitFor(t, `app_error_ratio{target="canary-1"}`, "0.2")
		v, ms := runGate(t, promGate(t, prom.URL, query, "result < 0.01", "result > 0.05", nil), "canary-1")
		if v.Passed() || (v.Decision == Undecided) || !strings.Contains(v.Message, "failureCondition result > 0.05 holds") || ms[0].Outcome != "failed" {
			t.Fatalf("%+v %+v", v, ms)
		}
	})
	t.Run("silent: no data fails by default, or is inconclusive, never a pass", func(t *testing.T) {
		exp.Silence()
		prom.WaitForNoData(t, `app_error_ratio{target="canary-1"}`)
		v, ms := runGate(t, promGate(t, prom.URL, query, "result < 0.01", "", nil), "canary-1")
		if v.Passed() || (v.Decision == Undecided) || ms[0].Outcome != "no_data" || !strings.Contains(v.Message, "no data") {
			t.Fatalf("%+v %+v", v, ms)
		}
		v, _ = runGate(t, promGate(t, prom.URL, query, "result < 0.01", "", func(g *config.Gate) { g.NoData = config.NoDataInconclusive }), "canary-1")
		if v.Decision != Undecided {
			t.Fatalf("noData: inconclusive: %+v", v)
		}
	})
	t.Run("dry run measures and records, never blocks", func(t *testing.T) {
		v, ms := runGate(t, promGate(t, prom.URL, query, "result < 0.01", "", func(g *config.Gate) { g.DryRun = true }), "canary-1")
		if !v.Passed() || !strings.Contains(v.Message, "dry run: would have been fail") || ms[0].Outcome != NoData || !ms[0].DryRun {
			t.Fatalf("%+v %+v", v, ms)
		}
	})
}

func TestPrometheusUnreachableIsAnErrorUntilTheLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	v, ms := runGate(t, promGate(t, srv.URL, "up", "result == 1", "", nil), "t")
	if v.Passed() || len(ms) != 2 || ms[0].Outcome != "error" || !strings.Contains(v.Message, "the provider failed 2 times in a row (consecutiveErrorLimit 2)") {
		t.Fatalf("%+v %+v", v, ms)
	}
}

func TestPrometheusAuthentication(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`)
	}))
	defer srv.Close()
	t.Setenv("PROM_TOKEN", "tok-123")
	t.Setenv("PROM_USER", "u")
	t.Setenv("PROM_PASS", "p")
	if v, _ := runGate(t, promGate(t, srv.URL, "vector(1)", "result == 1", "", func(g *config.Gate) { g.Prometheus.BearerTokenEnv = "PROM_TOKEN" }), "t"); !v.Passed() {
		t.Fatalf("bearer: %+v", v)
	}
	if v, _ := runGate(t, promGate(t, srv.URL, "vector(1)", "result == 1", "", func(g *config.Gate) { g.Prometheus.UsernameEnv, g.Prometheus.PasswordEnv = "PROM_USER", "PROM_PASS" }), "t"); !v.Passed() {
		t.Fatalf("basic: %+v", v)
	}
	if len(got) != 2 || got[0] != "Bearer tok-123" || got[1] != "Basic dTpw" {
		t.Fatalf("Authorization headers %q", got)
	}
	v, ms := runGate(t, promGate(t, srv.URL, "vector(1)", "result == 1", "", func(g *config.Gate) { g.Prometheus.BearerTokenEnv = "UNSET_TOKEN" }), "t")
	if v.Passed() || !strings.Contains(ms[0].Message, "UNSET_TOKEN is not set") {
		t.Fatalf("unset token: %+v %+v", v, ms)
	}
}

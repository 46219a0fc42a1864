package healthgate

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

type obs struct {
	at     float64
	passed bool
}

func TestTracker(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      Policy
		obs    []obs
		want   Decision
		reason string
	}{
		{"one pass passes by default", Policy{}, []obs{{0, true}}, Pass, "healthy for 0s"},
		{"one failure fails by default", Policy{}, []obs{{0, false}}, Fail, "failed measurements (1) reached failureLimit (1)"},
		{"consecutive needs a streak", Policy{Consecutive: 3, FailureLimit: 5}, []obs{{0, true}, {1, true}, {2, false}, {3, true}, {4, true}}, Pending, ""},
		{"consecutive met", Policy{Consecutive: 3, FailureLimit: 5}, []obs{{0, true}, {1, false}, {2, true}, {3, true}, {4, true}}, Pass, "3 consecutive"},
		{"healthyFor needs time", Policy{HealthyFor: 30 * time.Second, FailureLimit: 3}, []obs{{0, true}, {10, true}, {20, true}}, Pending, ""},
		{"healthyFor met", Policy{HealthyFor: 30 * time.Second, FailureLimit: 3}, []obs{{0, false}, {5, true}, {20, true}, {35, true}}, Pass, "healthy for 30s"},
		{"failure resets the healthy streak", Policy{HealthyFor: 30 * time.Second, FailureLimit: 3}, []obs{{0, true}, {20, false}, {25, true}, {40, true}}, Pending, ""},
		{"failureLimit", Policy{FailureLimit: 2, Consecutive: 5}, []obs{{0, false}, {1, true}, {2, false}}, Fail, "failed measurements (2) reached failureLimit (2)"},
		{"timeout", Policy{Timeout: 10 * time.Second, HealthyFor: 30 * time.Second, FailureLimit: 9}, []obs{{0, true}, {5, true}, {10, true}}, Fail, "within timeout 10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(tc.p, t0)
			var v Decision
			var why string
			for _, o := range tc.obs {
				if v != Pending {
					t.Fatalf("verdict %s came before the last measurement", v)
				}
				v, why = tr.Observe(Measurement{At: at(o.at), Outcome: outcome(o.passed), Message: "m"})
			}
			if v != tc.want || !strings.Contains(why, tc.reason) {
				t.Fatalf("verdict %s %q, want %s containing %q", v, why, tc.want, tc.reason)
			}
		})
	}
}

func TestTrackerSchedulesOnAGrid(t *testing.T) {
	tr := NewTracker(Policy{Interval: 5 * time.Second, Consecutive: 9, FailureLimit: 9}, t0)
	tr.Observe(Measurement{At: at(0), Outcome: OK})
	if got := tr.Next(at(1)); !got.Equal(at(5)) {
		t.Fatalf("next = %s, want t0+5s", got.Sub(t0))
	}
	tr.Observe(Measurement{At: at(7), Outcome: OK}) // a slow measurement
	if got := tr.Next(at(8)); !got.Equal(at(10)) {
		t.Fatalf("next after a slow one = %s, want t0+10s (the grid, not +5s)", got.Sub(t0))
	}
	if got := tr.Next(at(30)); !got.Equal(at(30)) {
		t.Fatalf("overdue next = %s, want now", got.Sub(t0))
	}
}

func TestWindow(t *testing.T) {
	p := Policy{Interval: time.Second, FailureLimit: 2, Consecutive: 2}
	w := NewWindow(p, t0, at(10))
	for _, o := range []obs{{0, true}, {1, false}, {2, true}} {
		if v, _ := w.Observe(Measurement{At: at(o.at), Outcome: outcome(o.passed)}); v != Pending {
			t.Fatalf("verdict %s before the end", v)
		}
	}
	if v, why := w.Observe(Measurement{At: at(10), Outcome: OK}); v != Pass {
		t.Fatalf("at the end: %s %s", v, why)
	}
	w = NewWindow(p, t0, at(10))
	w.Observe(Measurement{At: at(0), Outcome: Failed})
	if v, why := w.Observe(Measurement{At: at(1), Outcome: Failed}); v != Fail || !strings.Contains(why, "during the bake") {
		t.Fatalf("failure limit in a window: %s %s", v, why)
	}
	w = NewWindow(p, t0, at(10))
	if v, why := w.Close(); v != Fail || !strings.Contains(why, "no measurement") {
		t.Fatalf("no data: %s %s", v, why)
	}
	if got := NewWindow(p, t0, at(0.5)).Next(t0.Add(time.Millisecond)); !got.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("first measurement is due at once, got %s", got.Sub(t0))
	}
}

func TestHTTPProvider(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"status":"ok","checks":{"db":[true]}}`))
		case "/slow":
			time.Sleep(50 * time.Millisecond)
			w.Write([]byte(`{}`))
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		h      HTTP
		passed bool
		msg    string
	}{
		{"status", HTTP{URL: srv.URL + "/ok"}, true, "HTTP 200"},
		{"bad status", HTTP{URL: srv.URL + "/down"}, false, "HTTP 503, want 200"},
		{"json field", HTTP{URL: srv.URL + "/ok", JSONPath: "checks.db.0", Expect: "true"}, true, ""},
		{"json field differs", HTTP{URL: srv.URL + "/ok", JSONPath: "status", Expect: "green"}, false, `status is "ok", want "green"`},
		{"json field missing", HTTP{URL: srv.URL + "/ok", JSONPath: "nope", Expect: "x"}, false, `no field "nope"`},
		{"latency", HTTP{URL: srv.URL + "/slow", MaxLatency: 10 * time.Millisecond}, false, "over maxLatency"},
		{"unreachable is no data", HTTP{URL: "http://127.0.0.1:1/x"}, false, "no data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.h.Measure(context.Background())
			if (m.Outcome == OK) != tc.passed || !strings.Contains(m.Message, tc.msg) {
				t.Fatalf("measurement %+v, want passed=%t containing %q", m, tc.passed, tc.msg)
			}
		})
	}
}

func TestCommandProvider(t *testing.T) {
	m := (&Command{Args: []string{"sh", "-c", "echo fine; exit 0"}}).Measure(context.Background())
	if m.Outcome != OK || !strings.Contains(m.Message, "fine") {
		t.Fatalf("exit 0: %+v", m)
	}
	m = (&Command{Args: []string{"sh", "-c", "echo broken >&2; exit 3"}}).Measure(context.Background())
	if m.Outcome == OK || !strings.Contains(m.Message, "exit 3, want 0: broken") {
		t.Fatalf("exit 3: %+v", m)
	}
	m = (&Command{Args: []string{"sh", "-c", "exit 3"}, ExpectExit: 3}).Measure(context.Background())
	if m.Outcome != OK {
		t.Fatalf("expected exit 3: %+v", m)
	}
	m = (&Command{Args: []string{"/nonexistent/probe"}}).Measure(context.Background())
	if m.Outcome == OK || !strings.Contains(m.Message, "no data") {
		t.Fatalf("missing program: %+v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	m = (&Command{Args: []string{"sleep", "10"}}).Measure(ctx)
	if m.Outcome == OK || time.Since(start) > 3*time.Second {
		t.Fatalf("a hung command must fail by the deadline: %+v after %s", m, time.Since(start))
	}
}

func outcome(passed bool) Outcome {
	if passed {
		return OK
	}
	return Failed
}

func TestPolicyOutcomes(t *testing.T) {
	m := func(s float64, o Outcome) Measurement { return Measurement{At: at(s), Outcome: o, Message: string(o)} }
	for _, tc := range []struct {
		name   string
		p      Policy
		ms     []Measurement
		want   Decision
		reason string
	}{
		{"count needs that many measurements", Policy{Count: 3}, []Measurement{m(0, OK), m(1, OK), m(2, OK)}, Pass, "3 consecutive"},
		{"count not yet", Policy{Count: 3}, []Measurement{m(0, OK), m(1, OK)}, Pending, ""},
		{"no data fails by default", Policy{}, []Measurement{m(0, NoData)}, Fail, "failed measurements (1)"},
		{"no data as inconclusive", Policy{NoData: Inconclusive, InconclusiveLimit: 2}, []Measurement{m(0, NoData), m(1, NoData)}, Undecided, "inconclusive measurements (2) reached inconclusiveLimit (2)"},
		{"no data as a pass, when asked", Policy{NoData: OK}, []Measurement{m(0, NoData)}, Pass, ""},
		{"errors in a row fail", Policy{ConsecutiveErrorLimit: 3}, []Measurement{m(0, Error), m(1, Error), m(2, Error)}, Fail, "the provider failed 3 times in a row"},
		{"an answer resets the error count", Policy{ConsecutiveErrorLimit: 2, Consecutive: 9, FailureLimit: 9}, []Measurement{m(0, Error), m(1, Failed), m(2, Error), m(3, OK)}, Pending, ""},
		{"errors do not break a healthy streak", Policy{Consecutive: 2}, []Measurement{m(0, OK), m(1, Error), m(2, OK)}, Pass, "2 consecutive"},
		{"inconclusive breaks the streak", Policy{Consecutive: 2, InconclusiveLimit: 5}, []Measurement{m(0, OK), m(1, Inconclusive), m(2, OK)}, Pending, ""},
		{"timeout with only inconclusive answers is inconclusive", Policy{Timeout: 2 * time.Second, InconclusiveLimit: 9}, []Measurement{m(0, Inconclusive), m(2, Inconclusive)}, Undecided, "inconclusive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(tc.p, t0)
			var v Decision
			var why string
			for _, x := range tc.ms {
				v, why = tr.Observe(x)
			}
			if v != tc.want || !strings.Contains(why, tc.reason) {
				t.Fatalf("verdict %s %q, want %s containing %q", v, why, tc.want, tc.reason)
			}
		})
	}
	w := NewWindow(Policy{InconclusiveLimit: 9}, t0, at(10))
	w.Observe(Measurement{At: at(0), Outcome: Inconclusive})
	if v, why := w.Observe(Measurement{At: at(10), Outcome: Inconclusive}); v != Undecided || !strings.Contains(why, "inconclusive at the end of the bake") {
		t.Fatalf("window: %s %q", v, why)
	}
}

func TestTerraformOutputProvider(t *testing.T) {
	c, err := config.CompileCondition(`result.status == "ok" && result.replicas >= 3`, false)
	if err != nil {
		t.Fatal(err)
	}
	p := &TerraformOutput{Outputs: map[string]any{"health": map[string]any{"status": "ok", "replicas": 3.0}}, Output: "health", Judge: Conditions{Success: c}}
	if m := p.Measure(context.Background()); m.Outcome != OK || !strings.Contains(m.Message, `output health = {"replicas":3,"status":"ok"}`) {
		t.Fatalf("%+v", m)
	}
	p.Outputs["health"] = map[string]any{"status": "degraded", "replicas": 3.0}
	if m := p.Measure(context.Background()); m.Outcome != Failed {
		t.Fatalf("%+v", m)
	}
	p.Output = "missing"
	if m := p.Measure(context.Background()); m.Outcome != NoData {
		t.Fatalf("%+v", m)
	}
}

// Many gates polling one endpoint at once keep their connections between measurements: with
// the default client (100 idle connections in all, 2 per host) most rounds would open new
// ones, and over TLS handshake again, for every target every interval.
func TestHTTPGatesReuseConnections(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	const gates, rounds = 50, 4
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		release := make(chan struct{})
		for g := 0; g < gates; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				if m := (&HTTP{URL: srv.URL}).Measure(context.Background()); m.Outcome != OK {
					t.Error(m.Message)
				}
			}()
		}
		close(release)
		wg.Wait()
	}
	if n := opened.Load(); n > gates+gates/5 {
		t.Fatalf("%d gates measured %d times each opened %d connections, want about %d", gates, rounds, n, gates)
	}
}

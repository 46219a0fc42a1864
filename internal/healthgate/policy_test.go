package healthgate

import (
	"strings"
	"testing"
	"time"
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

// Package healthgate measures health (providers) and turns measurements into verdicts (policy).
// Provider failures are measurements that failed, never Go errors: an unreachable endpoint or a
// missing output is "no data", and no data counts as a failure.
package healthgate

import (
	"fmt"
	"time"
)

// Measurement is one observation by a provider.
type Measurement struct {
	At      time.Time
	Passed  bool
	Message string
}

// Policy turns measurements into a verdict (see Tracker).
type Policy struct {
	Interval     time.Duration // time between measurements
	Timeout      time.Duration // a target gate that has not passed by then fails
	HealthyFor   time.Duration // a pass needs a healthy streak at least this long...
	Consecutive  int           // ...and at least this many passing measurements in a row
	FailureLimit int           // this many failed measurements fail the gate
}

// Verdict of a tracker so far.
type Verdict int

const (
	Pending Verdict = iota
	Pass
	Fail
)

func (v Verdict) String() string { return [...]string{"pending", "pass", "fail"}[v] }

// Tracker applies a Policy to a target gate's measurements, in order. It is pure: time comes in
// the measurements and in the start given to NewTracker.
type Tracker struct {
	p           Policy
	start       time.Time
	n, failures int
	streak      int
	streakStart time.Time
}

func NewTracker(p Policy, start time.Time) *Tracker {
	p.Consecutive = max(p.Consecutive, 1)
	p.FailureLimit = max(p.FailureLimit, 1)
	return &Tracker{p: p, start: start}
}

// Observe folds one measurement in and returns the verdict with its reason.
func (t *Tracker) Observe(m Measurement) (Verdict, string) {
	t.n++
	if !m.Passed {
		t.failures++
		t.streak = 0
		if t.failures >= t.p.FailureLimit {
			return Fail, fmt.Sprintf("failed measurements (%d) reached failureLimit (%d); last: %s", t.failures, t.p.FailureLimit, m.Message)
		}
	} else {
		if t.streak == 0 {
			t.streakStart = m.At
		}
		t.streak++
		healthy := m.At.Sub(t.streakStart)
		if t.streak >= t.p.Consecutive && healthy >= t.p.HealthyFor {
			return Pass, fmt.Sprintf("healthy for %s with %d consecutive passing measurement(s)", healthy.Round(time.Millisecond), t.streak)
		}
	}
	if t.p.Timeout > 0 && m.At.Sub(t.start) >= t.p.Timeout {
		return Fail, fmt.Sprintf("not healthy for %s (%d in a row) within timeout %s: %d measurement(s), %d failed; last: %s",
			t.p.HealthyFor, t.p.Consecutive, t.p.Timeout, t.n, t.failures, m.Message)
	}
	return Pending, ""
}

// Next is when the next measurement is due: measurements keep to the start's grid, so a slow
// measurement does not push every later one back.
func (t *Tracker) Next(now time.Time) time.Time {
	next := t.start.Add(time.Duration(t.n) * t.p.Interval)
	if next.Before(now) {
		return now
	}
	return next
}

// Window applies a Policy across a ring's bake, which ends at a fixed time: failureLimit failed
// measurements fail it at once; at the end it passes when the last Consecutive measurements passed.
type Window struct {
	p        Policy
	start    time.Time
	end      time.Time
	n        int
	failures int
	streak   int
	last     string
}

func NewWindow(p Policy, start, end time.Time) *Window {
	p.Consecutive = max(p.Consecutive, 1)
	p.FailureLimit = max(p.FailureLimit, 1)
	return &Window{p: p, start: start, end: end}
}

// Observe folds one measurement in; Pending until the window ends or the failure limit is reached.
func (w *Window) Observe(m Measurement) (Verdict, string) {
	w.n++
	w.last = m.Message
	if m.Passed {
		w.streak++
	} else {
		w.failures++
		w.streak = 0
		if w.failures >= w.p.FailureLimit {
			return Fail, fmt.Sprintf("failed measurements (%d) reached failureLimit (%d) during the bake; last: %s", w.failures, w.p.FailureLimit, m.Message)
		}
	}
	if !m.At.Before(w.end) {
		return w.Close()
	}
	return Pending, ""
}

// Close gives the verdict at the end of the window.
func (w *Window) Close() (Verdict, string) {
	if w.streak >= w.p.Consecutive {
		return Pass, fmt.Sprintf("held through the bake: %d measurement(s), %d failed", w.n, w.failures)
	}
	if w.n == 0 {
		return Fail, "no measurement during the bake (no data counts as a failure)"
	}
	return Fail, fmt.Sprintf("not healthy at the end of the bake: %d passing in a row, %d needed; last: %s", w.streak, w.p.Consecutive, w.last)
}

// Next is when the next measurement is due.
func (w *Window) Next(now time.Time) time.Time {
	next := w.start.Add(time.Duration(w.n) * w.p.Interval)
	if next.After(w.end) {
		next = w.end
	}
	if next.Before(now) {
		return now
	}
	return next
}

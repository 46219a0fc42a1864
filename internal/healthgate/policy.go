// Package healthgate measures health (providers) and turns measurements into verdicts (policy).
// A measurement has an outcome: ok, failed, inconclusive, no data (the provider answered, with
// nothing), or error (the provider could not be asked). The policy decides what each counts as:
// no data fails by default, errors fail only when too many come in a row, and inconclusive
// measurements can make a gate inconclusive, which pauses the ring for a human instead of passing.
package healthgate

import (
	"fmt"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// The words of gates are the engine's (rings/verdict.go), one vocabulary for the engine, the
// judges and every provider; these names are the same types.
type (
	Outcome     = rings.Outcome
	Measurement = rings.Measurement
	Decision    = rings.Decision
)

const (
	OK           = rings.OK
	Failed       = rings.Failed
	Inconclusive = rings.Inconclusive
	NoData       = rings.NoData
	Error        = rings.Error

	Pending   = rings.Pending
	Pass      = rings.Pass
	Fail      = rings.Fail
	Undecided = rings.Undecided
)

// Policy turns measurements into a verdict (see Tracker).
type Policy struct {
	Interval              time.Duration // time between measurements
	Timeout               time.Duration // a target gate that has not passed by then fails
	HealthyFor            time.Duration // a pass needs a healthy streak at least this long...
	Consecutive           int           // ...and at least this many passing measurements in a row...
	Count                 int           // ...and at least this many measurements in all
	FailureLimit          int           // this many failed measurements fail the gate
	InconclusiveLimit     int           // this many inconclusive measurements make it inconclusive
	ConsecutiveErrorLimit int           // this many provider errors in a row fail it
	NoData                Outcome       // what no data counts as: Failed (default), Inconclusive or OK
}

func (p Policy) withDefaults() Policy {
	p.Consecutive = max(p.Consecutive, 1)
	p.FailureLimit = max(p.FailureLimit, 1)
	p.InconclusiveLimit = max(p.InconclusiveLimit, 1)
	if p.ConsecutiveErrorLimit <= 0 {
		p.ConsecutiveErrorLimit = 4
	}
	if p.NoData == "" {
		p.NoData = Failed
	}
	return p
}

// counts is what both judges keep.
type counts struct {
	p                          Policy
	n, failures, inconclusives int
	errors                     int // in a row
	last                       string
}

// fold counts one measurement and says whether a limit decided the gate. It returns the outcome
// the measurement counts as (no data mapped by the policy).
func (c *counts) fold(m Measurement, during string) (Outcome, Decision, string) {
	o := m.Outcome
	if o == NoData {
		o = c.p.NoData
	}
	c.last = m.Message
	if o == Error {
		c.errors++
		if c.errors >= c.p.ConsecutiveErrorLimit {
			return o, Fail, fmt.Sprintf("the provider failed %d times in a row (consecutiveErrorLimit %d)%s; last: %s", c.errors, c.p.ConsecutiveErrorLimit, during, m.Message)
		}
		return o, Pending, ""
	}
	c.errors = 0
	c.n++
	switch o {
	case Failed:
		c.failures++
		if c.failures >= c.p.FailureLimit {
			return o, Fail, fmt.Sprintf("failed measurements (%d) reached failureLimit (%d)%s; last: %s", c.failures, c.p.FailureLimit, during, m.Message)
		}
	case Inconclusive:
		c.inconclusives++
		if c.inconclusives >= c.p.InconclusiveLimit {
			return o, Undecided, fmt.Sprintf("inconclusive measurements (%d) reached inconclusiveLimit (%d)%s; last: %s", c.inconclusives, c.p.InconclusiveLimit, during, m.Message)
		}
	}
	return o, Pending, ""
}

// Tracker applies a Policy to a target gate's measurements, in order. It is pure: time comes in
// the measurements and in the start given to NewTracker.
type Tracker struct {
	counts
	start       time.Time
	taken       int // measurements scheduled so far, errors included (the grid)
	streak      int
	streakStart time.Time
}

func NewTracker(p Policy, start time.Time) *Tracker {
	return &Tracker{counts: counts{p: p.withDefaults()}, start: start}
}

// Observe folds one measurement in and returns the verdict with its reason.
func (t *Tracker) Observe(m Measurement) (Decision, string) {
	t.taken++
	o, v, why := t.fold(m, "")
	if v != Pending {
		return v, why
	}
	switch o {
	case OK:
		if t.streak == 0 {
			t.streakStart = m.At
		}
		t.streak++
		healthy := m.At.Sub(t.streakStart)
		if t.streak >= t.p.Consecutive && healthy >= t.p.HealthyFor && t.n >= t.p.Count {
			return Pass, fmt.Sprintf("healthy for %s with %d consecutive passing measurement(s)", healthy.Round(time.Millisecond), t.streak)
		}
	case Error: // says nothing about health: the streak stands
	default:
		t.streak = 0
	}
	if t.p.Timeout > 0 && m.At.Sub(t.start) >= t.p.Timeout {
		if t.inconclusives > 0 && t.failures == 0 {
			return Undecided, fmt.Sprintf("not healthy within timeout %s and %d measurement(s) inconclusive; last: %s", t.p.Timeout, t.inconclusives, m.Message)
		}
		return Fail, fmt.Sprintf("not healthy for %s (%d in a row) within timeout %s: %d measurement(s), %d failed; last: %s",
			t.p.HealthyFor, t.p.Consecutive, t.p.Timeout, t.n, t.failures, m.Message)
	}
	return Pending, ""
}

// Next is when the next measurement is due: measurements keep to the start's grid, so a slow
// measurement does not push every later one back.
func (t *Tracker) Next(now time.Time) time.Time {
	next := t.start.Add(time.Duration(t.taken) * t.p.Interval)
	if next.Before(now) {
		return now
	}
	return next
}

// Window applies a Policy across a ring's bake, which ends at a fixed time: the limits decide at
// once; at the end it passes when the last Consecutive measurements passed (and at least Count
// were taken).
type Window struct {
	counts
	start  time.Time
	end    time.Time
	taken  int
	streak int
}

func NewWindow(p Policy, start, end time.Time) *Window {
	return &Window{counts: counts{p: p.withDefaults()}, start: start, end: end}
}

// Observe folds one measurement in; Pending until the window ends or a limit is reached.
func (w *Window) Observe(m Measurement) (Decision, string) {
	w.taken++
	o, v, why := w.fold(m, " during the bake")
	if v != Pending {
		return v, why
	}
	switch o {
	case OK:
		w.streak++
	case Error:
	default:
		w.streak = 0
	}
	if !m.At.Before(w.end) {
		return w.Close()
	}
	return Pending, ""
}

// Close gives the verdict at the end of the window.
func (w *Window) Close() (Decision, string) {
	switch {
	case w.n == 0:
		return Fail, "no measurement during the bake (no data counts as a failure)"
	case w.streak >= w.p.Consecutive && w.n >= w.p.Count:
		return Pass, fmt.Sprintf("held through the bake: %d measurement(s), %d failed", w.n, w.failures)
	case w.inconclusives > 0 && w.failures == 0:
		return Undecided, fmt.Sprintf("inconclusive at the end of the bake: %d measurement(s), %d inconclusive; last: %s", w.n, w.inconclusives, w.last)
	}
	return Fail, fmt.Sprintf("not healthy at the end of the bake: %d passing in a row, %d needed; last: %s", w.streak, w.p.Consecutive, w.last)
}

// Next is when the next measurement is due.
func (w *Window) Next(now time.Time) time.Time {
	next := w.start.Add(time.Duration(w.taken) * w.p.Interval)
	if next.After(w.end) {
		next = w.end
	}
	if next.Before(now) {
		return now
	}
	return next
}

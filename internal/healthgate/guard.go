package healthgate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/healthgate/measure"

	"github.com/rollout-dev/rollout/internal/resilience"
)

// Endpoints holds, per monitoring endpoint (a Prometheus server, a cloud's metrics API in one
// region), one rate limiter and one circuit breaker shared by every gate evaluation that uses it:
// a ring of many targets cannot hammer a monitoring API, and an endpoint that keeps failing is
// left alone for a while instead of being asked again by every gate.
type Endpoints struct {
	Rate      float64       // queries per second per endpoint; 0: 10
	OpenFor   time.Duration // how long an open breaker refuses before a probe; 0: 30s
	TripAfter uint32        // consecutive errors that open it; 0: 5
	mu        sync.Mutex
	byKey     map[string]*endpoint
}

type endpoint struct {
	limiter *resilience.Limiter
	breaker *resilience.Breaker[Measurement]
}

func (e *Endpoints) get(key string, qps float64) *endpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byKey == nil {
		e.byKey = map[string]*endpoint{}
	}
	if ep, ok := e.byKey[key]; ok {
		return ep
	}
	if qps <= 0 {
		qps = e.Rate
	}
	if qps <= 0 {
		qps = 10
	}
	trip, open := e.TripAfter, e.OpenFor
	if trip == 0 {
		trip = 5
	}
	if open == 0 {
		open = 30 * time.Second
	}
	ep := &endpoint{limiter: resilience.NewLimiter(qps, int(qps)),
		breaker: resilience.NewBreaker[Measurement](resilience.BreakerSettings{Name: key, Trip: trip, OpenFor: open})}
	e.byKey[key] = ep
	return ep
}

// errMeasure carries a measurement whose outcome is Error through the breaker and the retries.
type errMeasure struct{ m Measurement }

func (e errMeasure) Error() string { return e.m.Message }

// retryMeasure says whether a measurement is tried again: when the provider erred, not when the
// breaker said no (do not insist) or the context ended.
func retryMeasure(err error) bool {
	var em errMeasure
	return errors.As(err, &em)
}

// guarded wraps a metric provider: each measurement waits for its endpoint's rate limit, goes
// through its breaker, and is retried with backoff when the provider errs (within the gate's
// interval). When it still errs, the last good measurement stands in if it is younger than
// maxStaleness, marked stale; else the error is the measurement.
type guarded struct {
	inner        measure.Provider
	key          string
	ep           *endpoint
	maxStaleness time.Duration
	budget       time.Duration // how long retries of one measurement may take
	lastGood     *Measurement
}

func (g *guarded) Measure(ctx context.Context) Measurement {
	policy := resilience.Policy{Attempts: 3, Initial: 50 * time.Millisecond, Max: max(g.budget/4, 50*time.Millisecond), MaxElapsed: max(g.budget, 100*time.Millisecond)}
	m, _, err := resilience.Retry(ctx, policy, retryMeasure, nil, func() (Measurement, error) {
		if err := g.ep.limiter.Wait(ctx); err != nil {
			return Measurement{}, resilience.Permanent(err)
		}
		m, _, err := g.ep.breaker.Do(func() (Measurement, error) {
			m := g.inner.Measure(ctx)
			if m.Outcome == Error {
				return m, errMeasure{m}
			}
			return m, nil
		})
		return m, err
	})
	now := time.Now()
	if err == nil {
		g.lastGood = &m
		return m
	}
	failed := Measurement{At: now, Outcome: Error, Message: err.Error()}
	var em errMeasure
	switch {
	case errors.As(err, &em):
		failed = em.m
		failed.At = now
	case resilience.IsOpen(err):
		failed.Message = fmt.Sprintf("%s: circuit open after repeated errors; not asked", g.key)
	}
	if g.lastGood != nil && g.maxStaleness > 0 && now.Sub(g.lastGood.At) <= g.maxStaleness {
		s := *g.lastGood
		s.Stale = true
		s.Message = fmt.Sprintf("stale, taken %s ago (now: %s): %s", now.Sub(g.lastGood.At).Round(time.Millisecond), failed.Message, g.lastGood.Message)
		s.At = now
		return s
	}
	return failed
}

package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy says how often and how long a transient failure is tried again. Waits grow
// exponentially from Initial up to Max; each is drawn uniformly between zero and that cap (full
// jitter), so that many callers failing together do not come back together.
type Policy struct {
	Attempts   int           // in all, the first included; 0 or 1: no retry
	Initial    time.Duration // the first wait's cap (default 1s)
	Max        time.Duration // the largest cap (default 1m)
	MaxElapsed time.Duration // no new attempt after this long (0: no limit but Attempts)
	Clock      Clock         // what the waits go through (nil: the wall clock)
}

// Retry runs op until it succeeds, fails with an error transient says is not transient, the
// attempts or the time run out, or ctx ends. Before each wait it calls notify (when not nil) with
// the attempt that failed, its error and the wait. It returns op's last result and error (never
// wrapped by the retry) and the number of attempts made.
func Retry[T any](ctx context.Context, p Policy, transient func(error) bool, notify func(attempt int, err error, wait time.Duration), op func() (T, error)) (T, int, error) {
	clock := OrWall(p.Clock)
	began := clock.Now()
	attempts := 0
	var lastErr error
	waits := &clockBackOff{ctx: ctx, clock: clock, caps: p.caps()}
	if p.MaxElapsed > 0 {
		waits.deadline = began.Add(p.MaxElapsed)
	}
	res, err := backoff.Retry(ctx, func() (T, error) {
		attempts++
		res, err := op()
		lastErr = err
		switch {
		case err == nil:
			return res, nil
		case !transient(err), p.MaxElapsed > 0 && clock.Now().Sub(began) >= p.MaxElapsed:
			return res, backoff.Permanent(err)
		}
		if notify != nil {
			waits.notify = func(d time.Duration) { notify(attempts, err, d) }
		}
		return res, err
	}, backoff.WithBackOff(waits), backoff.WithMaxTries(uint(max(p.Attempts, 1))), backoff.WithMaxElapsedTime(0))
	if err != nil && lastErr != nil && ctx.Err() == nil {
		err = lastErr // backoff may hand a permanent error back still wrapped
	}
	return res, attempts, err
}

// caps is the exponential sequence of wait caps.
func (p Policy) caps() backoff.BackOff {
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval, eb.RandomizationFactor = time.Second, time.Minute, 0
	if p.Initial > 0 {
		eb.InitialInterval = p.Initial
	}
	if p.Max > 0 {
		eb.MaxInterval = max(p.Max, eb.InitialInterval)
	}
	return eb
}

// clockBackOff makes backoff.Retry's waits go through a Clock: it draws the wait, tells it, waits
// on the clock itself and hands backoff a zero wait. A wait ended by ctx stops the retries.
type clockBackOff struct {
	ctx      context.Context
	clock    Clock
	caps     backoff.BackOff
	deadline time.Time // no attempt after this (zero: none)
	notify   func(time.Duration)
}

func (c *clockBackOff) Reset() { c.caps.Reset() }

func (c *clockBackOff) NextBackOff() time.Duration {
	limit := c.caps.NextBackOff()
	if limit == backoff.Stop {
		return backoff.Stop
	}
	d := time.Duration(rand.Int64N(int64(max(limit, 0)) + 1))
	if !c.deadline.IsZero() && c.clock.Now().Add(d).After(c.deadline) {
		return backoff.Stop
	}
	if c.notify != nil {
		c.notify(d)
		c.notify = nil
	}
	if !Sleep(c.ctx, c.clock, d) {
		return backoff.Stop
	}
	return 0
}

// Permanent marks err as not worth another attempt, whatever its class.
func Permanent(err error) error { return backoff.Permanent(err) }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var pe *backoff.PermanentError
	return errors.As(err, &pe)
}

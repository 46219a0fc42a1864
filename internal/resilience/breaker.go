package resilience

import (
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// Breaker is a circuit breaker: after Trip failures in a row it opens and refuses every call for
// OpenFor, then lets one probe through; a probe that passes closes it.
type Breaker[T any] struct{ cb *gobreaker.CircuitBreaker[T] }

// BreakerSettings configure a Breaker.
type BreakerSettings struct {
	Name    string
	Trip    uint32        // failures in a row that open it (at least 1)
	OpenFor time.Duration // how long it refuses before a probe
	// Counts says whether an error counts as a failure of what the breaker guards (nil: every
	// error does). An error that does not count neither opens nor closes it.
	Counts func(error) bool
}

// NewBreaker makes a breaker.
func NewBreaker[T any](s BreakerSettings) *Breaker[T] {
	trip := max(s.Trip, 1)
	st := gobreaker.Settings{Name: s.Name, MaxRequests: 1, Timeout: s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= trip }}
	if s.Counts != nil {
		st.IsExcluded = func(err error) bool { return err != nil && !s.Counts(err) }
	}
	return &Breaker[T]{cb: gobreaker.NewCircuitBreaker[T](st)}
}

// Change is what a call did to a breaker.
type Change int

const (
	Unchanged Change = iota
	Opened           // the call's failure opened it
	Closed           // the call was a probe that passed
)

// Do runs op through the breaker. When the breaker refuses, op is not run and the error is one
// that IsOpen recognises.
func (b *Breaker[T]) Do(op func() (T, error)) (T, Change, error) {
	before := b.cb.State()
	res, err := b.cb.Execute(op)
	after := b.cb.State()
	switch {
	case before != gobreaker.StateOpen && after == gobreaker.StateOpen && !IsOpen(err):
		return res, Opened, err
	case before == gobreaker.StateHalfOpen && after == gobreaker.StateClosed:
		return res, Closed, err
	}
	return res, Unchanged, err
}

// IsOpen reports whether err is a breaker's refusal.
func IsOpen(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// Limiter lets events through at a steady rate with bursts (golang.org/x/time/rate).
type Limiter = rate.Limiter

// NewLimiter lets perSecond events a second through, burst at once.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

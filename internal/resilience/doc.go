// Package resilience is how rollout meets an outside system that fails for a while: retry with
// backoff for the failures a caller classifies as transient (cenkalti/backoff's Retry, a
// permanent failure ends it at once), a circuit breaker per endpoint or boundary
// (sony/gobreaker), a rate limiter (golang.org/x/time/rate), and the clock every wait goes
// through, so that a test moves time instead of sleeping. The executor's Terraform runs, the
// clouds' identity preflight and the health gates' measurements all use it.
package resilience

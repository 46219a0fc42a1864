package resilience

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errTransient = errors.New("503 slow down")
var errBad = errors.New("403 forbidden")

func isTransient(err error) bool { return errors.Is(err, errTransient) }

func TestRetryTriesTransientFailuresAgainUntilTheAttemptsRunOut(t *testing.T) {
	var waits []time.Duration
	calls := 0
	_, n, err := Retry(context.Background(), Policy{Attempts: 4, Initial: time.Microsecond, Max: 4 * time.Microsecond}, isTransient,
		func(attempt int, err error, d time.Duration) {
			if attempt != len(waits)+1 || !errors.Is(err, errTransient) {
				t.Errorf("notify(%d, %v): want attempt %d and the transient error", attempt, err, len(waits)+1)
			}
			waits = append(waits, d)
		},
		func() (int, error) { calls++; return 0, errTransient })
	if n != 4 || calls != 4 || !errors.Is(err, errTransient) || err != errTransient {
		t.Fatalf("attempts %d, calls %d, err %v: want 4, 4 and the op's own error", n, calls, err)
	}
	if len(waits) != 3 {
		t.Fatalf("%d waits told, want 3 (none after the last attempt)", len(waits))
	}
	for i, d := range waits {
		if d < 0 || d > 4*time.Microsecond {
			t.Errorf("wait %d is %s: want within [0, Max]", i, d)
		}
	}
}

func TestRetryStopsAtOnceOnAPermanentFailureAndReturnsItUnwrapped(t *testing.T) {
	calls := 0
	_, n, err := Retry(context.Background(), Policy{Attempts: 5, Initial: time.Microsecond}, isTransient, nil,
		func() (string, error) { calls++; return "", errBad })
	if n != 1 || calls != 1 || err != errBad {
		t.Fatalf("attempts %d, err %v (%T): want 1 attempt and errBad itself", n, err, err)
	}
	// A permanent error on the last allowed attempt comes back unwrapped too.
	_, _, err = Retry(context.Background(), Policy{Attempts: 1}, isTransient, nil, func() (string, error) { return "", errBad })
	if err != errBad || IsPermanent(err) {
		t.Fatalf("err %v (%T): want errBad unwrapped", err, err)
	}
}

func TestRetrySucceedsAfterTransientFailures(t *testing.T) {
	calls := 0
	v, n, err := Retry(context.Background(), Policy{Attempts: 5, Initial: time.Microsecond}, isTransient, nil, func() (int, error) {
		calls++
		if calls < 3 {
			return 0, errTransient
		}
		return 42, nil
	})
	if v != 42 || n != 3 || err != nil {
		t.Fatalf("got %d after %d attempts, err %v: want 42 after 3", v, n, err)
	}
}

// The waits go through the policy's clock: an hour of backoff passes without sleeping.
func TestRetryWaitsOnTheClockItIsGiven(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan error, 1)
	go func() {
		_, _, err := Retry(context.Background(), Policy{Attempts: 3, Initial: time.Hour, Max: time.Hour, Clock: clock}, isTransient, nil,
			func() (int, error) { return 0, errTransient })
		done <- err
	}()
	for i := 0; i < 2; i++ {
		if !clock.WaitFor(1, nil) {
			t.Fatal("no wait armed")
		}
		clock.Advance(time.Hour)
	}
	if err := <-done; err != errTransient {
		t.Fatalf("err %v: want the transient error after the last attempt", err)
	}
}

func TestRetryGivesUpWhenItsTimeIsUp(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	type result struct {
		n   int
		err error
	}
	done, stop := make(chan result, 1), make(chan struct{})
	go func() {
		_, n, err := Retry(context.Background(), Policy{Attempts: 10, Initial: time.Microsecond, MaxElapsed: time.Minute, Clock: clock}, isTransient, nil,
			func() (int, error) {
				clock.Advance(40 * time.Second) // each attempt takes 40s of the clock
				return 0, errTransient
			})
		done <- result{n, err}
		close(stop)
	}()
	for clock.WaitFor(1, stop) {
		clock.Advance(time.Microsecond)
	}
	if r := <-done; r.n != 2 || r.err != errTransient {
		t.Fatalf("attempts %d, err %v: want 2 (no attempt starts after a minute)", r.n, r.err)
	}
}

func TestRetryEndsWhenTheContextEndsDuringAWait(t *testing.T) {
	clock := NewManualClock(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		_, n, _ := Retry(ctx, Policy{Attempts: 5, Initial: time.Hour, Clock: clock}, isTransient, nil, func() (int, error) { return 0, errTransient })
		done <- n
	}()
	clock.WaitFor(1, nil)
	cancel()
	if n := <-done; n != 1 {
		t.Fatalf("%d attempts: want 1 (cancelled during the first wait)", n)
	}
}

func TestBreakerOpensAfterTripFailuresInARowAndAProbeClosesIt(t *testing.T) {
	b := NewBreaker[int](BreakerSettings{Name: "b", Trip: 2, OpenFor: 20 * time.Millisecond, Counts: isTransient})
	fail := func() (int, error) { return 0, errTransient }
	if _, ch, _ := b.Do(func() (int, error) { return 0, errBad }); ch != Unchanged {
		t.Fatalf("an error that does not count changed the breaker: %v", ch)
	}
	if _, ch, _ := b.Do(fail); ch != Unchanged {
		t.Fatalf("first failure: %v, want Unchanged", ch)
	}
	if _, ch, _ := b.Do(fail); ch != Opened {
		t.Fatalf("second failure in a row: %v, want Opened", ch)
	}
	ran := false
	if _, ch, err := b.Do(func() (int, error) { ran = true; return 1, nil }); !IsOpen(err) || ran || ch != Unchanged {
		t.Fatalf("open breaker: ran %v, err %v, change %v: want refused without running", ran, err, ch)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ch, err := b.Do(func() (int, error) { return 1, nil })
		if err == nil {
			if ch != Closed {
				t.Fatalf("probe passed: %v, want Closed", ch)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the breaker never let a probe through")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestManualClockFiresTimersInOrderAndStopsThem(t *testing.T) {
	c := NewManualClock(time.Unix(0, 0))
	a, b, s := c.NewTimer(2*time.Second), c.NewTimer(time.Second), c.NewTimer(time.Second)
	if !s.Stop() || s.Stop() {
		t.Fatal("Stop: want true once, then false")
	}
	if c.Waiting() != 2 {
		t.Fatalf("%d waiting, want 2", c.Waiting())
	}
	c.Advance(time.Second)
	select {
	case at := <-b.C():
		if !at.Equal(time.Unix(1, 0)) {
			t.Fatalf("fired at %s", at)
		}
	default:
		t.Fatal("the 1s timer did not fire at 1s")
	}
	select {
	case <-a.C():
		t.Fatal("the 2s timer fired at 1s")
	default:
	}
	c.Advance(time.Second)
	<-a.C()
	if now := c.NewTimer(0); len(now.C()) != 1 {
		t.Fatal("a zero timer must fire at once")
	}
}

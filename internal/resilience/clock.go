package resilience

import (
	"sort"
	"sync"
	"time"
)

// Clock is a source of time and of timers. Wall is the real one; a test gives a ManualClock.
type Clock interface {
	Now() time.Time
	// NewTimer fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop stops the timer; false if it had fired or was stopped already.
	Stop() bool
}

// Wall is the real clock.
var Wall Clock = wall{}

type wall struct{}

func (wall) Now() time.Time { return time.Now() }

func (wall) NewTimer(d time.Duration) Timer { return wallTimer{time.NewTimer(d)} }

type wallTimer struct{ t *time.Timer }

func (w wallTimer) C() <-chan time.Time { return w.t.C }
func (w wallTimer) Stop() bool          { return w.t.Stop() }

// OrWall is c, or the real clock when c is nil.
func OrWall(c Clock) Clock {
	if c == nil {
		return Wall
	}
	return c
}

// ManualClock is a clock that moves only when told (Advance), for tests of waits: a test waits
// until the code under test armed its timer (Waiting), then moves time past it.
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*manualTimer
	changed chan struct{} // closed and replaced whenever a timer is armed
}

// NewManualClock is a manual clock that reads now.
func NewManualClock(now time.Time) *ManualClock {
	return &ManualClock{now: now, changed: make(chan struct{})}
}

// Now is the clock's time.
func (m *ManualClock) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// NewTimer arms a timer that fires when the clock is advanced to d from now (at once when d <= 0).
func (m *ManualClock) NewTimer(d time.Duration) Timer {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &manualTimer{m: m, at: m.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- m.now
		t.fired = true
		return t
	}
	m.timers = append(m.timers, t)
	close(m.changed)
	m.changed = make(chan struct{})
	return t
}

// Advance moves the clock by d and fires every timer due by then, in time order.
func (m *ManualClock) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	sort.SliceStable(m.timers, func(i, j int) bool { return m.timers[i].at.Before(m.timers[j].at) })
	keep := m.timers[:0]
	for _, t := range m.timers {
		if t.at.After(m.now) {
			keep = append(keep, t)
			continue
		}
		t.fired = true
		t.c <- t.at
	}
	m.timers = keep
}

// Waiting is the number of armed timers that have not fired.
func (m *ManualClock) Waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.timers)
}

// WaitFor blocks until at least n timers are armed, or until done is closed; it reports whether
// they are.
func (m *ManualClock) WaitFor(n int, done <-chan struct{}) bool {
	for {
		m.mu.Lock()
		have, changed := len(m.timers), m.changed
		m.mu.Unlock()
		if have >= n {
			return true
		}
		select {
		case <-changed:
		case <-done:
			return false
		}
	}
}

type manualTimer struct {
	m     *ManualClock
	at    time.Time
	c     chan time.Time
	fired bool
}

func (t *manualTimer) C() <-chan time.Time { return t.c }

func (t *manualTimer) Stop() bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	for i, o := range t.m.timers {
		if o == t {
			t.m.timers = append(t.m.timers[:i], t.m.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Sleep waits d on clock, or until ctx ends (false).
func Sleep(ctx interface{ Done() <-chan struct{} }, clock Clock, d time.Duration) bool {
	t := OrWall(clock).NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

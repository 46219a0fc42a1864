// Package conformance is the suite every gate provider passes against its loopback stand-in:
// a measurement on success and on an unhealthy answer, a failed measurement (never a Go error or
// a panic) on an answer it cannot read, cancellation honoured, no data reported as no data, and
// no secret it was given, or that its endpoint echoed back, in any message.
package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Scenario is how a provider's stand-in answers.
type Scenario int

const (
	Healthy   Scenario = iota // with a value the gate's conditions pass
	Unhealthy                 // with a value they fail
	NoData                    // with nothing to judge
	BadAnswer                 // with what cannot be read (a malformed body, a server error), echoing the credentials it got
	Hang                      // not at all, until the request is cancelled
)

func (s Scenario) String() string {
	return [...]string{"healthy", "unhealthy", "no data", "bad answer", "hang"}[s]
}

// Subject is one provider under the suite.
type Subject struct {
	// Provider builds the provider against its stand-in answering as s says; ok false when the
	// provider has no such case (a command has no "no data": its exit code is its answer).
	Provider func(t *testing.T, s Scenario) (p measure.Provider, ok bool)
	// Secrets are the credentials the provider was given; the stand-ins echo what they receive.
	Secrets []string
	// Unhealthy is the outcome an unhealthy answer gives (default rings.Failed).
	Unhealthy rings.Outcome
}

// Run runs the suite.
func Run(t *testing.T, s Subject) {
	t.Helper()
	want := map[Scenario]func(rings.Outcome) bool{
		Healthy:   func(o rings.Outcome) bool { return o == rings.OK },
		Unhealthy: func(o rings.Outcome) bool { return o == or(s.Unhealthy, rings.Failed) },
		NoData:    func(o rings.Outcome) bool { return o == rings.NoData },
		BadAnswer: func(o rings.Outcome) bool { return o == rings.Error || o == rings.Failed },
		Hang:      func(o rings.Outcome) bool { return o != rings.OK },
	}
	for _, sc := range []Scenario{Healthy, Unhealthy, NoData, BadAnswer, Hang} {
		t.Run(sc.String(), func(t *testing.T) {
			p, ok := s.Provider(t, sc)
			if !ok {
				t.Skipf("the provider does not have a %q case", sc)
			}
			m, took := measureWithin(t, p, sc)
			if !want[sc](m.Outcome) {
				t.Errorf("%s: outcome %s (%s)", sc, m.Outcome, m.Message)
			}
			if m.Message == "" || m.At.IsZero() {
				t.Errorf("%s: a measurement says what it found and when: %+v", sc, m)
			}
			if sc == Hang && took > 5*time.Second {
				t.Errorf("a cancelled measurement took %s to return", took)
			}
			for _, secret := range s.Secrets {
				if secret != "" && strings.Contains(m.Message, secret) {
					t.Errorf("%s: a secret is in the message: %s", sc, m.Message)
				}
			}
		})
	}
}

// measureWithin takes one measurement; a hanging stand-in's is cancelled after 200ms. A panic
// fails the test: a provider reports what went wrong as a measurement.
func measureWithin(t *testing.T, p measure.Provider, sc Scenario) (m rings.Measurement, took time.Duration) {
	t.Helper()
	timeout := 20 * time.Second
	if sc == Hang {
		timeout = 200 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: the provider panicked: %v", sc, r)
		}
	}()
	m = p.Measure(ctx)
	return m, time.Since(start)
}

func or(o, def rings.Outcome) rings.Outcome {
	if o == "" {
		return def
	}
	return o
}

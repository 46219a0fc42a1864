package runs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Settled says whether a run in this phase stays as it is until a person (or a clock) acts:
// finished, waiting, paused or blocked by a freeze.
func Settled(phase rings.Phase) bool {
	return rings.Terminal(phase) || phase == rings.PhaseWaiting || phase == rings.PhasePaused || phase == rings.PhaseBlocked
}

// ErrWaitTimeout: Wait gave up after its timeout, the run still in progress.
var ErrWaitTimeout = errors.New("gave up waiting")

// Wait polls the journal, every every, until the run is settled or no live process drives it
// (waiting longer would change nothing); after timeout it gives up with an error.
func (f *Fleet) Wait(ctx context.Context, id string, timeout, every time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		s, _, err := f.Replay(ctx, id)
		if err != nil {
			return err
		}
		if Settled(s.Phase) {
			return nil
		}
		if driven, err := f.driven(ctx, id); err == nil && !driven {
			return nil // nothing drives it: the report says so (exit 3)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run %s is still %s after %s (--timeout): %w", id, s.Phase, timeout, ErrWaitTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(every, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// driven says whether something drives the run: a live holder of the fleet's lease, or on
// Temporal the run's workflow.
func (f *Fleet) driven(ctx context.Context, runID string) (bool, error) {
	if !f.OnTemporal() {
		lease, err := f.lease.Lease(ctx)
		return err == nil && lease.Live(thisHost()), err
	}
	cl, err := f.temporalClient(ctx)
	if err != nil {
		return false, err
	}
	h, _, err := f.runWorkflow(ctx, cl, runID)
	return h != nil, err
}

// RunLine is one run of the fleet's history.
type RunLine struct {
	Run     string           `json:"run"`
	Kind    string           `json:"kind"`
	Release rings.ReleaseRef `json:"release"`
	Phase   rings.Phase      `json:"phase"`
	Attempt int              `json:"attempt,omitempty"` // a retry's attempt at its release (2: the first retry)
	Reason  string           `json:"reason,omitempty"`
	Started time.Time        `json:"started"`
	Updated time.Time        `json:"updated"`
}

// History lists every run, newest first, with its outcome.
func (f *Fleet) History(ctx context.Context) ([]RunLine, error) {
	runs, err := f.reader.Runs(ctx)
	if err != nil {
		return nil, err
	}
	var out []RunLine
	for _, r := range runs {
		// A finished run's kept report: no replay; and not what other runs tell (stillRunning reads
		// the whole journal, which history, and every /metrics scrape, would do per run).
		rep, _, err := f.report(ctx, r.ID, NeedHead)
		if err != nil {
			return nil, err
		}
		rel := r.Release
		if rep.Release.Name == rel.Name && rep.Release.Module != "" {
			rel = rep.Release // the run's plan also names the release's module tree
		}
		out = append(out, RunLine{Run: r.ID, Kind: r.Kind, Release: rel, Phase: rep.Phase, Attempt: rep.Attempt, Reason: rep.Reason, Started: r.Created, Updated: rep.Updated})
	}
	return out, nil
}

// TargetLine is one step of a target's history.
type TargetLine struct {
	At    time.Time       `json:"at"`
	Run   string          `json:"run"`
	Event rings.EventType `json:"event"`
	// Component: a stack's component the event is about (component.applied, .failed, .destroyed).
	Component string            `json:"component,omitempty"`
	Release   *rings.ReleaseRef `json:"release,omitempty"`
	Message   string            `json:"message,omitempty"`
}

// TargetHistory is which release a target had, when, and the outcome, across runs.
type TargetHistory struct {
	Target        string            `json:"target"`
	LastKnownGood *rings.ReleaseRef `json:"lastKnownGood"`
	Events        []TargetLine      `json:"events"`
}

// TargetHistory reads a target's history; a target neither declared nor in the journal is an
// error.
func (f *Fleet) TargetHistory(ctx context.Context, target string) (*TargetHistory, error) {
	evs, err := f.reader.TargetEvents(ctx, target, rings.TargetApplying, rings.TargetApplied, rings.TargetApplyFailed,
		rings.TargetVerified, rings.TargetGateFailed, rings.TargetRollingBack, rings.TargetRolledBack,
		rings.TargetRollbackFailed, rings.TargetRollbackSkip, rings.ComponentApplied, rings.ComponentFailed, rings.ComponentDestroyed)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		// No history: a target of the fleet not deployed yet, or a name that means nothing here.
		if cfg, err := config.Load(f.cfg.File, catalog.All.Keys()); err == nil && cfg.Target(target) == nil {
			return nil, fmt.Errorf("target %q is not declared in %s and has no history in its journal (hint: rollout validate lists the targets)", target, cfg.File)
		}
	}
	h := &TargetHistory{Target: target, Events: []TargetLine{}}
	for _, ev := range evs {
		h.Events = append(h.Events, TargetLine{At: ev.At, Run: ev.RunID, Event: ev.Type, Component: ev.Component, Release: ev.Release, Message: ev.Message})
	}
	failed, err := f.failedReleases(ctx, f.declaredTargets(target))
	if err != nil {
		return h, err
	}
	h.LastKnownGood, err = journal.LastKnownGood(ctx, f.reader, target, "", failed)
	return h, err
}

// EventsAfter reads a run's events after seq, for a front end that follows a run as it goes.
func (f *Fleet) EventsAfter(ctx context.Context, runID string, seq int64) ([]rings.Event, error) {
	return f.reader.EventsAfter(ctx, runID, seq)
}

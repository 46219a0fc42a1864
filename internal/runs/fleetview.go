package runs

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

// FleetTarget is one target as the whole fleet's journal tells it, across runs: what it runs,
// since when and by which run, its last gate verdict, and what an operator should know.
type FleetTarget struct {
	Ring     string            `json:"ring"`
	Target   string            `json:"target"`
	Boundary string            `json:"boundary"`
	Region   string            `json:"region,omitempty"`
	Release  *rings.ReleaseRef `json:"release,omitempty"` // nil: never deployed
	Since    *time.Time        `json:"since,omitempty"`
	Run      string            `json:"run,omitempty"` // the run that put it there
	// Verdict: its last gates' verdict (passed, failed; "" when none was journaled).
	Verdict string `json:"verdict,omitempty"`
	// State: what its newest journaled step left it: queued (waiting for its boundary's slot),
	// applying, applied, verified, failed (its apply or gates), rolling_back, rolled_back ("" when
	// never touched).
	State string `json:"state,omitempty"`
	// Drift: what its ring's newest drift check (driftCheck:) found of it since it got its
	// release: clean, drift, or error (the check failed); "" when none was made since.
	Drift string `json:"drift,omitempty"`
	// Flags: failedElsewhere (it runs a release a run rolled back somewhere), newerPending (a
	// newer recorded release has not reached it), neverDeployed.
	Flags []string `json:"flags,omitempty"`
}

// fleetCache keeps the fleet view while the journal does not move (its head), and re-reads the
// configuration at most every fleetConfigEvery: a scrape or a page of a 10,000-target fleet reads
// nothing when nothing happened.
type fleetCache struct {
	mu     sync.Mutex
	head   int64
	loaded time.Time
	view   []FleetTarget
}

// fleetConfigEvery is how long a kept fleet view may miss a target added to the configuration
// (rollout env add) while no run moves.
const fleetConfigEvery = 15 * time.Second

// FleetView is every declared target, ring by ring, as the journal tells it across all runs.
// The slice is shared with later calls: read it, do not change it.
func (f *Fleet) FleetView(ctx context.Context) ([]FleetTarget, error) {
	head, err := f.reader.Head(ctx)
	if err != nil {
		return nil, err
	}
	c := &f.fleetView
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.view != nil && c.head == head && time.Since(c.loaded) < fleetConfigEvery {
		return c.view, nil
	}
	view, err := f.readFleetView(ctx)
	if err != nil {
		return nil, err
	}
	c.head, c.loaded, c.view = head, time.Now(), view
	return view, nil
}

// readFleetView reads the fleet view: the configuration's targets, and every target event of the
// journal in one read.
func (f *Fleet) readFleetView(ctx context.Context) ([]FleetTarget, error) {
	cfg := f.cfg
	if len(cfg.Targets) == 0 { // opened on rollout.yaml alone
		var err error
		if cfg, err = LoadConfig(cfg.File); err != nil {
			return nil, err
		}
	}
	evs, failed := map[string][]rings.Event{}, map[string]bool{}
	for _, t := range cfg.Targets {
		evs[t.Name] = nil
	}
	driftChecks := map[string]rings.Event{} // ring -> its newest drift check
	err := f.reader.EventsOfType(ctx, func(ev rings.Event) error {
		if ev.Type == rings.RingDriftChecked {
			driftChecks[ev.Ring] = ev
		} else if e, ok := evs[ev.Target]; ok {
			evs[ev.Target] = append(e, ev)
		}
		return nil
	}, rings.TargetApplying, rings.TargetApplied, rings.TargetVerified, rings.TargetRollingBack,
		rings.TargetRolledBack, rings.TargetGateFailed, rings.TargetApplyFailed, rings.RingDriftChecked, rings.TargetQueued, rings.TargetDequeued)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		journal.RolledBack(e, failed)
	}
	if err := f.forgive(ctx, failed); err != nil {
		return nil, err
	}
	newest, created, err := f.newestRelease(ctx, failed)
	if err != nil {
		return nil, err
	}
	out := []FleetTarget{}
	for _, r := range cfg.Rings {
		for _, name := range r.Targets {
			t := cfg.Target(name)
			ft := FleetTarget{Ring: r.Name, Target: name, Boundary: t.Boundary, Region: t.Region}
			fleetFacts(&ft, evs[name])
			if dc, ok := driftChecks[r.Name]; ok && ft.Since != nil && dc.At.After(*ft.Since) {
				ft.Drift = string(rings.DriftClean)
				if slices.Contains(dc.Targets, name) {
					ft.Drift = string(dc.Drift)
				}
			}
			switch {
			case ft.Release == nil:
				ft.Flags = append(ft.Flags, "neverDeployed")
			case failed[ft.Release.Name]:
				ft.Flags = append(ft.Flags, "failedElsewhere")
			}
			if newest != "" && ft.Release != nil && created[newest].After(created[ft.Release.Name]) {
				ft.Flags = append(ft.Flags, "newerPending")
			}
			out = append(out, ft)
		}
	}
	return out, nil
}

// fleetFacts reads a target's current release, since when, by which run, and its last verdict.
func fleetFacts(ft *FleetTarget, evs []rings.Event) {
	if n := len(evs); n > 0 {
		ft.State = fleetStates[evs[n-1].Type]
	}
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		if ft.Verdict == "" {
			switch ev.Type {
			case rings.TargetVerified:
				ft.Verdict = "passed"
			case rings.TargetGateFailed, rings.TargetApplyFailed:
				ft.Verdict = "failed"
			}
		}
		if ft.Release == nil && (ev.Type == rings.TargetApplied || ev.Type == rings.TargetRolledBack) && ev.Release != nil {
			rel, at := *ev.Release, ev.At
			ft.Release, ft.Since, ft.Run = &rel, &at, ev.RunID
		}
	}
}

// fleetStates name what a target's newest step left it.
var fleetStates = map[rings.EventType]string{
	rings.TargetApplying: "applying", rings.TargetApplied: "applied", rings.TargetVerified: "verified",
	rings.TargetGateFailed: "failed", rings.TargetApplyFailed: "failed", rings.TargetRollingBack: "rolling_back",
	rings.TargetRolledBack: "rolled_back", rings.TargetQueued: "queued", rings.TargetDequeued: "applying",
}

// newestRelease is the newest recorded release that no run rolled back ("" for none), and when
// each release was recorded: a target is behind only when a good release came after its own.
func (f *Fleet) newestRelease(ctx context.Context, failed map[string]bool) (string, map[string]time.Time, error) {
	all, err := f.db.Releases(ctx)
	if err != nil {
		return "", nil, err
	}
	created := map[string]time.Time{}
	for _, r := range all {
		created[r.Name] = r.Created
	}
	slices.SortFunc(all, func(a, b journal.Release) int { return a.Created.Compare(b.Created) })
	for i := len(all) - 1; i >= 0; i-- {
		if !failed[all[i].Name] {
			return all[i].Name, created, nil
		}
	}
	return "", created, nil
}

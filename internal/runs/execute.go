package runs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/healthgate"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/internal/resilience"
	"github.com/rollout-dev/rollout/internal/rings"
)

func (f *Fleet) provisioner() *provision.Terraform {
	var mu sync.Mutex
	vars := map[string]map[string]any{} // releases are immutable: read each once, not once per target
	return &provision.Terraform{Bin: f.bin, Config: f.cfg, StateDir: f.stateDir,
		Vars: func(ctx context.Context, name string) (map[string]any, error) {
			mu.Lock()
			defer mu.Unlock()
			if v, ok := vars[name]; ok {
				return v, nil
			}
			v, ok := f.pending[name]
			if !ok {
				r, err := f.releases.Release(ctx, name)
				if err != nil {
					return nil, err
				}
				v = r.Vars
			}
			v, err := f.unsealVars(name, v)
			if err != nil {
				return nil, err
			}
			vars[name] = v
			return v, nil
		},
		Bundle: f.releases.Bundle,
		Clouds: f.clouds,
		Fence:  f.fence.Load,
		TargetEvents: func(ctx context.Context, target string) ([]rings.Event, error) {
			return f.reader.TargetEvents(ctx, target)
		},
	}
}

// ready checks, before a run's first event is journaled, what the run needs of this machine
// beyond the binary: the secret variables of every release it may apply, its boundaries'
// identity variables and files, and the providers of every release it may apply (its own, and
// the last known good releases a rollback would return to), installed for each boundary's
// mirror. A failure is an error of the environment, never a failed release. only, when not nil,
// are the boundaries to check (a Temporal worker's).
func (f *Fleet) ready(ctx context.Context, plan rings.Plan, only map[string]bool) error {
	if only == nil && f.OnTemporal() {
		return nil // this process starts the run; the workers check what their boundaries need
	}
	releases := map[string]bool{}
	var bounds []string
	need := map[string]map[string]bool{} // module digest -> mirrors
	add := func(rel *rings.ReleaseRef, boundary string) {
		if rel == nil || rel.ModuleDigest() == "" {
			return
		}
		releases[rel.Name] = true
		d := rel.ModuleDigest()
		if need[d] == nil {
			need[d] = map[string]bool{}
		}
		need[d][f.prov.Mirror(boundary)] = true
	}
	for _, r := range plan.Rings {
		for _, t := range r.Targets {
			if only != nil && !only[t.Boundary] {
				continue
			}
			bounds = append(bounds, t.Boundary)
			add(&t.Release, t.Boundary)
			add(t.From, t.Boundary)
		}
	}
	for name := range releases {
		if _, err := f.prov.Vars(ctx, name); err != nil && !errors.Is(err, journal.ErrNotFound) {
			return envErr(err) // a secret variable this process was not given
		}
	}
	if err := f.clouds.CheckEnvironment(bounds); err != nil {
		return envErr(err)
	}
	for digest, mirrors := range need {
		if err := f.prov.ResolveRelease(ctx, digest, slices.Sorted(maps.Keys(mirrors))); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return envErr(err)
		}
	}
	return nil
}

// preflight proves a boundary's identity when ring first enters it (rings.Executor.Preflight),
// in the region of the ring's first target there.
func (f *Fleet) preflight(s *rings.State) func(ctx context.Context, ring, boundary string) (rings.Identity, string, error) {
	return func(ctx context.Context, ring, boundary string) (rings.Identity, string, error) {
		if !f.clouds.NeedsProof(boundary) {
			return rings.Identity{}, "", nil // nothing to prove, nothing to journal
		}
		region := ""
		for _, r := range s.Plan.Rings {
			for _, t := range r.Targets {
				if ct := f.cfg.Target(t.Name); r.Name == ring && t.Boundary == boundary && ct != nil && region == "" {
					region = ct.Region
				}
			}
		}
		id, err := f.clouds.Preflight(ctx, boundary, region)
		return id, clouds.Describe(boundary, id), err
	}
}

// execute drives a run (new or resumed) to its end or to a wait.
func (f *Fleet) execute(ctx context.Context, s *rings.State, first rings.Event, more ...rings.Event) error {
	if first.Type == rings.RunStarted || first.Type == rings.RunResumed {
		sw, err := f.switches.Switch(ctx)
		if err != nil {
			return err
		}
		first.Switch = sw
	}
	if f.OnTemporal() { // the workers check their boundaries; this process holds no credential
		return f.executeOnTemporal(ctx, s, first, more...)
	}
	plan := s.Plan
	if first.Plan != nil {
		plan = *first.Plan
	}
	if err := f.ready(ctx, plan, nil); err != nil {
		return err
	}
	seen, _, err := f.Replay(ctx, s.RunID)
	if err != nil {
		return err
	}
	observe := func(rings.Event) {}
	if f.opts.Watch != nil {
		var done func()
		observe, done = f.opts.Watch(seen)
		defer done()
	}
	x := f.executor(s, plan, observe)
	// After the drain signal nothing new starts; Terraform runs under way get the grace period,
	// then they are interrupted (terraform-exec sends them SIGINT) and dropped, to be re-driven on
	// resume.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.opts.Drain != nil {
		x.Drain = f.opts.Drain()
	}
	go func() {
		select {
		case <-x.Drain:
		case <-ctx.Done():
			return
		}
		t := time.NewTimer(f.cfg.Defaults.ShutdownGrace.D())
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = x.Run(ctx, s, first, more...)
	if errors.Is(err, rings.ErrInterrupted) && !f.detach {
		return fmt.Errorf("run %s %w: continue with rollout resume %s (or rollout start --release %s)", s.RunID, err, s.RunID, s.Plan.Release.Name)
	}
	return err
}

// executor wires the engine's executor to this fleet: its Terraform, gates, limits, retries,
// breakers, preflight and inbox.
func (f *Fleet) executor(s *rings.State, plan rings.Plan, observe func(rings.Event)) *rings.Executor {
	limits, rates := map[string]int{}, map[string]float64{}
	for name, b := range f.cfg.Boundaries {
		limits[name], rates[name] = b.MaxParallel, b.RateLimit
	}
	pol := provision.RunPolicy{ApplyMode: plan.ApplyMode}
	if len(f.cfg.Protect) > 0 || plan.Review != nil {
		pol.Review = &provision.Review{Release: plan.Release.Name, Protect: f.cfg.Protect}
		if plan.Review != nil {
			pol.Review.Digests, pol.Review.AllowDestroy = plan.Review.Digests, plan.Review.AllowDestroy != ""
		}
	}
	prov := f.prov.ForRun(pol)
	var provisioner rings.Provisioner = prov
	if f.opts.Provisioner != nil {
		provisioner = f.opts.Provisioner(prov)
	}
	d, compare := f.cfg.Defaults, f.compareGates()
	return &rings.Executor{
		Store:       f.writer,
		Clock:       resilience.OrWall(f.opts.Clock),
		Provisioner: provisioner,
		Gates:       &healthgate.Runner{Config: f.cfg, Clouds: f.clouds},
		Observe:     observe,
		Boundaries:  limits,
		GlobalLimit: 64,
		Rates:       rates,
		Retry: rings.RetryPolicy{Attempts: d.Retry.Attempts, Initial: d.Retry.InitialInterval.D(),
			Max: d.Retry.MaxInterval.D(), MaxElapsed: d.Retry.MaxElapsed.D()},
		Breaker:      rings.BreakerPolicy{ConsecutiveFailures: d.Breaker.ConsecutiveFailures, OpenFor: d.Breaker.OpenFor.D()},
		Preflight:    f.preflight(s),
		Inbox:        f.inbox(s.RunID),
		PollEvery:    pollEvery(),
		Detach:       f.detach,
		CompareGates: compare,
	}
}

// compareGates are the fleet's gates that compare a target with its baseline, sorted.
func (f *Fleet) compareGates() []string {
	var out []string
	for name, g := range f.cfg.Gates {
		if g.Compare != nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// inbox reads, while the run goes on, what other processes journaled for it (an operator's
// pause, abort, approval, override or acknowledgement) and whether the stop-the-line switch
// changed (journaled by this process as freeze.changed).
func (f *Fleet) inbox(runID string) func(ctx context.Context, s *rings.State, after int64) ([]rings.Event, error) {
	return func(ctx context.Context, s *rings.State, after int64) ([]rings.Event, error) {
		evs, err := f.reader.EventsAfter(ctx, runID, after)
		if err != nil {
			return nil, err
		}
		sw, err := f.switches.Switch(ctx)
		if err != nil {
			return evs, nil
		}
		if (sw == nil) != (s.Switch == nil) {
			ev := rings.Event{Type: rings.FreezeChanged, Switch: sw}
			if sw != nil {
				ev.Actor, ev.Message = sw.Actor, sw.Reason
			}
			evs = append(evs, ev)
		}
		return evs, nil
	}
}

// pollEvery is how often a running run reads its inbox: ROLLOUT_POLL_INTERVAL, default 1s.
func pollEvery() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ROLLOUT_POLL_INTERVAL")); err == nil && d > 0 {
		return d
	}
	return time.Second
}

// secretsInEnviron are the values this process's environment gives secret release variables.
func secretsInEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "ROLLOUT_VAR_") {
			out = append(out, v)
		}
	}
	return out
}

// redactingStore masks secrets, and the credentials of URLs, in every event before it is
// journaled (and so before anyone sees it: the progress display and --events show journaled
// events).
type redactingStore struct {
	*journal.DB
	r *redact.Redactor
	// observers are handed each event once it is journaled: the fleet's webhooks and traces.
	observers []func(rings.Event)
}

func (s redactingStore) Append(ctx context.Context, evs ...rings.Event) error {
	mask(s.r, evs)
	if err := s.DB.Append(ctx, evs...); err != nil {
		return err
	}
	for _, ev := range evs {
		for _, o := range s.observers {
			o(ev)
		}
	}
	return nil
}

// mask masks, in each event, the secrets r knows and the credentials of URLs.
func mask(r *redact.Redactor, evs []rings.Event) {
	for i := range evs {
		evs[i].Message = r.String(redact.Credentials(evs[i].Message))
		evs[i].Outputs = journalable(r, evs[i].Outputs)
	}
}

// journalable is a target's outputs as they may be journaled: known secrets and URL credentials
// masked (sensitive outputs are masked already by whoever read them).
func journalable(r *redact.Redactor, outputs map[string]any) map[string]any {
	if outputs == nil {
		return nil
	}
	return redact.Strings(outputs, func(v string) string { return r.String(redact.URLsIn(v)) }).(map[string]any)
}

// checkNotEmptied refuses to take an empty journal for a new fleet when the fleet's local
// directory shows earlier runs (Terraform state): the journal was lost or emptied, and starting
// would treat every target as a first deployment, with no last known good to roll back to.
func (f *Fleet) checkNotEmptied(ctx context.Context, newJournal bool) error {
	if newJournal {
		return nil
	}
	runs, err := f.reader.Runs(ctx)
	if err != nil || len(runs) > 0 {
		return err
	}
	if traces := localTraces(f.stateDir); traces != "" {
		return fmt.Errorf("the journal %s holds no run, but %s shows earlier ones (%s): it was lost or emptied. Restore it (rollout state import), or begin a new history with --new-journal (last known good releases are then unknown)",
			f.db.Describe(), f.stateDir, traces)
	}
	return nil
}

// localTraces says what in a fleet's local directory shows that runs happened ("" when nothing).
// Local state files are written by applies only (a plan writes none); targets with a remote
// backend leave no trace here, so an emptied journal of such a fleet goes unnoticed.
func localTraces(stateDir string) string {
	if states, _ := filepath.Glob(filepath.Join(stateDir, "tfstate", "*.tfstate")); len(states) > 0 {
		return fmt.Sprintf("%d Terraform state file(s) in tfstate/", len(states))
	}
	return ""
}

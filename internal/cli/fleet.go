package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/healthgate"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/internal/rings"
)

// fleet is one loaded fleet with its journal open.
type fleet struct {
	cfg      *config.Config
	stateDir string
	store    journal.Store
	bin      string
	prov     *provision.Terraform // the fleet's Terraform, when the command runs it
	clouds   *clouds.Manager
	detach   bool // execute journals the first round only (start --wait=false)
	// pending are the variables of releases this process prepared but has not bound (a plan
	// that is not saved): the provisioner reads them before the journal's.
	pending map[string]map[string]any
	// secretVars are the values of secret release variables this process was given (see
	// secrets.go); redact masks them, and every other secret the process knows, in what it writes.
	secretVars map[string]string
	redact     *redact.Redactor
	module     *provision.ModuleInfo
}

func openFleet(ctx context.Context, g globals, needBinary bool) (*fleet, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, err
	}
	f := &fleet{cfg: cfg, stateDir: cfg.StateDir()}
	f.clouds = &clouds.Manager{Config: cfg, CacheDir: f.stateDir, MaxStaleness: cfg.Defaults.PreflightMaxStaleness.D()}
	if needBinary {
		if f.bin, err = provision.FindBinary(firstNonEmpty(g.tfBin(), os.Getenv("ROLLOUT_TF_BIN"))); err != nil {
			return nil, err
		}
	}
	if err := f.openStore(ctx, g); err != nil {
		return nil, err
	}
	f.redact.Add(f.clouds.Secrets()...)
	if needBinary {
		f.prov = f.provisioner()
		if err := f.prov.CheckEnvironment(ctx); err != nil {
			f.Close()
			return nil, envErr(err)
		}
	}
	return f, nil
}

// envErr is an error of the machine rollout runs on, found before anything was journaled.
func envErr(err error) error {
	return &ExitErr{Code: ExitError, Err: fmt.Errorf("this machine is not ready to run Terraform (nothing was journaled): %w", err)}
}

// ready checks, before a run's first event is journaled, what the run needs of this machine
// beyond the binary: its boundaries' identity variables and files, and the providers of every
// release it may apply (its own, and the last known good releases a rollback would return to),
// installed for each boundary's mirror. A failure is an error of the environment (exit 1), never a
// failed release.
func (f *fleet) ready(ctx context.Context, plan rings.Plan) error {
	releases := map[string]bool{}
	for _, r := range plan.Rings {
		for _, t := range r.Targets {
			releases[t.Release.Name] = true
			if t.From != nil {
				releases[t.From.Name] = true
			}
		}
	}
	for name := range releases {
		if _, err := f.prov.Vars(ctx, name); err != nil && !errors.Is(err, journal.ErrNotFound) {
			return envErr(err) // a secret variable this process was not given
		}
	}
	var bounds []string
	need := map[string]map[string]bool{} // digest -> mirrors
	add := func(rel *rings.ReleaseRef, boundary string) {
		if rel == nil || rel.ModuleDigest() == "" {
			return
		}
		d := rel.ModuleDigest()
		if need[d] == nil {
			need[d] = map[string]bool{}
		}
		need[d][f.prov.Mirror(boundary)] = true
	}
	for _, r := range plan.Rings {
		for _, t := range r.Targets {
			bounds = append(bounds, t.Boundary)
			add(&t.Release, t.Boundary)
			add(t.From, t.Boundary)
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

// openJournal opens the fleet's journal for a command that needs nothing else (status, history,
// and operators' acts: approve, pause, abort journaled for another process, drift ack, freeze):
// it reads rollout.yaml's own keys for the state's location and no environment file, so it is
// fast at 10,000 targets and works while a target file is broken. f.cfg has no targets.
func openJournal(ctx context.Context, g globals) (*fleet, error) {
	// A short-lived command whose heap is at most one report or run: collecting less often is a
	// quarter of a 10,000-target status call's time (0.17 s -> 0.13 s), for a few MB more of peak
	// memory.
	debug.SetGCPercent(400)
	cfg, err := config.LoadMain(g.configPath())
	if err != nil {
		return nil, configErr(err)
	}
	f := &fleet{cfg: cfg, stateDir: cfg.StateDir()}
	if err := f.openStore(ctx, g); err != nil {
		return nil, err
	}
	return f, nil
}

// openStore opens the fleet's journal behind a redactor of every secret this process knows, after
// tightening the modes of the fleet's local files (once per directory: see tightenModes).
func (f *fleet) openStore(ctx context.Context, g globals) error {
	f.redact = redact.New(secretsInEnviron()...)
	if err := tightenModes(f.stateDir); err != nil {
		return fmt.Errorf("local state %s: %w", f.stateDir, err)
	}
	s, err := journal.Open(ctx, firstNonEmpty(g.state(), f.cfg.State), f.cfg.Root, f.stateDir)
	if err != nil {
		return err
	}
	f.store = redactingStore{Store: s, r: f.redact}
	return nil
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
	journal.Store
	r *redact.Redactor
}

func (s redactingStore) Append(ctx context.Context, evs ...rings.Event) error {
	for i := range evs {
		evs[i].Message = s.r.String(redact.URLsIn(evs[i].Message))
		evs[i].Outputs = journalable(s.r, evs[i].Outputs)
	}
	return s.Store.Append(ctx, evs...)
}

// journalable is a target's outputs as they may be journaled: known secrets and URL credentials
// masked (sensitive outputs are masked already by whoever read them).
func journalable(r *redact.Redactor, outputs map[string]any) map[string]any {
	if outputs == nil {
		return nil
	}
	return redact.Strings(outputs, func(v string) string { return r.String(redact.URLsIn(v)) }).(map[string]any)
}

func (f *fleet) Close() { f.store.Close() }

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func (f *fleet) provisioner() *provision.Terraform {
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
				r, err := f.store.Release(ctx, name)
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
		Bundle: f.store.Bundle,
		Clouds: f.clouds,
	}
}

// requireDeclared refuses a run whose targets are no longer all declared: a target's boundary,
// region and credentials come from its declaration.
func (f *fleet) requireDeclared(targets []string) error {
	for _, name := range targets {
		if f.cfg.Target(name) == nil {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("target %s of this run is no longer declared under %s: restore it to resume the run, or roll the run back first",
				name, strings.Join(f.cfg.Environments, ", "))}
		}
	}
	return nil
}

// preflight proves a boundary's identity when ring first enters it (rings.Executor.Preflight),
// in the region of the ring's first target there.
func (f *fleet) preflight(s *rings.State) func(ctx context.Context, ring, boundary string) (rings.Identity, string, error) {
	return func(ctx context.Context, ring, boundary string) (rings.Identity, string, error) {
		if b := f.cfg.Boundaries[boundary]; b == nil || b.Cloud == "local" {
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

func thisHost() string {
	host, _ := os.Hostname()
	return host
}

func holder(doing string) journal.Holder {
	host := thisHost()
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return journal.Holder{Name: name + "@" + host, Host: host, PID: os.Getpid(), Doing: doing}
}

func leaseTTL() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ROLLOUT_LEASE_TTL")); err == nil && d > 0 {
		return d
	}
	return 30 * time.Second
}

// withLease holds the fleet's lease while fn runs, renewing it; if it is lost, fn's context ends.
func (f *fleet) withLease(ctx context.Context, doing string, fn func(ctx context.Context) error) error {
	h := holder(doing)
	ttl := leaseTTL()
	if err := f.store.AcquireLease(ctx, h, time.Now(), ttl); err != nil {
		return err
	}
	defer f.store.ReleaseLease(context.WithoutCancel(ctx))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := f.store.RenewLease(ctx, time.Now(), ttl); errors.Is(err, journal.ErrLeaseLost) {
					cancel(err)
					return
				}
			}
		}
	}()
	err := fn(ctx)
	if cause := context.Cause(ctx); errors.Is(cause, journal.ErrLeaseLost) {
		return fmt.Errorf("stopped: %w", cause)
	}
	return err
}

func newID(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// execute drives a run (new or resumed) to its end or to a wait, printing progress.
func (f *fleet) execute(ctx context.Context, io IO, g globals, s *rings.State, first rings.Event, more ...rings.Event) error {
	if first.Type == rings.RunStarted || first.Type == rings.RunResumed {
		sw, err := f.store.Switch(ctx)
		if err != nil {
			return err
		}
		first.Switch = sw
	}
	limits, rates := map[string]int{}, map[string]float64{}
	for name, b := range f.cfg.Boundaries {
		limits[name], rates[name] = b.MaxParallel, b.RateLimit
	}
	seen, _, err := f.replay(ctx, s.RunID)
	if err != nil {
		return err
	}
	p := newProgress(io, g, seen)
	defer p.close()
	events, err := openEvents(g, io.Out)
	if err != nil {
		return err
	}
	defer events.Close()
	plan := s.Plan
	if first.Plan != nil {
		plan = *first.Plan
	}
	if err := f.ready(ctx, plan); err != nil {
		return err
	}
	gates := &healthgate.Runner{Config: f.cfg, Clouds: f.clouds}
	defer gates.Close()
	prov := f.prov
	if len(f.cfg.Protect) > 0 || plan.Review != nil {
		prov.Review = &provision.Review{Release: plan.Release.Name, Protect: f.cfg.Protect}
		if plan.Review != nil {
			prov.Review.Digests, prov.Review.AllowDestroy = plan.Review.Digests, plan.Review.AllowDestroy != ""
		}
	}
	var provisioner rings.Provisioner = prov
	if io.Provisioner != nil {
		provisioner = io.Provisioner(prov)
	}
	x := &rings.Executor{
		Store:       f.store,
		Provisioner: provisioner,
		Gates:       gates,
		Observe: func(ev rings.Event) {
			p.event(ev)
			events.event(ev)
		},
		Boundaries:  limits,
		GlobalLimit: 64,
		Rates:       rates,
		Retry: rings.RetryPolicy{Attempts: f.cfg.Defaults.Retry.Attempts, Initial: f.cfg.Defaults.Retry.InitialInterval.D(),
			Max: f.cfg.Defaults.Retry.MaxInterval.D(), MaxElapsed: f.cfg.Defaults.Retry.MaxElapsed.D()},
		Breaker:   rings.BreakerPolicy{ConsecutiveFailures: f.cfg.Defaults.Breaker.ConsecutiveFailures, OpenFor: f.cfg.Defaults.Breaker.OpenFor.D()},
		Preflight: f.preflight(s),
		Inbox:     f.inbox(s.RunID),
		PollEvery: pollEvery(),
		Detach:    f.detach,
		WantsBaseline: func(gates []string) bool {
			for _, g := range gates {
				if gate := f.cfg.Gates[g]; gate != nil && gate.Compare != nil {
					return true
				}
			}
			return false
		},
	}
	// After the first signal nothing new starts; Terraform runs under way get the grace period,
	// then they are interrupted (terraform-exec sends them SIGINT) and dropped, to be re-driven on
	// resume.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x.Drain = io.Stop.Drain()
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
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s %w: continue with rollout resume %s (or rollout start --release %s)", s.RunID, err, s.RunID, s.Plan.Release.Name)}
	}
	return err
}

// inbox reads, while the run goes on, what other processes journaled for it (an operator's
// pause, abort, approval, override or acknowledgement) and whether the stop-the-line switch
// changed (journaled by this process as freeze.changed).
func (f *fleet) inbox(runID string) func(ctx context.Context, s *rings.State, after int64) ([]rings.Event, error) {
	return func(ctx context.Context, s *rings.State, after int64) ([]rings.Event, error) {
		evs, err := f.store.EventsAfter(ctx, runID, after)
		if err != nil {
			return nil, err
		}
		sw, err := f.store.Switch(ctx)
		if err != nil {
			return evs, nil
		}
		if (sw == nil) != (s.Switch == nil) {
			ev := rings.Event{Type: rings.FreezeChanged, Switch: sw, Outcome: "off"}
			if sw != nil {
				ev.Outcome, ev.Actor, ev.Message = "on", sw.Actor, sw.Reason
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

// exitForPhase is the CI contract for a run in phase: the exit code `start`, `status` and the
// report give. A run in progress (running, rolling back, aborting) is 0 while a live process drives
// it; when none does, it waits for one (3: `rollout resume RUN`).
func exitForPhase(phase string, driven bool) int {
	switch phase {
	case rings.PhaseSucceeded:
		return ExitOK
	case rings.PhaseRolledBack:
		return ExitGateFailed
	case rings.PhaseRollbackFailed:
		return ExitRollbackFailed
	case rings.PhaseWaiting, rings.PhasePaused:
		return ExitWaiting
	case rings.PhaseBlocked:
		return ExitBlocked
	case rings.PhaseAborted, "":
		return ExitError
	}
	if driven {
		return ExitOK
	}
	return ExitWaiting
}

// outcomeErr maps a run that this process drove to its end or to a wait to the CI contract.
func outcomeErr(s *rings.State) error {
	code := exitForPhase(s.Phase, false)
	switch {
	case code == ExitOK:
		return nil
	case s.Phase == rings.PhaseAborted:
		return &ExitErr{Code: code, Err: fmt.Errorf("run %s %s", s.RunID, s.Reason)}
	case code == ExitError:
		return &ExitErr{Code: code, Err: fmt.Errorf("run %s stopped in phase %s", s.RunID, s.Phase)}
	}
	return &ExitErr{Code: code}
}

// parseVars reads --var k=v flags.
func parseVars(kvs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &ExitErr{Code: ExitError, Err: fmt.Errorf("--var %q: want name=value", kv)}
		}
		out[k] = v
	}
	return out, nil
}

// replay rebuilds a run's state from its journal, streaming: the events go through Decide and
// the gate log, never into one slice (a run of 10,000 targets has some 40,000 events).
func (f *fleet) replay(ctx context.Context, runID string) (*rings.State, *runLog, error) {
	s, gates := &rings.State{}, newRunLog()
	err := f.store.RunEvents(ctx, runID, func(ev rings.Event) error {
		rings.Decide(s, ev)
		gates.add(ev)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return s, gates, nil
}

// latestRun is the run an operator means when naming none: the newest.
func (f *fleet) latestRun(ctx context.Context, kind string) (journal.Run, error) {
	runs, err := f.store.Runs(ctx)
	if err != nil {
		return journal.Run{}, err
	}
	for _, r := range runs {
		if kind == "" || r.Kind == kind {
			return r, nil
		}
	}
	return journal.Run{}, &ExitErr{Code: ExitError, Err: errors.New("no run in this fleet's journal yet (hint: rollout start --release NAME)")}
}

// checkNotEmptied refuses to take an empty journal for a new fleet when the fleet's local
// directory shows earlier runs (Terraform state, working directories): the journal was lost or
// emptied, and starting would treat every target as a first deployment, with no last known good
// to roll back to.
func (f *fleet) checkNotEmptied(ctx context.Context, newJournal bool) error {
	if newJournal {
		return nil
	}
	runs, err := f.store.Runs(ctx)
	if err != nil || len(runs) > 0 {
		return err
	}
	if traces := localTraces(f.stateDir); traces != "" {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("the journal %s holds no run, but %s shows earlier ones (%s): it was lost or emptied. Restore it (rollout state import), or begin a new history with --new-journal (last known good releases are then unknown)",
			f.store.Describe(), f.stateDir, traces)}
	}
	return nil
}

// localTraces says what in a fleet's local directory shows that runs happened ("" when nothing).
func localTraces(stateDir string) string {
	// Local state files are written by applies only (a plan writes none); targets with a remote
	// backend leave no trace here, so an emptied journal of such a fleet goes unnoticed.
	if states, _ := filepath.Glob(filepath.Join(stateDir, "tfstate", "*.tfstate")); len(states) > 0 {
		return fmt.Sprintf("%d Terraform state file(s) in tfstate/", len(states))
	}
	return ""
}

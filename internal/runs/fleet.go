// Package runs holds the use cases every front end of rollout shares (the command line today; a
// durable workflow engine and a web server next): open a fleet, start or resume a release's run,
// plan, roll back, expand, check drift, the operators' acts (approve, pause, resume, abort,
// freeze, acknowledge drift, override a gate), and the reports every one of them answers with.
//
// A use case returns a report of the run (whose ExitCode is the CI contract's code for it) or an
// error when the request itself could not be carried out; a front end turns both into its own
// answer (an exit code, an HTTP status). Messages for the operator as things happen go to
// Options.Notes; every journaled event of a run this process drives goes to Options.Watch.
package runs

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/healthgate"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/notify"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/internal/resilience"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/telemetry"
)

// Options are what a front end tells the run service about itself.
type Options struct {
	Config string // rollout.yaml, or the folder that holds it ("": ./rollout.yaml)
	State  string // the journal, over state: in rollout.yaml ("": that, else SQLite)
	TFBin  string // the Terraform or OpenTofu binary ("": ROLLOUT_TF_BIN, TF_BIN, tofu/terraform on PATH)
	// Clock is the one clock of what this fleet journals and of the engine's waits (nil: the wall
	// clock). The fleet lease keeps wall time: other processes read it.
	Clock resilience.Clock
	// Notes gets what the operator should read as it happens ("resuming run ..."); nil: nothing.
	Notes io.Writer
	// Watch is called when this process starts driving a run, with the run as replayed; it returns
	// what sees every event the run journals from then on (a progress display, an --events stream),
	// and what to call when the process stops driving it. Nil: nobody watches.
	Watch func(s *rings.State) (observe func(rings.Event), done func())
	// Drain, called when this process starts driving a run, gives what closes to stop it from
	// starting anything new; Terraform runs under way may finish within defaults.shutdownGrace,
	// then they are interrupted. Nil: nothing drains a run.
	Drain func() <-chan struct{}
	// Provisioner, when set, replaces what runs each target's Terraform (it gets the Terraform
	// provisioner): benchmarks drive the service with a no-op one.
	Provisioner func(rings.Provisioner) rings.Provisioner
	// Events is a file the background process of a detached run appends its events to ("": none).
	Events string
}

// Fleet is one fleet with its journal open: the configuration, the journal behind a redactor of
// every secret this process knows, and, for use cases that run Terraform, the provisioner.
type Fleet struct {
	cfg      *config.Config
	stateDir string
	db       *journal.DB // the journal, opened and closed with the fleet
	stores               // the journal as each part sees it (store.go)
	bin      string
	prov     *provision.Terraform
	clouds   *clouds.Manager
	opts     Options
	detach   bool // execute journals the first round only (start --detach)
	// pending are the variables of releases this process prepared but has not bound (a plan
	// that is not saved): the provisioner reads them before the journal's.
	pending map[string]map[string]any
	// secretVars are the values of secret release variables this process was given (see
	// secrets.go); redact masks them, and every other secret the process knows, in what it writes.
	secretVars map[string]string
	redact     *redact.Redactor
	module     *provision.ModuleInfo
	// fence is the fencing token of the fleet lease this process holds (0: none).
	fence atomic.Int64
	// notifier tells the fleet's webhooks what the runs this process drives need (nil: none).
	notifier *notify.Notifier
	// metrics keeps the newest run's metrics while it does not move (rollout serve).
	metrics   metricsCache
	fleetView fleetCache
	// tracer turns what this process journals into spans (nil: no telemetry configured).
	tracer *telemetry.Tracer
	// tc is the connection to the fleet's Temporal cluster (engine: temporal), made when needed.
	tc temporalConn
	// handed is the run this process handed to its workflow, to follow once the lease is let go.
	handed *handedRun
}

// now is the time of the fleet's clock.
func (f *Fleet) now() time.Time { return resilience.OrWall(f.opts.Clock).Now() }

// Config is the fleet's configuration (without targets when opened with OpenJournal).
func (f *Fleet) Config() *config.Config { return f.cfg }

// StateDir is the fleet's own local directory.
func (f *Fleet) StateDir() string { return f.stateDir }

// Journal is the fleet's journal itself, for what copies it whole (state export and import): its
// writes are not behind the redactor, which what it copies went through already.
func (f *Fleet) Journal() *journal.DB { return f.db }

// Open opens a fleet for use cases that run Terraform: the whole configuration, validated, the
// journal, and this machine checked for what every Terraform command needs (the binary, its CLI
// configuration, the state directory). Nothing is journaled.
func Open(ctx context.Context, o Options) (*Fleet, error) {
	f, err := OpenConfig(ctx, o)
	if err != nil {
		return nil, err
	}
	if f.bin, err = provision.FindBinary(cmp.Or(o.TFBin, os.Getenv("ROLLOUT_TF_BIN"))); err != nil {
		f.Close()
		return nil, err
	}
	f.prov = f.provisioner()
	if err := f.prov.CheckEnvironment(ctx); err != nil {
		f.Close()
		return nil, envErr(err)
	}
	if err := f.startNotifier(); err != nil {
		f.Close()
		return nil, envErr(err)
	}
	if err := f.startTracer(ctx); err != nil {
		f.Close()
		return nil, envErr(err)
	}
	return f, nil
}

// OpenConfig opens a fleet whose whole configuration is read and validated, without Terraform.
func OpenConfig(ctx context.Context, o Options) (*Fleet, error) {
	cfg, err := LoadConfig(o.Config)
	if err != nil {
		return nil, err
	}
	if err := engineFromEnviron(cfg); err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg, stateDir: cfg.StateDir(), opts: o}
	f.clouds = &clouds.Manager{Config: cfg, Catalog: catalog.All, CacheDir: f.stateDir, MaxStaleness: cfg.Defaults.PreflightMaxStaleness.D()}
	if err := f.openStore(ctx); err != nil {
		return nil, err
	}
	f.redact.Add(f.clouds.Secrets()...)
	return f, nil
}

// OpenJournal opens the fleet's journal for what needs nothing else (status, history, and the
// operators' acts): it reads rollout.yaml's own keys for the state's location and no environment
// file, so it is fast at 10,000 targets and works while a target file is broken. Config() has no
// targets then.
func OpenJournal(ctx context.Context, o Options) (*Fleet, error) {
	// A short-lived command whose heap is at most one report or run: collecting less often is a
	// quarter of a 10,000-target status call's time (0.17 s -> 0.13 s), for a few MB more of peak
	// memory.
	debug.SetGCPercent(400)
	cfg, err := config.LoadMain(o.Config, catalog.All.Keys())
	if err != nil {
		return nil, configErr(err)
	}
	if err := engineFromEnviron(cfg); err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg, stateDir: cfg.StateDir(), opts: o}
	if err := f.openStore(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// LoadConfig reads and validates a fleet's whole configuration; every problem names its file,
// line and key.
func LoadConfig(path string) (*config.Config, error) {
	c, errs, err := config.LoadAll(path, catalog.All.Keys())
	if err != nil {
		return nil, err
	}
	// Every problem at once: the files', each cloud's, the gates' and the stack's.
	errs = append(errs, catalog.All.Validate(c)...)
	errs = append(errs, healthgate.CheckBoundaries(c)...)
	if errs = append(errs, provision.CheckStack(c)...); len(errs) > 0 {
		return nil, fmt.Errorf("the configuration has %d problem(s):\n%w", len(errs), errs)
	}
	return c, nil
}

// configErr says how many problems a configuration has, before listing them.
func configErr(err error) error {
	var errs config.Errors
	if errors.As(err, &errs) {
		return fmt.Errorf("the configuration has %d problem(s):\n%w", len(errs), err)
	}
	return err
}

// Close closes the journal.
func (f *Fleet) Close() {
	if f.tc.c != nil {
		f.tc.c.Close()
	}
	f.stopNotifier()
	f.stopTracer()
	f.db.Close()
}

// openStore opens the fleet's journal behind a redactor of every secret this process knows, after
// tightening the modes of the fleet's local files (once per directory: see tightenModes).
func (f *Fleet) openStore(ctx context.Context) error {
	f.redact = redact.New(secretsInEnviron()...)
	if err := tightenModes(f.stateDir); err != nil {
		return fmt.Errorf("local state %s: %w", f.stateDir, err)
	}
	s, err := journal.Open(ctx, cmp.Or(f.opts.State, f.cfg.State), f.cfg.Root, f.stateDir)
	if err != nil {
		return err
	}
	f.db, f.stores = s, storesOf(s, redactingStore{DB: s, r: f.redact})
	return nil
}

// notef tells the operator something, as it happens.
func (f *Fleet) notef(format string, args ...any) {
	if f.opts.Notes != nil {
		fmt.Fprintf(f.opts.Notes, format+"\n", args...)
	}
}

// envErr is an error of the machine rollout runs on, found before anything was journaled.
func envErr(err error) error {
	return fmt.Errorf("this machine is not ready to run Terraform (nothing was journaled): %w", err)
}

// requireDeclared refuses a run whose targets are no longer all declared: a target's boundary,
// region and credentials come from its declaration.
func (f *Fleet) requireDeclared(targets []string) error {
	for _, name := range targets {
		if f.cfg.Target(name) == nil {
			return fmt.Errorf("target %s of this run is no longer declared under %s: restore it to resume the run, or roll the run back first",
				name, strings.Join(f.cfg.Environments, ", "))
		}
	}
	return nil
}

// Actor is who an operator's act is by: as, else the CI actor, else the OS user.
func Actor(as string) string {
	who := cmp.Or(as, os.Getenv("GITHUB_ACTOR"), os.Getenv("BUILD_REQUESTEDFOR"))
	if u, err := user.Current(); who == "" && err == nil {
		who = u.Username
	}
	return who
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
// A run fn handed to its Temporal workflow is followed after the lease is let go: the workflow
// drives it, and operators' acts need the lease meanwhile.
func (f *Fleet) withLease(ctx context.Context, doing string, fn func(ctx context.Context) error) error {
	err := f.leased(ctx, doing, fn)
	if h := f.handed; h != nil {
		f.handed = nil
		defer h.done()
		if err == nil && !f.detach {
			err = f.follow(ctx, h.s, h.observe)
		}
	}
	return err
}

func (f *Fleet) leased(ctx context.Context, doing string, fn func(ctx context.Context) error) error {
	ttl := leaseTTL()
	if err := f.lease.AcquireLease(ctx, holder(doing), time.Now(), ttl); err != nil {
		return err
	}
	defer f.lease.ReleaseLease(context.WithoutCancel(ctx))
	if li, err := f.lease.Lease(ctx); err == nil && li != nil {
		f.fence.Store(li.Token) // what proves a lock left by an earlier holder of the lease is stale
	}
	defer f.fence.Store(0)
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
				if err := f.lease.RenewLease(ctx, time.Now(), ttl); errors.Is(err, journal.ErrLeaseLost) {
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

// Replay rebuilds a run's state from its journal, streaming: the events go through Decide and
// the report's log, never into one slice (a run of 10,000 targets has some 40,000 events).
func (f *Fleet) Replay(ctx context.Context, runID string) (*rings.State, *runLog, error) {
	s, log := &rings.State{}, newRunLog()
	err := f.reader.RunEvents(ctx, runID, func(ev rings.Event) error {
		rings.Decide(s, ev)
		log.add(ev)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return s, log, nil
}

// RunID resolves what an operator names a run by (an id or a unique prefix; "" for the newest run
// of kind, any kind when kind is "").
func (f *Fleet) RunID(ctx context.Context, named, kind string) (string, error) {
	if named != "" {
		r, err := f.reader.Run(ctx, named)
		return r.ID, err
	}
	runs, err := f.reader.Runs(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range runs {
		if kind == "" || r.Kind == kind {
			return r.ID, nil
		}
	}
	return "", errors.New("no run in this fleet's journal yet (hint: rollout start --release NAME)")
}

// configuredTargets lists the configuration's targets in ring order.
func (f *Fleet) configuredTargets() []string {
	var out []string
	for _, r := range f.cfg.Rings {
		out = append(out, r.Targets...)
	}
	return out
}

// declaredTargets are the fleet's targets as far as this process read them (none when it read
// rollout.yaml alone), and target.
func (f *Fleet) declaredTargets(target string) []string {
	out := f.configuredTargets()
	if !slices.Contains(out, target) {
		out = append(out, target)
	}
	return out
}

func planTargets(p rings.Plan) []string {
	var out []string
	for _, r := range p.Rings {
		for _, t := range r.Targets {
			out = append(out, t.Name)
		}
	}
	return out
}

// unfinishedRun returns a release run that is neither finished nor absent, if any.
func (f *Fleet) unfinishedRun(ctx context.Context) (*rings.State, error) {
	runs, err := f.reader.Runs(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if !rings.Promotes(r.Kind) {
			continue
		}
		s, _, err := f.Replay(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		if s.Plan.Kind != "" && !rings.Terminal(s.Phase) {
			return s, nil
		}
	}
	return nil, nil
}

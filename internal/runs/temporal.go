package runs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/temporal"
)

// The engine on Temporal (engine: temporal): the process that starts a run journals its first
// round, as start --detach does, and starts the run's workflow; workers inside each boundary
// (Serve) carry out its work; the journal stays the record every command reads.

// OnTemporal says whether the fleet's runs are driven by Temporal workflows.
func (f *Fleet) OnTemporal() bool { return f.cfg != nil && f.cfg.Engine == "temporal" }

// engineFromEnviron takes ROLLOUT_ENGINE, when set, over rollout.yaml's engine.
func engineFromEnviron(cfg *config.Config) error {
	e := os.Getenv("ROLLOUT_ENGINE")
	switch {
	case e == "":
		return nil
	case !slices.Contains(config.Engines, e):
		return fmt.Errorf("ROLLOUT_ENGINE=%s: want one of %v", e, config.Engines)
	case e == "temporal" && cfg.Temporal == nil:
		return fmt.Errorf("ROLLOUT_ENGINE=temporal: %s has no temporal section (address, namespace, taskQueuePrefix)", cfg.File)
	}
	cfg.Engine = e
	return nil
}

// Cluster is the fleet's Temporal cluster, its files under the fleet's root.
func (f *Fleet) Cluster() temporal.Cluster {
	t := f.cfg.Temporal
	c := temporal.Cluster{Address: cmp.Or(os.Getenv("ROLLOUT_TEMPORAL_ADDRESS"), t.Address),
		Namespace: cmp.Or(os.Getenv("ROLLOUT_TEMPORAL_NAMESPACE"), t.Namespace), Prefix: t.TaskQueuePrefix}
	if t.TLS != nil {
		c.CAFile, c.CertFile, c.KeyFile = f.cfg.Abs(t.TLS.CAFile), f.cfg.Abs(t.TLS.CertFile), f.cfg.Abs(t.TLS.KeyFile)
	}
	return c
}

// temporalClient connects to the fleet's cluster once per process.
func (f *Fleet) temporalClient(ctx context.Context) (client.Client, error) {
	f.tc.Lock()
	defer f.tc.Unlock()
	if f.tc.c != nil {
		return f.tc.c, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second) // an unreachable cluster is an error, not a hang
	defer cancel()
	c, err := temporal.Dial(dctx, f.Cluster())
	if err != nil {
		return nil, envErr(err)
	}
	f.tc.c = c
	return c, nil
}

// temporalConn is the fleet's connection to its cluster (nil until needed).
type temporalConn struct {
	sync.Mutex
	c client.Client
}

func (f *Fleet) runInput(runID string) temporal.RunInput {
	in := temporal.RunInput{RunID: runID, Prefix: f.cfg.Temporal.TaskQueuePrefix, CompareGates: f.compareGates()}
	if d, err := time.ParseDuration(os.Getenv("ROLLOUT_POLL_INTERVAL")); err == nil && d > 0 {
		in.PollEvery = d
	}
	if d, err := time.ParseDuration(os.Getenv("ROLLOUT_TEMPORAL_HEARTBEAT")); err == nil && d > 0 {
		in.Heartbeat = d
	}
	return in
}

// executeOnTemporal hands the run to its workflow. When the workflow runs, first and more are
// journaled as any operator's act is, and the workflow told; when not, the run's round is
// journaled here (nothing of it is carried out here) and its workflow started, to carry it out.
// Unless detached, withLease then follows the journal until the run is settled.
func (f *Fleet) executeOnTemporal(ctx context.Context, s *rings.State, first rings.Event, more ...rings.Event) error {
	cl, err := f.temporalClient(ctx)
	if err != nil {
		return err
	}
	prefix := f.cfg.Temporal.TaskQueuePrefix
	_, running, err := temporal.Query(ctx, cl, prefix, s.RunID)
	if err != nil {
		return envErr(err)
	}
	seen, _, err := f.Replay(ctx, s.RunID)
	if err != nil {
		return err
	}
	observe, done := func(rings.Event) {}, func() {}
	if f.opts.Watch != nil {
		observe, done = f.opts.Watch(seen)
	}
	if err := f.handOver(ctx, cl, s, running, observe, first, more...); err != nil {
		done()
		return err
	}
	f.notef("run %s: workflow %s on Temporal at %s", s.RunID, temporal.WorkflowID(prefix, s.RunID), f.Cluster().Address)
	if q := temporal.JournalQueue(prefix); !running {
		if unserved, err := temporal.Unserved(ctx, cl, []string{q}); err == nil && len(unserved) > 0 {
			f.notef("warning: no worker polls task queue %s: the run waits until one does (rollout worker --journal)", q)
		}
	}
	now, _, err := f.Replay(ctx, s.RunID) // what this process journaled was seen already
	if err != nil {
		done()
		return err
	}
	f.handed = &handedRun{s: now, observe: observe, done: done}
	return nil
}

// handedRun is a run handed to its workflow, to follow: its state and its watcher.
type handedRun struct {
	s       *rings.State
	observe func(rings.Event)
	done    func()
}

// handOver journals what hands the run to its workflow and starts or tells the workflow.
func (f *Fleet) handOver(ctx context.Context, cl client.Client, s *rings.State, running bool, observe func(rings.Event), first rings.Event, more ...rings.Event) error {
	if !running {
		plan := s.Plan
		if first.Plan != nil {
			plan = *first.Plan
		}
		x := f.executor(s, plan, observe)
		x.Detach, x.Inbox = true, nil
		if err := x.Run(ctx, s, first, more...); err != nil {
			return err
		}
		if _, err := temporal.Start(ctx, cl, f.cfg.Temporal.TaskQueuePrefix, f.runInput(s.RunID)); err != nil {
			return fmt.Errorf("run %s is journaled, but its workflow could not be started (%w): rollout resume %s starts it", s.RunID, err, s.RunID)
		}
		return nil
	}
	var evs []rings.Event
	for _, ev := range append([]rings.Event{first}, more...) {
		// run.resumed says a process drives the run again: the workflow never stopped, and
		// folding it while work is under way would take that work's outcome for unknown.
		if ev.Type != rings.RunResumed || s.Phase != rings.PhaseRunning && s.Phase != rings.PhaseAborting {
			ev.V, ev.RunID, ev.At = rings.EventVersion, s.RunID, f.now()
			evs = append(evs, ev)
		}
	}
	if len(evs) > 0 {
		if err := f.writer.Append(ctx, evs...); err != nil {
			return err
		}
	}
	for _, ev := range evs {
		observe(ev)
	}
	f.nudge(ctx, s.RunID)
	return nil
}

// follow shows the run's journal as the workflow writes it, until the run is settled.
func (f *Fleet) follow(ctx context.Context, s *rings.State, observe func(rings.Event)) error {
	t := time.NewTicker(pollEvery() / 4)
	defer t.Stop()
	for !Settled(s.Phase) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped following run %s; it goes on in Temporal (rollout status %s)", s.RunID, s.RunID)
		case <-t.C:
		}
		evs, err := f.reader.EventsAfter(ctx, s.RunID, s.Seen)
		if err != nil {
			continue // the journal will answer again; the run goes on without us
		}
		for _, ev := range evs {
			rings.Decide(s, ev)
			observe(ev)
		}
	}
	return nil
}

// nudge tells the run's workflow that an act was journaled for it (best effort: the workflow
// reads its inbox at its next poll anyway).
func (f *Fleet) nudge(ctx context.Context, runID string) {
	if !f.OnTemporal() {
		return
	}
	cl, err := f.temporalClient(ctx)
	if err == nil {
		err = temporal.Nudge(ctx, cl, f.cfg.Temporal.TaskQueuePrefix, runID)
	}
	if err != nil {
		f.notef("warning: could not signal run %s's workflow (%v); it reads the journal at its next poll", runID, err)
	}
}

// runWorkflow is a run's workflow as its driver, and what it waits on (nil: it does not run).
func (f *Fleet) runWorkflow(ctx context.Context, cl client.Client, runID string) (*journal.Holder, temporal.Progress, error) {
	prefix := f.cfg.Temporal.TaskQueuePrefix
	p, ok, err := temporal.Query(ctx, cl, prefix, runID)
	if err != nil || !ok {
		return nil, p, err
	}
	return &journal.Holder{Name: "temporal workflow " + temporal.WorkflowID(prefix, runID), Host: f.Cluster().Address, Doing: string(p.Phase)}, p, nil
}

// temporalDriver says, for a report, whether the run's workflow runs, and which task queues its
// work waits on with no worker polling them.
func (f *Fleet) temporalDriver(ctx context.Context, rep *Report) error {
	cl, err := f.temporalClient(ctx)
	if err != nil {
		return err
	}
	h, p, err := f.runWorkflow(ctx, cl, rep.Run)
	if err != nil || h == nil {
		rep.WaitingFor, rep.ExitCode = "driver", ExitForPhase(rep.Phase, false)
		return err
	}
	rep.Driver, rep.ExitCode = &DriverReport{Name: h.Name, Host: h.Host, Doing: h.Doing}, ExitForPhase(rep.Phase, true)
	rep.WaitingForWorkers, err = temporal.Unserved(ctx, cl, slices.Sorted(maps.Keys(p.Waiting)))
	return err
}

// Worker serves the fleet's engine on Temporal: the task queues of the given boundaries (their
// Terraform, gates and drift checks, with this process's identity there) and, with journal, the
// workflow and the journal's activities. Each boundary's identity is proven first: a boundary
// this process has no identity for is an error before anything is polled.
func (f *Fleet) Worker(ctx context.Context, boundaries []string, journal bool) error {
	if !f.OnTemporal() {
		return fmt.Errorf("%s: engine is %s; workers serve a fleet with engine: temporal", f.cfg.File, f.cfg.Engine)
	}
	if len(boundaries) == 0 && !journal {
		return errors.New("give --boundary B (one or more) and/or --journal")
	}
	for _, b := range boundaries {
		if err := f.proveBoundary(ctx, b); err != nil {
			return err
		}
	}
	cl, err := f.temporalClient(ctx)
	if err != nil {
		return err
	}
	serves := map[string]bool{}
	for _, b := range boundaries {
		serves[b] = true
	}
	acts := &temporal.Activities{Fleet: &workerFleet{f: f, serves: serves, xs: map[string]*rings.Executor{}}, Boundaries: serves, Journal: journal}
	prefix := f.cfg.Temporal.TaskQueuePrefix
	for _, b := range boundaries {
		f.notef("worker: boundary %s on task queue %s", b, temporal.BoundaryQueue(prefix, b))
	}
	if journal {
		f.notef("worker: the workflow and the journal on task queue %s", temporal.JournalQueue(prefix))
	}
	return temporal.NewWorkers(cl, prefix, acts, boundaries).Run(ctx)
}

// proveBoundary checks that this process has the boundary's identity (its variables and files,
// then the cloud's own answer, in the region of its first target), as a run's preflight does.
func (f *Fleet) proveBoundary(ctx context.Context, boundary string) error {
	if f.cfg.Boundaries[boundary] == nil {
		return fmt.Errorf("%s: no boundary %q (boundaries: %v)", f.cfg.File, boundary, slices.Sorted(maps.Keys(f.cfg.Boundaries)))
	}
	if err := f.clouds.CheckEnvironment([]string{boundary}); err != nil {
		return envErr(fmt.Errorf("boundary %s: %w", boundary, err))
	}
	if _, err := f.clouds.Preflight(ctx, boundary, ""); err != nil {
		return envErr(fmt.Errorf("boundary %s: preflight refused: %w", boundary, err))
	}
	return nil
}

// workerFleet is the fleet as a worker's activities see it.
type workerFleet struct {
	f      *Fleet
	serves map[string]bool
	mu     sync.Mutex
	xs     map[string]*rings.Executor // by run: the newest keptExecutors runs'
	order  []string                   // the runs of xs, oldest first
}

// keptExecutors is how many runs' executors a worker keeps (a long-lived worker sees thousands of
// runs; an older run's work, rare, makes its executor again, its outputs read from Terraform).
const keptExecutors = 8

func (w *workerFleet) Events(ctx context.Context, runID string, after int64) ([]rings.Event, error) {
	return w.f.reader.EventsAfter(ctx, runID, after)
}

// AppendOnce journals evs unless an earlier try did (temporal.Written).
func (w *workerFleet) AppendOnce(ctx context.Context, runID string, after int64, evs []rings.Event) ([]int64, error) {
	have, err := w.f.reader.EventsAfter(ctx, runID, after)
	if err != nil {
		return nil, err
	}
	if seqs, ok := temporal.Written(have, evs); ok {
		return seqs, nil
	}
	if err := w.f.writer.Append(ctx, evs...); err != nil {
		return nil, err
	}
	seqs := make([]int64, len(evs))
	for i, ev := range evs {
		seqs[i] = ev.Seq
	}
	return seqs, nil
}

func (w *workerFleet) Mask(evs []rings.Event) { mask(w.f.redact, evs) }

func (w *workerFleet) Inbox(ctx context.Context, runID string, after int64, sw *rings.Switch) ([]rings.Event, error) {
	return w.f.inbox(runID)(ctx, &rings.State{Switch: sw}, after)
}

// Executor is this worker's executor of a run, made once: the run's plan from the journal, this
// machine checked for what the run needs in the boundaries it serves.
func (w *workerFleet) Executor(ctx context.Context, runID string) (*rings.Executor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if x := w.xs[runID]; x != nil {
		return x, nil
	}
	s, _, err := w.f.Replay(ctx, runID)
	if err != nil {
		return nil, err
	}
	if err := w.f.ready(ctx, s.Plan, w.serves); err != nil {
		return nil, permanent{err}
	}
	x := w.f.executor(s, s.Plan, nil)
	x.Store, x.Inbox = nil, nil // a worker journals nothing itself: the workflow does
	w.xs[runID], w.order = x, append(w.order, runID)
	if len(w.order) > keptExecutors {
		delete(w.xs, w.order[0])
		w.order = w.order[1:]
	}
	return x, nil
}

// permanent is an error no retry mends (an error of this machine's environment).
type permanent struct{ error }

func (permanent) Permanent() bool { return true }

func (p permanent) Unwrap() error { return p.error }

// driveOnTemporal makes sure the run's workflow runs (it may never have started, if the process
// that journaled the run's start died first) and tells it to read its journal.
func (f *Fleet) driveOnTemporal(ctx context.Context, runID string) (string, error) {
	cl, err := f.temporalClient(ctx)
	if err != nil {
		return "", err
	}
	prefix := f.cfg.Temporal.TaskQueuePrefix
	if _, err := temporal.Start(ctx, cl, prefix, f.runInput(runID)); err != nil {
		return "", fmt.Errorf("start the run's workflow: %w", err)
	}
	f.nudge(ctx, runID)
	return "temporal workflow " + temporal.WorkflowID(prefix, runID), nil
}

// workflowDriver is the workflow of the fleet's unfinished run, as a driver (nil: no run is
// unfinished, or its workflow does not run).
func (f *Fleet) workflowDriver(ctx context.Context) (*journal.Holder, error) {
	s, err := f.unfinishedRun(ctx)
	if err != nil || s == nil {
		return nil, err
	}
	cl, err := f.temporalClient(ctx)
	if err != nil {
		return nil, err
	}
	h, _, err := f.runWorkflow(ctx, cl, s.RunID)
	return h, err
}

package runs

import (
	"context"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// Metrics is the fleet as a live-site team's dashboards see it, read from the journal (so it is
// right whichever process drives the runs): every run's phase, and of the newest run its targets,
// how long their plans and applies took, its gate verdicts, retries and circuit breakers, and the
// age of an approval it waits for.
type Metrics struct {
	Runs    map[rings.Phase]int // every run, by phase
	Run     string              // the newest run ("": none)
	Targets []TargetMetric      // the newest run's targets
	// Durations of the newest run's Terraform work, by boundary: plan (applying to planned) and
	// apply (planned to applied or rolled back), in seconds.
	PlanSeconds, ApplySeconds map[string][]float64
	Gates                     map[GateVerdict]int // the newest run's last measurement of each gate on each target
	Retries                   map[string]int      // the newest run's retried Terraform runs, by boundary
	BreakerOpen               map[string]bool     // the newest run's boundaries whose breaker is open now
	// OldestApproval is how long the newest run's oldest ring that waits for an approval has
	// waited (0: none waits).
	OldestApproval time.Duration
}

// TargetMetric is one target of the newest run.
type TargetMetric struct {
	Ring, Target, Boundary string
	Phase                  rings.TargetPhase
}

// GateVerdict names a count of measurements: a gate and whether it passed.
type GateVerdict struct {
	Gate   string
	Passed bool
}

// metricsCache keeps the newest run's metrics for the run's last event number: a scrape of a
// run that did not move reads no event.
type metricsCache struct {
	mu    sync.Mutex
	run   string
	seq   int64
	m     Metrics
	asked map[string]time.Time
	rep   *Report
}

// Metrics reads the fleet's metrics as of now.
func (f *Fleet) Metrics(ctx context.Context, now time.Time) (*Metrics, error) {
	lines, err := f.History(ctx)
	if err != nil || len(lines) == 0 {
		return &Metrics{Runs: map[rings.Phase]int{}}, err
	}
	seq, err := f.reader.LastSeq(ctx, lines[0].Run)
	if err != nil {
		return nil, err
	}
	c := &f.metrics
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run != lines[0].Run || c.seq != seq {
		if err := f.newestRunMetrics(ctx, lines[0].Run); err != nil {
			return nil, err
		}
		c.run, c.seq = lines[0].Run, seq
	}
	m := c.m // the newest run's, shared: read-only from here
	m.Runs, m.OldestApproval = map[rings.Phase]int{}, 0
	for _, l := range lines {
		m.Runs[l.Phase]++
	}
	for ring, at := range c.asked {
		if c.rep.Phase == rings.PhaseWaiting && ringPhase(c.rep, ring) == rings.RApproval && now.Sub(at) > m.OldestApproval {
			m.OldestApproval = now.Sub(at)
		}
	}
	return &m, nil
}

// newestRunMetrics reads the newest run's report and events into the cache (its lock held).
func (f *Fleet) newestRunMetrics(ctx context.Context, run string) error {
	m := Metrics{Run: run, PlanSeconds: map[string][]float64{}, ApplySeconds: map[string][]float64{},
		Gates: map[GateVerdict]int{}, Retries: map[string]int{}, BreakerOpen: map[string]bool{}}
	rep, _, err := f.Report(ctx, run, NeedAll)
	if err != nil {
		return err
	}
	boundaryOf := map[string]string{}
	for _, r := range rep.Rings {
		for _, t := range r.Targets {
			boundaryOf[t.Name] = t.Boundary
			m.Targets = append(m.Targets, TargetMetric{Ring: r.Name, Target: t.Name, Boundary: t.Boundary, Phase: t.Phase})
			for _, g := range t.Gates {
				m.Gates[GateVerdict{g.Gate, g.Passed}]++
			}
		}
		for _, b := range r.Boundaries {
			m.BreakerOpen[b.Boundary] = b.Halted && !b.Resumed
		}
	}
	asked, err := f.durations(ctx, &m, boundaryOf)
	if err != nil {
		return err
	}
	f.metrics.m, f.metrics.asked, f.metrics.rep = m, asked, rep
	return nil
}

func ringPhase(rep *Report, ring string) rings.RingPhase {
	for _, r := range rep.Rings {
		if r.Name == ring {
			return r.Phase
		}
	}
	return ""
}

// durations reads the newest run's plan and apply times and retries from its events, and returns
// when each ring last asked for an approval it has not had.
func (f *Fleet) durations(ctx context.Context, m *Metrics, boundaryOf map[string]string) (map[string]time.Time, error) {
	began, planned, asked := map[string]time.Time{}, map[string]time.Time{}, map[string]time.Time{}
	err := f.reader.RunEvents(ctx, m.Run, func(ev rings.Event) error {
		b := boundaryOf[ev.Target]
		switch ev.Type {
		case rings.RingApprovalNeeded: // whether it still waits, the report's ring phase says
			asked[ev.Ring] = ev.At
		case rings.TargetApplying, rings.TargetRollingBack:
			began[ev.Target] = ev.At
			delete(planned, ev.Target)
		case rings.TargetPlanned:
			if t, ok := began[ev.Target]; ok {
				m.PlanSeconds[b] = append(m.PlanSeconds[b], ev.At.Sub(t).Seconds())
				planned[ev.Target] = ev.At
			}
		case rings.TargetApplied, rings.TargetRolledBack:
			if t, ok := planned[ev.Target]; ok {
				m.ApplySeconds[b] = append(m.ApplySeconds[b], ev.At.Sub(t).Seconds())
			}
		case rings.TargetRetrying:
			m.Retries[b]++
		}
		return nil
	})
	return asked, err
}

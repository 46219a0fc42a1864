package healthgate

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/healthgate/measure"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Runner evaluates a fleet's configured gates for the engine.
type Runner struct {
	Config    *config.Config
	Client    *http.Client      // http gates; nil: one that keeps idle connections per gate (gateClient)
	Transport http.RoundTripper // metric providers' API clients; nil: their default
	Endpoints Endpoints         // rate limit and circuit breaker per monitoring endpoint
	Clouds    *clouds.Manager   // boundary credentials and endpoints for cloud metric providers
	// GoogleOptions are added to Cloud Monitoring clients (tests: a loopback TLS server's trust).
	GoogleOptions GRPCOptions

	gcp monitoringClients
}

var _ rings.GateRunner = (*Runner)(nil)

// TemplateData is what gate templates see: {{ .Target.Name }}, {{ .Outputs.endpoint }}, ...
type TemplateData struct {
	Target  TargetData
	Release rings.ReleaseRef
	Ring    struct{ Name string }
	Outputs map[string]any

	baseline map[string][]string // the request's baseline (compare gates)
}

// TargetData is the target as gate templates see it (.Target).
type TargetData struct {
	Name, Boundary, Region string
	Labels                 map[string]string
}

func (r *Runner) data(req rings.GateRequest) TemplateData {
	d := TemplateData{Release: req.Release, Outputs: req.Outputs, baseline: req.Baseline}
	d.Ring.Name = req.Ring
	if t := r.Config.Target(req.Target); t != nil {
		d.Target = TargetData{Name: t.Name, Boundary: t.Boundary, Region: t.Region, Labels: t.Labels}
	}
	if d.Outputs == nil {
		d.Outputs = map[string]any{}
	}
	return d
}

func render(text string, d TemplateData) (string, error) { return config.Render("gate", text, d) }

func policy(g *config.Gate) Policy {
	return Policy{Interval: g.Interval.D(), Timeout: g.Timeout.D(), HealthyFor: g.HealthyFor.D(),
		Consecutive: g.Consecutive, Count: g.Count, FailureLimit: g.FailureLimit, InconclusiveLimit: g.InconclusiveLimit,
		ConsecutiveErrorLimit: g.ConsecutiveErrorLimit, NoData: map[string]Outcome{config.NoDataFail: Failed,
			config.NoDataInconclusive: Inconclusive, config.NoDataPass: OK}[g.NoData]}
}

func takeMeasurement(ctx context.Context, p measure.Provider, problem string, interval time.Duration) Measurement {
	if p == nil {
		return Measurement{At: time.Now(), Outcome: Failed, Message: problem}
	}
	mctx, cancel := context.WithTimeout(ctx, max(interval, 10*time.Second))
	defer cancel()
	m := p.Measure(mctx)
	if m.At.IsZero() {
		m.At = time.Now()
	}
	if m.Outcome == "" {
		m.Outcome = Failed
	}
	return m
}

// judge turns one gate's measurements into a verdict: a Tracker (target gates) or a Window
// (ring gates across a bake).
type judge interface {
	Observe(Measurement) (Decision, string)
	Next(now time.Time) time.Time
}

// evaluate measures one gate on the judge's schedule until the judge decides or ctx ends. A dry
// run gate measures and records as any other, and then passes whatever it found.
func (r *Runner) evaluate(ctx context.Context, g *config.Gate, d TemplateData, j judge, observe func(rings.Measurement)) rings.Verdict {
	p, problem := r.provider(g, d)
	for {
		m := takeMeasurement(ctx, p, problem, g.Interval.D())
		if ctx.Err() != nil {
			return rings.Verdict{Gate: g.Name, Message: "cancelled"}
		}
		m.Gate, m.DryRun = g.Name, g.DryRun
		observe(m)
		v, why := j.Observe(m)
		if v != Pending && g.DryRun {
			return rings.Verdict{Decision: Pass, Gate: g.Name, Message: fmt.Sprintf("dry run: would have been %s: %s", v, why)}
		}
		switch v {
		case Pass:
			return rings.Verdict{Decision: Pass, Gate: g.Name, Message: why}
		case Fail:
			return rings.Verdict{Decision: Fail, Gate: g.Name, Message: why}
		case Undecided:
			return rings.Verdict{Decision: Undecided, Gate: g.Name, Message: why}
		}
		if !sleepUntil(ctx, j.Next(time.Now())) {
			return rings.Verdict{Gate: g.Name, Message: "cancelled"}
		}
	}
}

// Target implements rings.GateRunner: every gate runs concurrently; the first failure decides.
func (r *Runner) Target(ctx context.Context, req rings.GateRequest, observe func(rings.Measurement)) rings.Verdict {
	return r.all(ctx, req, func(ctx context.Context, g *config.Gate, d TemplateData) rings.Verdict {
		if !sleepUntil(ctx, time.Now().Add(g.InitialDelay.D())) {
			return rings.Verdict{Gate: g.Name, Message: "cancelled"}
		}
		return r.evaluate(ctx, g, d, NewTracker(policy(g), time.Now()), observe)
	})
}

// Ring implements rings.GateRunner: ring gates are measured across the bake until until.
func (r *Runner) Ring(ctx context.Context, req rings.GateRequest, until time.Time, observe func(rings.Measurement)) rings.Verdict {
	if len(req.Gates) == 0 {
		if !sleepUntil(ctx, until) {
			return rings.Verdict{Message: "cancelled"}
		}
		return rings.Verdict{Decision: Pass}
	}
	return r.all(ctx, req, func(ctx context.Context, g *config.Gate, d TemplateData) rings.Verdict {
		if !sleepUntil(ctx, time.Now().Add(g.InitialDelay.D())) {
			return rings.Verdict{Gate: g.Name, Message: "cancelled"}
		}
		return r.evaluate(ctx, g, d, NewWindow(policy(g), time.Now(), until), observe)
	})
}

func (r *Runner) all(ctx context.Context, req rings.GateRequest, one func(context.Context, *config.Gate, TemplateData) rings.Verdict) rings.Verdict {
	if len(req.Gates) == 0 {
		return rings.Verdict{Decision: Pass, Message: "no gates"}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := r.data(req)
	verdicts := make(chan rings.Verdict, len(req.Gates))
	var wg sync.WaitGroup
	for _, name := range req.Gates {
		g := r.Config.Gates[name]
		if g == nil {
			return rings.Verdict{Decision: Fail, Gate: name, Message: "gate is not configured"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			verdicts <- one(ctx, g, d)
		}()
	}
	var failed, undecided *rings.Verdict
	var passed []string
	for range req.Gates {
		v := <-verdicts
		switch {
		case v.Decision == Pass:
			passed = append(passed, v.Gate+": "+v.Message)
		case v.Decision == Undecided:
			if undecided == nil {
				undecided = &v // the others go on: a failure among them still decides
			}
		case failed == nil:
			failed = &v
			cancel() // the first failure decides; stop the others
		}
	}
	wg.Wait()
	if failed != nil {
		return *failed
	}
	if undecided != nil {
		return *undecided
	}
	sort.Strings(passed)
	return rings.Verdict{Decision: Pass, Message: strings.Join(passed, "; ")}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

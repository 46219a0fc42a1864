// Package telemetry exports a run as OpenTelemetry traces over OTLP/HTTP, built from the events
// the run journals: a span per run, per ring, per target operation (apply, rollback; an event
// on it when Terraform's plan was done), per Terraform command the operation ran (init, plan,
// apply, show, force-unlock: Command, told by the provisioner as each ends), and per gate
// measurement, with the fleet, run, release, ring, target, boundary, region, phase and
// failure class as attributes. It respects sovereign boundaries: a boundary may name its own
// collector, and the spans of its targets go there only; the targets of a sovereign boundary
// without one are not exported at all, so nothing of them reaches the commercial collector.
// Nothing is exported when nothing is configured.
package telemetry

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/rollout-dev/rollout/internal/rings"
)

// Boundary is where a boundary's target spans go.
type Boundary struct {
	Endpoint  string // its own collector (OTLP/HTTP base URL); "" for none
	Sovereign bool   // without its own collector, its targets' spans are not exported
	Region    map[string]string
}

// Config says where spans go.
type Config struct {
	Fleet    string
	Endpoint string // the fleet's collector (OTLP/HTTP base URL); "" with UseEnv: OTEL_EXPORTER_OTLP_*
	// UseEnv: the standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables name the fleet's collector.
	UseEnv     bool
	Boundaries map[string]Boundary
	// TargetBoundary and TargetRegion name each target's boundary and region.
	TargetBoundary, TargetRegion map[string]string
}

// Tracer turns journaled events into spans.
type Tracer struct {
	cfg       Config
	fleet     trace.Tracer // nil: the fleet's spans are not exported
	providers []*sdktrace.TracerProvider
	bound     map[string]trace.Tracer // by boundary with its own collector
	mu        sync.Mutex
	runSpan   trace.Span
	runCtx    context.Context
	ringCtx   map[string]context.Context
	ringSpans map[string]trace.Span
	ops       map[string]trace.Span // a target's operation under way
	opCtx     map[string]context.Context
}

// New sets up the exporters (none connect before a span is exported); nil when nothing is
// configured.
func New(ctx context.Context, cfg Config) (*Tracer, error) {
	t := &Tracer{cfg: cfg, bound: map[string]trace.Tracer{}, ringCtx: map[string]context.Context{},
		ringSpans: map[string]trace.Span{}, ops: map[string]trace.Span{}, opCtx: map[string]context.Context{}}
	if cfg.Endpoint != "" || cfg.UseEnv {
		tr, err := t.provider(ctx, cfg.Endpoint, "")
		if err != nil {
			return nil, err
		}
		t.fleet = tr
	}
	for name, b := range cfg.Boundaries {
		if b.Endpoint == "" {
			continue
		}
		tr, err := t.provider(ctx, b.Endpoint, name)
		if err != nil {
			return nil, err
		}
		t.bound[name] = tr
	}
	if t.fleet == nil && len(t.bound) == 0 {
		return nil, nil
	}
	return t, nil
}

func (t *Tracer) provider(ctx context.Context, endpoint, boundary string) (trace.Tracer, error) {
	var opts []otlptracehttp.Option
	if endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, err
	}
	attrs := []attribute.KeyValue{semconv.ServiceName("rollout"), attribute.String("rollout.fleet", t.cfg.Fleet)}
	if boundary != "" {
		attrs = append(attrs, attribute.String("rollout.boundary", boundary))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)))
	t.providers = append(t.providers, tp)
	return tp.Tracer("rollout"), nil
}

// forTarget is the tracer of a target's spans (nil: they are not exported).
func (t *Tracer) forTarget(target string) trace.Tracer {
	b := t.cfg.TargetBoundary[target]
	if tr := t.bound[b]; tr != nil {
		return tr
	}
	if t.cfg.Boundaries[b].Sovereign {
		return nil
	}
	return t.fleet
}

// Shutdown exports what is buffered, until ctx ends.
func (t *Tracer) Shutdown(ctx context.Context) {
	if t == nil {
		return
	}
	for _, tp := range t.providers {
		_ = tp.Shutdown(ctx)
	}
}

// Event turns one journaled event into the spans it starts or ends.
func (t *Tracer) Event(ev rings.Event) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev.Type {
	case rings.RunStarted, rings.RunResumed:
		t.startRun(ev)
	case rings.RingStarted:
		t.startRing(ev)
	case rings.RingPassed, rings.RingHalted:
		if s := t.ringSpans[ev.Ring]; s != nil {
			s.SetAttributes(attribute.String("rollout.phase", string(ev.Type)))
			s.End(trace.WithTimestamp(ev.At))
			delete(t.ringSpans, ev.Ring)
		}
	case rings.TargetApplying, rings.TargetRollingBack:
		t.startOp(ev)
	case rings.TargetPlanned:
		if s := t.ops[ev.Target]; s != nil {
			s.AddEvent("planned", trace.WithTimestamp(ev.At))
		}
	case rings.TargetApplied, rings.TargetApplyFailed, rings.TargetRolledBack, rings.TargetRollbackFailed:
		t.endOp(ev)
	case rings.GateMeasured:
		t.measurement(ev)
	case rings.RunFinished:
		t.endRun(ev)
	}
}

func (t *Tracer) runAttrs(ev rings.Event) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.String("rollout.fleet", t.cfg.Fleet), attribute.String("rollout.run", ev.RunID)}
	if ev.Plan != nil {
		attrs = append(attrs, attribute.String("rollout.release", ev.Plan.Release.Name))
	}
	return attrs
}

func (t *Tracer) startRun(ev rings.Event) {
	if t.runSpan != nil || t.fleet == nil && len(t.bound) == 0 {
		return
	}
	tr := t.fleet
	if tr == nil { // only boundaries export: the run's span is theirs to parent to, never exported
		tr = noop.NewTracerProvider().Tracer("rollout")
	}
	t.runCtx, t.runSpan = tr.Start(context.Background(), "run "+ev.RunID, trace.WithTimestamp(ev.At), trace.WithAttributes(t.runAttrs(ev)...))
}

func (t *Tracer) startRing(ev rings.Event) {
	if t.runSpan == nil {
		return
	}
	tr := t.fleet
	if tr == nil {
		tr = noop.NewTracerProvider().Tracer("rollout")
	}
	ctx, s := tr.Start(t.runCtx, "ring "+ev.Ring, trace.WithTimestamp(ev.At),
		trace.WithAttributes(attribute.String("rollout.run", ev.RunID), attribute.String("rollout.ring", ev.Ring)))
	t.ringCtx[ev.Ring], t.ringSpans[ev.Ring] = ctx, s
}

func (t *Tracer) targetAttrs(ev rings.Event) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.String("rollout.fleet", t.cfg.Fleet), attribute.String("rollout.run", ev.RunID),
		attribute.String("rollout.ring", ev.Ring), attribute.String("rollout.target", ev.Target),
		attribute.String("rollout.boundary", t.cfg.TargetBoundary[ev.Target]), attribute.String("rollout.region", t.cfg.TargetRegion[ev.Target])}
	if ev.Release != nil {
		attrs = append(attrs, attribute.String("rollout.release", ev.Release.Name))
	}
	return attrs
}

func (t *Tracer) startOp(ev rings.Event) {
	tr := t.forTarget(ev.Target)
	if tr == nil {
		return
	}
	parent := t.ringCtx[ev.Ring]
	if parent == nil {
		parent = t.runCtx
	}
	if parent == nil {
		parent = context.Background()
	}
	name := "apply " + ev.Target
	if ev.Type == rings.TargetRollingBack {
		name = "rollback " + ev.Target
	}
	ctx, s := tr.Start(parent, name, trace.WithTimestamp(ev.At), trace.WithAttributes(t.targetAttrs(ev)...))
	t.ops[ev.Target], t.opCtx[ev.Target] = s, ctx
}

// Command records one Terraform command that a target's operation ran, as a child span of the
// operation from start to end (its error's text is not exported: it may name what is secret).
func (t *Tracer) Command(target, command string, start, end time.Time, err error) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, parent := t.forTarget(target), t.opCtx[target]
	if tr == nil || parent == nil {
		return
	}
	_, s := tr.Start(parent, "terraform "+command, trace.WithTimestamp(start), trace.WithAttributes(
		attribute.String("rollout.target", target), attribute.String("rollout.boundary", t.cfg.TargetBoundary[target]),
		attribute.String("rollout.terraform.command", command)))
	if err != nil {
		s.SetStatus(codes.Error, "terraform "+command+" failed")
	}
	s.End(trace.WithTimestamp(end))
}

func (t *Tracer) endOp(ev rings.Event) {
	s := t.ops[ev.Target]
	if s == nil {
		return
	}
	if ev.ApplyMode != "" {
		s.SetAttributes(attribute.String("rollout.apply_mode", ev.ApplyMode))
	}
	s.SetAttributes(attribute.String("rollout.phase", string(ev.Type)))
	if ev.Type == rings.TargetApplyFailed || ev.Type == rings.TargetRollbackFailed {
		s.SetAttributes(attribute.String("rollout.failure_class", string(ev.Class)))
		s.SetStatus(codes.Error, ev.Message)
	}
	s.End(trace.WithTimestamp(ev.At))
	delete(t.ops, ev.Target)
}

func (t *Tracer) measurement(ev rings.Event) {
	tr := t.forTarget(ev.Target)
	if tr == nil || ev.Target == "" {
		return
	}
	parent := t.opCtx[ev.Target]
	if parent == nil {
		parent = t.ringCtx[ev.Ring]
	}
	if parent == nil {
		parent = context.Background()
	}
	_, s := tr.Start(parent, "gate "+ev.Gate, trace.WithTimestamp(ev.At), trace.WithAttributes(append(t.targetAttrs(ev),
		attribute.String("rollout.gate", ev.Gate), attribute.String("rollout.measured", string(ev.Measured)))...))
	s.End(trace.WithTimestamp(ev.At))
}

func (t *Tracer) endRun(ev rings.Event) {
	for ring, s := range t.ringSpans {
		s.End(trace.WithTimestamp(ev.At))
		delete(t.ringSpans, ring)
	}
	if t.runSpan != nil {
		t.runSpan.SetAttributes(attribute.String("rollout.phase", string(ev.Phase)))
		t.runSpan.End(trace.WithTimestamp(ev.At))
		t.runSpan = nil
	}
}

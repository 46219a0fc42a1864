package runs

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/telemetry"
)

// startTracer sets up the fleet's traces (telemetry: in rollout.yaml, boundaries.B.telemetry,
// or the standard OTEL_EXPORTER_OTLP_* variables) for a process that drives runs: every event
// it journals becomes spans. Nothing is set up when nothing is configured.
func (f *Fleet) startTracer(ctx context.Context) error {
	cfg := telemetry.Config{Fleet: filepath.Base(f.cfg.Root), Boundaries: map[string]telemetry.Boundary{},
		TargetBoundary: map[string]string{}, TargetRegion: map[string]string{}}
	if f.cfg.Telemetry != nil {
		cfg.Endpoint = f.cfg.Telemetry.Endpoint
	} else {
		cfg.UseEnv = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	}
	for name, b := range f.cfg.Boundaries {
		tb := telemetry.Boundary{Sovereign: catalog.All.Sovereign(b)}
		if b.Telemetry != nil {
			tb.Endpoint = b.Telemetry.Endpoint
		}
		cfg.Boundaries[name] = tb
	}
	for _, t := range f.cfg.Targets {
		cfg.TargetBoundary[t.Name], cfg.TargetRegion[t.Name] = t.Boundary, t.Region
	}
	tr, err := telemetry.New(ctx, cfg)
	if err != nil || tr == nil {
		return err
	}
	f.tracer = tr
	f.observe(tr.Event)
	if f.prov != nil {
		f.prov.OnCommand = tr.Command
	}
	return nil
}

// observe hands every event this process journals to fn, after it is journaled.
func (f *Fleet) observe(fn func(rings.Event)) {
	w := f.writer.(redactingStore)
	w.observers = append(w.observers, fn)
	f.writer = w
}

// stopTracer exports what is buffered, for at most 5 s.
func (f *Fleet) stopTracer() {
	if f.tracer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.tracer.Shutdown(ctx)
}

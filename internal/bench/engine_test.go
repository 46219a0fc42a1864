// Package bench holds benchmarks that need several packages at once: the engine driven through
// the real executor and SQLite journal, without Terraform.
package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/bench/noop"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

type instantGates struct{}

func (instantGates) Target(context.Context, rings.GateRequest, func(rings.Measurement)) rings.Verdict {
	return rings.Verdict{Decision: rings.Pass}
}
func (instantGates) Ring(context.Context, rings.GateRequest, time.Time, func(rings.Measurement)) rings.Verdict {
	return rings.Verdict{Decision: rings.Pass}
}

func plan(n, ringsN, parallel int) *rings.Plan {
	rel, prev := rings.ReleaseRef{Name: "v2", Digest: "d2"}, rings.ReleaseRef{Name: "v1", Digest: "d1"}
	p := &rings.Plan{Kind: rings.KindRelease, Release: rel}
	for r := 0; r < ringsN; r++ {
		rp := rings.RingPlan{Name: fmt.Sprintf("ring-%d", r), MaxParallel: parallel, Rollback: "ring", Gates: []string{"g"}}
		for i := r * n / ringsN; i < (r+1)*n/ringsN; i++ {
			rp.Targets = append(rp.Targets, rings.TargetPlan{Name: fmt.Sprintf("t-%05d", i), Boundary: fmt.Sprintf("b%d", i%3), Release: rel, From: &prev})
		}
		p.Rings = append(p.Rings, rp)
	}
	return p
}

// runEngine drives one run of n targets to the end and returns the journal's event count.
func runEngine(b *testing.B, n int) (int, *journal.DB) {
	store, err := journal.OpenSQLite(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := store.CreateRun(ctx, journal.Run{ID: "r", Kind: rings.KindRelease, Created: time.Now()}); err != nil {
		b.Fatal(err)
	}
	x := &rings.Executor{Store: store, Provisioner: noop.Provisioner{}, Gates: instantGates{}, GlobalLimit: 64}
	s := &rings.State{RunID: "r"}
	if err := x.Run(ctx, s, rings.Event{Type: rings.RunStarted, Plan: plan(n, 5, 32)}); err != nil || s.Phase != rings.PhaseSucceeded {
		b.Fatalf("run: %v, phase %s", err, s.Phase)
	}
	evs, _ := store.Events(ctx, "r")
	return len(evs), store
}

// BenchmarkEngine: targets through 5 rings (maxParallel 32) with a no-op provisioner, instant
// gates and the real SQLite journal. Reports journal events and targets per second, the peak
// heap during the run (heap-MiB, sampled every 5 ms), the time
// to replay the finished run (what `rollout status` does: read and decode the events, then fold
// them), and how many events per second the pure Decide folds (decisions/s, no I/O).
func BenchmarkEngine(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			var events int
			var replay, decide time.Duration
			var peak uint64
			for i := 0; i < b.N; i++ {
				var store *journal.DB
				b.StopTimer()
				runtime.GC() // earlier benchmarks' garbage is not this run's peak
				stop := samplePeakHeap(&peak)
				b.StartTimer()
				events, store = runEngine(b, n)
				stop()
				b.StopTimer()
				start := time.Now()
				evs, _ := store.Events(context.Background(), "r")
				decoded := time.Now()
				_ = rings.Replay(evs)
				replay, decide = time.Since(start), time.Since(decoded)
				store.Close()
				b.StartTimer()
			}
			per := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(events)/per, "events/s")
			b.ReportMetric(float64(n)/per, "targets/s")
			b.ReportMetric(float64(replay.Milliseconds()), "replay-ms")
			b.ReportMetric(float64(events)/decide.Seconds(), "decisions/s")
			b.ReportMetric(float64(peak)/(1<<20), "heap-MiB")
		})
	}
}

// samplePeakHeap records in peak the largest heap (live and not yet collected objects) seen
// every 5 ms until the returned stop is called.
func samplePeakHeap(peak *uint64) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		*peak = max(*peak, sample[0].Value.Uint64())
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-done:
				read()
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

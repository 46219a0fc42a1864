package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/testsupport/temporaltest"
)

// BenchmarkTemporalEngine: `rollout start` over n no-op targets in 5 rings across 4 boundaries,
// once with the in-process engine and once on a local Temporal server (the Temporal CLI's
// development server, SQLite) with one worker per boundary and a journal worker, in the same
// run. Reports both wall times, their ratio, and journal events per second on Temporal.
func BenchmarkTemporalEngine(b *testing.B) {
	bin := noopBinary(b)
	srv := temporaltest.Start(b)
	n := 1000
	var inproc, onTemporal measured
	var events int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		local := temporalFleet(b, n, "")
		inproc = runCmd(b, bin, local, "start", "--release", "v1", "--output", "json")
		fleet := temporalFleet(b, n, fmt.Sprintf("temporal: {address: %q, taskQueuePrefix: bench-%d}\nengine: temporal\n", srv.Addr, i))
		stop := startWorkers(b, bin, fleet, []string{"--journal"}, []string{"--boundary", "b0"}, []string{"--boundary", "b1"},
			[]string{"--boundary", "b2"}, []string{"--boundary", "b3"})
		b.StartTimer()
		onTemporal = runCmd(b, bin, fleet, "start", "--release", "v1", "--output", "json")
		b.StopTimer()
		stop()
		var rep struct{ Phase string }
		if err := json.Unmarshal(onTemporal.out, &rep); err != nil || rep.Phase != "succeeded" {
			b.Fatalf("the run on Temporal did not succeed: %q (%v)", rep.Phase, err)
		}
		events = journalEvents(b, fleet)
		b.StartTimer()
	}
	b.ReportMetric(inproc.wall.Seconds(), "inprocess-s")
	b.ReportMetric(onTemporal.wall.Seconds(), "temporal-s")
	b.ReportMetric(onTemporal.wall.Seconds()/inproc.wall.Seconds(), "ratio")
	b.ReportMetric(float64(events)/onTemporal.wall.Seconds(), "temporal-events/s")
}

// temporalFleet is commandFleet's shape over 4 boundaries, with extra at the top of rollout.yaml.
func temporalFleet(b *testing.B, n int, extra string) string {
	b.Helper()
	dir := commandFleet(b, n)
	cfg, err := os.ReadFile(filepath.Join(dir, "rollout.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	y := strings.Replace(string(cfg), "  east: {cloud: local}\n  west: {cloud: local}\n  gov: {cloud: local}\n",
		"  b0: {cloud: local}\n  b1: {cloud: local}\n  b2: {cloud: local}\n  b3: {cloud: local}\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "rollout.yaml"), []byte(extra+y), 0o644); err != nil {
		b.Fatal(err)
	}
	var t strings.Builder
	t.WriteString("targets:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&t, "  - {name: t-%05d, boundary: b%d, labels: {ring: \"%d\"}}\n", i, i%4, i*5/n)
	}
	if err := os.WriteFile(filepath.Join(dir, "environments", "all.yaml"), []byte(t.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// startWorkers starts a no-op `rollout worker` per argument list; stop ends them.
func startWorkers(b *testing.B, bin, fleet string, args ...[]string) (stop func()) {
	b.Helper()
	var cmds []*exec.Cmd
	for _, a := range args {
		cmd := exec.Command(bin, append([]string{"--config", fleet, "--tf-bin", fakeTerraform(b), "worker"}, a...)...)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	return func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
	}
}

func journalEvents(b *testing.B, fleet string) int {
	b.Helper()
	store, err := journal.OpenSQLite(filepath.Join(fleet, ".rollout", "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runs, err := store.Runs(ctx)
	if err != nil || len(runs) != 1 {
		b.Fatalf("runs: %d, %v", len(runs), err)
	}
	evs, err := store.Events(ctx, runs[0].ID)
	if err != nil {
		b.Fatal(err)
	}
	return len(evs)
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/journal"
)

// noopBinary builds rollout with the no-op provisioner (./noopcmd) once per test binary.
func noopBinary(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "rollout-noop")
	cmd := exec.Command("go", "build", "-o", bin, "./noopcmd")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build noopcmd: %v\n%s", err, out)
	}
	return bin
}

// fakeTerraform is a stand-in binary that answers every command as a Terraform of no providers
// would (the environment check before a run asks it for its version; the no-op provisioner runs
// nothing else).
func fakeTerraform(b *testing.B) string {
	b.Helper()
	p := filepath.Join(os.TempDir(), "rollout-bench-fake-tf")
	script := "#!/bin/sh\n[ \"$1\" = version ] && echo '{\"terraform_version\":\"1.10.10\",\"platform\":\"linux_amd64\"}'\nexit 0\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return p
}

// commandFleet writes a configuration of n targets in 5 rings (by label), maxParallel 32, no
// gates and no bake, with a one-file module.
func commandFleet(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "module"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "environments"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "module", "main.tf"), []byte("variable \"app_version\" { type = string }\n"), 0o644))
	var y strings.Builder
	y.WriteString("release:\n  module: module\n  vars: {app_version: \"{{ .Release.Name }}\"}\n")
	y.WriteString("boundaries:\n  east: {cloud: local}\n  west: {cloud: local}\n  gov: {cloud: local}\n")
	y.WriteString("rings:\n")
	for r := 0; r < 5; r++ {
		fmt.Fprintf(&y, "  - name: ring-%d\n    targets: {labels: {ring: \"%d\"}}\n    maxParallel: 32\n", r, r)
	}
	must(os.WriteFile(filepath.Join(dir, "rollout.yaml"), []byte(y.String()), 0o644))
	var t strings.Builder
	t.WriteString("targets:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&t, "  - {name: t-%05d, boundary: %s, labels: {ring: \"%d\"}}\n", i, []string{"east", "west", "gov"}[i%3], i*5/n)
	}
	must(os.WriteFile(filepath.Join(dir, "environments", "all.yaml"), []byte(t.String()), 0o644))
	return dir
}

type measured struct {
	wall, cpu time.Duration
	rssMiB    float64
	out       []byte
}

// runCmd runs the no-op rollout and measures its wall time, CPU time and peak resident memory.
func runCmd(b *testing.B, bin, fleet string, args ...string) measured {
	b.Helper()
	cmd := exec.Command(bin, append([]string{"--config", fleet, "--tf-bin", fakeTerraform(b), "--no-color"}, args...)...)
	// Output to files, as a pipeline redirects it: the time is rollout's, not this process's reading.
	out, err := os.CreateTemp(b.TempDir(), "out")
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("rollout %v: %v\n%s", args, err, lastLines(errb.String(), 20))
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	data, err := os.ReadFile(out.Name())
	if err != nil {
		b.Fatal(err)
	}
	return measured{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
		rssMiB: float64(ru.Maxrss) / 1024, out: data}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// BenchmarkEngineCommand: the whole `rollout start` command over n targets in 5 rings, with the
// no-op provisioner and no gates (timed: a fleet's first release), then a second release over the
// same fleet (start2-s: every target has history, its last known good is looked up), then
// `rollout status --output json` on that finished run six times (status-ms: the first; then the
// median and the slowest of the other five). Reports the first command's wall and CPU time, peak
// memory and journal events per second, the second's wall time, and the status latencies.
func BenchmarkEngineCommand(b *testing.B) {
	bin := noopBinary(b)
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			var start, again, st1, st2 measured
			var statusWalls []time.Duration
			var events int
			var page, firstScrape, metrics time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				fleet := commandFleet(b, n)
				b.StartTimer()
				start = runCmd(b, bin, fleet, "start", "--release", "v1")
				b.StopTimer()
				again = runCmd(b, bin, fleet, "start", "--release", "v2")
				st1 = runCmd(b, bin, fleet, "status", "--output", "json")
				statusWalls = statusWalls[:0]
				for range 5 {
					st2 = runCmd(b, bin, fleet, "status", "--output", "json")
					statusWalls = append(statusWalls, st2.wall)
				}
				slices.Sort(statusWalls)
				if !bytes.Equal(st1.out, st2.out) {
					b.Fatal("two status calls of the same finished run printed different reports")
				}
				var rep struct {
					Phase string
					Rings []struct{ Targets []struct{ Phase string } }
				}
				if err := json.Unmarshal(st1.out, &rep); err != nil {
					b.Fatalf("status: %v", err)
				}
				done := 0
				for _, r := range rep.Rings {
					for _, t := range r.Targets {
						if t.Phase == "verified" {
							done++
						}
					}
				}
				if rep.Phase != "succeeded" || done != n {
					b.Fatalf("run ended %q with %d of %d targets verified", rep.Phase, done, n)
				}
				store, err := journal.OpenSQLite(filepath.Join(fleet, ".rollout", "state.db"))
				if err != nil {
					b.Fatal(err)
				}
				runs, err := store.Runs(context.Background())
				if err != nil || len(runs) != 2 {
					b.Fatalf("runs: %d, %v", len(runs), err)
				}
				evs, err := store.Events(context.Background(), runs[1].ID) // newest first: v1's
				store.Close()
				if err != nil {
					b.Fatal(err)
				}
				events = len(evs)
				page, firstScrape, metrics = serveTimes(b, bin, fleet)
				b.StartTimer()
			}
			b.ReportMetric(start.wall.Seconds(), "start-s")
			b.ReportMetric(start.cpu.Seconds(), "start-cpu-s")
			b.ReportMetric(start.rssMiB, "start-rss-MiB")
			b.ReportMetric(again.wall.Seconds(), "start2-s")
			b.ReportMetric(float64(events)/start.wall.Seconds(), "events/s")
			b.ReportMetric(float64(st1.wall.Milliseconds()), "status-ms")
			b.ReportMetric(float64(statusWalls[2].Milliseconds()), "status-median-ms")
			b.ReportMetric(float64(statusWalls[4].Milliseconds()), "status-max-ms")
			b.ReportMetric(st1.rssMiB, "status-rss-MiB")
			b.ReportMetric(float64(page.Milliseconds()), "serve-page-ms")
			b.ReportMetric(float64(firstScrape.Milliseconds()), "serve-metrics-first-ms")
			b.ReportMetric(float64(metrics.Milliseconds()), "serve-metrics-median-ms")
		})
	}
}

// serveTimes runs `rollout serve` on the fleet's finished run and times the dashboard's first
// page (the first request: the run's report is read from the journal then), the first scrape of
// /metrics (which reads the run's events) and the median of five scrapes.
func serveTimes(b *testing.B, bin, fleet string) (time.Duration, time.Duration, time.Duration) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config", fleet, "serve", "--listen", addr)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	get := func(path string) time.Duration {
		start := time.Now()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return -1
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s", path, resp.Status)
		}
		return time.Since(start)
	}
	for deadline := time.Now().Add(30 * time.Second); get("/healthz") < 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("rollout serve did not answer")
		}
	}
	time.Sleep(2 * time.Second) // serve reads the metrics once when it starts; a scrape comes later
	page := get("/")
	var ms []time.Duration
	for range 5 {
		ms = append(ms, get("/metrics"))
	}
	first := ms[0]
	slices.Sort(ms)
	return page, first, ms[2]
}

package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/healthgate"
	"github.com/rollout-dev/rollout/internal/rings"
)

// BenchmarkGateScheduling: 1,000 target gates at once against a local HTTP endpoint, interval
// 1 s, each passing after 4 measurements. Reports measurements per second and how late each
// measurement started against its schedule (start + k x interval): p50 and p99 in ms, and the
// CPU spent per measurement (this process: the runner and the endpoint).
func BenchmarkGateScheduling(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) }))
	defer srv.Close()
	const n = 1000
	interval := time.Second
	cfg := &config.Config{Gates: map[string]*config.Gate{"h": {Name: "h",
		HTTP:     &config.HTTPCheck{URL: srv.URL + "/{{ .Target.Name }}", ExpectStatus: 200, JSONPath: "status", Expect: "ok"},
		Interval: config.Duration(interval), Timeout: config.Duration(time.Minute), HealthyFor: config.Duration(3 * interval), Consecutive: 4, FailureLimit: 1}}}
	runner := &healthgate.Runner{Config: cfg}
	for i := 0; i < b.N; i++ {
		var mu sync.Mutex
		var delays []time.Duration
		measurements := 0
		var wg sync.WaitGroup
		runtime.GC() // garbage of earlier benchmarks in this process is not collected in the middle
		cpu0 := cpuTime()
		start := time.Now()
		for t := 0; t < n; t++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var first time.Time
				k := 0
				v := runner.Target(context.Background(), rings.GateRequest{Target: "t", Gates: []string{"h"}}, func(m rings.Measurement) {
					if k == 0 {
						first = m.At
					}
					d := m.At.Sub(first.Add(time.Duration(k) * interval))
					k++
					mu.Lock()
					measurements++
					if d > 0 && k > 1 {
						delays = append(delays, d)
					}
					mu.Unlock()
				})
				if !v.Passed() {
					b.Error(v.Message)
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		slices.Sort(delays)
		if len(delays) > 0 {
			b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "p50-delay-ms")
			b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds())/1000, "p99-delay-ms")
		}
		b.ReportMetric(float64(measurements)/took.Seconds(), "measurements/s")
		// CPU of this process (the runner and the local endpoint both) per measurement.
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(measurements), "cpu-us/measurement")
	}
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

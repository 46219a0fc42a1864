// Package web is rollout's HTTP front end (`rollout serve`): Prometheus metrics and a dashboard
// (the newest run as a ring by boundary matrix, its event log live over server-sent events), all
// read from the journal, so they are right for runs driven by any process. It only reads; it
// holds no cloud credential.
package web

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rollout-dev/rollout/internal/runs"
)

// Source is what the front end reads: the run service's metrics.
type Source interface {
	Metrics(ctx context.Context, now time.Time) (*runs.Metrics, error)
}

// Server serves the fleet's metrics and, when Fleet is a Journal, its dashboard.
type Server struct {
	Fleet Source
	Now   func() time.Time // nil: the wall clock
	Poll  time.Duration    // how often a live event log reads the journal (0: 500 ms)
	// Tokens or OIDC, when not nil, let people who log in act from the page (see auth.go, acts.go);
	// Drive lets serve hand a run that nothing drives to a background resume after an act.
	Tokens Tokens
	OIDC   *OIDC
	Drive  bool
	// PublicMetrics keeps /metrics readable without a login when one is configured (for a
	// Prometheus that scrapes serve); everything else then needs a login.
	PublicMetrics bool
	// Secure marks the session cookie Secure: serve is reached over https (--public-url).
	Secure bool
	// MaxStreams and MaxStreamsPerClient cap the live event logs served at once, in all and to one
	// client address (0: 256 and 8); more are answered 429.
	MaxStreams, MaxStreamsPerClient int
	sessions                        sessions
	streams                         streams
}

// Handler is the front end's routes: /metrics, /healthz, and the dashboard (/, /matrix, /events).
func (s *Server) Handler() http.Handler {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&collector{s: s})
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
	if !s.PublicMetrics {
		metrics = s.loggedIn(metrics)
	}
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if _, ok := s.Fleet.(Journal); ok {
		mux.Handle("GET /{$}", s.loggedIn(s.dashboard(false)))
		mux.Handle("GET /matrix", s.loggedIn(s.dashboard(true)))
		mux.Handle("GET /fleet", s.loggedIn(http.HandlerFunc(s.fleet)))
		mux.Handle("GET /events", s.loggedIn(http.HandlerFunc(s.events)))
		mux.Handle("GET /history", s.loggedIn(http.HandlerFunc(s.history)))
		mux.HandleFunc("GET /dashboard.js", script)
		mux.HandleFunc("/login", s.login)
		mux.HandleFunc("POST /logout", s.logout)
		mux.HandleFunc("GET /login/callback", s.callback)
		for name := range acts {
			mux.HandleFunc("POST /"+name, s.handleAct(name))
		}
		for name := range handedActs {
			mux.HandleFunc("POST /"+name, s.handleAct(name))
		}
	}
	return headers(mux)
}

// headers sets what every answer carries: no framing by another site, no inline script, no
// sniffing of types.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// loggedIn serves next only to a logged-in person when serve has a login; a page asks to log in,
// anything else is refused.
func (s *Server) loggedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authenticated() && s.session(r) == nil {
			if r.URL.Path == "/" {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first (/login)", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Warm reads the metrics and the fleet view once, so that the first scrape and the first page
// find them read (both are kept while the journal does not move).
func (s *Server) Warm(ctx context.Context) {
	_, _ = s.Fleet.Metrics(ctx, s.now())
	if j, ok := s.Fleet.(Journal); ok {
		_, _ = j.FleetView(ctx)
	}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

var (
	descRuns      = prometheus.NewDesc("rollout_runs", "Runs in the journal, by phase.", []string{"phase"}, nil)
	descTargets   = prometheus.NewDesc("rollout_targets", "Targets of the newest run, by ring, boundary and phase.", []string{"run", "ring", "boundary", "phase"}, nil)
	descPlan      = prometheus.NewDesc("rollout_plan_duration_seconds", "Plans of the newest run (applying to planned), by boundary.", []string{"boundary"}, nil)
	descApply     = prometheus.NewDesc("rollout_apply_duration_seconds", "Applies of the newest run (planned to applied), by boundary.", []string{"boundary"}, nil)
	descGates     = prometheus.NewDesc("rollout_gate_verdicts", "The newest run's last measurement of each gate on each target, by gate and verdict.", []string{"gate", "verdict"}, nil)
	descRetries   = prometheus.NewDesc("rollout_retries", "Terraform runs of the newest run tried again, by boundary.", []string{"boundary"}, nil)
	descBreaker   = prometheus.NewDesc("rollout_breaker_open", "1 when the newest run's circuit breaker of a boundary is open.", []string{"boundary"}, nil)
	descApproval  = prometheus.NewDesc("rollout_oldest_approval_wait_seconds", "How long the newest run's oldest ring waiting for an approval has waited (0: none waits).", nil, nil)
	descRelease   = prometheus.NewDesc("rollout_target_release_info", "1 for the release each deployed target runs, across all runs, with its ring and boundary.", []string{"target", "ring", "boundary", "release"}, nil)
	descAge       = prometheus.NewDesc("rollout_target_release_age_seconds", "How long each deployed target has run its release.", []string{"target", "ring", "boundary"}, nil)
	descFlagged   = prometheus.NewDesc("rollout_target_flagged", "1 for each target an operator should look at, by flag: failedElsewhere (runs a release a run rolled back), newerPending, neverDeployed.", []string{"target", "ring", "boundary", "flag"}, nil)
	durationEdges = []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
)

// collector reads the journal at each scrape.
type collector struct{ s *Server }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRuns, descTargets, descPlan, descApply, descGates, descRetries, descBreaker, descApproval, descRelease, descAge, descFlagged} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.s.Fleet.Metrics(ctx, c.s.now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descRuns, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for phase, n := range m.Runs {
		gauge(descRuns, float64(n), string(phase))
	}
	counts := map[[3]string]int{}
	for _, t := range m.Targets {
		counts[[3]string{t.Ring, t.Boundary, string(t.Phase)}]++
	}
	for k, n := range counts {
		gauge(descTargets, float64(n), m.Run, k[0], k[1], k[2])
	}
	histograms(ch, descPlan, m.PlanSeconds)
	histograms(ch, descApply, m.ApplySeconds)
	for g, n := range m.Gates {
		verdict := "fail"
		if g.Passed {
			verdict = "pass"
		}
		gauge(descGates, float64(n), g.Gate, verdict)
	}
	for b, n := range m.Retries {
		gauge(descRetries, float64(n), b)
	}
	for b, open := range m.BreakerOpen {
		v := 0.0
		if open {
			v = 1
		}
		gauge(descBreaker, v, b)
	}
	gauge(descApproval, m.OldestApproval.Seconds())
	if j, ok := c.s.Fleet.(Journal); ok {
		c.fleet(ctx, ch, j)
	}
}

// fleet sends the per-target series: which release each target runs across all runs, for how
// long, and its flags.
func (c *collector) fleet(ctx context.Context, ch chan<- prometheus.Metric, j Journal) {
	view, err := j.FleetView(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descRelease, err)
		return
	}
	now := c.s.now()
	for _, t := range view {
		for _, flag := range t.Flags {
			ch <- prometheus.MustNewConstMetric(descFlagged, prometheus.GaugeValue, 1, t.Target, t.Ring, t.Boundary, flag)
		}
		if t.Release == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descRelease, prometheus.GaugeValue, 1, t.Target, t.Ring, t.Boundary, t.Release.Name)
		if t.Since != nil {
			ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, now.Sub(*t.Since).Seconds(), t.Target, t.Ring, t.Boundary)
		}
	}
}

// histograms sends one histogram per boundary of its observed seconds.
func histograms(ch chan<- prometheus.Metric, d *prometheus.Desc, by map[string][]float64) {
	for b, seen := range by {
		xs := append([]float64(nil), seen...) // the run service's, shared between scrapes
		sort.Float64s(xs)
		buckets := map[float64]uint64{}
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		for _, edge := range durationEdges {
			buckets[edge] = uint64(sort.SearchFloat64s(xs, edge+1e-9))
		}
		ch <- prometheus.MustNewConstHistogram(d, uint64(len(xs)), sum, buckets, b)
	}
}

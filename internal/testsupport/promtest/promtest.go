// Package promtest runs a real Prometheus server on loopback (Debian's prometheus binary) that
// scrapes an exporter the test controls, so a test can make a target healthy, unhealthy or silent
// and see it through PromQL exactly as a gate would.
package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Exporter serves metrics in the Prometheus text format; the test sets them.
type Exporter struct {
	*httptest.Server
	mu     sync.Mutex
	values map[string]float64 // "name{labels}" -> value
	silent bool
}

func NewExporter(t testing.TB) *Exporter {
	e := &Exporter{values: map[string]float64{}}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if e.silent {
			return // up, but exposing nothing: queries over its series find no data
		}
		keys := make([]string, 0, len(e.values))
		for k := range e.values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s %g\n", k, e.values[k])
		}
	}))
	t.Cleanup(e.Close)
	return e
}

// Set exposes series (e.g. `app_error_ratio{target="canary-1"}`) with value.
func (e *Exporter) Set(series string, value float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.values[series] = value
	e.silent = false
}

// Silence stops exposing every series (the scrape still succeeds).
func (e *Exporter) Silence() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.silent = true
}

// Server is a running Prometheus.
type Server struct {
	URL string
}

// Binary is the prometheus binary, or "" (then Start skips the test, or fails it when
// ROLLOUT_REQUIRE_PROMETHEUS=1, as make test sets).
func Binary(t testing.TB) string {
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("ROLLOUT_REQUIRE_PROMETHEUS") == "1" {
			t.Fatal("prometheus is not installed (make test installs Debian's package: scripts/need-prometheus.sh)")
		}
		t.Skip("prometheus is not installed (make test installs it)")
	}
	return p
}

// Start runs Prometheus scraping the exporter every 500ms as job "app", and returns once the
// exporter has been scraped.
func Start(t testing.TB, e *Exporter) *Server {
	t.Helper()
	return Scrape(t, strings.TrimPrefix(e.URL, "http://"), "app")
}

// Scrape runs Prometheus scraping target (host:port, path /metrics) every 500ms as job, and
// returns once the target has been scraped.
func Scrape(t testing.TB, target, job string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 500ms
  evaluation_interval: 500ms
scrape_configs:
  - job_name: %q
    scrape_interval: 500ms
    static_configs:
      - targets: [%q]
`, job, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--storage.tsdb.retention.time=1h", "--query.lookback-delta=2s")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	s := &Server{URL: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, err := s.instant(fmt.Sprintf(`up{job=%q}`, job)); err == nil && v == "1" {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus did not scrape %s within 30s; its log:\n%s", target, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// instant runs a query and returns the first sample's value as text.
func (s *Server) instant(q string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.Data.Result) == 0 {
		return "", fmt.Errorf("no result: %s", body)
	}
	v, _ := out.Data.Result[0].Value[1].(string)
	return v, nil
}

// WaitFor waits until the query's first sample has the value (as Prometheus prints it), so a test
// knows a change at the exporter has been scraped.
func (s *Server) WaitFor(t testing.TB, q, value string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := s.instant(q)
		if err == nil && v == value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become %s within 20s (last %q, %v)", q, value, v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitForNoData waits until the query returns no sample.
func (s *Server) WaitForNoData(t testing.TB, q string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := s.instant(q); err != nil && strings.Contains(err.Error(), "no result") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still has data after 20s", q)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

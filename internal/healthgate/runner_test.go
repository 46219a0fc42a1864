package healthgate

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/healthgate/command"
	httpgate "github.com/rollout-dev/rollout/internal/healthgate/http"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

func runnerFor(gates ...*config.Gate) *Runner {
	c := &config.Config{Gates: map[string]*config.Gate{}, Targets: []*config.Target{{Name: "t1", Boundary: "b", Region: "r"}}}
	for _, g := range gates {
		c.Gates[g.Name] = g
	}
	return &Runner{Config: c}
}

func fast(g *config.Gate) *config.Gate {
	g.Interval, g.Timeout, g.Consecutive, g.FailureLimit = config.Duration(10*time.Millisecond), config.Duration(5*time.Second), 1, 1
	return g
}

func TestRunnerRendersTemplatesAndRecordsMeasurements(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
	}))
	defer srv.Close()
	r := runnerFor(fast(&config.Gate{Name: "h", HTTP: &config.HTTPCheck{URL: "{{ .Outputs.endpoint }}/{{ .Target.Name }}/{{ .Release.Name }}", ExpectStatus: 200}}))
	var seen []rings.Measurement
	v := r.Target(context.Background(), rings.GateRequest{Target: "t1", Release: rings.ReleaseRef{Name: "v7"},
		Outputs: map[string]any{"endpoint": srv.URL}, Gates: []string{"h"}}, func(m rings.Measurement) { seen = append(seen, m) })
	if !v.Passed() || len(seen) != 1 || paths[0] != "/t1/v7" || !strings.HasPrefix(v.Message, "h: healthy for") {
		t.Fatalf("verdict %+v, measurements %+v, paths %v", v, seen, paths)
	}
}

func TestRunnerMissingOutputIsNoDataAndFails(t *testing.T) {
	r := runnerFor(fast(&config.Gate{Name: "h", HTTP: &config.HTTPCheck{URL: "{{ .Outputs.endpoint }}/healthz"}}))
	v := r.Target(context.Background(), rings.GateRequest{Target: "t1", Gates: []string{"h"}}, func(rings.Measurement) {})
	if v.Passed() || v.Gate != "h" || !strings.Contains(v.Message, "no data") || !strings.Contains(v.Message, "endpoint") {
		t.Fatalf("verdict %+v, want a failure naming the missing output", v)
	}
}

func TestRunnerFirstFailureDecides(t *testing.T) {
	slow := fast(&config.Gate{Name: "slow", Command: &config.CommandCheck{Run: []string{"true"}}})
	slow.Consecutive = 1000 // would take 10s to pass
	bad := fast(&config.Gate{Name: "bad", Command: &config.CommandCheck{Run: []string{"sh", "-c", "echo $ROLLOUT_TARGET; exit 1"}}})
	start := time.Now()
	v := runnerFor(slow, bad).Target(context.Background(), rings.GateRequest{Target: "t1", Gates: []string{"slow", "bad"}}, func(rings.Measurement) {})
	if v.Passed() || v.Gate != "bad" || !strings.Contains(v.Message, "t1") {
		t.Fatalf("verdict %+v", v)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("the failing gate did not stop the other one (%s)", time.Since(start))
	}
}

func TestRunnerRingGatesHoldThroughTheBake(t *testing.T) {
	g := fast(&config.Gate{Name: "ok", Command: &config.CommandCheck{Run: []string{"true"}}})
	until := time.Now().Add(150 * time.Millisecond)
	n := 0
	v := runnerFor(g).Ring(context.Background(), rings.GateRequest{Ring: "r", Gates: []string{"ok"}}, until, func(rings.Measurement) { n++ })
	if !v.Passed() || time.Now().Before(until) || n < 3 {
		t.Fatalf("verdict %+v after %d measurements, ended %s before the bake", v, n, time.Until(until))
	}
	// No ring gates: the bake is only a wait, and a cancelled wait is not a pass.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v := runnerFor().Ring(ctx, rings.GateRequest{}, time.Now().Add(time.Hour), nil); v.Passed() {
		t.Fatal("a cancelled bake passed")
	}
}

func TestInitialDelayWaitsBeforeTheFirstMeasurement(t *testing.T) {
	c, _ := config.CompileCondition(`result == "up"`, false)
	g := &config.Gate{Name: "out", TerraformOutput: &config.OutputCheck{Output: "state"}, Success: c, SuccessCondition: `result == "up"`,
		InitialDelay: config.Duration(300 * time.Millisecond), Interval: config.Duration(10 * time.Millisecond), Timeout: config.Duration(5 * time.Second), NoData: config.NoDataFail}
	r := &Runner{Config: &config.Config{Gates: map[string]*config.Gate{"out": g}, Targets: []*config.Target{{Name: "t"}}}}
	begin := time.Now()
	var first time.Time
	v := r.Target(context.Background(), rings.GateRequest{Target: "t", Gates: []string{"out"}, Outputs: map[string]any{"state": "up"}},
		func(m rings.Measurement) {
			if first.IsZero() {
				first = m.At
			}
		})
	if !v.Passed() || first.Sub(begin) < 300*time.Millisecond {
		t.Fatalf("%+v: first measurement after %s, want at least the initial delay of 300ms", v, first.Sub(begin))
	}
}

// A label or an output that holds shell syntax reaches a command gate's script as an argument and
// is never run: before, `tier: "prod; touch PWNED #"` ran touch.
func TestCommandGateValuesAreDataNotCode(t *testing.T) {
	dir := t.TempDir()
	pwned := filepath.Join(dir, "PWNED")
	hostile := "prod; touch " + pwned + " #"
	for _, run := range [][]string{
		{"sh", "-c", `echo checking {{ index .Target.Labels "tier" }} "{{ .Outputs.endpoint }}"`},
		{"sh", "-c", `test "{{ .Outputs.endpoint }}" = "$(printf '%s' '$(touch ` + pwned + `)')"`},
		{"echo", "{{ .Outputs.endpoint }}"},
	} {
		args, err := commandArgs(&config.CommandCheck{Run: run}, TemplateData{
			Target:  TargetData{Name: "t", Labels: map[string]string{"tier": hostile}},
			Outputs: map[string]any{"endpoint": "$(touch " + pwned + ")"},
		})
		if err != nil {
			t.Fatal(err)
		}
		c := &command.Command{Args: args, Dir: dir}
		m := c.Measure(context.Background())
		if _, err := os.Stat(pwned); err == nil {
			t.Fatalf("%v ran data as code (args %q, %s)", run, args, m.Message)
		}
		if run[0] == "sh" && strings.Contains(run[2], "checking") && !strings.Contains(m.Message, "checking prod; touch") {
			t.Errorf("the value did not arrive as it is: %s", m.Message)
		}
	}
}

// An http gate's URL credentials and query values never reach its messages; a token can come from
// the environment as a header instead; a redirect to another host is not followed (its own answer
// is judged), unless the gate allows any.
func TestHTTPGateSecretsAndRedirects(t *testing.T) {
	var gotAuth string
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	defer healthy.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		if r.URL.Path == "/elsewhere" {
			http.Redirect(w, r, healthy.URL+"/ok", http.StatusFound)
			return
		}
		w.WriteHeader(503)
	}))
	defer srv.Close()
	withCreds := strings.Replace(srv.URL, "http://", "http://admin:PASS-1234@", 1) + "/health?token=TOK-5678"
	m := (&httpgate.HTTP{URL: withCreds}).Measure(context.Background())
	if strings.Contains(m.Message, "PASS-1234") || strings.Contains(m.Message, "TOK-5678") || !strings.Contains(m.Message, "HTTP 503") {
		t.Fatalf("message: %s", m.Message)
	}
	t.Setenv("HEALTH_TOKEN", "tok-from-env")
	h, err := headers(map[string]config.HeaderValue{"Authorization": {Env: "HEALTH_TOKEN", Prefix: "Bearer "}})
	if err != nil {
		t.Fatal(err)
	}
	(&httpgate.HTTP{URL: srv.URL, Header: h}).Measure(context.Background())
	if gotAuth != "Bearer tok-from-env" {
		t.Fatalf("Authorization sent: %q", gotAuth)
	}
	if m := (&httpgate.HTTP{URL: srv.URL + "/elsewhere", Redirects: "same-host"}).Measure(context.Background()); m.Outcome == OK || !strings.Contains(m.Message, "HTTP 302") {
		t.Fatalf("a redirect to another host was followed: %s", m.Message)
	}
	if m := (&httpgate.HTTP{URL: srv.URL + "/elsewhere", Redirects: "any"}).Measure(context.Background()); m.Outcome != OK {
		t.Fatalf("redirects: any: %s", m.Message)
	}
}

// A command gate sees its target boundary's environment, as Terraform does, and nothing else of
// rollout's: a gate of a gov target read the commercial boundary's secret and PGPASSWORD.
func TestACommandGateSeesOnlyItsBoundarysEnvironment(t *testing.T) {
	c := &config.Config{Root: t.TempDir(), Boundaries: map[string]*config.Boundary{
		"com": {Name: "com", Cloud: "local", PassEnv: []string{"COM_SECRET"}},
		"gov": {Name: "gov", Cloud: "local", PassEnv: []string{"GOV_SECRET"}},
	}, Targets: []*config.Target{{Name: "g1", Boundary: "gov"}, {Name: "c1", Boundary: "com"}}}
	env := map[string]string{"PATH": os.Getenv("PATH"), "COM_SECRET": "com-key", "GOV_SECRET": "gov-key", "PGPASSWORD": "journal-pw"}
	r := &Runner{Config: c, Clouds: &clouds.Manager{Catalog: catalog.All, Config: c, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}}
	g := &config.Gate{Command: &config.CommandCheck{Run: []string{"sh", "-c", "env"}}}
	p, problem := r.build(g, TemplateData{Target: TargetData{Name: "g1", Boundary: "gov"}})
	if p == nil {
		t.Fatal(problem)
	}
	m := p.Measure(context.Background())
	if !strings.Contains(m.Message, "GOV_SECRET=gov-key") || !strings.Contains(m.Message, "ROLLOUT_TARGET=g1") {
		t.Fatalf("the gate lacks its own boundary's environment: %s", m.Message)
	}
	for _, leak := range []string{"com-key", "journal-pw"} {
		if strings.Contains(m.Message, leak) {
			t.Fatalf("the gov gate saw %s: %s", leak, m.Message)
		}
	}
}

// A cancelled command gate ends its whole process group: sh's children too.
func TestACancelledCommandGateLeavesNoChild(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	c := &command.Command{Args: []string{"sh", "-c", "sleep 60 & echo $! > " + pidFile + "; wait"}, Dir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Measure(ctx); close(done) }()
	var pid int
	for deadline := time.Now().Add(10 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		fmt.Sscan(string(b), &pid)
	}
	cancel()
	<-done
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	t.Fatalf("the gate's child %d still runs after cancel", pid)
}

// A gate's credentials go only to hosts its configuration names: a URL whose host came from an
// output (a target's vars flowed through one) got the Authorization header.
func TestGateCredentialsGoOnlyToNamedHosts(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = append(got, r.Header.Get("Authorization")) }))
	defer srv.Close()
	t.Setenv("GATE_TOKEN", "s3cret")
	c := &config.Config{Root: t.TempDir()}
	r := &Runner{Config: c}
	gate := func(allow ...string) *config.Gate {
		return &config.Gate{HTTP: &config.HTTPCheck{URL: "{{ .Outputs.endpoint }}/healthz", ExpectStatus: 200, AllowHosts: allow,
			Headers: map[string]config.HeaderValue{"Authorization": {Env: "GATE_TOKEN", Prefix: "Bearer "}}}}
	}
	d := TemplateData{Outputs: map[string]any{"endpoint": srv.URL}}
	if p, problem := r.build(gate(), d); p != nil || !strings.Contains(problem, `host "127.0.0.1" comes from data and is not in its allowHosts`) {
		t.Fatalf("a data-chosen host without allowHosts: %v %q", p, problem)
	}
	if p, problem := r.build(gate("10.*", "*.example.com"), d); p != nil || problem == "" {
		t.Fatalf("a data-chosen host outside allowHosts: %q", problem)
	}
	p, problem := r.build(gate("127.0.0.1"), d)
	if p == nil {
		t.Fatal(problem)
	}
	p.Measure(context.Background())
	if len(got) != 1 || got[0] != "Bearer s3cret" {
		t.Fatalf("an allowed host got %q", got)
	}
	// A host the configuration writes out needs no allowHosts.
	fixed := gate()
	fixed.HTTP.URL = srv.URL + "/{{ .Target.Name }}"
	if p, problem := r.build(fixed, d); p == nil {
		t.Fatalf("a configured host: %q", problem)
	}
}

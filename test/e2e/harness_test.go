//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/demo"
)

var rolloutBin string

func TestMain(m *testing.M) {
	for _, k := range []string{"ROLLOUT_TF_BIN", "TF_CLI_CONFIG_FILE"} {
		if os.Getenv(k) == "" {
			fmt.Printf("e2e: %s is not set (make test-e2e sets it from .tools/)\n", k)
			os.Exit(1)
		}
	}
	dir, err := os.MkdirTemp("", "rollout-e2e-bin-")
	if err != nil {
		panic(err)
	}
	rolloutBin = filepath.Join(dir, "rollout")
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", rolloutBin, "../../cmd/rollout")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("e2e: build rollout:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fleet is a temporary fleet directory with the stamp module, served by a stand-in application.
type fleet struct {
	t        *testing.T
	dir      string
	deployed string
	url      string
	env      []string // added to every rollout command's environment
	tfstate  string   // where the targets' Terraform state files are (default: .rollout/tfstate)
	// state reads a target's Terraform state where its backend keeps it (nil: local state files
	// under tfstate); ok is false when there is none.
	state func(target string) (data []byte, ok bool)
}

type fleetSpec struct {
	rings   string // YAML of the rings list
	targets string // YAML of environments/test.yaml
	gates   string // YAML of the gates mapping (default: healthz over HTTP)
	// boundaries is YAML of the boundaries mapping (default: local-a, and local-b with
	// maxParallel 2).
	boundaries string
}

const defaultGates = `
  healthz:
    http: {url: "{{ .Outputs.endpoint }}/healthz", jsonPath: status, expect: ok}
    interval: 100ms
    healthyFor: 200ms
    timeout: 20s
    failureLimit: 2
`

func newFleet(t *testing.T, spec fleetSpec) *fleet {
	t.Helper()
	dir := t.TempDir()
	f := &fleet{t: t, dir: dir, deployed: filepath.Join(dir, "deployed")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: demo.App{Dir: f.deployed}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f.url = "http://" + ln.Addr().String()
	if err := os.CopyFS(filepath.Join(dir, "terraform", "stamp"), os.DirFS("../../terraform/stamp")); err != nil {
		t.Fatal(err)
	}
	if spec.gates == "" {
		spec.gates = defaultGates
	}
	if spec.boundaries == "" {
		spec.boundaries = "\n  local-a: {cloud: local}\n  local-b: {cloud: local, maxParallel: 2}"
	}
	cfg := fmt.Sprintf(`release:
  module: terraform/stamp
  vars:
    app_version: "{{ .Release.Name }}"
    target: "{{ .Target.Name }}"
    tier: '{{ index .Target.Labels "tier" }}'
    deploy_dir: %q
    service_url: %q
defaults:
  maxParallel: 4
  lockTimeout: 2m
boundaries:%s
gates:%s
rings:
%s`, f.deployed, f.url, spec.boundaries, spec.gates, spec.rings)
	f.write("rollout.yaml", cfg)
	f.write("environments/test.yaml", spec.targets)
	t.Cleanup(func() {
		if !t.Failed() {
			f.checkTruth()
		}
	})
	return f
}

// workingCopy is another checkout of the same fleet (configuration and module, no .rollout/), as
// a second pipeline agent or an operator's laptop would have; it shares f's stand-in application.
func (f *fleet) workingCopy() *fleet {
	f.t.Helper()
	dir := f.t.TempDir()
	for _, p := range []string{"rollout.yaml", "environments", "terraform"} {
		src := filepath.Join(f.dir, p)
		if st, err := os.Stat(src); err == nil && st.IsDir() {
			if err := os.CopyFS(filepath.Join(dir, p), os.DirFS(src)); err != nil {
				f.t.Fatal(err)
			}
		} else if b, err := os.ReadFile(src); err == nil {
			if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	return &fleet{t: f.t, dir: dir, deployed: f.deployed, url: f.url, env: f.env, tfstate: f.tfstate, state: f.state}
}

func (f *fleet) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func (f *fleet) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, rolloutBin, append([]string{"--config", f.dir}, args...)...)
	// A running run reads operators' acts every 200 ms (default 1 s), so that a pause or a freeze
	// lands well inside a test's slow apply.
	cmd.Env = append(append(os.Environ(), "ROLLOUT_LEASE_TTL=3s", "ROLLOUT_POLL_INTERVAL=200ms"), f.env...)
	return cmd
}

// run runs rollout to the end.
func (f *fleet) run(args ...string) result {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := f.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			f.t.Fatalf("rollout %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// must runs rollout and fails the test unless it exits with want.
func (f *fleet) must(want int, args ...string) result {
	f.t.Helper()
	r := f.run(args...)
	if r.code != want {
		f.t.Fatalf("rollout %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, lastLines(r.stderr, 60))
	}
	return r
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// report is the part of `--output json` the tests read.
type report struct {
	Run      string   `json:"run"`
	Kind     string   `json:"kind"`
	Phase    string   `json:"phase"`
	Reason   string   `json:"reason"`
	ExitCode int      `json:"exitCode"`
	Waiting  string   `json:"waitingFor"`
	Workers  []string `json:"waitingForWorkers"`
	Driver   *struct {
		PID int `json:"pid"`
	} `json:"driver"`
	Rings []struct {
		Name    string `json:"name"`
		Phase   string `json:"phase"`
		Targets []struct {
			Name    string `json:"name"`
			Phase   string `json:"phase"`
			Release *struct {
				Name string `json:"name"`
			} `json:"release"`
			Gates []struct {
				Gate   string `json:"gate"`
				Passed bool   `json:"passed"`
			} `json:"gates"`
			Components []struct {
				Name    string `json:"name"`
				State   string `json:"state"`
				Release string `json:"release"`
			} `json:"components"`
		} `json:"targets"`
	} `json:"rings"`
}

func (f *fleet) status(args ...string) report {
	f.t.Helper()
	r := f.run(append([]string{"status", "--output", "json"}, args...)...)
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		f.t.Fatalf("status --output json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return rep
}

// targets of a report, by name: phase and release.
func (rep report) targets() map[string][2]string {
	out := map[string][2]string{}
	for _, r := range rep.Rings {
		for _, t := range r.Targets {
			rel := ""
			if t.Release != nil {
				rel = t.Release.Name
			}
			out[t.Name] = [2]string{t.Phase, rel}
		}
	}
	return out
}

// deployedVersion is what the stamp module last deployed on target.
func (f *fleet) deployedVersion(target string) string {
	d, err := demo.Read(f.deployed, target)
	if err != nil {
		return ""
	}
	return d.Version
}

// events reads the run's journal through `rollout status`' source: the SQLite file, via the CLI.
func (f *fleet) waitFor(what string, timeout time.Duration, cond func(report) bool) report {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := f.run("status", "--output", "json")
		var rep report
		if json.Unmarshal([]byte(r.stdout), &rep) == nil && cond(rep) {
			return rep
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out after %s waiting for %s; last status:\n%s\n%s", timeout, what, r.stdout, r.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func targetsYAML(prefix, boundary, tier string, n int, extra string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - name: %s-%d\n    boundary: %s\n    region: r1\n    labels: {tier: %s}\n%s", prefix, i, boundary, tier, extra)
	}
	return b.String()
}

// field is one member of a --output json document (nil when it is not JSON or has no such member).
func field(doc, key string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(doc), &m) != nil {
		return nil
	}
	return m[key]
}

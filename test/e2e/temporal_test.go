//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testsupport/ststest"
	"github.com/rollout-dev/rollout/internal/testsupport/temporaltest"
)

// worker starts `rollout worker` in the background with env added to the fleet's, and returns it
// (stopped at the test's end).
func (f *fleet) worker(env []string, args ...string) *exec.Cmd {
	f.t.Helper()
	cmd := f.command(context.Background(), append([]string{"worker"}, args...)...)
	cmd.Env = append(cmd.Env, env...)
	log, err := os.Create(filepath.Join(f.t.TempDir(), "worker.log"))
	if err != nil {
		f.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if f.t.Failed() {
			b, _ := os.ReadFile(log.Name())
			f.t.Logf("rollout worker %v:\n%s", args, lastLines(string(b), 40))
		}
	})
	return cmd
}

// workerModule is a root module whose apply records, for the test, where its Terraform ran: the
// environment (out_dir/<target>.env) and the pids of Terraform's ancestors
// (out_dir/<target>.worker), after an optional pause read from out_dir/<target>.slow (and a
// marker, out_dir/<target>.started, that it began).
const workerModule = `
variable "app_version" { type = string }
variable "target" { type = string }
variable "out_dir" { type = string }
resource "terraform_data" "env" {
  triggers_replace = [var.app_version]
  provisioner "local-exec" {
    command = <<-EOT
      d='${var.out_dir}'; t='${var.target}'
      if [ '${var.app_version}' = leak ]; then echo "denied: $(echo KEY)=$AWS_SECRET_ACCESS_KEY"; exit 1; fi
      p=$PPID; : > "$d/$t.worker.new"
      while [ "$p" -gt 1 ]; do echo "$p" >> "$d/$t.worker.new"; p=$(awk '{print $4}' /proc/$p/stat); done
      echo "$PPID" > "$d/$t.started"
      sleep "$(cat "$d/$t.slow" 2>/dev/null || echo 0)"
      env > "$d/$t.env"
      mv "$d/$t.worker.new" "$d/$t.worker"
    EOT
  }
}
output "version" { value = var.app_version }
`

// TestTemporalWorkersPerBoundary drives runs through the engine on a real Temporal server, with a
// worker inside each of two boundaries holding only that boundary's (fake) credentials, and a
// journal worker and a starter holding none. Each target's Terraform must run on its boundary's
// worker and see its boundary's keys only; a worker started for a boundary it has no identity
// for refuses to start; a worker killed mid-apply (and the starter with it) is replaced and the
// run finishes, no apply overlapping another; a failed gate rolls back through the workers; and
// status and history say what Terraform deployed.
func TestTemporalWorkersPerBoundary(t *testing.T) {
	t.Parallel()
	srv := temporaltest.Start(t)
	addr := srv.Addr
	sts := ststest.New(t)
	sts.Set("AKIACOMMERCIAL0001", "arn:aws:iam::111111111111:user/deployer")
	sts.Set("AKIAGOVCLOUD000001", "arn:aws-us-gov:iam::222222222222:user/deployer")
	dir := t.TempDir()
	out := filepath.Join(dir, "seen")
	chaos := filepath.Join(dir, "chaos")
	for _, d := range []string{out, chaos} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := &fleet{t: t, dir: dir}
	f.write("terraform/where/main.tf", workerModule)
	f.write("rollout.yaml", fmt.Sprintf(`engine: temporal
temporal: {address: %q, namespace: default, taskQueuePrefix: e2e-fleet}
release:
  module: terraform/where
  vars: {app_version: "{{ .Release.Name }}", target: "{{ .Target.Name }}", out_dir: %q}
defaults:
  passEnv: [TFCHAOS_REAL, TFCHAOS_DIR]
boundaries:
  aws:
    cloud: aws
    partition: aws
    identity: {accessKeyIdEnv: COM_KEY, secretAccessKeyEnv: COM_SECRET, accountId: "111111111111"}
    endpoints: {sts: %q}
  aws-us-gov:
    cloud: aws
    partition: aws-us-gov
    identity: {accessKeyIdEnv: GOV_KEY, secretAccessKeyEnv: GOV_SECRET, accountId: "222222222222"}
    endpoints: {sts: %q}
gates:
  version:
    terraform-output: {output: version}
    successCondition: result != "bad"
    interval: 100ms
    failureLimit: 1
    timeout: 20s
rings:
  - name: commercial
    targets: {boundaries: [aws]}
    gates: [version]
  - name: sovereign
    targets: {boundaries: [aws-us-gov]}
    gates: [version]
    approval: {required: true}
`, addr, out, sts.URL, sts.URL))
	var targets strings.Builder // local state where the truth check reads it
	for _, tg := range [][3]string{{"use1", "aws", "us-east-1"}, {"gov-w1", "aws-us-gov", "us-gov-west-1"}, {"gov-w2", "aws-us-gov", "us-gov-west-1"}} {
		fmt.Fprintf(&targets, "  - {name: %s, boundary: %s, region: %s, backend: {type: local, config: {path: %q}}}\n",
			tg[0], tg[1], tg[2], filepath.Join(dir, ".rollout", "tfstate", tg[0]+".tfstate"))
	}
	f.write("environments/aws.yaml", "targets:\n"+targets.String())
	const comSecret, govSecret = "planted-COM-secret-0b7e21", "planted-GOV-secret-5f3a9c"
	com := []string{"COM_KEY=AKIACOMMERCIAL0001", "COM_SECRET=" + comSecret}
	gov := []string{"GOV_KEY=AKIAGOVCLOUD000001", "GOV_SECRET=" + govSecret}
	// Terraform behind tfchaos (no faults): it records any apply of a target that overlaps another.
	f.env = []string{"ROLLOUT_TF_BIN=" + tfchaos(t), "TFCHAOS_REAL=" + os.Getenv("ROLLOUT_TF_BIN"), "TFCHAOS_DIR=" + chaos,
		"ROLLOUT_TEMPORAL_HEARTBEAT=2s", "ROLLOUT_POLL_INTERVAL=500ms"}
	f.must(0, "validate")

	// A worker for a boundary whose identity it lacks refuses to start, naming the boundary.
	r := f.runWith(com, "worker", "--boundary", "aws-us-gov")
	if r.code != 1 || !strings.Contains(r.stderr, "aws-us-gov") || !strings.Contains(r.stderr, "GOV_KEY") {
		t.Fatalf("worker --boundary aws-us-gov with commercial credentials: exit %d, want 1 naming the boundary and its variable\n%s", r.code, r.stderr)
	}

	workerB := f.worker(gov, "--boundary", "aws-us-gov")

	// v1: the starter holds no credential and hands the run to its workflow. With no journal
	// worker yet, the starter warns and status names the queue the workflow waits on; with no
	// worker in the commercial boundary, the one its first work waits on.
	r = f.must(0, "start", "--release", "v1", "--detach")
	if !strings.Contains(r.stderr, "no worker polls task queue e2e-fleet-journal") {
		t.Fatalf("start with no journal worker gave no warning:\n%s", r.stderr)
	}
	if rep := f.status(); rep.Phase != "running" || !slices.Contains(rep.Workers, "e2e-fleet-journal") {
		t.Fatalf("status with no journal worker: %+v", rep)
	}
	f.worker(nil, "--journal")
	rep := f.waitFor("the commercial work to wait for a worker", time.Minute, func(r report) bool {
		return slices.Contains(r.Workers, "e2e-fleet-aws")
	})
	if rep.Phase != "running" || rep.Driver == nil {
		t.Fatalf("v1 without a commercial worker: %+v", rep)
	}
	workerA := f.worker(com, "--boundary", "aws")
	// The sovereign ring waits for an approval; the workflow waits with it, and goes on once it
	// is journaled.
	f.must(3, "status", "--wait", "--timeout", "2m", "--every", "200ms")
	f.must(0, "approve", rep.Run, "--ring", "sovereign", "--as", "ops", "--reason", "change 42")
	f.must(0, "status", "--wait", "--timeout", "2m", "--every", "200ms")
	// where is the environment of target's last apply, and the worker it ran under (0: none of
	// these).
	workers := func() []*exec.Cmd { return []*exec.Cmd{workerA, workerB} }
	where := func(target string) (env string, pid int) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, target+".env"))
		if err != nil {
			t.Fatalf("%s: no record of its apply: %v", target, err)
		}
		p, _ := os.ReadFile(filepath.Join(out, target+".worker"))
		for _, line := range strings.Fields(string(p)) {
			n, _ := strconv.Atoi(line)
			for _, w := range workers() {
				if w.Process.Pid == n {
					pid = n
				}
			}
		}
		return string(b), pid
	}
	for target, w := range map[string]struct {
		pid        int
		own, other string
	}{"use1": {workerA.Process.Pid, comSecret, govSecret}, "gov-w1": {workerB.Process.Pid, govSecret, comSecret}, "gov-w2": {workerB.Process.Pid, govSecret, comSecret}} {
		env, pid := where(target)
		if pid != w.pid {
			t.Errorf("%s: Terraform ran under pid %d, want its boundary's worker %d", target, pid, w.pid)
		}
		if !strings.Contains(env, w.own) || strings.Contains(env, w.other) {
			t.Errorf("%s: Terraform's environment should hold its own boundary's secret only:\n%s", target, env)
		}
	}
	rep = f.status()
	if rep.Phase != "succeeded" || f.targetRelease(rep, "gov-w2") != "v1" {
		t.Fatalf("v1: %+v", rep)
	}

	// v2: the starter is killed while the commercial ring applies: the run goes on to the
	// approval. Then the sovereign worker is killed mid-apply and the Temporal server restarted;
	// another worker of the boundary takes the apply over, and the run finishes.
	f.write("seen/use1.slow", "2")
	for _, target := range []string{"use1", "gov-w1", "gov-w2"} {
		os.Remove(filepath.Join(out, target+".started"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	starter := f.command(ctx, "start", "--release", "v2")
	if err := starter.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(out, "use1.started"), 2*time.Minute)
	_ = starter.Process.Kill()
	_ = starter.Wait()
	f.must(3, "status", "--wait", "--timeout", "2m", "--every", "200ms")
	rep = f.status()
	if f.targetRelease(rep, "use1") != "v2" {
		t.Fatalf("v2 after the starter was killed: %+v", rep)
	}
	for _, target := range []string{"gov-w1", "gov-w2"} {
		f.write("seen/"+target+".slow", "3")
	}
	f.must(0, "approve", rep.Run, "--ring", "sovereign", "--as", "ops", "--reason", "change 43")
	waitFile(t, filepath.Join(out, "gov-w1.started"), 2*time.Minute)
	_ = workerB.Process.Kill()
	_, _ = workerB.Process.Wait()
	srv.Restart()
	workerB2 := f.worker(gov, "--boundary", "aws-us-gov")
	workers = func() []*exec.Cmd { return []*exec.Cmd{workerA, workerB, workerB2} }
	f.must(0, "status", "--wait", "--timeout", "2m", "--every", "200ms")
	rep = f.status()
	if rep.Phase != "succeeded" {
		t.Fatalf("v2 after a worker was killed and the server restarted: %+v", rep)
	}
	for _, target := range []string{"gov-w1", "gov-w2"} {
		if _, pid := where(target); pid != workerB2.Process.Pid {
			t.Errorf("%s: its v2 apply finished under pid %d, want the new worker %d", target, pid, workerB2.Process.Pid)
		}
		f.write("seen/"+target+".slow", "0")
	}
	if _, overlaps := chaosLog(t, chaos); len(overlaps) > 0 {
		t.Errorf("applies overlapped: %v", overlaps)
	}

	// bad: its gate fails on the commercial ring, which the commercial worker rolls back to v2;
	// the sovereign ring never sees it.
	f.write("seen/use1.slow", "0")
	f.must(2, "start", "--release", "bad")
	rep = f.status()
	if rep.Phase != "rolled_back" || f.targetRelease(rep, "use1") != "v2" || f.targetRelease(rep, "gov-w1") != "v2" {
		t.Fatalf("bad: %+v", rep)
	}
	if _, pid := where("use1"); pid != workerA.Process.Pid {
		t.Errorf("use1: rolled back under pid %d, want the commercial worker %d", pid, workerA.Process.Pid)
	}

	// leak: its apply fails, printing the boundary's secret; it is masked on the worker, before
	// the outcome leaves the boundary: neither the journal nor Temporal's history holds it.
	r = f.must(2, "start", "--release", "leak")
	export := f.must(0, "state", "export").stdout
	if !strings.Contains(export, "denied: KEY=") {
		t.Fatalf("the failed apply's message is not in the journal:\n%s", r.stderr)
	}
	raw, err := exec.Command(os.Getenv("ROLLOUT_TEMPORAL_CLI"), "workflow", "show", "--address", addr, "--output", "json",
		"--workflow-id", "rollout/e2e-fleet/"+f.status().Run).Output()
	history := payloads(t, raw)
	if err != nil || !strings.Contains(history, "denied: KEY=") {
		t.Fatalf("temporal workflow show: %v: the failed apply's message is not in the history\n%s", err, lastLines(history, 20))
	}
	for what, text := range map[string]string{"the journal": export, "Temporal's history": history, "start's output": r.stdout + r.stderr} {
		if strings.Contains(text, comSecret) || strings.Contains(text, govSecret) {
			t.Errorf("%s holds a boundary's secret", what)
		}
	}
	f.checkTruth()
}

// runWith runs rollout to the end with env added.
func (f *fleet) runWith(env []string, args ...string) result {
	f.t.Helper()
	old := f.env
	f.env = append(append([]string{}, f.env...), env...)
	defer func() { f.env = old }()
	return f.run(args...)
}

// targetRelease is the release a report says target runs.
func (f *fleet) targetRelease(rep report, target string) string { return rep.targets()[target][1] }

func waitFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %s", path, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// payloads is a workflow history (temporal workflow show --output json) with every payload's data
// decoded from base64, as text to search.
func payloads(t *testing.T, raw []byte) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("workflow history: %v\n%s", err, lastLines(string(raw), 10))
	}
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "data" {
					if d, err := base64.StdEncoding.DecodeString(s); err == nil {
						b.Write(d)
						b.WriteByte('\n')
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	b.Write(raw)
	return b.String()
}

package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// The test binary is also a fake Terraform (terraform-exec's own TestMain pattern): run through a
// link named fakeName, it answers each command as the scenario file next to the link says, so
// that cancellation, crashes, lock errors and malformed JSON are tested without the real binary.
// The real binary's tier is test/e2e.
const fakeName = "terraform-fake"

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == fakeName {
		os.Exit(fakeTerraform(filepath.Dir(os.Args[0]), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeTerraform is one command of the fake. The scenario file has lines COMMAND=BEHAVIOUR.
func fakeTerraform(dir string, args []string) int {
	if len(args) == 0 {
		return 1
	}
	cmd := args[0]
	_ = os.WriteFile(filepath.Join(dir, "pid-"+cmd), []byte(fmt.Sprint(os.Getpid())), 0o600)
	behaviour := ""
	if b, err := os.ReadFile(filepath.Join(dir, "scenario")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && k == cmd {
				behaviour = v
			}
		}
	}
	out := func(lines ...string) {
		for _, l := range lines {
			fmt.Println(l)
		}
	}
	switch cmd {
	case "version":
		out(`{"terraform_version":"1.10.0","platform":"linux_amd64","provider_selections":{},"terraform_outdated":false}`)
	case "init":
		_ = os.MkdirAll(".terraform", 0o700)
		_ = os.WriteFile(".terraform.lock.hcl", nil, 0o600)
	case "plan":
		for _, a := range args {
			if f, ok := strings.CutPrefix(a, "-out="); ok {
				_ = os.WriteFile(f, []byte("fake plan"), 0o600)
			}
		}
		switch behaviour {
		case "lock":
			out(`{"@level":"error","@message":"Error: Error acquiring the state lock","type":"diagnostic","diagnostic":{"severity":"error","summary":"Error acquiring the state lock","detail":"ConditionalCheckFailedException: the lock is held by ops@elsewhere"}}`)
			return 1
		case "drift": // a refresh-only plan that finds a resource changed outside Terraform
			out(`{"@level":"info","type":"resource_drift","change":{"resource":{"addr":"null_resource.a"},"action":"update"}}`)
			return 2
		case "garbage":
			out(`not json at all`, `{"@level":"info","type":"planned_change","change":{"resource":{"addr":"null_resource.a"},"action":"replace"}}`,
				`{"truncated":`, "\x00\xff", `{"@level":"info","type":"change_summary","changes":{"add":2,"change":0,"remove":1}}`)
			return 2
		}
		out(`{"@level":"info","type":"version","terraform":"1.10.0"}`, `{"@level":"info","type":"change_summary","changes":{"add":1,"change":0,"remove":0}}`)
		return 2
	case "apply":
		switch behaviour {
		case "panic":
			fmt.Fprintln(os.Stderr, "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation]\n\ngoroutine 1 [running]:")
			return 11
		case "killed":
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		case "hang": // stops when interrupted, as Terraform does
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt)
			out(`{"@level":"info","type":"apply_start","hook":{"resource":{"addr":"null_resource.a"}}}`)
			<-sig
			out(`{"@level":"error","type":"diagnostic","diagnostic":{"severity":"error","summary":"execution halted"}}`)
			return 1
		case "deaf": // ignores the interrupt: killed after the wait
			signal.Ignore(os.Interrupt)
			time.Sleep(time.Minute)
		case "no-outputs":
			out(`garbage`, `{"@level":"info","type":"outputs","outputs":{"endpoint":`)
			return 0
		}
		if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-var-file=") }) { // direct: it plans too
			out(`{"@level":"info","type":"planned_change","change":{"resource":{"addr":"null_resource.a"},"action":"replace"}}`,
				`{"@level":"info","type":"change_summary","changes":{"add":1,"change":0,"remove":1,"operation":"plan"}}`)
			for i := 0; i < 1000 && behaviour == "wait-for-planned"; i++ { // until the test saw the plan
				if _, err := os.Stat(filepath.Join(dir, "go-on")); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		out(`{"@level":"info","type":"apply_complete","hook":{"resource":{"addr":"null_resource.a"}}}`,
			`{"@level":"info","type":"change_summary","changes":{"add":1,"change":0,"remove":1,"operation":"apply"}}`,
			`{"@level":"info","type":"outputs","outputs":{"endpoint":{"sensitive":false,"type":"string","value":"http://from-apply"}}}`)
	case "output":
		out(`{"endpoint":{"sensitive":false,"type":"string","value":"http://from-output"}}`)
	default:
		fmt.Fprintln(os.Stderr, "fake terraform: no", cmd)
		return 1
	}
	return 0
}

// fake is a provisioner whose binary is the fake, playing scenario, with one local target t1
// and a release of a one-file module.
func fake(t *testing.T, scenario ...string) (*Terraform, rings.ReleaseRef, string) {
	t.Helper()
	t.Setenv("TF_CLI_CONFIG_FILE", "")
	bin := filepath.Join(t.TempDir(), fakeName)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(bin), "scenario"), []byte(strings.Join(scenario, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	mod, state := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(mod, "main.tf"), []byte("# main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	digest, err := Snapshot(mod, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = filepath.Walk(state, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o755) })
	})
	cfg := &config.Config{Root: mod, Targets: []*config.Target{{Name: "t1", Boundary: "local"}},
		Boundaries: map[string]*config.Boundary{"local": {Name: "local", Cloud: "local"}}}
	p := &Terraform{Bin: bin, Config: cfg, StateDir: state, InterruptWait: 300 * time.Millisecond,
		Vars: func(context.Context, string) (map[string]any, error) { return map[string]any{}, nil }}
	return p, rings.ReleaseRef{Name: "v1", Digest: digest, Module: digest}, filepath.Dir(bin)
}

func TestFakeTerraformApplies(t *testing.T) {
	p, rel, _ := fake(t)
	var planned rings.PlanSummary
	res, err := p.Apply(context.Background(), "t1", rel, func(s rings.PlanSummary) { planned = s })
	if err != nil {
		t.Fatal(err)
	}
	if planned.Add != 1 || res.Outputs["endpoint"] != "http://from-apply" {
		t.Fatalf("planned %+v, outputs %v", planned, res.Outputs)
	}
}

// Direct: one apply, no plan; the plan's summary reaches planned while the apply is under way
// (the fake waits, after planning, until planned has been called).
func TestDirectApplyRunsOneTerraformProcess(t *testing.T) {
	tf, rel, dir := fake(t, "apply=wait-for-planned")
	p := tf.ForRun(RunPolicy{ApplyMode: "auto"})
	var planned rings.PlanSummary
	running := false
	res, err := p.Apply(context.Background(), "t1", rel, func(s rings.PlanSummary) {
		planned = s
		b, _ := os.ReadFile(filepath.Join(dir, "pid-apply"))
		var pid int
		_, _ = fmt.Sscan(string(b), &pid)
		running = pid > 0 && syscall.Kill(pid, 0) == nil
		_ = os.WriteFile(filepath.Join(dir, "go-on"), nil, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !running {
		t.Fatal("planned was called after the apply ended: the summary must be journaled as the apply plans")
	}
	if _, err := os.Stat(filepath.Join(dir, "pid-plan")); err == nil {
		t.Fatal("a direct apply ran terraform plan")
	}
	if res.Mode != ModeDirect || planned.Add != 1 || planned.Destroy != 1 || len(planned.Replaced) != 1 || res.Outputs["endpoint"] != "http://from-apply" {
		t.Fatalf("mode %s, planned %+v, outputs %v", res.Mode, planned, res.Outputs)
	}
	// With protected types, the same run plans first.
	p = tf.ForRun(RunPolicy{ApplyMode: "auto", Review: &Review{Protect: []string{"aws_db_instance"}}})
	if res, err := p.Apply(context.Background(), "t1", rel, nil); err != nil || res.Mode != ModePlanFirst {
		t.Fatalf("protect: mode %s, %v: want plan-first", res.Mode, err)
	}
}

func TestPlanFirstWhenAPolicyNeedsThePlan(t *testing.T) {
	rel := rings.ReleaseRef{Name: "v2"}
	for _, c := range []struct {
		mode   string
		review *Review
		want   bool
	}{
		{"", nil, true}, // a run of an earlier version
		{"plan-first", nil, true},
		{"auto", nil, false},
		{"direct", nil, false},
		{"auto", &Review{Protect: []string{"aws_db_instance"}}, true},
		{"auto", &Review{Protect: []string{"aws_db_instance"}, AllowDestroy: true}, false},
		{"auto", &Review{Release: "v2", Digests: map[string]string{"t1": "d"}}, true},
		{"auto", &Review{Release: "v1", Digests: map[string]string{"t1": "d"}}, false}, // reviewed another release
		{"auto", &Review{Release: "v2", Digests: map[string]string{"t2": "d"}}, false},
	} {
		pol := RunPolicy{ApplyMode: c.mode, Review: c.review}
		if got := pol.planFirst("t1", rel); got != c.want {
			t.Errorf("mode %q review %+v: plan first %v, want %v", c.mode, c.review, got, c.want)
		}
	}
}

func TestALockHeldElsewhereIsTransient(t *testing.T) {
	p, rel, _ := fake(t, "plan=lock")
	_, err := p.Apply(context.Background(), "t1", rel, nil)
	var f *Failure
	if !errors.As(err, &f) || f.Class != Transient || f.Reason != "state lock held" || !strings.Contains(err.Error(), "held by ops@elsewhere") {
		t.Fatalf("%v (%#v): want a transient failure, state lock held, with Terraform's diagnostic", err, f)
	}
}

func TestACrashedTerraformIsTransient(t *testing.T) {
	for behaviour, reason := range map[string]string{"panic": "terraform or a provider crashed", "killed": "terraform process died"} {
		t.Run(behaviour, func(t *testing.T) {
			p, rel, _ := fake(t, "apply="+behaviour)
			_, err := p.Apply(context.Background(), "t1", rel, nil)
			var f *Failure
			if !errors.As(err, &f) || f.Class != Transient || f.Reason != reason {
				t.Fatalf("%q (%#v): want transient, %s", err, f, reason)
			}
		})
	}
}

// A stream with lines that are not JSON, or are cut short, still gives what its good lines say;
// an apply whose outputs line is broken has its outputs read with `output`.
func TestMalformedJSONStreamsAreReadForWhatTheyHold(t *testing.T) {
	p, rel, _ := fake(t, "plan=garbage", "apply=no-outputs")
	var planned rings.PlanSummary
	res, err := p.Apply(context.Background(), "t1", rel, func(s rings.PlanSummary) { planned = s })
	if err != nil {
		t.Fatal(err)
	}
	if planned.Add != 2 || planned.Destroy != 1 || len(planned.Replaced) != 1 || planned.Replaced[0] != "null_resource.a" {
		t.Fatalf("planned %+v: want the good lines' summary", planned)
	}
	if res.Outputs["endpoint"] != "http://from-output" {
		t.Fatalf("outputs %v: want them read with output -json", res.Outputs)
	}
}

// A cancelled apply interrupts Terraform, which stops; one that does not stop is killed after
// the interrupt wait. Either way Apply returns soon, and no process is left.
func TestCancelledApplyStopsTerraform(t *testing.T) {
	for _, behaviour := range []string{"hang", "deaf"} {
		t.Run(behaviour, func(t *testing.T) {
			p, rel, dir := fake(t, "apply="+behaviour)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := p.Apply(ctx, "t1", rel, nil)
				done <- err
			}()
			pid := waitForPid(t, filepath.Join(dir, "pid-apply"))
			cancel()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a cancelled apply succeeded")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Apply did not return after its context was cancelled")
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("terraform (pid %d) is still there after a cancelled apply: %v", pid, err)
			}
		})
	}
}

func waitForPid(t *testing.T, file string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				time.Sleep(50 * time.Millisecond) // let it reach its wait (or set its signal handling)
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the fake terraform never started")
	return 0
}

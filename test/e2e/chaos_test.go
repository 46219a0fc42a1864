//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	chaosOnce sync.Once
	chaosBin  string
	chaosErr  error
)

// tfchaos builds the fault-injection wrapper (internal/chaos/tfchaos) once.
func tfchaos(t *testing.T) string {
	chaosOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tfchaos-")
		if err != nil {
			chaosErr = err
			return
		}
		chaosBin = filepath.Join(dir, "tfchaos")
		out, err := exec.Command("go", "build", "-o", chaosBin, "../../internal/chaos/tfchaos").CombinedOutput()
		if err != nil {
			chaosErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if chaosErr != nil {
		t.Fatal(chaosErr)
	}
	return chaosBin
}

// chaosFleet: three rings over real OpenTofu, with Terraform behind tfchaos injecting the faults
// of spec (target -> fault per plan, in order), and retries fast enough for a test.
func chaosFleet(t *testing.T, spec map[string][]string, rings, targets string) (*fleet, string) {
	f := newFleet(t, fleetSpec{rings: rings, targets: targets, gates: defaultGates + `  out:
    terraform-output: {output: endpoint}
    successCondition: result != ""
`})
	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	cfg = strings.Replace(cfg, "defaults:\n", "defaults:\n  retry: {attempts: 4, initialInterval: 50ms, maxInterval: 200ms}\n  breaker: {consecutiveFailures: 3, openFor: 1h}\n  passEnv: [TFCHAOS_REAL, TFCHAOS_DIR, TFCHAOS_SPEC] # the wrapper reads them; Terraform sees nothing else\n", 1)
	cfg = strings.Replace(cfg, "  local-b: {cloud: local, maxParallel: 2}\n", "  local-b: {cloud: local, maxParallel: 2}\n  local-c: {cloud: local}\n", 1)
	f.write("rollout.yaml", cfg)
	dir := filepath.Join(f.dir, "chaos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(spec)
	f.write("chaos/spec.json", string(b))
	f.env = []string{"ROLLOUT_TF_BIN=" + tfchaos(t), "TFCHAOS_REAL=" + os.Getenv("ROLLOUT_TF_BIN"), "TFCHAOS_DIR=" + dir, "TFCHAOS_SPEC=" + filepath.Join(dir, "spec.json")}
	return f, dir
}

// chaosLog reads tfchaos.log: faults injected per target, and any overlap.
func chaosLog(t *testing.T, dir string) (injected map[string][]string, overlaps []string) {
	injected = map[string][]string{}
	file, err := os.Open(filepath.Join(dir, "tfchaos.log"))
	if err != nil {
		return injected, nil
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && fields[2] == "inject":
			injected[fields[3]] = append(injected[fields[3]], fields[4])
		case len(fields) >= 3 && fields[2] == "OVERLAP":
			overlaps = append(overlaps, sc.Text())
		}
	}
	return injected, overlaps
}

type tally struct{ injected, recovered, failedAsExpected, lost int }

func printTally(t *testing.T, title string, rows map[string]*tally) {
	kinds := make([]string, 0, len(rows))
	for k := range rows {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n%-12s %9s %10s %17s %5s\n", title, "fault", "injected", "recovered", "failed as expected", "lost")
	var total tally
	for _, k := range kinds {
		r := rows[k]
		fmt.Fprintf(&b, "%-12s %9d %10d %17d %5d\n", k, r.injected, r.recovered, r.failedAsExpected, r.lost)
		total.injected, total.recovered, total.failedAsExpected, total.lost = total.injected+r.injected, total.recovered+r.recovered, total.failedAsExpected+r.failedAsExpected, total.lost+r.lost
	}
	fmt.Fprintf(&b, "%-12s %9d %10d %17d %5d\n", "total", total.injected, total.recovered, total.failedAsExpected, total.lost)
	fmt.Print(b.String())
	if total.lost != 0 {
		t.Errorf("lost %d", total.lost)
	}
}

// TestChaosFaults: transient faults (throttling, a dying Terraform, a hang) are retried and
// recover; a permanent one fails its target at once with the diagnostic; a boundary whose runs
// keep failing opens its breaker while the other boundary of the ring finishes.
func TestChaosFaults(t *testing.T) {
	spec := map[string][]string{
		"c-1": {"transient", "die"},                                 // recovers on the 3rd attempt (3 in a row would open local-a's breaker)
		"m-1": {"permanent"},                                        // fails at once
		"m-2": {"hang"},                                             // recovers
		"g-1": {"transient", "transient", "transient", "transient"}, // local-c keeps failing...
		"g-2": {"transient", "transient", "transient", "transient"},
		"g-3": {"transient", "transient", "transient", "transient"},
	}
	rings := `  - name: canary
    targets: {names: [c-1]}
    gates: [healthz]
  - name: main
    targets: {boundaries: [local-b]}
    maxParallel: 2
    maxFailures: 1
    rollback: target
    gates: [healthz]
  - name: wide
    targets: {labels: {tier: wide}}
    maxParallel: 1
    maxFailures: 3
    rollback: target
    gates: [healthz]
`
	targets := "targets:\n" + targetsYAML("c", "local-a", "canary", 1, "") + targetsYAML("m", "local-b", "main", 2, "") +
		targetsYAML("g", "local-c", "wide", 3, "") + targetsYAML("e", "local-a", "wide", 2, "")
	f, dir := chaosFleet(t, spec, rings, targets)
	r := f.run("start", "--release", "v1", "--output", "json")
	var rep struct {
		Phase string `json:"phase"`
		Rings []struct {
			Boundaries []struct {
				Boundary string `json:"boundary"`
				Halted   bool   `json:"halted"`
			} `json:"boundaries"`
			Targets []struct {
				Name, Phase, Message string
			} `json:"targets"`
		} `json:"rings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s", r.code, err, lastLines(r.stderr, 40))
	}
	phase := map[string]string{}
	for _, ring := range rep.Rings {
		for _, tg := range ring.Targets {
			phase[tg.Name] = tg.Phase
		}
	}
	injected, overlaps := chaosLog(t, dir)
	rows := map[string]*tally{}
	row := func(k string) *tally {
		if rows[k] == nil {
			rows[k] = &tally{}
		}
		return rows[k]
	}
	for target, faults := range injected {
		for _, fault := range faults {
			row(fault).injected++
			switch {
			case target == "m-1" && fault == "permanent":
				// Direct mode meets the fault in its apply; plan-first in its plan.
				if phase[target] == "rollback_skipped" && strings.Contains(r.stderr, "m-1: apply failed: apply target m-1: Error: creating stamp: StatusCode=403 Code=\"AuthorizationFailed\"") {
					row(fault).failedAsExpected++
				} else {
					row(fault).lost++
				}
			case strings.HasPrefix(target, "g-"):
				if phase[target] == "rollback_skipped" {
					row(fault).failedAsExpected++ // the boundary that keeps failing
				} else {
					row(fault).lost++
				}
			default:
				if phase[target] == "verified" && f.deployedVersion(target) == "v1" {
					row(fault).recovered++
				} else {
					row(fault).lost++
				}
			}
		}
	}
	printTally(t, "chaos: faults", rows)
	if len(injected["m-1"]) != 1 || !strings.Contains(r.stderr, "AuthorizationFailed") {
		t.Errorf("the permanent fault must fail at once with its diagnostic: m-1 planned with faults %v", injected["m-1"])
	}
	if len(injected["c-1"]) != 2 || phase["c-1"] != "verified" || len(injected["m-2"]) != 1 || phase["m-2"] != "verified" {
		t.Errorf("c-1: faults %v, phase %s; m-2: faults %v, phase %s: transient, die and hang are retried", injected["c-1"], phase["c-1"], injected["m-2"], phase["m-2"])
	}
	// local-c: 3 transient failures in a row open its breaker; its remaining target is not tried,
	// while e-1 and e-2 (local-a) in the same ring finish.
	if n := len(injected["g-1"]) + len(injected["g-2"]) + len(injected["g-3"]); n != 3 {
		t.Errorf("local-c saw %d Terraform runs; the breaker should have stopped it at 3", n)
	}
	halted := false
	for _, b := range rep.Rings[2].Boundaries {
		halted = halted || b.Boundary == "local-c" && b.Halted
	}
	if !halted || phase["e-1"] != "verified" || phase["e-2"] != "verified" {
		t.Errorf("ring wide: local-c halted %v, e-1 %s, e-2 %s", halted, phase["e-1"], phase["e-2"])
	}
	if len(overlaps) > 0 {
		t.Errorf("applies overlapped: %v", overlaps)
	}
}

// TestChaosKillAndResume kills the real rollout process at random moments of a three-ring rollout
// (ROLLOUT_CHAOS_KILLS times, 5 by default; make chaos: 50) and resumes it each time. Then: the run
// completed; every target's Terraform state holds the release; the journal has no gap or
// duplicate; no target was applied by two processes at once; no state lock is left.
func TestChaosKillAndResume(t *testing.T) {
	kills, seed, rnd := chaosParams(t, 42)
	// Transient faults for some targets, drawn from the seed too (the breaker is set high enough
	// that they never open it: that is TestChaosFaults' business).
	spec := map[string][]string{}
	for i := 1; i <= 5; i++ {
		var faults []string // at most 2 in a row, so 4 attempts always get through
		for j := 0; j < 2+rnd.IntN(3); j++ {
			switch {
			case j > 0 && faults[j-1] != "ok" && (j < 2 || faults[j-2] != "ok"):
				faults = append(faults, "ok")
			case rnd.IntN(3) == 0:
				faults = append(faults, "transient")
			case rnd.IntN(3) == 0:
				faults = append(faults, "die")
			default:
				faults = append(faults, "ok")
			}
		}
		spec[fmt.Sprintf("k-%d", i)] = faults
	}
	f, dir := chaosFleet(t, spec, killRings, "targets:\n"+targetsYAML("k", "local-a", "any", 5, "    vars: {apply_seconds: 1}\n"))
	f.write("rollout.yaml", strings.Replace(readFile(t, filepath.Join(f.dir, "rollout.yaml")), "consecutiveFailures: 3", "consecutiveFailures: 50", 1))
	final, done := killAndResume(t, f, rnd, kills)
	if rep := f.status(); rep.Phase != "succeeded" {
		t.Fatalf("run of %s: %s %s", final, rep.Phase, rep.Reason)
	}
	// Every target's Terraform state holds the final release.
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("k-%d", i)
		if got := stateVersion(t, filepath.Join(f.dir, ".rollout", "tfstate", name+".tfstate")); got != final {
			t.Errorf("%s: Terraform state holds %q, want %s", name, got, final)
		}
	}
	runs := checkJournalAndOverlaps(t, f, dir)
	locks, _ := filepath.Glob(filepath.Join(f.dir, ".rollout", "tfstate", "*.lock.info"))
	if len(locks) > 0 {
		t.Errorf("state locks left: %v", locks)
	}
	injected, _ := chaosLog(t, dir)
	n := 0
	for _, f := range injected {
		n += len(f)
	}
	fmt.Printf("\nchaos: %d kills of rollout and %d injected faults (seed %d); %d release(s) finished; journal of %d run(s) without gaps; 0 overlapping applies; 0 locks left\n",
		kills, n, seed, done+1, runs)
}

// stateVersion reads the release a stamp's Terraform state says is deployed.
func stateVersion(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	var st struct {
		Resources []struct {
			Type, Name string
			Instances  []struct {
				Attributes struct {
					Input struct {
						Value string `json:"value"`
					} `json:"input"`
				} `json:"attributes"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state %s: %v", path, err)
	}
	for _, r := range st.Resources {
		if r.Type == "terraform_data" && r.Name == "app" && len(r.Instances) == 1 {
			var app struct{ Version string }
			_ = json.Unmarshal([]byte(r.Instances[0].Attributes.Input.Value), &app)
			return app.Version
		}
	}
	return ""
}

// killRings are the three rings of the kill-and-resume runs. Gated on Terraform's outputs, not on
// the stand-in application: a create-time provisioner (the stamp's local-exec) killed half-way is
// not run again by Terraform, whose state already holds the object; an HTTP gate would rightly
// fail that target. The state is what is checked.
const killRings = `  - name: one
    targets: {names: [k-1]}
    gates: [out]
  - name: two
    targets: {names: [k-2, k-3]}
    maxParallel: 2
    gates: [out]
  - name: three
    targets: {names: [k-4, k-5]}
    maxParallel: 1
    gates: [out]
`

// killAndResume starts releases v1, v2, ... and SIGKILLs rollout at random moments, kills times,
// each kill followed by a start of the same release (a resume); then it runs the current release
// to the end and returns it, with the number of releases finished before it.
func killAndResume(t *testing.T, f *fleet, rnd *rand.Rand, kills int) (string, int) {
	t.Helper()
	releases := []string{"v1", "v2", "v3"}
	done := 0 // releases finished
	for k := 0; k < kills; {
		rel := releases[done]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := f.command(ctx, "start", "--release", rel)
		var errb strings.Builder
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		wait := time.Duration(200+rnd.IntN(4000)) * time.Millisecond
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-time.After(wait):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			k++
		case err := <-exited:
			if err == nil { // finished before the kill: on to the next release
				done++
				if done == len(releases) {
					releases = append(releases, fmt.Sprintf("v%d", len(releases)+1))
				}
			} else if cmd.ProcessState.ExitCode() == 5 { // the lease of the killed one not yet expired
				time.Sleep(500 * time.Millisecond)
			} else {
				cancel()
				t.Fatalf("start %s: %v\n%s", rel, err, lastLines(errb.String(), 30))
			}
		}
		cancel()
	}
	// Run the current release to the end.
	final := releases[done]
	var last result
	for i := 0; i < 10; i++ {
		if last = f.run("start", "--release", final); last.code == 0 {
			break
		}
		if last.code != 5 {
			t.Fatalf("finishing %s: exit %d\n%s", final, last.code, lastLines(last.stderr, 30))
		}
		time.Sleep(time.Second) // the killed holder's lease expires (ROLLOUT_LEASE_TTL=3s)
	}
	if last.code != 0 {
		t.Fatalf("could not finish %s: %s", final, lastLines(last.stderr, 20))
	}
	return final, done
}

// checkJournalAndOverlaps checks what a kill-and-resume run leaves: per run, event numbers 1..n
// without gap or duplicate, and no target applied by two processes at once (the tfchaos log). It
// returns the number of runs.
func checkJournalAndOverlaps(t *testing.T, f *fleet, dir string) int {
	t.Helper()
	// The journal: per run, sequence numbers 1..n, no gap, no duplicate.
	exp := f.must(0, "state", "export")
	seqs := map[string][]int64{}
	for _, line := range strings.Split(strings.TrimSpace(exp.stdout), "\n") {
		var rec struct {
			Kind  string `json:"kind"`
			Event *struct {
				Run string `json:"run"`
				Seq int64  `json:"seq"`
			} `json:"event"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Kind == "event" {
			seqs[rec.Event.Run] = append(seqs[rec.Event.Run], rec.Event.Seq)
		}
	}
	for run, s := range seqs {
		for i, q := range s {
			if q != int64(i+1) {
				t.Fatalf("run %s: event %d has seq %d: a gap or a duplicate", run, i+1, q)
			}
		}
	}
	_, overlaps := chaosLog(t, dir)
	if len(overlaps) > 0 {
		t.Errorf("a target was applied by two processes at once: %v", overlaps)
	}
	return len(seqs)
}

// chaosParams are a kill-and-resume run's kills (ROLLOUT_CHAOS_KILLS, default 5) and its seed
// (ROLLOUT_CHAOS_SEED replays one), with the random sequence it draws.
func chaosParams(t *testing.T, stream uint64) (int, uint64, *rand.Rand) {
	kills := 5
	if n, err := strconv.Atoi(os.Getenv("ROLLOUT_CHAOS_KILLS")); err == nil && n > 0 {
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("ROLLOUT_CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (ROLLOUT_CHAOS_SEED to replay)", seed)
	return kills, seed, rand.New(rand.NewPCG(seed, stream))
}

// Command tfchaos is the chaos suite's fault-injection seam: put it where rollout expects the
// Terraform binary (ROLLOUT_TF_BIN) and it runs the real one (TFCHAOS_REAL) after deciding, per
// target and per plan (a `plan`, or an `apply` that plans itself: rollout's direct mode), whether
// to inject a fault first. Faults come from TFCHAOS_SPEC, a JSON file
// {"target": ["transient", "permanent", "die", "hang", "ok", ...]} consumed in order, one entry per
// plan of that target. Every decision is appended to TFCHAOS_LOG.
//
// It also proves that no target is ever applied by two processes at once: an apply takes an
// exclusive lock on TFCHAOS_DIR/<target>.apply (inherited by the real binary, held until it
// exits); finding it taken is recorded as an overlap.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Diagnostics written for each fault, as a provider or Terraform itself would.
var diagnostics = map[string]string{
	"transient": "Error: creating stamp: operation error: https response error StatusCode: 429, api error Throttling: Rate exceeded",
	"permanent": "Error: creating stamp: StatusCode=403 Code=\"AuthorizationFailed\" Message=\"the client does not have authorization\"",
	"hang":      "Error: timeout while waiting for state to become 'available' (context deadline exceeded)",
}

func main() {
	real := os.Getenv("TFCHAOS_REAL")
	if real == "" {
		fmt.Fprintln(os.Stderr, "tfchaos: TFCHAOS_REAL is not set")
		os.Exit(2)
	}
	sub := ""
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			sub = a
			break
		}
	}
	wd, _ := os.Getwd()
	target := filepath.Base(wd)
	dir := os.Getenv("TFCHAOS_DIR")
	if dir != "" && filepath.Base(filepath.Dir(wd)) == "work" {
		switch sub {
		case "plan":
			if fault := next(dir, target); fault != "ok" && fault != "" {
				inject(dir, target, fault)
			}
		case "apply":
			if !appliesAPlanFile(os.Args[1:]) {
				if fault := next(dir, target); fault != "ok" && fault != "" {
					inject(dir, target, fault)
				}
			}
			lock(dir, target)
		}
	}
	if err := syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "tfchaos: exec:", err)
		os.Exit(2)
	}
}

// appliesAPlanFile says whether an apply's arguments name a saved plan (rollout's plan-first
// mode); without one the apply plans itself.
func appliesAPlanFile(args []string) bool {
	for _, a := range args {
		if strings.HasSuffix(a, ".tfplan") {
			return true
		}
	}
	return false
}

// next is the target's next planned fault: entries are consumed one per plan, counted in a file
// that grows by one byte each time (a resumed or concurrent rollout continues where it was).
func next(dir, target string) string {
	b, err := os.ReadFile(os.Getenv("TFCHAOS_SPEC"))
	if err != nil {
		return ""
	}
	var spec map[string][]string
	if json.Unmarshal(b, &spec) != nil {
		return ""
	}
	f, err := os.OpenFile(filepath.Join(dir, target+".plans"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return ""
	}
	defer f.Close()
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	st, _ := f.Stat()
	n := int(st.Size())
	_, _ = f.Write([]byte{'.'})
	faults := spec[target]
	if n >= len(faults) {
		return "ok"
	}
	return faults[n]
}

func logf(dir, format string, args ...any) {
	f, err := os.OpenFile(filepath.Join(dir, "tfchaos.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %d "+format+"\n", append([]any{time.Now().Format(time.RFC3339Nano), os.Getpid()}, args...)...)
}

func inject(dir, target, fault string) {
	logf(dir, "inject %s %s", target, fault)
	switch fault {
	case "die": // the Terraform process itself dies
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "hang":
		time.Sleep(2 * time.Second)
	}
	msg, ok := diagnostics[fault]
	if !ok {
		msg = "Error: tfchaos: unknown fault " + fault
	}
	fmt.Fprintln(os.Stderr, msg)
	// A JSON diagnostic too, for plan -json readers.
	d, _ := json.Marshal(map[string]any{"@level": "error", "type": "diagnostic", "diagnostic": map[string]string{"severity": "error", "summary": msg}})
	fmt.Println(string(d))
	os.Exit(1)
}

// lock takes TFCHAOS_DIR/<target>.apply exclusively, with a descriptor the real binary inherits:
// a second apply of the same target while one runs is an overlap, which the suite must never see.
func lock(dir, target string) {
	fd, err := syscall.Open(filepath.Join(dir, target+".apply"), syscall.O_CREAT|syscall.O_RDWR, 0o644) // no O_CLOEXEC: kept across exec
	if err != nil {
		return
	}
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		logf(dir, "OVERLAP %s: another apply of this target is running", target)
		return
	}
	logf(dir, "apply %s", target)
}

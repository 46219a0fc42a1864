//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each target is applied by one Terraform process (apply, which plans) unless something needs its
// plan first: --apply-mode plan-first, or protected resource types. The report says which; what is
// deployed is the release either way (the truth check ends the test).
func TestApplyModes(t *testing.T) {
	t.Parallel()
	f := newFleet(t, twoRings("0s"))
	calls := filepath.Join(t.TempDir(), "terraform-calls")
	wrapper := filepath.Join(t.TempDir(), "tf")
	script := "#!/bin/sh\necho \"$(basename \"$PWD\") $1\" >> " + calls + "\nexec " + os.Getenv("ROLLOUT_TF_BIN") + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.env = append(f.env, "ROLLOUT_TF_BIN="+wrapper)
	// commands is what Terraform was asked per target since the last call, and forgets it.
	commands := func() map[string][]string {
		b, _ := os.ReadFile(calls)
		_ = os.Remove(calls)
		out := map[string][]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if dir, cmd, ok := strings.Cut(l, " "); ok && (strings.HasPrefix(dir, "canary-") || strings.HasPrefix(dir, "main-")) && cmd != "init" && cmd != "version" {
				out[dir] = append(out[dir], cmd)
			}
		}
		return out
	}
	modes := func() map[string]string {
		var rep struct {
			Rings []struct {
				Targets []struct{ Name, ApplyMode string }
			}
		}
		if err := json.Unmarshal([]byte(f.must(0, "status", "--output", "json").stdout), &rep); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range rep.Rings {
			for _, tg := range r.Targets {
				out[tg.Name] = tg.ApplyMode
			}
		}
		return out
	}
	check := func(release, mode string, want []string) {
		t.Helper()
		got := commands()
		for name, m := range modes() {
			if m != mode || strings.Join(got[name], ",") != strings.Join(want, ",") || f.deployedVersion(name) != release {
				t.Fatalf("%s: mode %q, terraform %v, deployed %s: want %s, %v, %s", name, m, got[name], f.deployedVersion(name), mode, want, release)
			}
		}
	}

	f.must(0, "start", "--release", "v1")
	check("v1", "direct", []string{"apply"})
	f.must(0, "start", "--release", "v2", "--apply-mode", "plan-first")
	check("v2", "plan-first", []string{"plan", "apply"})

	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	f.write("rollout.yaml", strings.Replace(cfg, "defaults:\n", "protect: [aws_db_instance]\ndefaults:\n", 1))
	if r := f.must(1, "start", "--release", "v3", "--apply-mode", "direct"); !strings.Contains(r.stderr, "protect:") {
		t.Fatalf("direct with protect: %s", r.stderr)
	}
	if rep := f.status(); !strings.HasPrefix(rep.Run, "v2-") {
		t.Fatalf("a refused start journaled a run: %s", rep.Run)
	}
	commands()
	f.must(0, "start", "--release", "v3")
	check("v3", "plan-first", []string{"plan", "apply"}) // protected types are checked in the plan first
}

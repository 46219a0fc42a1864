package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
)

// FuzzLoad: any rollout.yaml and targets file load without panicking, through the parser and the
// cloud rules; a problem is reported as errors naming file and key, never as a crash.
func FuzzLoad(f *testing.F) {
	f.Add("release: {module: mod}\nboundaries: {a: {cloud: local}}\nrings:\n  - name: r\n    targets: {boundaries: [a]}\n",
		"targets:\n  - {name: t, boundary: a}\n")
	f.Add("release: {module: mod}\nboundaries:\n  gov: {cloud: aws, partition: aws-us-gov, identity: {profile: p}}\ngates:\n  g: {prometheus: {address: http://p, query: up}, successCondition: result < 1}\nrings:\n  - {name: r, targets: {boundaries: [gov]}, gates: [g]}\n",
		"targets:\n  - {name: t, boundary: gov, region: us-east-1, backend: {type: s3, config: {region: cn-north-1}}}\n")
	f.Add("release: [", "targets: 7")
	f.Add("{}", "")
	f.Fuzz(func(t *testing.T, main, targets string) {
		dir := t.TempDir()
		must := func(err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		must(os.MkdirAll(filepath.Join(dir, "mod"), 0o755))
		must(os.MkdirAll(filepath.Join(dir, "environments"), 0o755))
		must(os.WriteFile(filepath.Join(dir, "rollout.yaml"), []byte(main), 0o644))
		must(os.WriteFile(filepath.Join(dir, "environments", "t.yaml"), []byte(targets), 0o644))
		c, err := config.Load(dir, catalog.All.Keys())
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("an error that is not a list of located problems: %T %v", err, err)
			}
			return
		}
		for _, e := range catalog.All.Validate(c) {
			if e.File == "" || e.Key == "" {
				t.Fatalf("a cloud problem without file or key: %+v", e)
			}
		}
	})
}

// FuzzNames: a name the one pattern accepts is safe wherever rollout puts it: one path element
// that stays where it is put, no control character, nothing a shell or a terminal reads as syntax.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"v42", "../../../../PWNED", "feature/x", "v1\n", "v1\x1b[2J", ".", "..", "-rf", "a b", "ünï"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if config.ValidName("release", name) != nil {
			return
		}
		if !filepath.IsLocal(name) || filepath.Base(name) != name || name == "." || name == ".." {
			t.Fatalf("%q is accepted but is not one local path element", name)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				t.Fatalf("%q is accepted but holds %q", name, r)
			}
		}
	})
}

// FuzzShellTemplate: a command gate's script that is accepted has no template action left in it,
// so no value is ever pasted into the script.
func FuzzShellTemplate(f *testing.F) {
	for _, s := range []string{`echo {{ .X }}`, `echo "{{ .X }}" '{{'`, `{{ if .X }}rm{{ end }}`, `a='{{ .X }}'`, `"\"{{ .X }}"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		out, actions, err := config.ShellTemplate(script)
		if err != nil {
			return
		}
		if strings.Contains(out, "{{") && len(actions) > 0 {
			t.Fatalf("%q -> %q still holds a template action", script, out)
		}
		for i := range actions {
			if !strings.Contains(out, fmt.Sprintf("${%d}", i+1)) {
				t.Fatalf("%q -> %q lacks parameter %d", script, out, i+1)
			}
		}
	})
}

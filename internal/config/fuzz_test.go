package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds"
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
		c, err := config.Load(dir)
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("an error that is not a list of located problems: %T %v", err, err)
			}
			return
		}
		for _, e := range clouds.Validate(c) {
			if e.File == "" || e.Key == "" {
				t.Fatalf("a cloud problem without file or key: %+v", e)
			}
		}
	})
}

package catalog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
)

func TestEveryCloudHasItsOwnNameAndKeys(t *testing.T) {
	names, owner := map[string]bool{}, map[string]string{}
	for _, c := range catalog.All {
		if names[c.Name()] {
			t.Errorf("two clouds are named %s", c.Name())
		}
		names[c.Name()] = true
		for k := range c.Keys().Settings {
			if o, ok := owner[k]; ok {
				t.Errorf("setting %s belongs to %s and %s: each cloud's keys are its own", k, o, c.Name())
			}
			owner[k] = c.Name()
		}
	}
}

// The catalog's keys are what config parses: a key of another cloud, or a cloud no catalog
// entry has, is named with its line.
func TestConfigurationKnowsTheCatalogsClouds(t *testing.T) {
	dir := t.TempDir()
	main := `release: {module: mod}
boundaries:
  a: {cloud: aws, partition: aws, universeDomain: s3nsapis.fr, identity: {profile: p}}
  b: {cloud: oracle}
rings:
  - {name: all, targets: {names: [t]}}
`
	for p, body := range map[string]string{config.FileName: main, "environments/t.yaml": "targets:\n- {name: t, boundary: a, region: us-east-1}\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := config.Load(dir, catalog.All.Keys())
	for _, want := range []string{
		"rollout.yaml:3: boundaries.a.universeDomain: is a gcp key; this boundary's cloud is aws",
		`rollout.yaml:4: boundaries.b.cloud: unknown cloud "oracle": one of aws, azure, gcp, local`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

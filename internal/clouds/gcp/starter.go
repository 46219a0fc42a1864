package gcp

import (
	"fmt"

	"github.com/rollout-dev/rollout/internal/clouds"
)

// Scopes are the universes a starter fleet may name: Google Cloud, and S3NS (France).
func (Cloud) Scopes() []string { return []string{DefaultUniverse, "s3nsapis.fr"} }

// StarterBoundary is a boundary of universe scope, its identity left for a person to fill in.
func (Cloud) StarterBoundary(scope, name string) clouds.StarterBoundary {
	sb := clouds.StarterBoundary{
		YAML: []string{"cloud: gcp",
			"identity: {credentialsFile: /etc/rollout/" + name + "-wif.json, project: PROJECT}  # workload identity federation (fill in)",
			"# backend: {type: gcs, config: {bucket: BUCKET, prefix: \"stamps/{{ .Target.Name }}\"}}"},
		Region: "europe-west4",
		Todo:   fmt.Sprintf("fill in boundaries.%s.identity (a credentials file and project of universe %s)", name, scope),
	}
	if scope != DefaultUniverse {
		sb.YAML = append([]string{"cloud: gcp", "universeDomain: " + scope, "regions: [u-france-east1]"}, sb.YAML[1:]...)
		sb.Region = "u-france-east1"
	}
	return sb
}

var _ clouds.Starter = Cloud{}

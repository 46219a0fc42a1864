package local

import "github.com/rollout-dev/rollout/internal/clouds"

// Scopes: the one local scope.
func (Cloud) Scopes() []string { return []string{"local"} }

// StarterBoundary is a local boundary: Terraform runs here, with no cloud identity.
func (Cloud) StarterBoundary(scope, name string) clouds.StarterBoundary {
	return clouds.StarterBoundary{YAML: []string{"cloud: local"}, Region: "local"}
}

var _ clouds.Starter = Cloud{}

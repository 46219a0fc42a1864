// Package local is the local cloud: no cloud at all (demos, tests, and modules whose providers
// need no credentials). Its boundaries have no identity, no regions and no backend convention;
// local state is allowed there.
package local

import (
	"context"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
)

// Name is what a boundary's cloud key says.
const Name = "local"

// Cloud is the local family.
type Cloud struct{}

func (Cloud) Name() string                                                    { return Name }
func (Cloud) Keys() config.CloudKeys                                          { return config.CloudKeys{} }
func (Cloud) Traits() clouds.Traits                                           { return clouds.Traits{} }
func (Cloud) CheckBoundary(*config.Boundary, *clouds.Problems)                {}
func (Cloud) EndpointURL(_, raw string) string                                { return raw }
func (Cloud) RegionProblem(*config.Boundary, string) string                   { return "" }
func (Cloud) Crosses(*config.Boundary, string) string                         { return "" }
func (Cloud) Sovereign(*config.Boundary) bool                                 { return false }
func (Cloud) Agree(*config.Boundary) map[string]string                        { return nil }
func (Cloud) Backends() []string                                              { return nil }
func (Cloud) CheckBackend(*config.Target, *config.Boundary, *clouds.Problems) {}
func (Cloud) Env(*clouds.EnvBuilder, *config.Target) error                    { return nil }

// Preflight is never called (Traits().Proven is false): there is nothing to prove.
func (Cloud) Preflight(context.Context, *clouds.Manager, *config.Boundary, string) (clouds.Identity, error) {
	return clouds.Identity{Cloud: Name, Scope: Name, Principal: "none needed", Attempts: 1}, nil
}

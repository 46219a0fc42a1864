// Package noop is a provisioner that does nothing and succeeds at once, for measuring the engine
// without Terraform (BenchmarkEngine, and the noopcmd build of rollout). Never ship it.
package noop

import (
	"context"

	"github.com/rollout-dev/rollout/internal/rings"
)

// Provisioner plans one change per target and applies it instantly.
type Provisioner struct{}

var _ rings.Provisioner = Provisioner{}

func (Provisioner) Apply(_ context.Context, _ string, _ rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	planned(rings.PlanSummary{Change: 1})
	return rings.ApplyResult{Summary: rings.PlanSummary{Change: 1}}, nil
}

func (Provisioner) Outputs(context.Context, string) (map[string]any, error) { return nil, nil }

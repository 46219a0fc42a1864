// Command noopcmd is rollout with a no-op provisioner: every command and flag as the real binary,
// the real configuration loading, journal, engine, display and reports, but a target's apply does
// nothing and succeeds at once. The command-level engine benchmark (internal/bench,
// BenchmarkEngineCommand) runs it over 10,000 targets, so what it measures is everything rollout
// adds around Terraform. Never ship it: it deploys nothing.
package main

import (
	"context"
	"os"

	"github.com/rollout-dev/rollout/internal/cli"
	"github.com/rollout-dev/rollout/internal/rings"
)

type noop struct{}

func (noop) Apply(_ context.Context, _ string, _ rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	planned(rings.PlanSummary{Change: 1})
	return rings.ApplyResult{Summary: rings.PlanSummary{Change: 1}}, nil
}

func (noop) Outputs(context.Context, string) (map[string]any, error) { return map[string]any{}, nil }

func main() {
	os.Exit(cli.Main(os.Args[1:], func(io *cli.IO) {
		io.Provisioner = func(rings.Provisioner) rings.Provisioner { return noop{} }
	}))
}

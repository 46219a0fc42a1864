// Command noopcmd is rollout with a no-op provisioner (package noop): every command and flag as
// the real binary, the real configuration loading, journal, engine, display and reports, but a
// target's apply does nothing and succeeds at once. The command-level engine benchmark
// (internal/bench, BenchmarkEngineCommand) runs it over 10,000 targets, so what it measures is
// everything rollout adds around Terraform. Never ship it: it deploys nothing.
package main

import (
	"os"

	"github.com/rollout-dev/rollout/internal/bench/noop"
	"github.com/rollout-dev/rollout/internal/cli"
	"github.com/rollout-dev/rollout/internal/rings"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], func(io *cli.IO) {
		io.Provisioner = func(rings.Provisioner) rings.Provisioner { return noop.Provisioner{} }
	}))
}

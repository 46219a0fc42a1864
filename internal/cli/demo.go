package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/demo"
)

type demoOptions struct {
	Dir, Engine, TemporalAddress string
}

func newDemoCmd(io IO, g globals) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use: "demo [--dir DIR] [--engine inprocess|temporal]",
		Example: `  rollout demo
  rollout demo --dir /tmp/rollout-demo --output json
  rollout demo --engine temporal                       # starts .tools/bin/temporal's development server
  rollout demo --engine temporal --temporal-address 127.0.0.1:7233`,
		Short: "Run the demo: v1 everywhere, v2 ring by ring, then a faulty v3 that is rolled back",
		Long: `Write the example fleet (six stamps, three simulated boundaries, rings canary, commercial and
sovereign) into DIR (default: a new temporary directory), start a stand-in HTTP application whose
health per stamp follows what Terraform deployed there, and run three releases through real
Terraform/OpenTofu:

  v1  deployed everywhere (the sovereign ring waits for an approval, which the demo gives)
  v2  promoted ring by ring the same way
  v3  carries a fault that shows on commercial stamps: its gate fails in the second ring, and the
      tool rolls that ring back to v2 by itself (exit 2); the sovereign ring never sees v3

With --engine temporal the same demo runs on the engine on Temporal (docs/temporal.md): each run a
workflow, a worker per boundary and one for the journal started by the demo (logs in
DIR/.rollout/), on the server at --temporal-address, or on the Temporal CLI's development server,
which the demo starts (the CLI: ROLLOUT_TEMPORAL_CLI, else .tools/bin/temporal, else temporal on
PATH; make test-tools builds it).

It exits 0 when the tool behaved as designed, and says what differed otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return demoRun(cmd.Context(), io, g, o) },
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "where to write the demo fleet (default: a new temporary directory)")
	cmd.Flags().StringVar(&o.Engine, "engine", "inprocess", "what drives the runs: inprocess, or temporal (workflows and a worker per boundary)")
	cmd.Flags().StringVar(&o.TemporalAddress, "temporal-address", "", "with --engine temporal: a Temporal frontend (host:port) instead of a development server the demo starts")
	return cmd
}

func demoRun(ctx context.Context, io IO, g globals, o *demoOptions) error {
	inner := io // each start's own report goes to stderr as text; stdout carries the demo's
	if g.json() {
		inner.Out = ioDiscard{}
	}
	on, err := demoEngine(o)
	if err != nil {
		return err
	}
	out, err := demo.Run(ctx, demo.Scenario{Dir: o.Dir, Notes: io.Err, Temporal: on, Start: func(ctx context.Context, config, release string, vars []string) int {
		g.v.Set("config", config)
		err := startRun(ctx, inner, g, &startOptions{Release: release, Wait: true, Vars: vars})
		var ee *ExitErr
		if err != nil && (!errors.As(err, &ee) || ee.Err != nil) {
			fmt.Fprintf(io.Err, "rollout: %v\n", err)
		}
		return exitCode(err)
	}})
	if err != nil {
		return err
	}
	if g.json() {
		if err := writeJSON(io.Out, struct {
			V int `json:"v"`
			*demo.Outcome
		}{1, out}); err != nil {
			return err
		}
	}
	if !out.AsDesigned {
		return fail("the demo did not go as designed:\n  %s", strings.Join(out.Problems, "\n  "))
	}
	return nil
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// demoEngine is how the demo reaches Temporal (nil: the in-process engine).
func demoEngine(o *demoOptions) (*demo.Temporal, error) {
	switch o.Engine {
	case "inprocess":
		return nil, nil
	case "temporal":
	default:
		return nil, fail("--engine must be inprocess or temporal, got %q", o.Engine)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	t := &demo.Temporal{Address: o.TemporalAddress, Rollout: self}
	if t.Address != "" {
		return t, nil
	}
	for _, c := range []string{os.Getenv("ROLLOUT_TEMPORAL_CLI"), filepath.Join(".tools", "bin", "temporal"), "temporal"} {
		if p, err := exec.LookPath(c); c != "" && err == nil {
			t.CLI, _ = filepath.Abs(p)
			return t, nil
		}
	}
	return nil, fail("--engine temporal needs a Temporal server: give --temporal-address, or the Temporal CLI (ROLLOUT_TEMPORAL_CLI, .tools/bin/temporal from make test-tools, or temporal on PATH) for a development server")
}

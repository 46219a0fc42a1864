package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/demo"
)

type demoOptions struct {
	Dir string
}

func newDemoCmd(io IO, g globals) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use: "demo [--dir DIR]",
		Example: `  rollout demo
  rollout demo --dir /tmp/rollout-demo --output json`,
		Short: "Run the demo: v1 everywhere, v2 ring by ring, then a faulty v3 that is rolled back",
		Long: `Write the example fleet (six stamps, three simulated boundaries, rings canary, commercial and
sovereign) into DIR (default: a new temporary directory), start a stand-in HTTP application whose
health per stamp follows what Terraform deployed there, and run three releases through real
Terraform/OpenTofu:

  v1  deployed everywhere (the sovereign ring waits for an approval, which the demo gives)
  v2  promoted ring by ring the same way
  v3  carries a fault that shows on commercial stamps: its gate fails in the second ring, and the
      tool rolls that ring back to v2 by itself (exit 2); the sovereign ring never sees v3

It exits 0 when the tool behaved as designed, and says what differed otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return demoRun(cmd.Context(), io, g, o) },
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "where to write the demo fleet (default: a new temporary directory)")
	return cmd
}

func demoRun(ctx context.Context, io IO, g globals, o *demoOptions) error {
	inner := io // each start's own report goes to stderr as text; stdout carries the demo's
	if g.json() {
		inner.Out = ioDiscard{}
	}
	out, err := demo.Run(ctx, demo.Scenario{Dir: o.Dir, Notes: io.Err, Start: func(ctx context.Context, config, release string, vars []string) int {
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
		if err := writeJSON(io.Out, out); err != nil {
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

package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/runs"
)

func newValidateCmd(io IO, g globals) *cobra.Command {
	return &cobra.Command{
		Use: "validate",
		Example: `  rollout validate
  rollout --config rollout.aws.yaml validate --output json`,
		Short: "Check the fleet's configuration; every problem names its file, line and key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := runs.LoadConfig(g.configPath())
			if err != nil {
				if g.json() { // every problem, each with its file, line and key, on stdout too
					var problems []map[string]any
					var fields config.Errors
					if errors.As(err, &fields) {
						for _, e := range fields {
							problems = append(problems, map[string]any{"file": e.File, "line": e.Line, "key": e.Key, "message": e.Msg})
						}
					} else {
						problems = append(problems, map[string]any{"message": err.Error()})
					}
					if werr := writeJSON(io.Out, map[string]any{"v": 1, "valid": false, "config": g.configPath(), "problems": problems}); werr != nil {
						return werr
					}
				}
				return err
			}
			type ring struct {
				Name    string   `json:"name"`
				Targets []string `json:"targets"`
			}
			out := struct {
				V       int      `json:"v"`
				Valid   bool     `json:"valid"`
				Config  string   `json:"config"`
				Targets int      `json:"targets"`
				Rings   []ring   `json:"rings"`
				Notes   []string `json:"notes,omitempty"`
			}{V: 1, Valid: true, Config: cfg.File, Targets: len(cfg.Targets)}
			for _, r := range cfg.Rings {
				out.Rings = append(out.Rings, ring{r.Name, r.Targets})
			}
			out.Notes = append(out.Notes, cfg.Notes...)
			// Variables a release must bring with --var: not a problem of the files, but start
			// refuses a release without them.
			for _, n := range provision.MissingSummary(cfg, cfg.Release.Vars) {
				out.Notes = append(out.Notes, n+": give it with start --var, or in release.vars")
			}
			if g.json() {
				return writeJSON(io.Out, out)
			}
			fmt.Fprintf(io.Out, "%s is valid: %d target(s) in %d ring(s)\n", cfg.File, len(cfg.Targets), len(cfg.Rings))
			for _, r := range out.Rings {
				fmt.Fprintf(io.Out, "  %-12s %v\n", r.Name, r.Targets)
			}
			for _, n := range out.Notes {
				fmt.Fprintln(io.Err, "note: "+n)
			}
			return nil
		},
	}
}

package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newPreflightCmd(io IO, g globals) *cobra.Command {
	var only []string
	cmd := &cobra.Command{
		Use: "preflight [--boundary B ...]",
		Example: `  rollout preflight
  rollout --config rollout.aws.yaml preflight --boundary aws-us-gov --output json`,
		Short: "Prove each boundary's configured identity works, with that cloud's own SDK",
		Long: `Prove, for each boundary (or those given), that its configured identity works in that boundary
and nowhere else: Azure acquires a token for that cloud's Resource Manager audience from its own
authority and checks the tenant; AWS calls STS GetCallerIdentity on the partition's regional
endpoint and checks the partition and account; Google Cloud obtains a token and checks the
credential's universe. It prints who each identity is (principal, account or tenant or project,
partition or universe), never a secret. start runs the same check when a ring first enters a
boundary, and journals it. Exit 0 when every boundary checked passes, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := runs.LoadConfig(g.configPath())
			if err != nil {
				return err
			}
			out, err := runs.Preflight(cmd.Context(), cfg, only)
			if out == nil {
				return err
			}
			if g.json() {
				if werr := writeJSON(io.Out, map[string]any{"v": 1, "boundaries": out}); werr != nil {
					return werr
				}
				return err
			}
			tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BOUNDARY\tCLOUD\tSCOPE\tPRINCIPAL\tACCOUNT\tRESULT")
			for _, r := range out {
				if r.Identity == nil {
					fmt.Fprintf(tw, "%s\t%s\t\t\t\tFAILED: %s\n", r.Boundary, cfg.Boundaries[r.Boundary].Cloud, clean(r.Error))
					continue
				}
				id := r.Identity
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\tok\n", r.Boundary, id.Cloud, id.Scope, id.Principal, id.Account)
			}
			_ = tw.Flush()
			return err
		},
	}
	cmd.Flags().StringArrayVar(&only, "boundary", nil, "check only this boundary (repeatable)")
	return cmd
}

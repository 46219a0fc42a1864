package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newVersionCmd(io IO, g globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print rollout's version and commit, and the Terraform or OpenTofu binary it would run",
		Example: "  rollout version\n  rollout version --output json --tf-bin /usr/local/bin/tofu",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printVersion(cmd.Context(), io, g)
		},
	}
}

func printVersion(ctx context.Context, io IO, g globals) error {
	v := runs.Version(ctx, g.tfBin())
	if g.json() {
		return writeJSON(io.Out, struct {
			V int `json:"v"`
			runs.VersionInfo
		}{1, v})
	}
	_, err := fmt.Fprint(io.Out, v.Text())
	return err
}

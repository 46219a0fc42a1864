package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newInitCmd(io IO, g globals) *cobra.Command {
	r := runs.InitRequest{}
	cmd := &cobra.Command{
		Use: "init --cloud aws|azure|gcp|local [--scope S ...] [--dir DIR]",
		Example: `  rollout init --cloud local --dir my-fleet && cd my-fleet && rollout validate && rollout plan --release v1
  rollout init --cloud aws --scope aws --scope aws-us-gov
  rollout init --cloud azure --scope usgovernment --scope china --output json`,
		Short: "Write a starter fleet for a cloud and its boundaries: it validates, and its plan runs once identities are filled in",
		Long: `Write a starter fleet into --dir (default: here): rollout.yaml with one boundary per --scope of the
cloud (AWS partitions aws, aws-us-gov, aws-cn, aws-eusc; Azure environments public,
usgovernment, china; Google universes googleapis.com, s3nsapis.fr; local; default: the
commercial one), two targets in each under environments/ (local state on purpose until the
boundary gets a backend), a canary ring and a ring per boundary (later boundaries need an
approval), and a Terraform module that needs no provider. rollout validate passes at once; plan
and start run once each boundary's identity is filled in (at once for --cloud local). Nothing is
written over an existing fleet.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := runs.Init(r)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(io.Out, struct {
					V int `json:"v"`
					*runs.InitResult
				}{1, res})
			}
			fmt.Fprintf(io.Out, "wrote a starter fleet in %s (cloud %s): %s\n", res.Dir, res.Cloud, strings.Join(res.Files, ", "))
			for _, b := range res.Boundaries {
				fmt.Fprintf(io.Out, "  boundary %s: scope %s, region %s\n", b.Name, b.Scope, b.Region)
			}
			fmt.Fprintln(io.Out, "next:")
			for _, n := range res.Next {
				fmt.Fprintln(io.Out, "  "+n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&r.Cloud, "cloud", "", "the cloud: aws, azure, gcp or local (required)")
	cmd.Flags().StringArrayVar(&r.Scopes, "scope", nil, "a scope of the cloud, one boundary each (repeatable; default: the commercial one)")
	cmd.Flags().StringVar(&r.Dir, "dir", "", "where to write the fleet (default: the current directory)")
	_ = cmd.MarkFlagRequired("cloud")
	_ = cmd.RegisterFlagCompletionFunc("cloud", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"aws", "azure", "gcp", "local"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

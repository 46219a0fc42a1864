package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newEnvCmd(io IO, g globals) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Grow the fleet: add targets in new regions and clouds", Example: `  rollout env add --boundary aws-us-gov --region us-gov-east-1 --name govcloud-east-2 --ring govcloud`}
	cmd.AddCommand(newEnvAddCmd(io, g))
	return cmd
}

type envAddOptions struct {
	Boundary, Region, Name, Ring, File string
	Labels, Vars                       []string
}

func newEnvAddCmd(io IO, g globals) *cobra.Command {
	o := &envAddOptions{}
	cmd := &cobra.Command{
		Use: "add --boundary B --region R --name N [--ring RING] [--label k=v ...] [--var k=v ...] [--file PATH]",
		Example: `  rollout env add --boundary aws-us-gov --region us-gov-east-1 --name govcloud-east-2 --ring govcloud
  rollout --config rollout.azure.yaml env add --boundary azure-usgov --region usgovarizona --name usgov-arizona-1 --ring gov`,
		Short: "Write a new target's file under environments/ and validate the fleet with it",
		Long: `Write a new target to environments/<boundary>/<name>.yaml (or --file): its boundary, region,
labels, variables, and a state backend from the boundary's convention (boundaries.B.backend, whose
values are templates over .Target and .Boundary; a cloud boundary without one is refused rather
than given local state). With --ring, the labels that ring selects by are added, or, for a ring
that selects by name, the name is added to its list in rollout.yaml; a ring that cannot select the
target is refused. The whole fleet is then validated with the new
file (regions, backends, rings); if anything is wrong, everything written is taken back and
every problem is reported. Bring the target up to its ring's release with rollout expand, or let the ring's next
release reach it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return envAdd(io, g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Boundary, "boundary", "", "the target's boundary (required)")
	f.StringVar(&o.Region, "region", "", "the target's region, checked against the boundary")
	f.StringVar(&o.Name, "name", "", "the target's name (required)")
	f.StringVar(&o.Ring, "ring", "", "the ring it joins")
	f.StringArrayVar(&o.Labels, "label", nil, "a label k=v (repeatable)")
	f.StringArrayVar(&o.Vars, "var", nil, "a Terraform variable k=v (repeatable)")
	f.StringVar(&o.File, "file", "", "where to write it (default environments/<boundary>/<name>.yaml)")
	_ = cmd.MarkFlagRequired("boundary")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func envAdd(io IO, g globals, o *envAddOptions) error {
	labels, err := pairs("--label", o.Labels)
	if err != nil {
		return err
	}
	vars, err := pairs("--var", o.Vars)
	if err != nil {
		return err
	}
	added, err := runs.AddTarget(g.configPath(), runs.AddTargetRequest{Boundary: o.Boundary, Region: o.Region, Name: o.Name, Ring: o.Ring,
		File: o.File, Labels: labels, Vars: vars}, io.Err)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(io.Out, struct {
			V int `json:"v"`
			runs.AddedTarget
		}{1, added})
	}
	fmt.Fprintf(io.Out, "wrote %s: target %s (boundary %s, region %s) in ring %s; the fleet validates\n", added.File, o.Name, o.Boundary, o.Region, added.Ring)
	return nil
}

func pairs(flag string, kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fail("%s %q: want name=value", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newReleaseCmd(io IO, g globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Carry a release across an air gap: export it from one fleet, import it into another",
		Example: `  rollout release export v42 --out v42.rollout.tgz --providers     # on the commercial side
  rollout --config sovereign/ release import v42.rollout.tgz --providers-to /mirror  # inside the boundary`,
	}
	cmd.AddCommand(newReleaseExportCmd(io, g), newReleaseImportCmd(io, g))
	return cmd
}

func newReleaseExportCmd(io IO, g globals) *cobra.Command {
	var out string
	var providers bool
	cmd := &cobra.Command{
		Use:   "export RELEASE --out FILE [--providers]",
		Short: "Write a release as one archive whose every part is checked by digest on import",
		Long: `Write the release (as the journal recorded it: its module snapshot, its variables with secret ones
sealed, never their values) into one tar.gz: release.json, release.descriptor (what the release
digest is the SHA-256 of: its name, module snapshot and variables), module.tar.gz (the module
snapshot, with the providers' lock file; for a stack, the stack's, and component-NAME.tar.gz for
each component), with --providers those providers (for a boundary's filesystem mirror; for a
stack, providers-NAME.tar.gz per component), and manifest.json with the SHA-256 of each. It prints the archive's SHA-256.`,
		Example: "  rollout release export v42 --out v42.rollout.tgz --providers",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return act(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) error {
				sum, err := f.ExportRelease(ctx, args[0], out, providers)
				switch {
				case err != nil:
					return err
				case g.json():
					return writeJSON(io.Out, map[string]any{"v": 1, "release": args[0], "archive": out, "sha256": sum})
				}
				_, err = fmt.Fprintf(io.Out, "%s  %s\n", sum, out)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the archive to write (required)")
	cmd.Flags().BoolVar(&providers, "providers", false, "include the providers installed for the release here")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newReleaseImportCmd(io IO, g globals) *cobra.Command {
	var providersTo string
	cmd := &cobra.Command{
		Use:   "import FILE [--providers-to DIR]",
		Short: "Check an exported release's every digest and record it in this fleet under the same name",
		Long: `Check an archive from rollout release export: every file against the manifest, the release digest
against its descriptor, the module snapshot against its digest; then record the release in this
fleet's journal under the same name and digest. A name that means another release here, or any
digest that does not match (one byte changed), a name that is not a name, or an entry over a cap
(1 GiB, 1.5 GiB in all, 64 entries) is refused (exit 1) and nothing is recorded. --providers-to
DIR checks every provider package against the release's lock file (its h1 hashes) before
anything is recorded, then puts them in the layout a filesystem mirror reads
(boundaries.B.providerMirror); a file the mirror holds already is never replaced with other
bytes. Then 'rollout start --release NAME' starts it here, once this
fleet's module tree and release variables mean the same digest.`,
		Example: "  rollout release import v42.rollout.tgz --providers-to /srv/terraform-mirror",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return act(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) error {
				rel, err := f.ImportRelease(ctx, args[0], providersTo)
				if err != nil {
					return &ExitErr{Code: ExitError, Err: err}
				}
				if g.json() {
					return writeJSON(io.Out, map[string]any{"v": 1, "release": rel.Name, "digest": rel.Digest, "recorded": true})
				}
				fmt.Fprintf(io.Out, "release %s (digest %s) recorded\n", rel.Name, rel.Digest)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&providersTo, "providers-to", "", "unpack the archive's providers here (a filesystem mirror)")
	return cmd
}

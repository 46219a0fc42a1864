package cli

import (
	"cmp"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/runs"
)

func newStateCmd(io IO, g globals) *cobra.Command {
	cmd := &cobra.Command{
		Use: "state",
		Example: `  rollout state doctor
  rollout state export --to fleet.ndjson`,
		Short: "The journal: migrate, doctor, export, import",
		Long: `The journal keeps runs, their events, releases with their module bundles, and the fleet lease.
It is SQLite at .rollout/state.db by default, or a shared PostgreSQL database named by --state,
ROLLOUT_STATE or state: in rollout.yaml (see docs/state.md).`,
	}
	cmd.AddCommand(newStateMigrateCmd(io, g), newStateDoctorCmd(io, g), newStateExportCmd(io, g), newStateImportCmd(io, g))
	return cmd
}

func newStateMigrateCmd(io IO, g globals) *cobra.Command {
	return &cobra.Command{
		Use:     "migrate",
		Example: `  ROLLOUT_STATE=postgres://rollout@db.internal/fleet rollout state migrate`,
		Short:   "Apply the schema migrations the journal lacks (also done on first use, safely when processes start at once)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, done, err := opener(cmd.Context(), io, g, runs.OpenConfig) // opening migrates
			if err != nil {
				return err
			}
			defer done()
			store, have, want, err := f.Schema(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(io.Out, map[string]any{"v": 1, "store": store, "schemaVersion": have, "knownVersion": want})
			}
			fmt.Fprintf(io.Out, "%s: schema version %d (this rollout knows %d)\n", store, have, want)
			return nil
		},
	}
}

func newStateDoctorCmd(io IO, g globals) *cobra.Command {
	var targets bool
	cmd := &cobra.Command{
		Use: "doctor",
		Example: `  rollout state doctor
  rollout state doctor --targets --output json`,
		Short: "Check the journal: schema version, lease, unfinished runs, releases without their bundle",
		Long: `Check the journal and say what needs attention. Exit 1 when something is wrong (a schema
version this rollout does not know, a release whose bundle is missing so that another machine
could not apply it, files of the fleet's local directory that other users could read); unfinished
runs and a held lease are reported as notes.

--targets also compares, per target, what the journal says is deployed with what Terraform's
state says: the outputs journaled with the target's last apply or rollback against its outputs
now (agrees, differs, unknown); exit 1 when any target differs. It runs terraform output per
target, with the target's boundary credentials.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			how := runs.OpenConfig
			if targets {
				how = runs.Open // terraform output per target
			}
			f, done, err := opener(ctx, io, g, how)
			if err != nil {
				return err
			}
			defer done()
			rep, err := f.Doctor(ctx, targets)
			if err != nil {
				return err
			}
			if g.json() {
				if err := writeJSON(io.Out, struct {
					V int `json:"v"`
					runs.DoctorReport
				}{1, rep}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(io.Out, "journal  %s\nschema   version %d (this rollout knows %d)\n", rep.Store, rep.Schema, rep.Known)
				if rep.Lease == nil {
					fmt.Fprintln(io.Out, "lease    free")
				} else {
					fmt.Fprintf(io.Out, "lease    held by %s (pid %d on %s, %s, token %d) since %s, expires in %s\n", rep.Lease.Holder.Name,
						rep.Lease.Holder.PID, rep.Lease.Holder.Host, rep.Lease.Holder.Doing, rep.Lease.Token,
						rep.Lease.Since.Local().Format(time.DateTime), time.Until(rep.Lease.Expires).Round(time.Second))
				}
				fmt.Fprintf(io.Out, "runs     %d (%d unfinished)\nreleases %d, bundles %d\n", rep.Runs, len(rep.Unfinished), rep.Releases, rep.Bundles)
				for _, n := range rep.Notes {
					fmt.Fprintln(io.Out, "note:    "+n)
				}
				if len(rep.Targets) > 0 {
					tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "\nTARGET\tJOURNAL\tTERRAFORM STATE\tDETAIL")
					for _, t := range rep.Targets {
						name := t.Target
						if t.Component != "" {
							name += "/" + t.Component
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", clean(name), cmp.Or(t.Journal, "-"), t.Verdict, clean(t.Detail))
					}
					tw.Flush()
				}
				for _, p := range rep.Problems {
					fmt.Fprintln(io.Out, "PROBLEM: "+p)
				}
			}
			if len(rep.Problems) > 0 {
				return &ExitErr{Code: ExitError}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&targets, "targets", false, "compare each target's journal with its Terraform state")
	return cmd
}

type transferOptions struct{ File string }

func newStateExportCmd(io IO, g globals) *cobra.Command {
	o := &transferOptions{}
	cmd := &cobra.Command{
		Use:     "export [--to FILE]",
		Example: `  rollout state export --to fleet.ndjson`,
		Short:   "Write the whole journal as NDJSON (runs, releases, bundles, events), to move it to another store",
		Long: `Write the whole journal as NDJSON to FILE (default: stdout): runs, releases, release bundles,
and every event in the order it was appended. ` + "`rollout state import`" + ` into an empty journal of
either kind restores it exactly, e.g. to move a fleet from a laptop's SQLite to the team's
PostgreSQL:

  rollout state export --to fleet.ndjson
  ROLLOUT_STATE=postgres://rollout@db.internal/fleet rollout state import --from fleet.ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, done, err := opener(cmd.Context(), io, g, runs.OpenConfig)
			if err != nil {
				return err
			}
			defer done()
			w := io.Out
			if o.File != "" && o.File != "-" {
				file, err := os.OpenFile(o.File, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			return f.Export(cmd.Context(), w)
		},
	}
	cmd.Flags().StringVar(&o.File, "to", "", "write to this file (default: stdout)")
	return cmd
}

func newStateImportCmd(io IO, g globals) *cobra.Command {
	o := &transferOptions{}
	cmd := &cobra.Command{
		Use:     "import [--from FILE]",
		Example: `  ROLLOUT_STATE=postgres://rollout@db.internal/fleet rollout state import --from fleet.ndjson`,
		Short:   "Read an export into this (empty) journal",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, done, err := opener(cmd.Context(), io, g, runs.OpenConfig)
			if err != nil {
				return err
			}
			defer done()
			r := io.In
			if o.File != "" && o.File != "-" {
				file, err := os.Open(o.File)
				if err != nil {
					return err
				}
				defer file.Close()
				r = file
			}
			n, err := f.Import(cmd.Context(), r)
			if err != nil {
				return &ExitErr{Code: ExitError, Err: err}
			}
			fmt.Fprintf(io.Err, "imported %d records\n", n)
			if g.json() {
				return writeJSON(io.Out, map[string]any{"v": 1, "imported": n})
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.File, "from", "", "read from this file (default: stdin)")
	return cmd
}

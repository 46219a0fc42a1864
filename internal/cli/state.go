package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
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
			f, err := openFleet(cmd.Context(), g, false) // opening migrates
			if err != nil {
				return err
			}
			defer f.Close()
			have, want, err := f.store.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(io.Out, "%s: schema version %d (this rollout knows %d)\n", f.store.Describe(), have, want)
			return nil
		},
	}
}

type doctorReport struct {
	Store      string             `json:"store"`
	Schema     int                `json:"schemaVersion"`
	Known      int                `json:"knownVersion"`
	Lease      *journal.LeaseInfo `json:"lease"`
	Runs       int                `json:"runs"`
	Unfinished []string           `json:"unfinished,omitempty"`
	Releases   int                `json:"releases"`
	Bundles    int                `json:"bundles"`
	Problems   []string           `json:"problems,omitempty"`
	Notes      []string           `json:"notes,omitempty"`
}

func newStateDoctorCmd(io IO, g globals) *cobra.Command {
	return &cobra.Command{
		Use: "doctor",
		Example: `  rollout state doctor
  rollout state doctor --targets --output json`,
		Short: "Check the journal: schema version, lease, unfinished runs, releases without their bundle",
		Long: `Check the journal and say what needs attention. Exit 1 when something is wrong (a schema
version this rollout does not know, a release whose bundle is missing so that another machine
could not apply it); unfinished runs and a held lease are reported as notes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := openFleet(ctx, g, false)
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := doctor(ctx, f.store)
			if err != nil {
				return err
			}
			if g.json() {
				if err := writeJSON(io.Out, rep); err != nil {
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
}

func doctor(ctx context.Context, s journal.Store) (doctorReport, error) {
	rep := doctorReport{Store: s.Describe()}
	var err error
	if rep.Schema, rep.Known, err = s.SchemaVersion(ctx); err != nil {
		return rep, err
	}
	if rep.Schema != rep.Known {
		rep.Problems = append(rep.Problems, fmt.Sprintf("schema version %d, this rollout knows %d: run `rollout state migrate` (or upgrade rollout)", rep.Schema, rep.Known))
	}
	if rep.Lease, err = s.Lease(ctx); err != nil {
		return rep, err
	}
	if rep.Lease != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the fleet is held by %s (%s)", rep.Lease.Holder.Name, rep.Lease.Holder.Doing))
	}
	runs, err := s.Runs(ctx)
	if err != nil {
		return rep, err
	}
	rep.Runs = len(runs)
	for _, r := range runs {
		st := &rings.State{}
		if err := s.RunEvents(ctx, r.ID, func(ev rings.Event) error { rings.Decide(st, ev); return nil }); err != nil {
			return rep, err
		}
		if !rings.Terminal(st.Phase) {
			rep.Unfinished = append(rep.Unfinished, r.ID)
			rep.Notes = append(rep.Notes, fmt.Sprintf("run %s (%s %s) is unfinished (%s)", r.ID, r.Kind, r.Release.Name, firstNonEmpty(st.Phase, "never started")))
		}
	}
	rels, err := s.Releases(ctx)
	if err != nil {
		return rep, err
	}
	digests, err := s.BundleDigests(ctx)
	if err != nil {
		return rep, err
	}
	rep.Releases, rep.Bundles = len(rels), len(digests)
	have := map[string]bool{}
	for _, d := range digests {
		have[d] = true
	}
	for _, r := range rels {
		if !have[r.Ref().ModuleDigest()] {
			rep.Problems = append(rep.Problems, fmt.Sprintf("release %s has no bundle (module %.12s): only a machine holding its snapshot can apply it", r.Name, r.Ref().ModuleDigest()))
		}
	}
	return rep, nil
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
			f, err := openFleet(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer f.Close()
			w := io.Out
			if o.File != "" && o.File != "-" {
				file, err := os.OpenFile(o.File, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			if err := journal.Export(cmd.Context(), f.store, w); err != nil {
				return fmt.Errorf("export %s: %w", f.store.Describe(), err)
			}
			return nil
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
			f, err := openFleet(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer f.Close()
			r := io.In
			if o.File != "" && o.File != "-" {
				file, err := os.Open(o.File)
				if err != nil {
					return err
				}
				defer file.Close()
				r = file
			}
			n, err := journal.Import(cmd.Context(), f.store, r)
			if err != nil {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("import into %s: %w", f.store.Describe(), err)}
			}
			fmt.Fprintf(io.Err, "imported %d records into %s\n", n, f.store.Describe())
			return nil
		},
	}
	cmd.Flags().StringVar(&o.File, "from", "", "read from this file (default: stdin)")
	return cmd
}

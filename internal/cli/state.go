package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
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
	// Targets (with --targets): per target, what the journal says is deployed against what its
	// Terraform state says.
	Targets []targetTruth `json:"targets,omitempty"`
}

// targetTruth compares one target's journal with its Terraform state: the outputs the journal
// recorded with the target's last apply or rollback against the outputs in its state now
// (sensitive values redacted on both sides).
type targetTruth struct {
	Target  string `json:"target"`
	Journal string `json:"journal"` // the release the journal says is deployed ("" for none)
	Verdict string `json:"verdict"` // agrees | differs | unknown
	Detail  string `json:"detail,omitempty"`
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
			f, err := openFleet(ctx, g, targets)
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := doctor(ctx, f.store)
			if err != nil {
				return err
			}
			if traces := localTraces(f.stateDir); rep.Runs == 0 && traces != "" {
				rep.Problems = append(rep.Problems, "the journal holds no run, but "+f.stateDir+" shows earlier ones ("+traces+"): the journal was lost or emptied; restore it with rollout state import")
			}
			for _, m := range looseModes(f.stateDir) {
				rep.Problems = append(rep.Problems, "readable or writable by other users: "+m+" (rollout makes its files 0600: chmod -R go-rwx "+f.stateDir+")")
			}
			if targets {
				if rep.Targets, err = f.targetTruths(ctx); err != nil {
					return err
				}
				for _, t := range rep.Targets {
					if t.Verdict == "differs" {
						rep.Problems = append(rep.Problems, fmt.Sprintf("target %s: the journal says %s; %s", t.Target, firstNonEmpty(t.Journal, "nothing is deployed"), t.Detail))
					}
				}
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
				if len(rep.Targets) > 0 {
					tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "\nTARGET\tJOURNAL\tTERRAFORM STATE\tDETAIL")
					for _, t := range rep.Targets {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Target, firstNonEmpty(t.Journal, "-"), t.Verdict, t.Detail)
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

// targetTruths compares each declared target's journal with its Terraform state.
func (f *fleet) targetTruths(ctx context.Context) ([]targetTruth, error) {
	var out []targetTruth
	for _, t := range f.cfg.Targets {
		evs, err := f.store.TargetEvents(ctx, t.Name, rings.TargetApplied, rings.TargetRolledBack)
		if err != nil {
			return nil, err
		}
		tt := targetTruth{Target: t.Name}
		var last *rings.Event
		if len(evs) > 0 {
			last = &evs[len(evs)-1]
			tt.Journal = relName(last.Release)
		}
		state, here, err := f.prov.PublicOutputs(ctx, t.Name)
		tt.Verdict, tt.Detail = compareTruth(last, journalable(f.redact, state), here, err)
		out = append(out, tt)
	}
	return out, nil
}

// compareTruth is the verdict on one target: what the journal recorded with its last apply or
// rollback (nil: none) against the outputs in its state now.
func compareTruth(last *rings.Event, state map[string]any, here bool, err error) (string, string) {
	switch {
	case err != nil:
		return "unknown", "terraform output: " + err.Error()
	case !here && last == nil:
		return "agrees", "never deployed"
	case !here:
		return "unknown", "not set up on this machine (its state may live elsewhere): run from where the fleet's runs run"
	case last == nil && len(state) > 0:
		return "differs", "Terraform's state has outputs, yet the journal records no apply"
	case last == nil:
		return "agrees", "never deployed"
	case last.Outputs == nil:
		return "unknown", "the journal recorded no outputs with " + string(last.Type) + " (an earlier rollout version, or a module without outputs)"
	case !jsonEqual(last.Outputs, state):
		return "differs", fmt.Sprintf("Terraform's state has outputs %s, the journal recorded %s with %s of %s", compact(state), compact(last.Outputs), last.Type, relName(last.Release))
	}
	return "agrees", fmt.Sprintf("outputs match %s of %s", last.Type, relName(last.Release))
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return truncate(string(b), 200)
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

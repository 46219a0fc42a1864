package runs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/provision"
	"github.com/rollout-dev/rollout/internal/rings"
)

// PreflightResult is one boundary's identity as proven, or why it was not.
type PreflightResult struct {
	Boundary string          `json:"boundary"`
	Verified bool            `json:"verified"`
	Identity *rings.Identity `json:"identity,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Preflight proves each boundary's configured identity (or only those named) with the cloud's own
// SDK. err says how many failed.
func Preflight(ctx context.Context, cfg *config.Config, only []string) ([]PreflightResult, error) {
	names := only
	if len(names) == 0 {
		for n := range cfg.Boundaries {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	m := &clouds.Manager{Config: cfg, Catalog: catalog.All}
	var out []PreflightResult
	failed := 0
	for _, n := range names {
		if cfg.Boundaries[n] == nil {
			return nil, fmt.Errorf("--boundary %s: no such boundary in %s", n, cfg.File)
		}
		id, err := m.Preflight(ctx, n, "")
		r := PreflightResult{Boundary: n, Verified: err == nil}
		if err != nil {
			r.Error, failed = err.Error(), failed+1
		} else {
			r.Identity = &id
		}
		out = append(out, r)
	}
	if failed > 0 {
		return out, fmt.Errorf("%d boundary preflight(s) failed", failed)
	}
	return out, nil
}

// DriftLine is one target's drift.
type DriftLine struct {
	Ring      string            `json:"ring"`
	Target    string            `json:"target"`
	Release   *rings.ReleaseRef `json:"release,omitempty"` // what it runs: the release the check plans
	Drifted   bool              `json:"drifted"`
	Resources []string          `json:"resources,omitempty"`
	Error     string            `json:"error,omitempty"`
	Skipped   string            `json:"skipped,omitempty"`
}

// Drift runs a refresh-only plan of every deployed target (or those of the named rings) at the
// release it runs, in parallel, and says which drifted and where. Nothing is changed.
func (f *Fleet) Drift(ctx context.Context, ringNames []string) ([]DriftLine, error) {
	for _, name := range ringNames {
		if !slices.ContainsFunc(f.cfg.Rings, func(r *config.Ring) bool { return r.Name == name }) {
			return nil, fmt.Errorf("--ring %s: no such ring in %s%s", name, f.cfg.File, didYouMean(name, configRings(f.cfg)))
		}
	}
	var lines []DriftLine
	err := f.withLease(ctx, "drift", func(ctx context.Context) error {
		for _, r := range f.cfg.Rings {
			if len(ringNames) > 0 && !slices.Contains(ringNames, r.Name) {
				continue
			}
			for _, name := range r.Targets {
				cur, err := journal.Current(ctx, f.reader, name)
				if err != nil {
					return err
				}
				lines = append(lines, DriftLine{Ring: r.Name, Target: name, Release: cur})
			}
		}
		eg, ctx := errgroup.WithContext(ctx)
		eg.SetLimit(max(f.cfg.Defaults.MaxParallel, 1))
		for i := range lines {
			l := &lines[i]
			if l.Release == nil {
				l.Skipped = "never deployed"
				continue
			}
			eg.Go(func() error {
				rep, err := f.prov.Drift(ctx, l.Target, *l.Release)
				if err != nil {
					l.Error = err.Error()
					return nil
				}
				l.Drifted, l.Resources = rep.Drifted, rep.Resources
				return nil
			})
		}
		return eg.Wait()
	})
	return lines, err
}

// DoctorReport is what state doctor finds.
type DoctorReport struct {
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
	// Targets (with targets): per target, what the journal says is deployed against what its
	// Terraform state says.
	Targets []TargetTruth `json:"targets,omitempty"`
}

// TargetTruth compares one target's journal with its Terraform state: the outputs the journal
// recorded with the target's last apply or rollback against the outputs in its state now
// (sensitive values redacted on both sides).
type TargetTruth struct {
	Target    string `json:"target"`
	Component string `json:"component,omitempty"` // of a stack: each component is compared on its own
	Journal   string `json:"journal"`             // the release the journal says is deployed ("" for none)
	Verdict   string `json:"verdict"`             // agrees | differs | unknown
	Detail    string `json:"detail,omitempty"`
}

// Doctor checks the journal (schema, lease, unfinished runs, releases without their bundle), the
// fleet's local files (modes, an emptied journal beside earlier runs' state) and, with targets,
// each target's journal against its Terraform state (the fleet must be opened with Open then).
func (f *Fleet) Doctor(ctx context.Context, targets bool) (DoctorReport, error) {
	rep, err := doctor(ctx, f.db)
	if err != nil {
		return rep, err
	}
	if traces := localTraces(f.stateDir); rep.Runs == 0 && traces != "" {
		rep.Problems = append(rep.Problems, "the journal holds no run, but "+f.stateDir+" shows earlier ones ("+traces+"): the journal was lost or emptied; restore it with rollout state import")
	}
	for _, m := range looseModes(f.stateDir) {
		rep.Problems = append(rep.Problems, "readable or writable by other users: "+m+" (rollout makes its files 0600: chmod -R go-rwx "+f.stateDir+")")
	}
	if targets {
		if rep.Targets, err = f.targetTruths(ctx); err != nil {
			return rep, err
		}
		for _, t := range rep.Targets {
			if t.Verdict == "differs" {
				rep.Problems = append(rep.Problems, fmt.Sprintf("target %s: the journal says %s; %s", t.Target, cmp.Or(t.Journal, "nothing is deployed"), t.Detail))
			}
		}
	}
	return rep, nil
}

func doctor(ctx context.Context, s doctorStore) (DoctorReport, error) {
	rep := DoctorReport{Store: s.Describe()}
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
			rep.Notes = append(rep.Notes, fmt.Sprintf("run %s (%s %s) is unfinished (%s)", r.ID, r.Kind, r.Release.Name, cmp.Or(string(st.Phase), "never started")))
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

// targetTruths compares each declared target's journal with its Terraform state.
func (f *Fleet) targetTruths(ctx context.Context) ([]TargetTruth, error) {
	var out []TargetTruth
	for _, t := range f.cfg.Targets {
		evs, err := f.reader.TargetEvents(ctx, t.Name, rings.TargetApplied, rings.TargetRolledBack)
		if err != nil {
			return nil, err
		}
		comps, err := f.componentTruths(ctx, t.Name)
		if err != nil {
			return nil, err
		}
		if len(comps) > 0 {
			out = append(out, comps...)
			continue
		}
		tt := TargetTruth{Target: t.Name}
		var last *rings.Event
		if len(evs) > 0 {
			last = &evs[len(evs)-1]
			tt.Journal = last.Release.Name
		}
		state, here, err := f.prov.PublicOutputs(ctx, t.Name)
		tt.Verdict, tt.Detail = compareTruth(last, journalable(f.redact, state), here, err)
		out = append(out, tt)
	}
	return out, nil
}

// componentTruths compares each component of a target's stack that the journal says it runs with
// that component's Terraform state (none: the target is not a stack).
func (f *Fleet) componentTruths(ctx context.Context, target string) ([]TargetTruth, error) {
	evs, err := f.reader.TargetEvents(ctx, target, rings.ComponentApplied, rings.ComponentUnchanged, rings.ComponentDestroyed)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	last := map[string]*rings.Event{}
	for i := range evs {
		last[evs[i].Component] = &evs[i]
	}
	var out []TargetTruth
	for _, name := range slices.Sorted(maps.Keys(last)) {
		ev := last[name]
		if ev.Type == rings.ComponentDestroyed {
			continue
		}
		tt := TargetTruth{Target: target, Component: name, Journal: ev.Release.Name}
		state, here, err := f.prov.PublicOutputs(ctx, provision.UnitKey(target, name))
		tt.Verdict, tt.Detail = compareTruth(ev, journalable(f.redact, state), here, err)
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
		return "differs", fmt.Sprintf("Terraform's state has outputs %s, the journal recorded %s with %s of %s", compact(state), compact(last.Outputs), last.Type, last.Release.Name)
	}
	return "agrees", fmt.Sprintf("outputs match %s of %s", last.Type, last.Release.Name)
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:197]) + "..."
	}
	return string(b)
}

// Schema is the journal's name for people and its schema version, with the newest this binary
// knows (opening it applied the migrations it lacked).
func (f *Fleet) Schema(ctx context.Context) (store string, have, want int, err error) {
	have, want, err = f.db.SchemaVersion(ctx)
	return f.db.Describe(), have, want, err
}

// Export writes the whole journal (journal.Export).
func (f *Fleet) Export(ctx context.Context, w io.Writer) error {
	if err := journal.Export(ctx, f.db, w); err != nil {
		return fmt.Errorf("export %s: %w", f.db.Describe(), err)
	}
	return nil
}

// Import reads an export into this journal, which must be empty (journal.Import), and says how
// many records it read.
func (f *Fleet) Import(ctx context.Context, r io.Reader) (int, error) {
	n, err := journal.Import(ctx, f.db, r)
	if err != nil {
		return n, fmt.Errorf("import into %s: %w", f.db.Describe(), err)
	}
	return n, nil
}

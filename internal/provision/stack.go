package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// A stack: a release of several root modules (release.components). Its snapshot holds StackFile
// only, which names each component's own locked snapshot: the release's module digest covers
// every component's code, providers, dependencies and inputs. On a target each component has its
// own working directory and state (unit key TARGET@COMPONENT); components are applied in
// dependency order, the independent ones at once, and one whose module and rendered inputs are
// those it was last applied with is not run at all.

// StackFile is the file of a stack's snapshot.
const StackFile = "rollout-stack.json"

// Stack is what a stack's snapshot says.
type Stack struct {
	Components []StackComponent `json:"components"`
}

// StackComponent is one component of a recorded stack.
type StackComponent struct {
	Name      string         `json:"name"`
	Module    string         `json:"module"` // the digest of its locked snapshot
	Path      string         `json:"path"`   // its module's folder in the fleet, for messages
	DependsOn []string       `json:"dependsOn,omitempty"`
	Inputs    map[string]any `json:"inputs,omitempty"`
	Gates     []string       `json:"gates,omitempty"` // run right after it is applied, over its outputs
}

func (s *Stack) component(name string) *StackComponent {
	for i := range s.Components {
		if s.Components[i].Name == name {
			return &s.Components[i]
		}
	}
	return nil
}

// Levels are the components in dependency order (see config.StackLevels).
func (s *Stack) Levels() [][]string {
	deps := map[string][]string{}
	for _, c := range s.Components {
		deps[c.Name] = c.DependsOn
	}
	return config.StackLevels(deps)
}

// UnitKey names one component's working directory, state and records on a target.
func UnitKey(target, component string) string { return target + "@" + component }

// baseTarget is the target of a unit key (the key itself for a target's own).
func baseTarget(key string) string { t, _, _ := strings.Cut(key, "@"); return t }

// StackSnapshot snapshots each component's module with the lock file of its providers
// (LockedSnapshot), then the stack itself; it returns the stack snapshot's digest. recorded is
// the digest a release of this name was recorded with ("" for none): its components' locked
// snapshots are preferred, as LockedSnapshot prefers a recorded one.
func (p *Terraform) StackSnapshot(ctx context.Context, mirror, recorded string) (string, error) {
	was := map[string]string{}
	if old, err := readStack(SnapshotDir(p.StateDir, recorded)); recorded != "" && err == nil && old != nil {
		for _, c := range old.Components {
			was[c.Name] = c.Module
		}
	}
	var st Stack
	for _, name := range slices.Sorted(maps.Keys(p.Config.Release.Components)) {
		comp := p.Config.Release.Components[name]
		digest, _, err := p.LockedSnapshot(ctx, p.Config.ComponentDir(name), mirror, was[name])
		if err != nil {
			return "", fmt.Errorf("component %s: %w", name, err)
		}
		st.Components = append(st.Components, StackComponent{Name: name, Module: digest, Path: comp.Module,
			DependsOn: slices.Sorted(slices.Values(comp.DependsOn)), Inputs: comp.Inputs, Gates: comp.Gates})
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(p.StateDir, ".stack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, StackFile), append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return Snapshot(tmp, p.StateDir)
}

// ReadStack reads a snapshot's StackFile: nil when the snapshot is one root module.
func ReadStack(snap string) (*Stack, error) { return readStack(snap) }

// readStack reads a snapshot's StackFile: nil when the snapshot is one root module.
func readStack(snap string) (*Stack, error) {
	b, err := os.ReadFile(filepath.Join(snap, StackFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st Stack
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", StackFile, err)
	}
	for _, c := range st.Components {
		if err := CheckDigest(c.Module); err != nil {
			return nil, fmt.Errorf("%s: component %s: %w", StackFile, c.Name, err)
		}
	}
	return &st, nil
}

// StackOf is the stack a release's snapshot is (nil: one root module), its snapshot and its
// components' fetched from the journal's bundles when this machine lacks them.
func (p *Terraform) StackOf(ctx context.Context, digest string) (*Stack, error) {
	if st, ok := p.stacks.Load(digest); ok { // a snapshot never changes: read once per process
		return st.(*Stack), nil
	}
	st, err := p.readStackOf(ctx, digest)
	if err == nil {
		p.stacks.Store(digest, st)
	}
	return st, err
}

func (p *Terraform) readStackOf(ctx context.Context, digest string) (*Stack, error) {
	if err := p.ensureSnapshot(ctx, digest); err != nil {
		return nil, err
	}
	st, err := readStack(SnapshotDir(p.StateDir, digest))
	if err != nil || st == nil {
		return nil, err
	}
	for _, c := range st.Components {
		if err := p.ensureSnapshot(ctx, c.Module); err != nil {
			return nil, fmt.Errorf("component %s: %w", c.Name, err)
		}
	}
	return st, nil
}

// ComponentRecord is what a component's working directory on a target was last applied with:
// the digest of its module, rendered inputs and backend, and the outputs it gave (sensitive
// values too: the state holds them; the file is 0600 in a 0700 directory).
type ComponentRecord struct {
	Digest    string         `json:"digest"`
	Module    string         `json:"module"`
	Release   string         `json:"release"`
	DependsOn []string       `json:"dependsOn,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	Public    map[string]any `json:"public,omitempty"`
	Gated     bool           `json:"gated,omitempty"` // its own gates passed on it (or it has none)
}

const recordFile = ".rollout-component.json"

func (p *Terraform) readRecord(key string) *ComponentRecord {
	b, err := os.ReadFile(filepath.Join(p.WorkDir(key), recordFile))
	if err != nil {
		return nil
	}
	var r ComponentRecord
	if json.Unmarshal(b, &r) != nil {
		return nil
	}
	return &r
}

// writeRecord writes the record beside the component's state, renamed into place: a crash leaves
// the old one or the new one.
func (p *Terraform) writeRecord(key string, r *ComponentRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	dst := filepath.Join(p.WorkDir(key), recordFile)
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// Deployed is what each component of target was last applied with on this machine, by component.
func (p *Terraform) Deployed(target string) map[string]*ComponentRecord {
	out := map[string]*ComponentRecord{}
	dirs, _ := filepath.Glob(filepath.Join(p.StateDir, "work", target+"@*"))
	for _, d := range dirs {
		key := filepath.Base(d)
		if r := p.readRecord(key); r != nil {
			out[strings.TrimPrefix(key, target+"@")] = r
		}
	}
	return out
}

// inspect is what a component's snapshot declares, read once per snapshot (not per target).
func (p *Terraform) inspect(digest string) (*ModuleInfo, error) {
	if info, ok := p.modules.Load(digest); ok {
		return info.(*ModuleInfo), nil
	}
	info, err := InspectModule(SnapshotDir(p.StateDir, digest))
	if err == nil {
		p.modules.Store(digest, info)
	}
	return info, err
}

// unitVars are a component's rendered variables, by unit key, for setUp.
func (p *Terraform) setUnitVars(key string, vars map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unitVars == nil {
		p.unitVars = map[string]map[string]any{}
	}
	p.unitVars[key] = vars
}

func (p *Terraform) unitVarsOf(key string) (map[string]any, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.unitVars[key]
	return v, ok
}

// stackRun is one apply (or rollback) of a target's stack.
type stackRun struct {
	p       *Terraform
	pol     RunPolicy
	t       *config.Target
	rel     rings.ReleaseRef
	st      *Stack
	relVars map[string]any
	planned func(rings.PlanSummary)

	mu   sync.Mutex
	outs map[string]*ComponentRecord // what each component gives now
	sum  rings.PlanSummary
	mode string
}

// applyStack applies a stack's components on target in dependency order (a rollback first walks
// them in reverse, then forward again for what an upstream change left out of date), skipping
// those unchanged, and destroys the components the release removed (only when the run allows
// destroying), newest dependants first. The target's outputs are all components' together.
func (p *Terraform) applyStack(ctx context.Context, pol RunPolicy, target string, rel rings.ReleaseRef, st *Stack, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	t, err := p.target(target)
	if err != nil {
		return rings.ApplyResult{}, err
	}
	relVars, err := p.Vars(ctx, rel.Name)
	if err != nil {
		return rings.ApplyResult{}, fmt.Errorf("apply target %s: %w", target, err)
	}
	deployed := p.Deployed(target)
	var removed []string
	for name := range deployed {
		if st.component(name) == nil {
			removed = append(removed, name)
		}
	}
	slices.Sort(removed)
	if len(removed) > 0 && (pol.Review == nil || !pol.Review.AllowDestroy) {
		return rings.ApplyResult{}, untouched(fmt.Errorf("release %s has no component %s, which target %s runs: destroying it needs start --allow-destroy --reason TEXT", rel.Name, strings.Join(removed, ", "), target))
	}
	r := &stackRun{p: p, pol: pol, t: t, rel: rel, st: st, relVars: relVars, planned: planned, outs: map[string]*ComponentRecord{}}
	for name, rec := range deployed {
		r.outs[name] = rec
	}
	levels := st.Levels()
	if rings.RollingBack(ctx) {
		for i := len(levels) - 1; i >= 0; i-- {
			if err := r.level(ctx, levels[i]); err != nil {
				return r.result(), err
			}
		}
	}
	for _, level := range levels {
		if err := r.level(ctx, level); err != nil {
			return r.result(), err
		}
	}
	if err := r.destroy(ctx, removed, deployed); err != nil {
		return r.result(), err
	}
	return r.result(), nil
}

// untouchedErr is a failure before anything was changed.
type untouchedErr struct{ error }

func (untouchedErr) Untouched() bool { return true }
func (e untouchedErr) Unwrap() error { return e.error }

func untouched(err error) error { return untouchedErr{err} }

// level applies a level's components at once, as many at a time as the target's boundary allows
// (maxParallel); the first failure is returned once all are done.
func (r *stackRun) level(ctx context.Context, names []string) error {
	errs := make([]error, len(names))
	limit := 1
	if b := r.p.Config.Boundaries[r.t.Boundary]; b != nil && b.MaxParallel > 1 {
		limit = b.MaxParallel
	}
	slots := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			errs[i] = r.component(ctx, r.st.component(name))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// component applies one component unless it is unchanged.
func (r *stackRun) component(ctx context.Context, c *StackComponent) error {
	key := UnitKey(r.t.Name, c.Name)
	vars, err := r.vars(c)
	if err != nil {
		rings.Note(ctx, rings.Event{Type: rings.ComponentFailed, Component: c.Name, Message: err.Error()})
		return fmt.Errorf("component %s: %w", c.Name, err)
	}
	digest, err := r.digest(c, vars)
	if err != nil {
		return err
	}
	if rec := r.p.readRecord(key); rec != nil && rec.Digest == digest {
		r.set(c.Name, rec)
		rings.Note(ctx, rings.Event{Type: rings.ComponentUnchanged, Component: c.Name, Release: &rings.ReleaseRef{Name: rec.Release, Module: rec.Module}, Outputs: rec.Public})
		return r.gated(ctx, c, key, rings.ReleaseRef{Name: rec.Release, Digest: r.rel.Digest, Module: rec.Module}, rec)
	}
	r.p.setUnitVars(key, vars)
	ref := rings.ReleaseRef{Name: r.rel.Name, Digest: r.rel.Digest, Module: c.Module}
	res, err := r.p.applyUnit(ctx, r.pol, key, ref, r.planned)
	r.add(res.Summary, res.Mode)
	if err != nil {
		if ctx.Err() == nil {
			rings.Note(ctx, rings.Event{Type: rings.ComponentFailed, Component: c.Name, Release: &ref, Message: err.Error()})
		}
		return fmt.Errorf("component %s: %w", c.Name, err)
	}
	// The record says what is deployed, written before anything else happens; Gated once the
	// component's own gates passed on it.
	rec := &ComponentRecord{Digest: digest, Module: c.Module, Release: r.rel.Name, DependsOn: c.DependsOn, Outputs: res.Outputs, Public: res.Public, Gated: len(c.Gates) == 0}
	if err := r.p.writeRecord(key, rec); err != nil {
		return fmt.Errorf("component %s: %w", c.Name, err)
	}
	r.set(c.Name, rec)
	sum := res.Summary
	rings.Note(ctx, rings.Event{Type: rings.ComponentApplied, Component: c.Name, Release: &ref, Summary: &sum, Outputs: res.Public, ApplyMode: res.Mode})
	return r.gated(ctx, c, key, ref, rec)
}

// gated runs the component's gates on what it was just applied with (or, found applied but not
// yet judged, on what it runs), and records that they passed.
func (r *stackRun) gated(ctx context.Context, c *StackComponent, key string, ref rings.ReleaseRef, rec *ComponentRecord) error {
	if rec.Gated {
		return nil
	}
	if err := r.gates(ctx, c, ref, rec.Outputs); err != nil {
		return err
	}
	rec.Gated = true
	if err := r.p.writeRecord(key, rec); err != nil {
		return fmt.Errorf("component %s: %w", c.Name, err)
	}
	return nil
}

// gates runs a component's own gates over its outputs; one that does not pass fails the
// component (and so the target's stack, before anything that depends on it starts).
func (r *stackRun) gates(ctx context.Context, c *StackComponent, ref rings.ReleaseRef, outputs map[string]any) error {
	if len(c.Gates) == 0 {
		return nil
	}
	run := rings.GatesOf(ctx)
	if run == nil {
		return fmt.Errorf("component %s has gates, and this work was given no gate runner", c.Name)
	}
	if v := run(ctx, c.Name, c.Gates, outputs); !v.Passed() {
		msg := fmt.Sprintf("gate %s: %s", v.Gate, v.Message)
		if ctx.Err() == nil {
			rings.Note(ctx, rings.Event{Type: rings.ComponentFailed, Component: c.Name, Release: &ref, Gate: v.Gate, Message: msg})
		}
		return fmt.Errorf("component %s: %s", c.Name, msg)
	}
	return nil
}

func (r *stackRun) set(name string, rec *ComponentRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outs[name] = rec
}

func (r *stackRun) add(s rings.PlanSummary, mode string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum = r.sum.Plus(s)
	if mode != "" {
		r.mode = mode
	}
}

// vars are a component's variables: the release's (those its module declares), then its inputs
// rendered over the release, the target and the outputs of the components it depends on.
func (r *stackRun) vars(c *StackComponent) (map[string]any, error) {
	info, err := r.p.inspect(c.Module)
	if err != nil {
		return nil, err
	}
	b := r.p.Config.Boundaries[r.t.Boundary]
	all, err := VarsFor(r.rel, r.relVars, r.t, b)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for k, v := range all {
		if _, declared := info.Variables[k]; declared {
			out[k] = v
		}
	}
	data := TemplateData(r.rel, r.t, b)
	comps := map[string]any{}
	r.mu.Lock()
	for _, d := range c.DependsOn {
		rec := r.outs[d]
		if rec == nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("component %s has not been applied on target %s", d, r.t.Name)
		}
		comps[d] = map[string]any{"Outputs": rec.Outputs}
	}
	r.mu.Unlock()
	data["Components"] = comps
	for k, v := range c.Inputs {
		rv, err := renderValue(k, v, data)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", k, err)
		}
		out[k] = rv
	}
	return out, nil
}

// digest is what decides whether a component changed: its module, its variables and its backend.
func (r *stackRun) digest(c *StackComponent, vars map[string]any) (string, error) {
	be, err := config.ComponentBackend(r.t.Backend, c.Name)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(struct {
		Module  string          `json:"module"`
		Vars    map[string]any  `json:"vars"`
		Backend *config.Backend `json:"backend"`
	}{c.Module, vars, be})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// result is the target's apply as the engine sees it: every component's outputs together (a
// later component's output of the same name over an earlier one's).
func (r *stackRun) result() rings.ApplyResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return rings.ApplyResult{Summary: r.sum, Mode: r.mode,
		Outputs: stackOutputs(r.outs, func(c *ComponentRecord) map[string]any { return c.Outputs }),
		Public:  stackOutputs(r.outs, func(c *ComponentRecord) map[string]any { return c.Public })}
}

// stackOutputs are a target's outputs from its components' (what the apply gave, or what a later
// process reads back): in dependency order, a later component's output of a name over an earlier
// one's, names sorted within a level. One rule for both, so a resumed run's gates see what the
// apply's did.
func stackOutputs(recs map[string]*ComponentRecord, of func(*ComponentRecord) map[string]any) map[string]any {
	deps := map[string][]string{}
	for name, rec := range recs {
		for _, d := range rec.DependsOn {
			if recs[d] != nil {
				deps[name] = append(deps[name], d)
			}
		}
		deps[name] = append(deps[name], []string{}...)
	}
	out := map[string]any{}
	for _, level := range config.StackLevels(deps) {
		for _, name := range level {
			maps.Copy(out, of(recs[name]))
		}
	}
	return out
}

// destroy destroys removed components, those that depended on others first.
func (r *stackRun) destroy(ctx context.Context, removed []string, deployed map[string]*ComponentRecord) error {
	deps := map[string][]string{}
	for _, name := range removed {
		for _, d := range deployed[name].DependsOn {
			if slices.Contains(removed, d) {
				deps[name] = append(deps[name], d)
			}
		}
		deps[name] = append(deps[name], []string{}...)
	}
	levels := config.StackLevels(deps)
	for i := len(levels) - 1; i >= 0; i-- {
		for _, name := range levels[i] {
			if err := r.p.destroyUnit(ctx, UnitKey(r.t.Name, name), r.rel, deployed[name]); err != nil {
				rings.Note(ctx, rings.Event{Type: rings.ComponentFailed, Component: name, Message: err.Error()})
				return fmt.Errorf("destroy component %s: %w", name, err)
			}
			r.mu.Lock()
			delete(r.outs, name)
			r.mu.Unlock()
			rings.Note(ctx, rings.Event{Type: rings.ComponentDestroyed, Component: name})
		}
	}
	return nil
}

// stackDrift checks each component the target runs for drift, with the module and variables it
// was applied with (what its record and working directory keep); a resource that drifted is named
// COMPONENT/ADDRESS.
func (p *Terraform) stackDrift(ctx context.Context, target string, rel rings.ReleaseRef) (rings.DriftReport, error) {
	var out rings.DriftReport
	recs := p.Deployed(target)
	for _, name := range slices.Sorted(maps.Keys(recs)) {
		key, rec := UnitKey(target, name), recs[name]
		if err := p.appliedVars(key); err != nil {
			return out, fmt.Errorf("component %s: %w", name, err)
		}
		rep, err := p.unitDrift(ctx, key, rings.ReleaseRef{Name: rec.Release, Digest: rel.Digest, Module: rec.Module})
		if err != nil {
			return out, fmt.Errorf("component %s: %w", name, err)
		}
		for _, r := range rep.Resources {
			out.Resources = append(out.Resources, name+"/"+r)
		}
	}
	out.Drifted = len(out.Resources) > 0
	return out, nil
}

// appliedVars gives a component's working directory the variables it was last applied with.
func (p *Terraform) appliedVars(key string) error {
	b, err := os.ReadFile(filepath.Join(p.WorkDir(key), "rollout.tfvars.json"))
	if err != nil {
		return fmt.Errorf("the variables it was applied with: %w", err)
	}
	var vars map[string]any
	if err := json.Unmarshal(b, &vars); err != nil {
		return err
	}
	p.setUnitVars(key, vars)
	return nil
}

// destroyUnit destroys a component's resources with the module and variables it was last applied
// with, then forgets its working directory.
func (p *Terraform) destroyUnit(ctx context.Context, key string, rel rings.ReleaseRef, rec *ComponentRecord) error {
	if err := p.appliedVars(key); err != nil {
		return err
	}
	ref := rings.ReleaseRef{Name: rec.Release, Digest: rel.Digest, Module: rec.Module}
	if err := p.ensureSnapshot(ctx, rec.Module); err != nil {
		return err
	}
	_, err := unlocking(ctx, p, key, "destroy", func() (struct{}, error) {
		w, err := p.setUp(ctx, key, ref, "destroy")
		if err != nil {
			return struct{}{}, err
		}
		dctx, cancel := context.WithTimeout(ctx, p.timeout())
		defer cancel()
		return struct{}{}, redactErr(p.command(key, "destroy", func() error {
			return w.tf.Destroy(dctx, tfexec.VarFile(w.varFile), tfexec.LockTimeout(p.lockTimeout()))
		}), w.secrets)
	})
	clearRecords(ctx, p.WorkDir(key))
	if err != nil {
		return err
	}
	return os.RemoveAll(p.WorkDir(key))
}

// ComponentPlan is one component's plan on a target: planned (with its summary, and its digest
// for review), unchanged (its module, inputs and backend are those it was applied with: not
// planned), or deferred (it reads the outputs of a component whose plan changes them, so what it
// would change is known only after that one applies, as Terraform Stacks defers).
type ComponentPlan struct {
	Name      string             `json:"name"`
	Plan      *rings.PlanSummary `json:"plan,omitempty"`
	Changes   bool               `json:"changes"`
	Unchanged bool               `json:"unchanged,omitempty"`
	Deferred  string             `json:"deferred,omitempty"` // "known after network applies"
	Digest    string             `json:"digest,omitempty"`
	Detail    []ResourceChange   `json:"detail,omitempty"`
	Error     string             `json:"error,omitempty"`
}

// PlanStack plans a stack's components on target in dependency order, changing nothing. A
// component whose dependency's plan changes, or is deferred, is deferred (planned with the
// dependency's current outputs when it has any, else not planned).
func (p *Terraform) PlanStack(ctx context.Context, target string, rel rings.ReleaseRef, st *Stack, review bool) ([]ComponentPlan, error) {
	t, err := p.target(target)
	if err != nil {
		return nil, err
	}
	relVars, err := p.Vars(ctx, rel.Name)
	if err != nil {
		return nil, err
	}
	r := &stackRun{p: p, t: t, rel: rel, st: st, relVars: relVars, outs: map[string]*ComponentRecord{}}
	for name, rec := range p.Deployed(target) {
		r.outs[name] = rec
	}
	byName := map[string]*ComponentPlan{}
	var out []ComponentPlan
	var errs []error
	for _, level := range st.Levels() {
		for _, name := range level {
			cp := p.planComponent(ctx, r, st.component(name), byName, review)
			byName[name] = &cp
			out = append(out, cp)
			if cp.Error != "" {
				errs = append(errs, fmt.Errorf("component %s: %s", name, cp.Error))
			}
		}
	}
	return out, errors.Join(errs...)
}

func (p *Terraform) planComponent(ctx context.Context, r *stackRun, c *StackComponent, done map[string]*ComponentPlan, review bool) ComponentPlan {
	cp := ComponentPlan{Name: c.Name}
	for _, d := range c.DependsOn {
		if up := done[d]; up != nil && (up.Changes || up.Deferred != "") {
			cp.Deferred = "known after " + d + " applies"
			break
		}
	}
	vars, err := r.vars(c)
	if err != nil {
		if cp.Deferred == "" {
			cp.Error = err.Error()
		}
		return cp // deferred, and never applied here: nothing to plan with
	}
	key := UnitKey(r.t.Name, c.Name)
	digest, err := r.digest(c, vars)
	if err != nil {
		cp.Error = err.Error()
		return cp
	}
	if rec := p.readRecord(key); rec != nil && rec.Digest == digest && cp.Deferred == "" {
		cp.Unchanged = true
		return cp
	}
	p.setUnitVars(key, vars)
	ref := rings.ReleaseRef{Name: r.rel.Name, Digest: r.rel.Digest, Module: c.Module}
	var rv Reviewed
	if review {
		rv, err = p.PlanReview(ctx, key, ref)
	} else {
		rv.Summary, rv.Changes, err = p.Plan(ctx, key, ref)
	}
	if err != nil {
		cp.Error = err.Error()
		return cp
	}
	sum := rv.Summary
	cp.Plan, cp.Changes, cp.Detail = &sum, rv.Changes, rv.Detail
	if cp.Deferred == "" {
		cp.Digest = rv.Digest // a deferred plan is not the one that will apply: nothing to review
	}
	return cp
}

var _ rings.PlanChecker = (*Terraform)(nil)

// PlanSummary implements rings.PlanChecker: the plan of rel on target, changing nothing; for a
// stack, its components' plans together, and why they cannot all be told yet (a deferred one).
func (p *Terraform) PlanSummary(ctx context.Context, target string, rel rings.ReleaseRef) (rings.PlanSummary, string, error) {
	st, err := p.StackOf(ctx, rel.ModuleDigest())
	if err != nil {
		return rings.PlanSummary{}, "", err
	}
	if st == nil {
		sum, _, err := p.Plan(ctx, target, rel)
		return sum, "", err
	}
	plans, err := p.PlanStack(ctx, target, rel, st, false)
	var sum rings.PlanSummary
	var deferred []string
	for _, c := range plans {
		if c.Deferred != "" {
			deferred = append(deferred, c.Name+" "+c.Deferred)
		}
		if c.Plan != nil {
			sum = sum.Plus(*c.Plan)
		}
	}
	note := ""
	if len(deferred) > 0 {
		note = "what it would change is not known yet: component " + strings.Join(deferred, "; component ")
	}
	return sum, note, err
}

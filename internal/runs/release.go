package runs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/provision"
)

// prepareRelease is the release a name would mean now: the module tree snapshotted with the
// lock file of its providers, the variables (release.vars, then --var), and the digest of the
// name and both. Nothing is recorded. A name that is bound already must mean the same; the
// refusal says what differs, in full, secrets masked.
func (f *Fleet) prepareRelease(ctx context.Context, name string, extra map[string]any) (journal.Release, error) {
	old, err := f.releases.Release(ctx, name)
	if err != nil && !errors.Is(err, journal.ErrNotFound) {
		return journal.Release{}, err
	}
	module, plain, err := f.snapshotRelease(ctx, old.Module)
	var unresolved *provision.ResolveError
	if errors.As(err, &unresolved) {
		return journal.Release{}, envErr(err)
	}
	if err != nil {
		return journal.Release{}, err
	}
	if err := checkDeclared(f.cfg, extra); err != nil { // a typo in --var would otherwise be dropped
		return journal.Release{}, err
	}
	vars := maps.Clone(f.cfg.Release.Vars)
	if vars == nil {
		vars = map[string]any{}
	}
	maps.Copy(vars, extra)
	fromEnv := f.varsFromEnviron(vars)
	if missing := provision.MissingVariables(f.cfg, vars); len(missing) > 0 {
		return journal.Release{}, fmt.Errorf("release %s cannot be planned on %d target(s); nothing was journaled:\n%w", name, len(missing), missing)
	}
	vars = f.sealVars(vars, fromEnv)
	digest, err := provision.ReleaseDigest(name, module, vars)
	if err != nil {
		return journal.Release{}, err
	}
	rel := journal.Release{Name: name, Digest: digest, Module: module, Vars: vars, Created: f.now()}
	if f.pending == nil {
		f.pending = map[string]map[string]any{}
	}
	f.pending[name] = vars
	switch {
	case old.Name == "":
		return rel, nil
	case old.Module == "" && old.Digest == plain && jsonEqual(old.Vars, vars):
		return old, nil // recorded before releases had a digest of their own: the same content
	case old.Digest == digest:
		return old, nil
	case old.Module == plain && jsonEqual(old.Vars, vars) && isRecordedBeforeNames(old):
		return old, nil // recorded before names and lock files were bound: the same content
	}
	return journal.Release{}, f.releaseChanged(old, rel)
}

// snapshotRelease snapshots the release's code with its providers' lock: the root module's, or a
// stack's components' and the stack's (plain: the root module's digest without a lock file).
func (f *Fleet) snapshotRelease(ctx context.Context, recorded string) (module, plain string, err error) {
	if f.cfg.Stack() {
		module, err = f.prov.StackSnapshot(ctx, f.lockMirror(), recorded)
		return module, "", err
	}
	return f.prov.LockedSnapshot(ctx, f.cfg.ModuleDir(), f.lockMirror(), recorded)
}

// bindRelease records the release under its name, and keeps its module snapshot in the journal
// too, so that another machine can resume, roll back or expand with exactly this code when this
// one and its .rollout/ are gone.
func (f *Fleet) bindRelease(ctx context.Context, rel journal.Release) error {
	module := rel.Ref().ModuleDigest()
	bundle, err := provision.Bundle(provision.SnapshotDir(f.stateDir, module))
	if err != nil {
		return err
	}
	if err := f.releases.PutBundle(ctx, module, bundle); err != nil {
		return err
	}
	st, err := f.prov.StackOf(ctx, module)
	if err != nil {
		return err
	}
	for _, c := range stackComponents(st) {
		b, err := provision.Bundle(provision.SnapshotDir(f.stateDir, c.Module))
		if err != nil {
			return err
		}
		if err := f.releases.PutBundle(ctx, c.Module, b); err != nil {
			return err
		}
	}
	return f.releases.RecordRelease(ctx, rel)
}

// releaseChanged says how a name's recorded release differs from what it would mean now.
func (f *Fleet) releaseChanged(old, now journal.Release) error {
	var diffs []string
	if was := old.Ref().ModuleDigest(); was != now.Module {
		what := "module tree " + f.cfg.Release.Module
		if f.cfg.Stack() {
			what = "stack (its components' modules, providers, dependencies or inputs)"
		}
		diffs = append(diffs, fmt.Sprintf("%s: digest %s, recorded %s", what, short(now.Module), short(was)))
	}
	info := f.moduleInfo()
	keys := slices.Sorted(maps.Keys(old.Vars))
	for k := range now.Vars {
		if _, ok := old.Vars[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	show := func(k string, v any, ok bool) string {
		switch {
		case !ok:
			return "(not set)"
		case info.Secret(k) || v == secretMarker:
			return "(sensitive)"
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	for _, k := range keys {
		a, inOld := old.Vars[k]
		b, inNew := now.Vars[k]
		if inOld && inNew && jsonEqual(a, b) {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("variable %s: now %s, recorded %s", k, show(k, b, inNew), show(k, a, inOld)))
	}
	return fmt.Errorf("release %s is immutable and was recorded with other content; give the new content a new release name:\n  %s",
		old.Name, strings.Join(diffs, "\n  "))
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// descriptor is what a recorded release's digest is the SHA-256 of: the current descriptor, or the
// first one for a release recorded before names were bound.
func descriptor(rel journal.Release) ([]byte, error) {
	module := rel.Ref().ModuleDigest()
	d, err := provision.ReleaseDescriptor(rel.Name, module, rel.Vars)
	if err != nil || sha256hex(d) == rel.Digest {
		return d, err
	}
	if v1, ok := recordedBeforeNames(rel); ok {
		return v1, nil
	}
	return d, nil
}

// recordedBeforeNames is a recorded release's first descriptor, when its digest is of that one,
// which bound neither its name nor its providers' lock file: such a release keeps its digest.
func recordedBeforeNames(rel journal.Release) ([]byte, bool) {
	d, err := provision.ReleaseDescriptorV1(rel.Ref().ModuleDigest(), rel.Vars)
	return d, err == nil && sha256hex(d) == rel.Digest
}

func isRecordedBeforeNames(rel journal.Release) bool { _, ok := recordedBeforeNames(rel); return ok }

// lockMirror is the provider mirror a new release's providers are resolved through, to lock
// them: the user's CLI configuration, unless every boundary that has targets has a mirror of its
// own (then the first, by boundary name).
func (f *Fleet) lockMirror() string {
	used := map[string]bool{}
	for _, t := range f.cfg.Targets {
		used[t.Boundary] = true
	}
	var mirrors []string
	for _, name := range slices.Sorted(maps.Keys(used)) {
		b := f.cfg.Boundaries[name]
		if b == nil || b.ProviderMirror == "" {
			return ""
		}
		mirrors = append(mirrors, b.ProviderMirror)
	}
	if len(mirrors) == 0 {
		return ""
	}
	return mirrors[0]
}

// stackComponents are a stack's components (none for nil: one root module).
func stackComponents(st *provision.Stack) []provision.StackComponent {
	if st == nil {
		return nil
	}
	return st.Components
}

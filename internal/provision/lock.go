package provision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/mod/sumdb/dirhash"
)

// A release is bound to the providers it was resolved with: its module snapshot carries the
// dependency lock file (.terraform.lock.hcl), so that the release digest, and the evidence and
// approvals that name it, cover the providers' hashes, and every `init` of the release, on this
// machine or inside another boundary, has Terraform itself refuse a provider binary that does not
// match them.

// LockFile is the dependency lock file's name in a module tree.
const LockFile = ".terraform.lock.hcl"

// LockedSnapshot snapshots the module tree at dir (see Snapshot) with its providers locked: a
// tree that has its own lock file is its snapshot; otherwise the providers are resolved once
// (through mirror, "" for the user's CLI configuration) and the release's snapshot is the tree
// plus the lock file Terraform wrote. A recorded release's snapshot (recorded, "" for none) that
// is this tree plus a lock file is kept as it is: its lock is the release's, whatever this
// machine's resolution would write. plain is the tree's own snapshot (what releases recorded
// before lock files were bound name).
func (p *Terraform) LockedSnapshot(ctx context.Context, dir, mirror, recorded string) (digest, plain string, err error) {
	plain, err = Snapshot(dir, p.StateDir)
	if err != nil {
		return "", "", err
	}
	snap := SnapshotDir(p.StateDir, plain)
	if exists(filepath.Join(snap, LockFile)) {
		return plain, plain, nil
	}
	if recorded != "" && recorded != plain && p.lockOf(ctx, recorded, plain) {
		return recorded, plain, nil
	}
	lock, err := p.lockFor(ctx, plain, mirror)
	if err != nil {
		return "", "", err
	}
	if len(lock) == 0 { // no provider to lock
		return plain, plain, nil
	}
	// The locked snapshot's digest, without a copy: once it exists, a release of this tree costs
	// a digest of it, not a copy.
	if digest, err = digestWith(snap, LockFile, lock); err != nil {
		return "", "", err
	}
	if !exists(SnapshotDir(p.StateDir, digest)) {
		made, err := snapshotWith(snap, p.StateDir, LockFile, lock)
		if err != nil {
			return "", "", err
		}
		if made != digest {
			return "", "", fmt.Errorf("the locked snapshot of %s hashes to %s, not %s", plain[:12], made[:12], digest[:12])
		}
	}
	return digest, plain, p.adopt(plain, digest, mirror)
}

// ResolveError is a failure to install a release's providers: an error of the environment (a
// registry or mirror that cannot serve them), not of the release.
type ResolveError struct{ Err error }

func (e *ResolveError) Error() string { return e.Err.Error() }
func (e *ResolveError) Unwrap() error { return e.Err }

// lockFor is the lock file the first resolution of snapshot plain through mirror wrote, kept in
// stateDir/locks/ so that later releases of the same tree find it without running Terraform.
func (p *Terraform) lockFor(ctx context.Context, plain, mirror string) ([]byte, error) {
	kept := filepath.Join(p.StateDir, "locks", filepath.Base(p.resolutionDir(plain, mirror)))
	if lock, err := os.ReadFile(kept); err == nil {
		return lock, nil
	}
	res, err := p.resolve(ctx, plain, mirror)
	if err != nil {
		return nil, &ResolveError{Err: err}
	}
	lock, err := os.ReadFile(filepath.Join(res, LockFile))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(kept), 0o700); err != nil {
		return nil, err
	}
	return lock, writeAtomic(kept, lock, 0o600)
}

// adopt makes the resolution of snapshot plain the resolution of snapshot locked (plain with the
// lock file that resolution wrote): its links are pointed at locked, and it moves, so that the
// release's providers are installed once.
func (p *Terraform) adopt(plain, locked, mirror string) error {
	src, dst := p.resolutionDir(plain, mirror), p.resolutionDir(locked, mirror)
	if exists(filepath.Join(dst, LockFile)) || !exists(filepath.Join(src, ".terraform")) {
		return nil
	}
	if err := linkTree(src, SnapshotDir(p.StateDir, locked)); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil && !exists(filepath.Join(dst, LockFile)) {
		return err
	}
	p.mu.Lock()
	delete(p.resolved, plain+"\x00"+mirror)
	p.mu.Unlock()
	return nil
}

// lockOf says whether snapshot locked is snapshot plain with a lock file.
func (p *Terraform) lockOf(ctx context.Context, locked, plain string) bool {
	if CheckDigest(locked) != nil || p.ensureSnapshot(ctx, locked) != nil {
		return false
	}
	dir := SnapshotDir(p.StateDir, locked)
	d, err := digestExcept(dir, LockFile)
	return err == nil && d == plain && exists(filepath.Join(dir, LockFile))
}

// snapshotWith makes the snapshot of snapshot snap with one more file (name, content) at its root.
func snapshotWith(snap, stateDir, name string, content []byte) (string, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(snap), ".tmp-locked-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.Chmod(tmp, 0o700); _ = os.RemoveAll(tmp) }()
	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o700); err != nil {
		return "", err
	}
	if err := os.CopyFS(src, os.DirFS(snap)); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, name), content, 0o400); err != nil {
		return "", err
	}
	return Snapshot(src, stateDir)
}

// LockedProvider is one provider of a lock file: its address, version and recorded hashes.
type LockedProvider struct {
	Address, Version string
	Hashes           []string
}

// ReadLock reads the provider blocks of a dependency lock file (HCL, as Terraform writes it).
func ReadLock(lock []byte) ([]LockedProvider, error) {
	f, diags := hclsyntax.ParseConfig(lock, LockFile, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("the lock file: %s", diags.Error())
	}
	var out []LockedProvider
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "provider" || len(b.Labels) != 1 {
			continue
		}
		lp := LockedProvider{Address: b.Labels[0]}
		if a := b.Body.Attributes["version"]; a != nil {
			if v, d := a.Expr.Value(nil); !d.HasErrors() && v.Type() == cty.String {
				lp.Version = v.AsString()
			}
		}
		if a := b.Body.Attributes["hashes"]; a != nil {
			v, d := a.Expr.Value(nil)
			if d.HasErrors() || !v.CanIterateElements() {
				return nil, fmt.Errorf("the lock file: provider %s: hashes is not a list", lp.Address)
			}
			for it := v.ElementIterator(); it.Next(); {
				if _, h := it.Element(); h.Type() == cty.String {
					lp.Hashes = append(lp.Hashes, h.AsString())
				}
			}
		}
		out = append(out, lp)
	}
	return out, nil
}

// PackageHash is Terraform's h1: hash of an unpacked provider package directory (what a lock
// file records and a filesystem mirror holds).
func PackageHash(dir string) (string, error) {
	return dirhash.HashDir(dir, "", dirhash.Hash1)
}

// Packages are the provider package directories of an unpacked mirror tree
// (HOST/NS/TYPE/VERSION/OS_ARCH), sorted.
func Packages(mirror string) ([]string, error) {
	all, err := filepath.Glob(filepath.Join(mirror, "*", "*", "*", "*", "*"))
	var pkgs []string
	for _, p := range all {
		if st, err := os.Lstat(p); err == nil && st.IsDir() {
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	return pkgs, err
}

// CheckPackages checks every provider package in an unpacked mirror tree (HOST/NS/TYPE/VERSION/
// OS_ARCH/) against the lock file's hashes: each must be a package of a locked provider and
// version, and its h1: hash one the lock records. It names each that is not.
func CheckPackages(mirror string, lock []byte) error {
	providers, err := ReadLock(lock)
	if err != nil {
		return err
	}
	locked := map[string]LockedProvider{}
	for _, lp := range providers {
		locked[lp.Address+"@"+lp.Version] = lp
	}
	pkgs, err := Packages(mirror)
	if err != nil {
		return err
	}
	var bad []string
	for _, pkg := range pkgs {
		rel, _ := filepath.Rel(mirror, pkg)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		lp, ok := locked[strings.Join(parts[:3], "/")+"@"+parts[3]]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s is no provider of the release's lock file", rel))
			continue
		}
		h, err := PackageHash(pkg)
		if err != nil {
			return err
		}
		if !slices.Contains(lp.Hashes, h) {
			bad = append(bad, fmt.Sprintf("%s hashes to %s, which the release's lock file does not record (it records %s)", rel, h, strings.Join(lp.Hashes, ", ")))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("providers do not match the release's lock file:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

package runs

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/proc"
	"github.com/rollout-dev/rollout/internal/provision"
)

// A release crosses an air gap as one archive (tar.gz): the release record (name, digest, module
// digest, variables with secret ones sealed), what its digest is the SHA-256 of, the module
// snapshot's bundle, the provider lock file, optionally the providers for a boundary's mirror, and
// manifest.json, the SHA-256 of each of those. Import checks every digest before it records
// anything.

// transferManifest is an archive's manifest.json.
type transferManifest struct {
	V       int               `json:"v"`
	Release journal.Release   `json:"release"`
	Files   map[string]string `json:"files"` // name in the archive: SHA-256
}

const (
	fileRelease    = "release.json"
	fileDescriptor = "release.descriptor"
	fileBundle     = "module.tar.gz"
	fileLock       = ".terraform.lock.hcl"
	fileProviders  = "providers.tar.gz"
)

// What an archive may unpack to, at most: any bigger is refused at the entry that crosses the
// cap, before it is read (a small archive can claim gigabytes). Variables, so tests can lower them.
var (
	maxArchiveEntry   int64 = 1 << 30 // one file of the release archive
	maxArchiveTotal   int64 = 3 << 29 // all of them (1.5 GiB)
	maxArchiveEntries       = 64      // a stack: two files per component (snapshot, providers)
	maxProvidersEntry int64 = 1 << 30 // one file of providers.tar.gz
	maxProvidersTotal int64 = 4 << 30
	maxProviderFiles        = 10_000
)

// ExportRelease writes release name's archive to out (with the providers Terraform installed for
// it, if providers), and returns the archive's SHA-256.
func (f *Fleet) ExportRelease(ctx context.Context, name, out string, providers bool) (string, error) {
	rel, err := f.releases.Release(ctx, name)
	if err != nil {
		return "", err
	}
	module := rel.Ref().ModuleDigest()
	files := map[string][]byte{}
	if files[fileRelease], err = json.MarshalIndent(rel, "", "  "); err != nil {
		return "", err
	}
	if files[fileDescriptor], err = descriptor(rel); err != nil {
		return "", err
	}
	if files[fileBundle], err = f.releases.Bundle(ctx, module); err != nil {
		return "", fmt.Errorf("the module snapshot of release %s: %w", name, err)
	}
	st, err := f.stackInBundle(files[fileBundle], module)
	if err != nil {
		return "", err
	}
	for _, c := range stackComponents(st) { // a stack: each component's snapshot beside the stack's
		if files[componentFile(c.Name)], err = f.releases.Bundle(ctx, c.Module); err != nil {
			return "", fmt.Errorf("the snapshot of component %s of release %s: %w", c.Name, name, err)
		}
	}
	for _, c := range stackComponents(st) {
		if !providers {
			break
		}
		resolution := filepath.Join(f.stateDir, "providers", c.Module)
		dir := filepath.Join(resolution, ".terraform", "providers")
		if _, err := os.Stat(resolution); err == nil && !exists(dir) {
			continue // resolved here, and it needs no provider (built-in resources only)
		}
		if files[componentProviders(c.Name)], err = tarGz(dir); err != nil {
			return "", fmt.Errorf("--providers: the providers of component %s of release %s are not installed on this machine (%v): run rollout preflight or plan first", c.Name, name, err)
		}
	}
	resolved := filepath.Join(f.stateDir, "providers", module)
	if providers && st == nil {
		if files[fileProviders], err = tarGz(filepath.Join(resolved, ".terraform", "providers")); err != nil {
			return "", fmt.Errorf("--providers: the providers of release %s are not installed on this machine (%v): run rollout preflight or plan first", name, err)
		}
	}
	m := transferManifest{V: 1, Release: rel, Files: map[string]string{}}
	for k, b := range files {
		m.Files[k] = sha256hex(b)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	files["manifest.json"] = mb
	return writeArchive(out, files)
}

// ImportRelease checks an archive and records its release under the same name and digest: every
// file's digest, the release digest against its descriptor, the module bundle against its digest.
// A name that means another release here is refused. providersTo (optional) receives the
// providers, in the unpacked layout a filesystem mirror reads.
func (f *Fleet) ImportRelease(ctx context.Context, path, providersTo string) (journal.Release, error) {
	files, err := readArchive(path)
	if err != nil {
		return journal.Release{}, err
	}
	var m transferManifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil || m.V != 1 {
		return journal.Release{}, fmt.Errorf("%s: no readable manifest.json (v1): %v", path, err)
	}
	for name, want := range m.Files {
		if got := sha256hex(files[name]); got != want {
			return journal.Release{}, fmt.Errorf("%s: %s does not match the manifest (SHA-256 %s, manifest %s): the archive was changed; refused", path, name, short(got), short(want))
		}
	}
	for name := range files {
		if _, ok := m.Files[name]; !ok && name != "manifest.json" {
			return journal.Release{}, fmt.Errorf("%s: %s is not in the manifest: refused", path, name)
		}
	}
	rel, lock, locks, err := checkRelease(m, files, f.stateDir)
	if err != nil {
		return journal.Release{}, fmt.Errorf("%s: %w", path, err)
	}
	if providersTo != "" && files[fileProviders] != nil {
		// Checked before anything is recorded: the binaries must be the ones the release's lock
		// file (bound to its digest, so to its evidence) records.
		if err := f.installProviders(files[fileProviders], lock, providersTo); err != nil {
			return journal.Release{}, fmt.Errorf("%s: --providers-to: %w", path, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(locks)) { // a stack: each component's, against its own lock
		if b := files[componentProviders(name)]; providersTo != "" && b != nil {
			if err := f.installProviders(b, locks[name], providersTo); err != nil {
				return journal.Release{}, fmt.Errorf("%s: --providers-to: component %s: %w", path, name, err)
			}
		}
	}
	if err := f.recordImported(ctx, rel, files); err != nil {
		return journal.Release{}, err
	}
	return rel, nil
}

// stackInBundle is the stack a release's module bundle holds (nil: one root module).
func (f *Fleet) stackInBundle(bundle []byte, module string) (*provision.Stack, error) {
	tmp, err := os.MkdirTemp(f.stateDir, ".stack-")
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = filepath.WalkDir(tmp, func(p string, _ fs.DirEntry, _ error) error { _ = os.Chmod(p, 0o700); return nil })
		_ = os.RemoveAll(tmp)
	}()
	if err := provision.Unbundle(bundle, tmp, module); err != nil {
		return nil, err
	}
	return provision.ReadStack(provision.SnapshotDir(tmp, module))
}

// componentProviders is the archive's file of a stack component's providers (--providers).
func componentProviders(name string) string { return "providers-" + name + ".tar.gz" }

// componentFile is the archive's file of a stack component's snapshot.
func componentFile(name string) string { return "component-" + name + ".tar.gz" }

// checkComponents checks a stack's component snapshots against the digests its stack file (in
// the checked stack snapshot at snap) names, and returns each one's lock file (none for a release
// of one root module).
func checkComponents(snap, tmp string, files map[string][]byte) (map[string][]byte, error) {
	st, err := provision.ReadStack(snap)
	if err != nil || st == nil {
		return nil, err
	}
	locks := map[string][]byte{}
	for _, c := range st.Components {
		b, ok := files[componentFile(c.Name)]
		if !ok {
			return nil, fmt.Errorf("component %s's snapshot is missing from the archive: refused", c.Name)
		}
		if err := provision.Unbundle(b, tmp, c.Module); err != nil {
			return nil, fmt.Errorf("component %s: %w", c.Name, err)
		}
		locks[c.Name], _ = os.ReadFile(filepath.Join(provision.SnapshotDir(tmp, c.Module), provision.LockFile))
	}
	return locks, nil
}

// installProviders unpacks an archive's providers beside mirror, checks every package against
// the release's lock file, and only then copies them into the mirror: a file already there must
// be the same bytes (a mirror other fleets may share never has a binary replaced).
func (f *Fleet) installProviders(data, lock []byte, mirror string) error {
	if len(lock) == 0 {
		return errors.New("the archive holds providers, but its release has no lock file recording their hashes: refused")
	}
	if err := os.MkdirAll(mirror, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(mirror, ".import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := untarGz(data, tmp); err != nil {
		return err
	}
	if err := provision.CheckPackages(tmp, lock); err != nil {
		return err
	}
	pkgs, err := provision.Packages(tmp)
	if err != nil {
		return err
	}
	var files []string // the packages' files only: nothing else of the archive reaches the mirror
	for _, pkg := range pkgs {
		err = filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	var clash []string
	for _, p := range files {
		rel, _ := filepath.Rel(tmp, p)
		dst := filepath.Join(mirror, rel)
		if have, err := os.ReadFile(dst); err == nil {
			if got, _ := os.ReadFile(p); sha256hex(have) != sha256hex(got) {
				clash = append(clash, fmt.Sprintf("%s (the mirror's SHA-256 %s, the archive's %s)", rel, sha256hex(have), sha256hex(got)))
			}
		}
	}
	if len(clash) > 0 {
		return fmt.Errorf("the mirror already holds other bytes under the same name; nothing was replaced:\n  %s", strings.Join(clash, "\n  "))
	}
	for _, p := range files {
		rel, _ := filepath.Rel(tmp, p)
		dst := filepath.Join(mirror, rel)
		if exists(dst) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(p, dst); err != nil {
			return err
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// checkRelease checks that the release record is what the manifest says, that its name is a
// name, that its digest is its descriptor's, and that the bundle is its module snapshot; it
// returns the snapshot's lock file (nil: none).
func checkRelease(m transferManifest, files map[string][]byte, stateDir string) (journal.Release, []byte, map[string][]byte, error) {
	var rel journal.Release
	if err := json.Unmarshal(files[fileRelease], &rel); err != nil {
		return rel, nil, nil, fmt.Errorf("%s: %w", fileRelease, err)
	}
	if err := config.ValidName("release", rel.Name); err != nil {
		return rel, nil, nil, fmt.Errorf("refused: %w", err)
	}
	if rel.Name != m.Release.Name || rel.Digest != m.Release.Digest {
		return rel, nil, nil, errors.New("the release record is not the manifest's")
	}
	module := rel.Ref().ModuleDigest()
	if err := provision.CheckDigest(module); err != nil {
		return rel, nil, nil, err
	}
	d, err := descriptor(rel)
	if err != nil {
		return rel, nil, nil, err
	}
	if !bytes.Equal(d, files[fileDescriptor]) || sha256hex(d) != rel.Digest {
		return rel, nil, nil, fmt.Errorf("release %s's digest %s is not its content's: refused", rel.Name, short(rel.Digest))
	}
	tmp, err := os.MkdirTemp(stateDir, ".import-")
	if err != nil {
		return rel, nil, nil, err
	}
	defer os.RemoveAll(tmp)
	if err := provision.Unbundle(files[fileBundle], tmp, module); err != nil {
		return rel, nil, nil, err
	}
	locks, err := checkComponents(provision.SnapshotDir(tmp, module), tmp, files)
	if err != nil {
		return rel, nil, nil, err
	}
	lock, _ := os.ReadFile(filepath.Join(provision.SnapshotDir(tmp, module), provision.LockFile))
	_ = filepath.WalkDir(tmp, func(p string, _ fs.DirEntry, _ error) error { _ = os.Chmod(p, 0o700); return nil })
	if other, ok := files[fileLock]; ok && !bytes.Equal(other, lock) {
		return rel, nil, nil, fmt.Errorf("%s is not the lock file of release %s's module snapshot: refused", fileLock, rel.Name)
	}
	return rel, lock, locks, nil
}

// recordImported records the release unless its name means something else here.
func (f *Fleet) recordImported(ctx context.Context, rel journal.Release, files map[string][]byte) error {
	old, err := f.releases.Release(ctx, rel.Name)
	switch {
	case err == nil && old.Digest == rel.Digest:
		f.notef("release %s (digest %s) is recorded here already", rel.Name, short(rel.Digest))
		return nil
	case err == nil:
		return fmt.Errorf("release %s means another release here (digest %s, not %s): refused", rel.Name, short(old.Digest), short(rel.Digest))
	case !errors.Is(err, journal.ErrNotFound):
		return err
	}
	if err := f.releases.PutBundle(ctx, rel.Ref().ModuleDigest(), files[fileBundle]); err != nil {
		return err
	}
	st, err := f.stackInBundle(files[fileBundle], rel.Ref().ModuleDigest())
	if err != nil {
		return err
	}
	for _, c := range stackComponents(st) { // checked by checkRelease
		if err := f.releases.PutBundle(ctx, c.Module, files[componentFile(c.Name)]); err != nil {
			return err
		}
	}
	return f.releases.RecordRelease(ctx, rel)
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeArchive writes files as a tar.gz, in name order; it returns the archive's SHA-256.
func writeArchive(path string, files map[string][]byte) (string, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(files[name]); err != nil {
			return "", err
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return "", err
	}
	return sha256hex(buf.Bytes()), os.WriteFile(path, buf.Bytes(), 0o644)
}

// readArchive reads a tar.gz of regular files, bounded: it streams the file (a regular one only),
// so no more than the caps is ever held.
func readArchive(path string) (map[string][]byte, error) {
	in, err := proc.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: refused", path)
	}
	damaged := func(err error) error {
		return fmt.Errorf("%s is damaged or was changed, or is not a release archive (%v): refused", path, err)
	}
	gz, err := gzip.NewReader(bufio.NewReader(in))
	if err != nil {
		return nil, damaged(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, damaged(err)
		}
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, "/") {
			return nil, fmt.Errorf("%s: unexpected entry %q: refused", path, h.Name)
		}
		if err := underCaps(h, len(files)+1, &total, maxArchiveEntry, maxArchiveTotal, maxArchiveEntries); err != nil {
			return nil, fmt.Errorf("%s: %w: refused", path, err)
		}
		if files[h.Name], err = io.ReadAll(io.LimitReader(tr, h.Size)); err != nil {
			return nil, damaged(err)
		}
	}
}

// underCaps counts entry h (the n-th) into total, and says which cap it crosses, if any.
func underCaps(h *tar.Header, n int, total *int64, entry, all int64, count int) error {
	switch *total += max(h.Size, 0); {
	case h.Size > entry:
		return fmt.Errorf("entry %q is %d bytes, over the cap of %d for one entry", h.Name, h.Size, entry)
	case *total > all:
		return fmt.Errorf("entry %q brings the unpacked size to %d bytes, over the cap of %d", h.Name, *total, all)
	case n > count:
		return fmt.Errorf("entry %q is one more than the cap of %d entries", h.Name, count)
	}
	return nil
}

// tarGz packs a directory tree's regular files, following symbolic links (Terraform links
// installed providers to its cache).
func tarGz(dir string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := addTree(tw, dir, ""); err != nil {
		return nil, err
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addTree(tw *tar.Writer, dir, prefix string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p, name := filepath.Join(dir, e.Name()), filepath.ToSlash(filepath.Join(prefix, e.Name()))
		st, err := os.Stat(p) // through a link
		if err != nil {
			return err
		}
		if st.IsDir() {
			if err := addTree(tw, p, name); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(st.Mode().Perm()), Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// untarGz unpacks what tarGz packed into dir.
func untarGz(data []byte, dir string) error {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	var total int64
	for n := 1; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(h.Name)
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(name) {
			return fmt.Errorf("unexpected entry %q", h.Name)
		}
		if err := underCaps(h, n, &total, maxProvidersEntry, maxProvidersTotal, maxProviderFiles); err != nil {
			return fmt.Errorf("providers: %w", err)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, b, os.FileMode(h.Mode)&0o755); err != nil {
			return err
		}
	}
}

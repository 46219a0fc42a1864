package runs

import (
	"archive/tar"
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

	"github.com/rollout-dev/rollout/internal/journal"
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
	maxTransfer    = 2 << 30
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
	if files[fileDescriptor], err = provision.ReleaseDescriptor(module, rel.Vars); err != nil {
		return "", err
	}
	if files[fileBundle], err = f.releases.Bundle(ctx, module); err != nil {
		return "", fmt.Errorf("the module snapshot of release %s: %w", name, err)
	}
	resolved := filepath.Join(f.stateDir, "providers", module)
	if b, err := os.ReadFile(filepath.Join(resolved, fileLock)); err == nil {
		files[fileLock] = b
	}
	if providers {
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
	rel, err := checkRelease(m, files, f.stateDir)
	if err != nil {
		return journal.Release{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.recordImported(ctx, rel, files[fileBundle]); err != nil {
		return journal.Release{}, err
	}
	if providersTo != "" && files[fileProviders] != nil {
		if err := untarGz(files[fileProviders], providersTo); err != nil {
			return rel, fmt.Errorf("--providers-to: %w", err)
		}
	}
	return rel, nil
}

// checkRelease checks that the release record is what the manifest says, that its digest is its
// descriptor's, and that the bundle is its module snapshot.
func checkRelease(m transferManifest, files map[string][]byte, stateDir string) (journal.Release, error) {
	var rel journal.Release
	if err := json.Unmarshal(files[fileRelease], &rel); err != nil {
		return rel, fmt.Errorf("%s: %w", fileRelease, err)
	}
	if rel.Name != m.Release.Name || rel.Digest != m.Release.Digest {
		return rel, errors.New("the release record is not the manifest's")
	}
	module := rel.Ref().ModuleDigest()
	d, err := provision.ReleaseDescriptor(module, rel.Vars)
	if err != nil {
		return rel, err
	}
	if !bytes.Equal(d, files[fileDescriptor]) || sha256hex(d) != rel.Digest {
		return rel, fmt.Errorf("release %s's digest %s is not its content's: refused", rel.Name, short(rel.Digest))
	}
	tmp, err := os.MkdirTemp(stateDir, ".import-")
	if err != nil {
		return rel, err
	}
	defer os.RemoveAll(tmp)
	if err := provision.Unbundle(files[fileBundle], tmp, module); err != nil {
		return rel, err
	}
	_ = filepath.WalkDir(tmp, func(p string, _ fs.DirEntry, _ error) error { _ = os.Chmod(p, 0o700); return nil })
	return rel, nil
}

// recordImported records the release unless its name means something else here.
func (f *Fleet) recordImported(ctx context.Context, rel journal.Release, bundle []byte) error {
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
	if err := f.releases.PutBundle(ctx, rel.Ref().ModuleDigest(), bundle); err != nil {
		return err
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

// readArchive reads a tar.gz of regular files, bounded.
func readArchive(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	damaged := func(err error) error {
		return fmt.Errorf("%s is damaged or was changed, or is not a release archive (%v): refused", path, err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, damaged(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, damaged(err)
		}
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, "/") || h.Size > maxTransfer {
			return nil, fmt.Errorf("%s: unexpected entry %q: refused", path, h.Name)
		}
		if files[h.Name], err = io.ReadAll(io.LimitReader(tr, h.Size)); err != nil {
			return nil, damaged(err)
		}
	}
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
	for {
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
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxTransfer))
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, b, os.FileMode(h.Mode)&0o755); err != nil {
			return err
		}
	}
}

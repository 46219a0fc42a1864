// Package provision runs Terraform (or OpenTofu) through terraform-exec: content-addressed
// release snapshots, provider plugins resolved once per snapshot, a working directory per target,
// plan to a file, then apply of exactly that file.
package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/proc"
)

// skipInSnapshot says which paths of a module tree are not part of a release.
func skipInSnapshot(rel string, d fs.DirEntry) bool {
	base := d.Name()
	if d.IsDir() {
		return base == ".terraform" || base == ".git" || base == ".rollout"
	}
	return strings.HasSuffix(base, ".tfstate") || strings.HasSuffix(base, ".tfstate.backup") ||
		strings.HasSuffix(base, ".tfplan") || base == ".terraform.tfstate.lock.info"
}

// moduleTree lists a module tree's regular files and folders (relative paths, in walk order),
// refusing anything else: a symbolic link (one that leaves the tree would ship what it points to;
// rollout keeps no links at all, inside or out), a FIFO (opening it would wait for a writer for
// ever), a device or a socket. It opens nothing, so it never blocks.
func moduleTree(dir string) (files, dirs []string, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if skipInSnapshot(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch t := d.Type(); {
		case t.IsDir():
			dirs = append(dirs, rel)
		case t.IsRegular():
			files = append(files, rel)
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link: a release ships files, not links (replace it with the file it points to)", rel)
		default:
			return fmt.Errorf("%s is not a regular file (%v): a release ships files and folders only", rel, t)
		}
		return nil
	})
	return files, dirs, err
}

// Digest is the sha256 of a module tree: every file's path, executable bit and content.
func Digest(dir string) (string, error) { return treeDigest(dir, "", nil) }

// digestExcept is Digest of the tree without its top-level file skip.
func digestExcept(dir, skip string) (string, error) { return treeDigest(dir, skip, nil) }

// digestWith is Digest of the tree with one more top-level file (not executable): what its copy
// with that file would hash to, without copying it.
func digestWith(dir, name string, content []byte) (string, error) {
	return treeDigest(dir, name, map[string][]byte{name: content})
}

// treeDigest hashes the tree at dir without its top-level file skip ("": none), plus the files
// of add (relative path: content, not executable).
func treeDigest(dir, skip string, add map[string][]byte) (string, error) {
	files, _, err := moduleTree(dir)
	if err != nil {
		return "", fmt.Errorf("digest module %s: %w", dir, err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return skip != "" && f == skip })
	lines := map[string]string{}
	var total int64
	for _, rel := range files {
		st, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			return "", fmt.Errorf("digest module %s: %w", dir, err)
		}
		if !st.Mode().IsRegular() { // replaced since the walk
			return "", fmt.Errorf("digest module %s: %s is no longer a regular file", dir, rel)
		}
		if total += st.Size(); total > MaxBundleSize || len(files) > MaxBundleEntries {
			return "", fmt.Errorf("module %s is over %d MiB or %d files: a release ships a Terraform module, not that", dir, MaxBundleSize>>20, MaxBundleEntries)
		}
		f, err := openRegular(filepath.Join(dir, rel))
		if err != nil {
			return "", fmt.Errorf("digest module %s: %w", dir, err)
		}
		fh := sha256.New()
		_, err = io.Copy(fh, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("digest module %s: %w", dir, err)
		}
		lines[rel] = fmt.Sprintf("%s\x00%t\x00%x\n", filepath.ToSlash(rel), st.Mode()&0o111 != 0, fh.Sum(nil))
	}
	for rel, content := range add {
		lines[rel] = fmt.Sprintf("%s\x00%t\x00%x\n", filepath.ToSlash(rel), false, sha256.Sum256(content))
	}
	h := sha256.New()
	for _, rel := range slices.Sorted(maps.Keys(lines)) {
		io.WriteString(h, lines[rel])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Snapshot copies the module tree at dir into stateDir/releases/<digest>/, read-only, unless that
// snapshot exists already, and returns the digest. The copy is made beside it and renamed into
// place, so a crash never leaves a half-written snapshot under the digest's name.
func Snapshot(dir, stateDir string) (string, error) {
	digest, err := Digest(dir)
	if err != nil {
		return "", err
	}
	dst := SnapshotDir(stateDir, digest)
	if _, err := os.Stat(dst); err == nil {
		return digest, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".tmp-"+digest[:12]+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	files, dirs, err := moduleTree(dir)
	if err != nil {
		return "", fmt.Errorf("snapshot module %s: %w", dir, err)
	}
	for _, rel := range dirs {
		if err := os.MkdirAll(filepath.Join(tmp, rel), 0o700); err != nil {
			return "", err
		}
	}
	for _, rel := range files {
		st, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil || !st.Mode().IsRegular() {
			return "", fmt.Errorf("snapshot module %s: %s is no longer a regular file", dir, rel)
		}
		if err := copyFile(filepath.Join(dir, rel), filepath.Join(tmp, rel), 0o400|st.Mode()&0o100); err != nil {
			return "", fmt.Errorf("snapshot module %s: %w", dir, err)
		}
	}
	if got, err := Digest(tmp); err != nil || got != digest {
		return "", fmt.Errorf("snapshot module %s: it changed while it was being copied; try again", dir)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Chmod(filepath.Join(tmp, dirs[i]), 0o500)
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, statErr := os.Stat(dst); statErr == nil {
			return digest, nil // another process made the same snapshot first
		}
		return "", fmt.Errorf("snapshot module %s: %w", dir, err)
	}
	_ = os.Chmod(dst, 0o500)
	return digest, nil
}

var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckDigest refuses what is not a sha256 digest in hex: a digest read from a damaged or crafted
// journal ("abc", "../../evil") must never become a path.
func CheckDigest(digest string) error {
	if !digestRE.MatchString(digest) {
		return fmt.Errorf("%q is not a release digest (64 hex digits): the journal or the archive it came from is damaged", clip(digest, 80))
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// SnapshotDir is where the snapshot of a digest lives.
func SnapshotDir(stateDir, digest string) string {
	return filepath.Join(stateDir, "releases", digest)
}

// openRegular opens a file for reading without ever waiting (a FIFO put in its place since it was
// checked opens at once, and is refused).
func openRegular(p string) (*os.File, error) {
	f, err := proc.OpenRegular(p)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return f, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := openRegular(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// ReleaseDigest is the digest of a release: its name, its module snapshot's digest (the tree
// with its providers' lock file) and its variables, in canonical JSON (object keys sorted). Two
// releases with the same code and different variables differ, and so do two names for the same
// content: evidence or an approval of one is never of the other.
func ReleaseDigest(name, module string, vars map[string]any) (string, error) {
	d, err := ReleaseDescriptor(name, module, vars)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(d)
	return hex.EncodeToString(sum[:]), nil
}

// ReleaseDescriptor is what a release's digest is the SHA-256 of: its name, its module
// snapshot's digest and its variables (secret ones sealed). Evidence carries it, so that a
// verifier that is not rollout (cosign verify-blob-attestation) checks an attestation's subject
// against it.
func ReleaseDescriptor(name, module string, vars map[string]any) ([]byte, error) {
	b, err := json.Marshal(vars)
	if err != nil {
		return nil, fmt.Errorf("release variables: %w", err)
	}
	return fmt.Appendf(nil, "rollout release v2\nname %s\nmodule %s\nvars %s\n", name, module, b), nil
}

// ReleaseDescriptorV1 is the first descriptor, without the name: the digest of releases recorded
// before names were bound (they keep it; nothing new is given one).
func ReleaseDescriptorV1(module string, vars map[string]any) ([]byte, error) {
	b, err := json.Marshal(vars)
	if err != nil {
		return nil, fmt.Errorf("release variables: %w", err)
	}
	return fmt.Appendf(nil, "rollout release v1\nmodule %s\nvars %s\n", module, b), nil
}

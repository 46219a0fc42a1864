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
	"os"
	"path/filepath"
	"sort"
	"strings"
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

// Digest is the sha256 of a module tree: every file's path, executable bit and content.
func Digest(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "." && skipInSnapshot(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("digest module %s: %w", dir, err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, rel := range files {
		st, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			return "", fmt.Errorf("digest module %s: %w", dir, err)
		}
		f, err := os.Open(filepath.Join(dir, rel))
		if err != nil {
			return "", fmt.Errorf("digest module %s: %w", dir, err)
		}
		fh := sha256.New()
		_, err = io.Copy(fh, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("digest module %s: %w", dir, err)
		}
		fmt.Fprintf(h, "%s\x00%t\x00%x\n", filepath.ToSlash(rel), st.Mode()&0o111 != 0, fh.Sum(nil))
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
	var dirs []string
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
		target := filepath.Join(tmp, rel)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			dirs = append(dirs, target)
			return os.MkdirAll(target, 0o700)
		}
		return copyFile(p, target, 0o400|st.Mode()&0o100)
	})
	if err != nil {
		return "", fmt.Errorf("snapshot module %s: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Chmod(dirs[i], 0o500)
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

// SnapshotDir is where the snapshot of a digest lives.
func SnapshotDir(stateDir, digest string) string {
	return filepath.Join(stateDir, "releases", digest)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
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

// ReleaseDigest is the digest of a release: its module tree's digest and its variables, in
// canonical JSON (object keys sorted). Two releases with the same code and different variables
// differ.
func ReleaseDigest(module string, vars map[string]any) (string, error) {
	b, err := json.Marshal(vars)
	if err != nil {
		return "", fmt.Errorf("release variables: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "rollout release v1\nmodule %s\nvars %s\n", module, b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

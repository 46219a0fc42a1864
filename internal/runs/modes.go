package runs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Files under the fleet's local directory may hold secrets (the journal, Terraform's plan files and
// local state, variable files): rollout creates them for its own user only (umask 077, set in
// Main: files 0600, folders 0700; read-only release snapshots 0400/0500), and tightens what an
// earlier version left looser once per directory.

// modesMarker records that a local directory's modes were tightened.
const modesMarker = ".modes-v1"

// tightenModes takes group and other permissions away from everything under dir, once.
func tightenModes(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, modesMarker)); err == nil {
		return nil
	}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil // nothing yet: what is created is created tight
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: the walk goes on
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // a working directory's links into a snapshot
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if m := info.Mode().Perm(); m&0o077 != 0 {
			_ = os.Chmod(p, m&0o700)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, modesMarker), nil, 0o600)
}

// looseModes lists what under dir other local users could read or write (state doctor).
func looseModes(dir string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, fmt.Sprintf("%s is %v", rel, info.Mode().Perm()))
		}
		return nil
	})
	return out
}

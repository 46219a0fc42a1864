package provision

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Bundle packs a snapshot as a gzipped tar: sorted, without times or owners, so the same tree
// always gives the same bytes.
func Bundle(dir string) ([]byte, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	sort.Strings(files)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, p := range files {
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(0o444 | st.Mode()&0o111), Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// A bundle is a module snapshot: it expands to at most MaxBundleSize bytes in MaxBundleEntries
// files, and writing stops at the cap (a small archive must not fill the disk).
var (
	MaxBundleSize    int64 = 256 << 20
	MaxBundleEntries       = 20000
)

// Unbundle unpacks a bundle into stateDir/releases/<digest>/, read-only, after checking that its
// content has that digest: a bundle that does not match is refused, never applied.
func Unbundle(data []byte, stateDir, digest string) error {
	if err := CheckDigest(digest); err != nil {
		return err
	}
	dst := SnapshotDir(stateDir, digest)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".unbundle-"+digest[:12]+"-")
	if err != nil {
		return err
	}
	defer func() { _ = makeWritable(tmp); _ = os.RemoveAll(tmp) }()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("release bundle %s: %w", digest[:12], err)
	}
	tr := tar.NewReader(gz)
	budget, entries := MaxBundleSize, 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("release bundle %s: %w", digest[:12], err)
		}
		name := filepath.FromSlash(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || !filepath.IsLocal(name) || strings.HasPrefix(name, "..") {
			return fmt.Errorf("release bundle %s: unexpected entry %q", digest[:12], hdr.Name)
		}
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if entries++; entries > MaxBundleEntries || hdr.Size > budget {
			f.Close()
			return fmt.Errorf("release bundle %s expands to more than %d files or %d MiB: refused", digest[:12], MaxBundleEntries, MaxBundleSize>>20)
		}
		n, err := io.Copy(f, io.LimitReader(tr, hdr.Size))
		budget -= n
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := os.Chmod(p, os.FileMode(hdr.Mode)&0o500); err != nil {
			return err
		}
	}
	got, err := Digest(tmp)
	if err != nil {
		return err
	}
	if got != digest {
		return fmt.Errorf("release bundle %s does not match its digest (its content hashes to %s): refused", digest[:12], got[:12])
	}
	_ = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != tmp {
			_ = os.Chmod(p, 0o500)
		}
		return nil
	})
	if err := os.Rename(tmp, dst); err != nil {
		if _, statErr := os.Stat(dst); statErr == nil {
			return nil
		}
		return err
	}
	return os.Chmod(dst, 0o500)
}

func makeWritable(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
}

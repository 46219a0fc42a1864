package release

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// entry is one file of an archive.
type entry struct {
	name string
	mode fs.FileMode
	data []byte
}

// Archive writes p's archive (a .tar.gz, a .zip for Windows): the binary, README.md and, when the
// repository has one, LICENSE, under rollout_VERSION_OS_ARCH/, in that order, each with the
// commit's time, mode 0755 or 0644 and owner 0.
func Archive(o Options, src Source, p Platform, bin string) (string, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	dir := "rollout_" + o.Version + "_" + p.String()
	entries := []entry{{dir + "/" + filepath.Base(bin), 0o755, b}}
	for _, name := range []string{"LICENSE", "README.md"} {
		if data, err := os.ReadFile(filepath.Join(o.Source, name)); err == nil {
			entries = append(entries, entry{dir + "/" + name, 0o644, data})
		}
	}
	if p.OS == "windows" {
		out := filepath.Join(o.Out, dir+".zip")
		return out, writeZip(out, entries, src.Time)
	}
	out := filepath.Join(o.Out, dir+".tar.gz")
	return out, writeTarGz(out, entries, src.Time)
}

func writeTarGz(path string, entries []entry, at time.Time) error {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	gz.ModTime = at // the header's time: the commit's, never now
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: int64(e.mode), Size: int64(len(e.data)), ModTime: at, Typeflag: tar.TypeReg,
			Uid: 0, Gid: 0, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func writeZip(path string, entries []entry, at time.Time) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: at.UTC()}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, bytes.NewReader(e.data)); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

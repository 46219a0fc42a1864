package release

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImageUser is the image's user: not root (distroless's nonroot IDs).
const ImageUser = "65532:65532"

// Image writes the OCI image layout oci/ (no Docker engine: go-containerregistry): an index of one
// image per Linux platform built, each from scratch with the static binary at
// /usr/local/bin/rollout as its entrypoint, a non-root user, /etc/passwd naming it, and the
// commit's time as its creation time. It returns the layout's index.json ("" when no Linux
// binary was built).
func Image(o Options, src Source, bins map[Platform]string) (string, error) {
	var adds []mutate.IndexAddendum
	for _, p := range o.Platforms {
		if p.OS != "linux" {
			continue
		}
		img, err := platformImage(o, src, p, bins[p])
		if err != nil {
			return "", err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}}})
	}
	if len(adds) == 0 {
		return "", nil
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	idx = mutate.Annotations(idx, map[string]string{
		"org.opencontainers.image.revision": src.Commit, "org.opencontainers.image.version": o.Version,
		"org.opencontainers.image.created": src.Time.Format(time.RFC3339)}).(v1.ImageIndex)
	dir := filepath.Join(o.Out, "oci")
	if _, err := layout.Write(dir, idx); err != nil {
		return "", err
	}
	return filepath.Join(dir, "index.json"), nil
}

func platformImage(o Options, src Source, p Platform, bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	layerTar, err := imageLayer(data, src.Time)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Arch
	cf.Config.Entrypoint = []string{"/usr/local/bin/rollout"}
	cf.Config.User = ImageUser
	cf.Config.WorkingDir = "/work"
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.revision": src.Commit, "org.opencontainers.image.version": o.Version}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.CreatedAt(img, v1.Time{Time: src.Time})
}

// imageLayer is the image's one layer: /etc/passwd and /etc/group naming the non-root user, a
// /work directory it owns, and the binary; every entry with the commit's time.
func imageLayer(bin []byte, at time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		uid  int
		data []byte
		dir  bool
	}{
		{"etc/", 0o755, 0, nil, true},
		{"etc/group", 0o644, 0, []byte("root:x:0:\nnonroot:x:65532:\n"), false},
		{"etc/passwd", 0o644, 0, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/work:/sbin/nologin\n"), false},
		{"usr/", 0o755, 0, nil, true},
		{"usr/local/", 0o755, 0, nil, true},
		{"usr/local/bin/", 0o755, 0, nil, true},
		{"usr/local/bin/rollout", 0o755, 0, bin, false},
		{"work/", 0o755, 65532, nil, true},
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: at, Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if !f.dir {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

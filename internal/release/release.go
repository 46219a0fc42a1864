// Package release builds rollout's release (make release): a static, stripped binary per platform
// in a reproducible archive, a CycloneDX SBOM per binary, checksums.txt signed as cosign signs a
// blob, a SLSA v1 provenance statement signed in a DSSE envelope with the evidence's own code, and
// an OCI image layout of the Linux binaries. Two builds of one commit give the same bytes: every
// time in them is the commit's, archive entries are sorted with fixed modes and owners, and the
// Go build is -trimpath with no build ID.
//
// It is a short program of its own rather than GoReleaser: a release must be built on an air-gapped
// boundary's own machine with nothing but Go and this repository, its signing key is the same file
// or KMS signer as the evidence's (internal/evidence), and its provenance is checked by the same
// verifier (rollout evidence verify) as every other attestation here.
package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Platform is a GOOS/GOARCH pair.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "_" + p.Arch }

// Platforms are those a release is built for.
var Platforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"}, {"windows", "arm64"}}

// Options say what to build and with what.
type Options struct {
	Source    string     // the repository's root
	Out       string     // where the release goes (emptied first)
	Version   string     // e.g. v1.4.0, or a snapshot's name
	Platforms []Platform // default: Platforms
	Key       string     // the signing key (PEM, mode 600): as evidence's
	CycloneDX string     // the cyclonedx-gomod binary
	Builder   string     // the builder's ID in the provenance (default: https://rollout.dev/make-release)
	Log       io.Writer
}

// Source is what a release is built from: the commit, its time, and whether the tree was clean.
type Source struct {
	Repo   string
	Commit string
	Time   time.Time
	Clean  bool
}

// Artifact is one file of the release with its digest.
type Artifact struct {
	Name   string
	SHA256 string
}

// Result is what Build wrote.
type Result struct {
	Source    Source
	Artifacts []Artifact // archives, SBOMs and the image's index, as checksums.txt lists them
	Binaries  map[Platform]string
}

// Build builds the release into o.Out.
func Build(ctx context.Context, o Options) (*Result, error) {
	if len(o.Platforms) == 0 {
		o.Platforms = Platforms
	}
	src, err := ReadSource(ctx, o.Source)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Out, "build"), 0o755); err != nil {
		return nil, err
	}
	res := &Result{Source: src, Binaries: map[Platform]string{}}
	for _, p := range o.Platforms {
		bin, err := buildBinary(ctx, o, p)
		if err != nil {
			return nil, err
		}
		res.Binaries[p] = bin
		archive, err := Archive(o, src, p, bin)
		if err != nil {
			return nil, err
		}
		sbom := filepath.Join(o.Out, "rollout_"+o.Version+"_"+p.String()+".cdx.json")
		if err := SBOM(ctx, o, bin, sbom); err != nil {
			return nil, err
		}
		for _, f := range []string{archive, sbom} {
			if err := res.add(o.Out, f); err != nil {
				return nil, err
			}
		}
	}
	if index, err := Image(o, src, res.Binaries); err != nil {
		return nil, err
	} else if index != "" {
		if err := res.add(o.Out, index); err != nil {
			return nil, err
		}
	}
	if err := res.writeChecksums(ctx, o); err != nil {
		return nil, err
	}
	return res, Provenance(ctx, o, res)
}

// add lists an artifact by its path in the release (oci/index.json for the image's index).
func (r *Result) add(out, path string) error {
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	name, err := filepath.Rel(out, path)
	if err != nil {
		return err
	}
	r.Artifacts = append(r.Artifacts, Artifact{Name: filepath.ToSlash(name), SHA256: sum})
	return nil
}

// writeChecksums writes checksums.txt (sha256sum's format, sorted by name) and its signature.
func (r *Result) writeChecksums(ctx context.Context, o Options) error {
	slices.SortFunc(r.Artifacts, func(a, b Artifact) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	for _, a := range r.Artifacts {
		fmt.Fprintf(&b, "%s  %s\n", a.SHA256, a.Name)
	}
	path := filepath.Join(o.Out, "checksums.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return SignBlob(ctx, o.Key, path, path+".sig")
}

// buildBinary builds rollout for p: static (CGO_ENABLED=0), -trimpath, stripped, no build ID,
// the version stamped in; Go stamps the commit, its time and whether the tree was clean.
func buildBinary(ctx context.Context, o Options, p Platform) (string, error) {
	name := "rollout"
	if p.OS == "windows" {
		name += ".exe"
	}
	out := filepath.Join(o.Out, "build", p.String(), name)
	logf(o, "release: building %s", p)
	cmd := exec.CommandContext(ctx, "go", append(append([]string{"build"}, buildFlags(o.Version)...), "-o", out, "./cmd/rollout")...)
	cmd.Dir = o.Source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build for %s: %v\n%s", p, err, b)
	}
	return out, nil
}

// buildFlags are go build's flags for a release (the provenance records them as they are).
func buildFlags(version string) []string {
	return []string{"-trimpath", "-buildvcs=true", "-ldflags", "-s -w -buildid= -X github.com/rollout-dev/rollout/internal/runs.version=" + version}
}

// ReadSource reads the commit a release is built from, with git.
func ReadSource(ctx context.Context, dir string) (Source, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		b, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		return Source{}, err
	}
	at, err := git("show", "-s", "--format=%ct", "HEAD")
	if err != nil {
		return Source{}, err
	}
	var secs int64
	fmt.Sscan(at, &secs)
	status, err := git("status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return Source{}, err
	}
	repo, _ := git("config", "--get", "remote.origin.url")
	return Source{Repo: repo, Commit: commit, Time: time.Unix(secs, 0).UTC(), Clean: status == ""}, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func logf(o Options, format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// goVersion is the Go toolchain that builds the release.
func goVersion(ctx context.Context) string {
	b, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(b))
}

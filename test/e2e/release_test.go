//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/rollout-dev/rollout/internal/evidence"
	"github.com/rollout-dev/rollout/internal/release"
)

// tool is a test tool's binary from its ROLLOUT_* variable (make test sets them: .tools/bin).
func tool(t *testing.T, env string) string {
	p := os.Getenv(env)
	if p == "" {
		if os.Getenv("ROLLOUT_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s is not set (make test-tools builds it)", env)
		}
		t.Skipf("%s is not set (make test sets it)", env)
	}
	return p
}

// TestTheReleaseIsReproducibleSignedAndInspectable: make release's builder, run twice on this
// commit, writes byte-identical archives, SBOMs and image; each artefact is checked by a tool
// that is not rollout's: cosign verifies the checksums' signature and the SLSA provenance,
// CycloneDX's parser reads the SBOM (every module with its version, licences), go-containerregistry
// reads the OCI layout (user, entrypoint, creation time); the binary taken out of the image's
// layer is static and says its version and commit; rollout evidence verify reads the provenance.
//
// Not parallel: its Go builds take both cores for a minute, which the timing tests running beside
// it would feel (the terminal test's screen lagged under it).
func TestTheReleaseIsReproducibleSignedAndInspectable(t *testing.T) {
	cosign, cyclonedx := tool(t, "ROLLOUT_COSIGN"), tool(t, "ROLLOUT_CYCLONEDX")
	src, _ := filepath.Abs(filepath.Join("..", ".."))
	keys := t.TempDir()
	if err := evidence.GenerateKey(filepath.Join(keys, "release")); err != nil {
		t.Fatal(err)
	}
	platforms := []release.Platform{{OS: "linux", Arch: "amd64"}, {OS: "windows", Arch: "arm64"}}
	build := func(out string) *release.Result {
		res, err := release.Build(context.Background(), release.Options{Source: src, Out: out, Version: "v0.0.0-e2e", Platforms: platforms,
			Key: filepath.Join(keys, "release.key"), CycloneDX: cyclonedx})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	res := build(a)
	build(b)
	for _, f := range append(res.Artifacts, release.Artifact{Name: "checksums.txt"}) {
		x, _ := os.ReadFile(filepath.Join(a, f.Name))
		y, _ := os.ReadFile(filepath.Join(b, f.Name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds of one commit (%d and %d bytes)", f.Name, len(x), len(y))
		}
	}
	for _, name := range []string{"rollout_v0.0.0-e2e_linux_amd64.tar.gz", "rollout_v0.0.0-e2e_windows_arm64.zip",
		"rollout_v0.0.0-e2e_linux_amd64.cdx.json", "checksums.txt.sig", "provenance.intoto.json", "oci/index.json"} {
		if _, err := os.Stat(filepath.Join(a, name)); err != nil {
			t.Errorf("the release lacks %s", name)
		}
	}
	pub := filepath.Join(keys, "release.pub")
	archive := filepath.Join(a, "rollout_v0.0.0-e2e_linux_amd64.tar.gz")
	for _, args := range [][]string{
		{"verify-blob", "--key", pub, "--insecure-ignore-tlog", "--signature", filepath.Join(a, "checksums.txt.sig"), filepath.Join(a, "checksums.txt")},
		{"verify-blob-attestation", "--key", pub, "--insecure-ignore-tlog", "--type", "slsaprovenance1", "--signature", filepath.Join(a, "provenance.intoto.json"), archive},
	} {
		if out, err := exec.Command(cosign, args...).CombinedOutput(); err != nil {
			t.Fatalf("cosign %s: %v\n%s", args[0], err, out)
		}
	}
	// A checksum file changed by one byte no longer verifies.
	sums, _ := os.ReadFile(filepath.Join(a, "checksums.txt"))
	forged := filepath.Join(t.TempDir(), "checksums.txt")
	_ = os.WriteFile(forged, bytes.Replace(sums, []byte("0"), []byte("1"), 1), 0o644)
	if err := exec.Command(cosign, "verify-blob", "--key", pub, "--insecure-ignore-tlog", "--signature", filepath.Join(a, "checksums.txt.sig"), forged).Run(); err == nil {
		t.Fatal("cosign verified a changed checksums.txt")
	}
	f := &fleet{t: t, dir: t.TempDir()}
	r := f.must(0, "evidence", "verify", filepath.Join(a, "provenance.intoto.json"), "--trust", pub, "--output", "json")
	conformsTo(t, "evidence-verify.v1.json", r.stdout)
	var prov struct {
		PredicateType string
		Subjects      []struct{ Name, SHA256 string }
		Predicate     struct {
			BuildDefinition struct {
				ExternalParameters struct{ Source struct{ Commit string } }
				InternalParameters struct{ Go string }
			}
			RunDetails struct{ Builder struct{ ID string } }
		}
	}
	_ = json.Unmarshal([]byte(r.stdout), &prov)
	if prov.PredicateType != release.ProvenanceType || len(prov.Subjects) != len(res.Artifacts) || prov.Predicate.BuildDefinition.ExternalParameters.Source.Commit != res.Source.Commit ||
		!strings.HasPrefix(prov.Predicate.BuildDefinition.InternalParameters.Go, "go1.") || prov.Predicate.RunDetails.Builder.ID == "" {
		t.Fatalf("the provenance: %s", r.stdout)
	}

	// The SBOM, read by CycloneDX's own parser: every module of the binary with its version, and
	// its licence where one was found.
	sb, err := os.Open(filepath.Join(a, "rollout_v0.0.0-e2e_linux_amd64.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(sb, cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	licensed, names := 0, map[string]bool{}
	for _, c := range *bom.Components {
		names[c.Name] = true
		if c.Version == "" {
			t.Errorf("SBOM: %s has no version", c.Name)
		}
		if c.Licenses != nil && len(*c.Licenses) > 0 {
			licensed++
		}
	}
	if len(names) < 50 || !names["github.com/spf13/cobra"] || !names["go.temporal.io/sdk"] || licensed*10 < len(names)*9 {
		t.Fatalf("SBOM: %d modules, %d with a licence", len(names), licensed)
	}

	// The image, read by go-containerregistry: one per Linux platform, not root, the binary as
	// entrypoint, created at the commit's time; its layer's binary runs.
	lp, err := layout.FromPath(filepath.Join(a, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Platform == nil || im.Manifests[0].Platform.Architecture != "amd64" {
		t.Fatalf("image index: %+v %v", im, err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil || cf.Config.User != release.ImageUser || strings.Join(cf.Config.Entrypoint, " ") != "/usr/local/bin/rollout" ||
		!cf.Created.Time.Equal(res.Source.Time) || cf.OS != "linux" {
		t.Fatalf("image config: %+v %v", cf, err)
	}
	bin := imageFile(t, img, "usr/local/bin/rollout")
	if e, err := elf.Open(bin); err != nil {
		t.Fatal(err)
	} else {
		for _, p := range e.Progs {
			if p.Type == elf.PT_INTERP {
				t.Fatal("the released binary is dynamically linked")
			}
		}
		e.Close()
	}
	out, err := exec.Command(bin, "version", "--output", "json").Output()
	var v struct{ Version, Commit, Date string }
	if err != nil || json.Unmarshal(out, &v) != nil || v.Version != "v0.0.0-e2e" || v.Commit != res.Source.Commit || v.Date == "" {
		t.Fatalf("the image's rollout version: %s %v", out, err)
	}
	pipelineScripts(t, a, pub, filepath.Dir(cosign))
}

// pipelineScripts runs the shell steps of the pipeline templates (.github/actions/rollout,
// ci/azure-pipelines) against the local release in dir: the install verifies the signature (with
// openssl, and with cosign when it is on PATH) and the checksum before it extracts anything, and
// refuses a release whose checksums were changed; the start step maps rollout's exit codes to the
// pipeline's result: a run waiting for an approval is not a failure, a rolled-back one is.
func pipelineScripts(t *testing.T, dir, pub, cosignDir string) {
	scripts, _ := filepath.Abs(filepath.Join("..", "..", "ci", "scripts"))
	sh := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	noCosign := "PATH=/usr/local/bin:/usr/bin:/bin"
	for _, path := range []string{noCosign, "PATH=" + cosignDir + ":/usr/local/bin:/usr/bin:/bin"} {
		dest := t.TempDir()
		if out, code := sh([]string{path}, filepath.Join(scripts, "install-rollout.sh"), "v0.0.0-e2e", dir, pub, dest); code != 0 || !strings.Contains(out, "verified and installed") {
			t.Fatalf("install-rollout.sh (%s): exit %d\n%s", path, code, out)
		}
		if _, err := os.Stat(filepath.Join(dest, "rollout")); err != nil {
			t.Fatal(err)
		}
	}
	forged := t.TempDir()
	for _, name := range []string{"checksums.txt", "checksums.txt.sig", "rollout_v0.0.0-e2e_linux_amd64.tar.gz"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if name == "checksums.txt" {
			b = append(b, []byte("0000000000000000000000000000000000000000000000000000000000000000  extra\n")...)
		}
		_ = os.WriteFile(filepath.Join(forged, name), b, 0o644)
	}
	dest := t.TempDir()
	if out, code := sh([]string{noCosign}, filepath.Join(scripts, "install-rollout.sh"), "v0.0.0-e2e", forged, pub, dest); code == 0 || !strings.Contains(out, "not signed") {
		t.Fatalf("a changed checksums.txt was installed: %s", out)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 0 {
		t.Fatal("something was extracted from an unverified release")
	}

	bin := t.TempDir()
	if out, code := sh([]string{noCosign}, filepath.Join(scripts, "install-rollout.sh"), "v0.0.0-e2e", dir, pub, bin); code != 0 {
		t.Fatal(out)
	}
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true}\n"))
	outputs := filepath.Join(t.TempDir(), "outputs")
	env := []string{"PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin", "ROLLOUT_CONFIG=" + f.dir, "GITHUB_OUTPUT=" + outputs,
		"REPORT=" + filepath.Join(f.dir, "report.json"), "EVENTS=" + filepath.Join(f.dir, "events.ndjson")}
	if out, code := sh(env, filepath.Join(scripts, "rollout-start.sh"), "v1"); code != 0 || !strings.Contains(out, "waits for approval") {
		t.Fatalf("rollout-start.sh on a ring waiting for approval: exit %d\n%s", code, out)
	}
	if o := readFile(t, outputs); !strings.Contains(o, "exit-code=3\n") || !strings.Contains(o, "waiting=approval\n") || !strings.Contains(o, "phase=waiting\n") {
		t.Fatalf("outputs: %s", o)
	}
	conforming(t, readFile(t, filepath.Join(f.dir, "report.json")))
	f.must(0, "approve", f.status().Run, "--ring", "only", "--reason", "ok", "--as", "ops")
	if out, code := sh(env, filepath.Join(scripts, "rollout-start.sh"), "v1"); code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("rollout-start.sh after the approval: exit %d\n%s", code, out)
	}
	g := newFleet(t, oneRing(1, "0", ""))
	env = append(env, "ROLLOUT_CONFIG="+g.dir, "REPORT="+filepath.Join(g.dir, "report.json"), "EVENTS="+filepath.Join(g.dir, "events.ndjson"))
	g.must(0, "start", "--release", "v1")
	if out, code := sh(env, filepath.Join(scripts, "rollout-start.sh"), "v2", "--var", "fault_tier=main"); code != 2 || !strings.Contains(out, "rolled back") {
		t.Fatalf("rollout-start.sh of a release that fails its gate: exit %d (want 2)\n%s", code, out)
	}
}

// imageFile writes one file of an image's layers out, executable, and returns its path.
func imageFile(t *testing.T, img v1.Image, name string) string {
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		zr, err := gzip.NewReader(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name == name {
				path := filepath.Join(t.TempDir(), filepath.Base(name))
				b, _ := io.ReadAll(tr)
				if err := os.WriteFile(path, b, 0o755); err != nil {
					t.Fatal(err)
				}
				return path
			}
		}
	}
	t.Fatalf("no %s in the image", name)
	return ""
}

//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/testsupport/pgtest"
)

// TestReleaseCrossesTheAirGapWithItsEvidence: a commercial fleet (journal on PostgreSQL) passes
// v1 through canary and commercial, writes signed in-toto attestations and exports the release; a
// sovereign fleet in another directory (journal on SQLite) whose promotion policy requires the
// commercial ring in both boundaries imports it and starts it with the evidence. Before that, each
// of these is refused with exit 1, a message that names the problem, and nothing applied: no
// evidence, a tampered archive (a byte of the file; a byte of a file inside), evidence of the
// canary ring only, evidence signed by an untrusted key, expired evidence. An independent
// verifier (cosign, when make test-tools built it) accepts an attestation too.
func TestReleaseCrossesTheAirGapWithItsEvidence(t *testing.T) {
	t.Parallel()
	admin := pgtest.URL(t)
	if admin == "" {
		t.Skip("PostgreSQL: skipped (ROLLOUT_TEST_POSTGRES not set)")
	}
	com := newFleet(t, fleetSpec{
		rings: "  - name: canary\n    targets: {labels: {tier: canary}}\n    gates: [healthz]\n" +
			"  - name: commercial\n    targets: {labels: {tier: main}}\n    gates: [healthz]\n",
		targets: "targets:\n" + targetsYAML("canary", "local-a", "canary", 1, "") + targetsYAML("main", "local-a", "main", 1, "") + targetsYAML("eu", "local-b", "main", 1, ""),
	})
	com.env = []string{"ROLLOUT_STATE=" + pgtest.FreshDatabase(t, admin)}
	keys := t.TempDir()
	com.must(0, "evidence", "keygen", "--out", filepath.Join(keys, "commercial"))
	com.must(0, "evidence", "keygen", "--out", filepath.Join(keys, "intruder"))
	com.must(0, "start", "--release", "v1")
	run := com.status().Run
	evidence := func(key string, more ...string) string {
		dir := t.TempDir()
		com.must(0, append([]string{"evidence", run, "--key", filepath.Join(keys, key+".key"), "--out", dir}, more...)...)
		return dir
	}
	good, canaryOnly, untrusted := evidence("commercial"), evidence("commercial", "--ring", "canary"), evidence("intruder")
	var att struct{ Payload string }
	b, _ := os.ReadFile(filepath.Join(good, run+".commercial.local-b.intoto.json"))
	json.Unmarshal(b, &att)
	statement, _ := base64.StdEncoding.DecodeString(att.Payload)
	for _, want := range []string{`"_type":"https://in-toto.io/Statement/v1"`, `"name":"release/v1"`, `"ring":"commercial"`, `"boundary":"local-b"`, `"name":"eu-1"`, `"phase":"verified"`, `"planDigest":"`, `"gate":"healthz"`} {
		if !strings.Contains(strings.ReplaceAll(string(statement), " ", ""), want) {
			t.Errorf("the attestation lacks %s:\n%s", want, statement)
		}
	}
	archive := filepath.Join(t.TempDir(), "v1.rollout.tgz")
	com.must(0, "release", "export", "v1", "--out", archive, "--providers")

	// The sovereign fleet: its own directory and SQLite journal; the same module and release
	// variables (the release's, not the fleet's), so v1 means the same digest here.
	sov := newFleet(t, fleetSpec{rings: "  - name: sovereign\n    targets: {labels: {tier: sov}}\n    gates: [healthz]\n",
		targets: "targets:\n" + targetsYAML("sov", "local-a", "sov", 1, "")})
	cfg, _ := os.ReadFile(filepath.Join(sov.dir, "rollout.yaml"))
	same := strings.NewReplacer(sov.deployed, com.deployed, sov.url, com.url)
	policy := func(maxAge string) {
		c := same.Replace(string(cfg))
		sov.write("rollout.yaml", c+"promotion:\n  requires:\n    - ring: commercial\n      boundaries: [local-a, local-b]\n      trust: ["+
			filepath.Join(keys, "commercial.pub")+"]\n  maxAge: "+maxAge+"\n")
	}
	policy("14d")
	sov.deployed, sov.url = com.deployed, com.url

	refused := func(want string, args ...string) {
		t.Helper()
		r := sov.must(1, args...)
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("rollout %s: want %q in:\n%s", strings.Join(args, " "), want, r.stderr)
		}
		if v := sov.deployedVersion("sov-1"); v != "" {
			t.Fatalf("sov-1 runs %q after a refusal", v)
		}
	}
	flipped := filepath.Join(t.TempDir(), "flipped.tgz")
	b, _ = os.ReadFile(archive)
	b[len(b)/2] ^= 1
	os.WriteFile(flipped, b, 0o644)
	refused("refused", "release", "import", flipped) // damaged, or a file that does not match the manifest
	refused("release.descriptor does not match the manifest", "release", "import", tamperInside(t, archive, "release.descriptor"))
	refused("needs evidence", "start", "--release", "v1")
	// A provider binary swapped for a script, the manifest rewritten to match: the release's lock
	// file (inside its module snapshot, so under its digest and evidence) refuses it.
	mirror := t.TempDir()
	refused("do not match the release's lock file", "release", "import", swappedProvider(t, archive), "--providers-to", mirror)
	if m, _ := filepath.Glob(filepath.Join(mirror, "*", "*", "*", "*", "*", "*")); len(m) != 0 {
		t.Fatalf("a refused import left providers in the mirror: %v", m)
	}
	// A mirror already holding other bytes under a provider's name keeps them.
	shared := t.TempDir()
	sov.must(0, "release", "import", archive, "--providers-to", shared)
	bins, _ := filepath.Glob(filepath.Join(shared, "*", "hashicorp", "time", "*", "*", "terraform-provider-time*"))
	if len(bins) == 0 {
		t.Fatalf("--providers-to put no hashicorp/time provider in the mirror layout")
	}
	os.Chmod(bins[0], 0o755)
	os.WriteFile(bins[0], []byte("#!/bin/sh\necho another fleet's binary\n"), 0o755)
	refused("nothing was replaced", "release", "import", archive, "--providers-to", shared)
	if b, _ := os.ReadFile(bins[0]); !strings.Contains(string(b), "another fleet's binary") {
		t.Fatal("import replaced a binary a mirror already held")
	}
	sov.must(0, "release", "import", archive, "--providers-to", mirror)
	if m, _ := filepath.Glob(filepath.Join(mirror, "*", "hashicorp", "time", "*", "*")); len(m) == 0 {
		t.Errorf("--providers-to put no hashicorp/time provider in the mirror layout")
	}
	// Evidence of v1 is not evidence of another name for the same content.
	refused("is about release v1", "start", "--release", "v9-never-tested", "--evidence", good)
	refused("ring commercial in local-a: no attestation signed by a trusted key", "start", "--release", "v1", "--evidence", canaryOnly)
	refused("not signed by a trusted key", "start", "--release", "v1", "--evidence", untrusted)
	policy("1ms")
	refused("is expired", "start", "--release", "v1", "--evidence", good)
	policy("14d")
	if r := sov.run("status"); !strings.Contains(r.stderr, "no run in this fleet's journal") {
		t.Fatalf("a refused start journaled a run: %s%s", r.stdout, r.stderr)
	}

	sov.must(0, "start", "--release", "v1", "--evidence", good)
	sov.must(0, "release", "import", archive) // again: the same release, nothing new
	if r := sov.must(1, "release", "import", renamed(t, com, "v1")); !strings.Contains(r.stderr, "release v1 means another release here") {
		t.Fatalf("an archive whose name means another release here: %s", r.stderr)
	}
	if v := sov.deployedVersion("sov-1"); v != "v1" {
		t.Fatalf("sov-1 runs %q", v)
	}
	// An imported release never attested here does not enter the ring by rollback --to.
	hotfix := filepath.Join(t.TempDir(), "v2.tgz")
	com.must(0, "release", "export", "v2", "--out", hotfix)
	sov.must(0, "release", "import", hotfix)
	if r := sov.must(1, "rollback", "--to", "v2", "--ring", "sovereign", "--reason", "e2e", "--yes"); !strings.Contains(r.stderr, "promotion policy") || sov.deployedVersion("sov-1") != "v1" {
		t.Fatalf("rollback --to an unattested release: sov-1 runs %q\n%s", sov.deployedVersion("sov-1"), r.stderr)
	}
	notes := sov.must(0, "status").stdout
	for _, b := range []string{"local-a", "local-b"} {
		if !strings.Contains(notes, "evidence accepted: ring commercial passed in "+b) {
			t.Errorf("status does not name the evidence of %s:\n%s", b, notes)
		}
	}
	if cosign := os.Getenv("ROLLOUT_COSIGN"); cosign != "" {
		att := filepath.Join(good, run+".commercial.local-b.intoto.json")
		out, err := exec.Command(cosign, "verify-blob-attestation", "--key", filepath.Join(keys, "commercial.pub"), "--insecure-ignore-tlog",
			"--type", "https://rollout.dev/attestation/ring-passed/v1", "--signature", att, filepath.Join(good, "v1.release")).CombinedOutput()
		if err != nil {
			t.Fatalf("cosign does not verify the attestation: %v\n%s", err, out)
		}
		out, err = exec.Command(cosign, "verify-blob-attestation", "--key", filepath.Join(keys, "intruder.pub"), "--insecure-ignore-tlog",
			"--type", "https://rollout.dev/attestation/ring-passed/v1", "--signature", att, filepath.Join(good, "v1.release")).CombinedOutput()
		if err == nil {
			t.Fatalf("cosign verifies the attestation with another key:\n%s", out)
		}
	} else if os.Getenv("ROLLOUT_REQUIRE_COSIGN") == "1" {
		t.Fatal("ROLLOUT_COSIGN is not set (make test-tools builds cosign)")
	}
}

// swappedProvider is a copy of an archive whose provider binary is a shell script, its manifest
// rewritten so that every digest in it matches.
func swappedProvider(t *testing.T, archive string, file ...string) string {
	t.Helper()
	name := "providers.tar.gz"
	if len(file) > 0 {
		name = file[0] // a stack component's: providers-NAME.tar.gz
	}
	files := unpack(t, archive)
	providers := untar(t, files[name])
	swapped := false
	for name := range providers {
		if strings.Contains(name, "terraform-provider-time") {
			providers[name], swapped = []byte("#!/bin/sh\ntouch /tmp/rollout-owned\n"), true
		}
	}
	if !swapped {
		t.Fatal("the archive holds no time provider to swap")
	}
	files[name] = []byte(readFile(t, writeTarGz(t, providers)))
	var m map[string]any
	json.Unmarshal(files["manifest.json"], &m)
	sum := sha256.Sum256(files[name])
	m["files"].(map[string]any)[name] = hex.EncodeToString(sum[:])
	files["manifest.json"], _ = json.Marshal(m)
	return writeTarGz(t, files)
}

// renamed is an archive of another release of com (v2, different variables) under name, made
// consistent: every digest in its manifest matches; only the name already means v1 elsewhere.
func renamed(t *testing.T, com *fleet, name string) string {
	t.Helper()
	com.must(0, "start", "--release", "v2", "--var", "tier=other")
	src := filepath.Join(t.TempDir(), "v2.tgz")
	com.must(0, "release", "export", "v2", "--out", src)
	files := unpack(t, src)
	var rel, m map[string]any
	json.Unmarshal(files["release.json"], &rel)
	json.Unmarshal(files["manifest.json"], &m)
	// The name is part of the digest: the descriptor and every digest are made anew for it.
	files["release.descriptor"] = bytes.Replace(files["release.descriptor"], []byte("\nname v2\n"), []byte("\nname "+name+"\n"), 1)
	digest := sha256.Sum256(files["release.descriptor"])
	rel["name"], rel["digest"] = name, hex.EncodeToString(digest[:])
	m["release"].(map[string]any)["name"], m["release"].(map[string]any)["digest"] = name, rel["digest"]
	files["release.json"], _ = json.Marshal(rel)
	for _, f := range []string{"release.json", "release.descriptor"} {
		sum := sha256.Sum256(files[f])
		m["files"].(map[string]any)[f] = hex.EncodeToString(sum[:])
	}
	files["manifest.json"], _ = json.Marshal(m)
	return writeTarGz(t, files)
}

func writeTarGz(t *testing.T, files map[string][]byte) string {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for n, b := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	gz.Close()
	out := filepath.Join(t.TempDir(), "archive.tgz")
	os.WriteFile(out, buf.Bytes(), 0o644)
	return out
}

// tamperInside is a copy of an archive with one byte of one of its files changed.
func tamperInside(t *testing.T, archive, name string) string {
	t.Helper()
	files := unpack(t, archive)
	files[name] = append([]byte{files[name][0] ^ 1}, files[name][1:]...)
	return writeTarGz(t, files)
}

// unpack reads a tar.gz's files.
func unpack(t *testing.T, path string) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return untar(t, b)
}

func untar(t *testing.T, b []byte) map[string][]byte {
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
}

// exportedTexts is every byte an export and evidence hold, uncompressed and decoded: the archive's
// files (the module snapshot unpacked too) and each attestation's statement.
func exportedTexts(t *testing.T, archive, evidenceDir string) []string {
	var out []string
	for name, b := range unpack(t, archive) {
		out = append(out, string(b))
		if strings.HasSuffix(name, ".tar.gz") {
			for _, inner := range untar(t, b) {
				out = append(out, string(inner))
			}
		}
	}
	atts, _ := filepath.Glob(filepath.Join(evidenceDir, "*"))
	for _, p := range atts {
		b, _ := os.ReadFile(p)
		out = append(out, string(b))
		var env struct{ Payload string }
		if json.Unmarshal(b, &env) == nil && env.Payload != "" {
			st, _ := base64.StdEncoding.DecodeString(env.Payload)
			out = append(out, string(st))
		}
	}
	if len(out) < 5 {
		t.Fatalf("the export and evidence hold only %d texts", len(out))
	}
	return out
}

package release

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	ita1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rollout-dev/rollout/internal/evidence"
)

// ProvenanceType is SLSA's provenance predicate, version 1.
const ProvenanceType = "https://slsa.dev/provenance/v1"

// BuildType names how a rollout release is built (make release; see docs/release.md).
const BuildType = "https://rollout.dev/release/build/v1"

// SignBlob writes sig: the signature of file by the key, base64 of the ASN.1 ECDSA signature of
// its SHA-256, which is what `cosign verify-blob --key` checks.
func SignBlob(ctx context.Context, key, file, sig string) error {
	signer, err := evidence.LoadSigner(key)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s, err := signer.Sign(ctx, data)
	if err != nil {
		return err
	}
	return os.WriteFile(sig, []byte(base64.StdEncoding.EncodeToString(s)), 0o644)
}

// Provenance writes provenance.intoto.json: a SLSA v1 provenance statement about every artifact
// (the archives, SBOMs and the image's index) naming the source commit, whether the tree was clean,
// the builder, the Go toolchain and the platforms, in a DSSE envelope signed by the key.
func Provenance(ctx context.Context, o Options, r *Result) error {
	builder := o.Builder
	if builder == "" {
		builder = "https://rollout.dev/make-release"
	}
	var platforms []string
	for _, p := range o.Platforms {
		platforms = append(platforms, p.String())
	}
	pred := map[string]any{
		"buildDefinition": map[string]any{
			"buildType": BuildType,
			"externalParameters": map[string]any{
				"source":  map[string]any{"repository": r.Source.Repo, "commit": r.Source.Commit, "clean": r.Source.Clean},
				"version": o.Version, "platforms": platforms,
			},
			"internalParameters":   map[string]any{"go": goVersion(ctx), "cgo": false, "flags": buildFlags(o.Version)},
			"resolvedDependencies": []any{map[string]any{"uri": "git+" + r.Source.Repo, "digest": map[string]any{"gitCommit": r.Source.Commit}}},
		},
		"runDetails": map[string]any{
			"builder":  map[string]any{"id": builder},
			"metadata": map[string]any{"finishedOn": r.Source.Time.Format("2006-01-02T15:04:05Z")}, // the commit's time: reproducible
		},
	}
	st := &ita1.Statement{Type: ita1.StatementTypeUri, PredicateType: ProvenanceType}
	for _, a := range r.Artifacts {
		st.Subject = append(st.Subject, &ita1.ResourceDescriptor{Name: a.Name, Digest: map[string]string{"sha256": a.SHA256}})
	}
	raw, err := json.Marshal(pred)
	if err != nil {
		return err
	}
	st.Predicate = &structpb.Struct{}
	if err := protojson.Unmarshal(raw, st.Predicate); err != nil {
		return err
	}
	if err := st.Validate(); err != nil {
		return err
	}
	statement, err := protojson.Marshal(st)
	if err != nil {
		return err
	}
	signer, err := evidence.LoadSigner(o.Key)
	if err != nil {
		return err
	}
	env, err := evidence.Sign(ctx, statement, signer)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.Out, "provenance.intoto.json"), env, 0o644)
}

// SBOM writes the CycloneDX SBOM (JSON) of a binary: every module it was built from, with its
// version and licence, by cyclonedx-gomod from the binary's own build information; no serial
// number or timestamp, so that it is reproducible.
func SBOM(ctx context.Context, o Options, bin, out string) error {
	if o.CycloneDX == "" {
		return fmt.Errorf("no cyclonedx-gomod to write the SBOM with (make test-tools builds it into .tools/bin)")
	}
	cmd := exec.CommandContext(ctx, o.CycloneDX, "bin", "-json", "-licenses", "-assert-licenses", "-noserial", "-notimestamp", "-version", o.Version, "-output", out, bin)
	cmd.Dir = o.Source
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cyclonedx-gomod bin %s: %v\n%s", bin, err, b)
	}
	return nil
}

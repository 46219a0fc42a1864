// Package evidence writes and checks the proof that a release passed a ring in a boundary: an
// in-toto Statement v1 (github.com/in-toto/attestation) whose subject is the release's digest and
// whose predicate says what the run did there, in a DSSE envelope signed with an ECDSA P-256 or
// ed25519 key (github.com/secure-systems-lab/go-securesystemslib), the format that cosign and
// in-toto's verifiers read. A KMS key would be another dsse.Signer (see docs/sovereign.md).
package evidence

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	ita1 "github.com/in-toto/attestation/go/v1"
	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rollout-dev/rollout/internal/proc"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/secretfile"
)

// PredicateType names rollout's predicate.
const PredicateType = "https://rollout.dev/attestation/ring-passed/v1"

// Predicate is what a run did in one ring and boundary.
type Predicate struct {
	Fleet     string                 `json:"fleet"`
	Run       string                 `json:"run"`
	Release   rings.ReleaseRef       `json:"release"`
	Ring      string                 `json:"ring"`
	RingPhase string                 `json:"ringPhase"` // passed, when it passed
	Boundary  string                 `json:"boundary"`
	Identity  *rings.Identity        `json:"identity,omitempty"` // what the boundary's preflight proved
	Targets   []Target               `json:"targets"`
	Approvals []rings.ApprovalRecord `json:"approvals,omitempty"`
	// ApprovalWaived: the ring's approval was waived by its plans (approval.unlessPlans); the
	// record's reason names the checks every plan passed.
	ApprovalWaived *rings.ApprovalRecord `json:"approvalWaived,omitempty"`
	BreakGlass     *rings.ApprovalRecord `json:"breakGlass,omitempty"`
	Freezes        []Freeze              `json:"freezes,omitempty"` // when a freeze held the ring, and why
	// Components: the release is a stack; each component's module snapshot digest (all covered
	// by the release's digest too).
	Components []Component `json:"components,omitempty"`
	Started    time.Time   `json:"started"`
	Ended      time.Time   `json:"ended"`
}

// Target is one target of the ring in the boundary.
type Target struct {
	Name       string             `json:"name"`
	Phase      string             `json:"phase"`
	Release    string             `json:"release,omitempty"` // what it runs at the end
	Plan       *rings.PlanSummary `json:"plan,omitempty"`
	PlanDigest string             `json:"planDigest,omitempty"` // the reviewed plan's, else the planned changes' (PlanSummary.Digest)
	Gates      []Gate             `json:"gates,omitempty"`
	// Components: a stack's, as the run left each on the target.
	Components []TargetComponent `json:"components,omitempty"`
}

// Component is one component of a stack's release.
type Component struct {
	Name   string `json:"name"`
	Module string `json:"module"` // its locked snapshot's digest
}

// TargetComponent is one component of a stack on a target.
type TargetComponent struct {
	Name       string `json:"name"`
	State      string `json:"state"` // applied | unchanged | failed | destroyed
	Release    string `json:"release,omitempty"`
	PlanDigest string `json:"planDigest,omitempty"` // the reviewed plan's, else the planned changes'
}

// Freeze is a freeze window or the stop-the-line switch holding the ring.
type Freeze struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Gate is a gate's verdict on a target, its measurements summarised.
type Gate struct {
	Gate         string    `json:"gate"`
	Passed       bool      `json:"passed"`
	Measurements int       `json:"measurements"`
	Last         string    `json:"last"`
	At           time.Time `json:"at"`
}

// Statement is the in-toto Statement v1 of a predicate about a release: its subject is the
// release's name and digest.
func Statement(p Predicate) ([]byte, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	pred := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, pred); err != nil {
		return nil, err
	}
	st := &ita1.Statement{Type: ita1.StatementTypeUri, PredicateType: PredicateType, Predicate: pred,
		Subject: []*ita1.ResourceDescriptor{{Name: "release/" + p.Release.Name, Digest: map[string]string{"sha256": p.Release.Digest}}}}
	if err := st.Validate(); err != nil {
		return nil, err
	}
	return protojson.Marshal(st)
}

// LoadSigner reads a private key file (PEM: ECDSA P-256 or ed25519), which only its owner may read.
func LoadSigner(path string) (dsse.SignerVerifier, error) {
	if err := secretfile.Check(path); err != nil {
		return nil, err
	}
	return loadKey(path)
}

// LoadVerifier reads a public key file (PEM).
func LoadVerifier(path string) (dsse.SignerVerifier, error) { return loadKey(path) }

func loadKey(path string) (dsse.SignerVerifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := signerverifier.LoadKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k.KeyType {
	case signerverifier.ECDSAKeyType:
		return signerverifier.NewECDSASignerVerifierFromSSLibKey(k)
	case signerverifier.ED25519KeyType:
		return signerverifier.NewED25519SignerVerifierFromSSLibKey(k)
	}
	return nil, fmt.Errorf("%s: a %s key; use ECDSA P-256 or ed25519", path, k.KeyType)
}

// Sign wraps a statement in a DSSE envelope signed by key.
func Sign(ctx context.Context, statement []byte, key dsse.SignerVerifier) ([]byte, error) {
	s, err := dsse.NewEnvelopeSigner(key)
	if err != nil {
		return nil, err
	}
	env, err := s.SignPayload(ctx, in_toto.PayloadType, statement)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(env, "", "  ")
}

// Verified is an attestation whose signature a trusted key made.
type Verified struct {
	Predicate Predicate
	Subject   string // the release digest it is about
	KeyID     string
	Digest    string // SHA-256 of the envelope file
}

// VerifiedStatement is a verified in-toto statement of any predicate type (a release's SLSA
// provenance, or rollout's evidence).
type VerifiedStatement struct {
	PredicateType string
	Subjects      []Subject
	Predicate     json.RawMessage
	KeyID         string
	Digest        string // SHA-256 of the envelope file
}

// Subject is one artifact a statement is about.
type Subject struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// VerifyStatement checks an envelope's signature against the trusted keys and reads its
// statement, whatever its predicate type.
func VerifyStatement(ctx context.Context, envelope []byte, trusted ...dsse.SignerVerifier) (*VerifiedStatement, error) {
	st, keyID, err := verifyEnvelope(ctx, envelope, trusted...)
	if err != nil {
		return nil, err
	}
	raw, err := protojson.Marshal(st.Predicate)
	if err != nil {
		return nil, err
	}
	out := &VerifiedStatement{PredicateType: st.PredicateType, Predicate: raw, KeyID: keyID}
	for _, s := range st.Subject {
		out.Subjects = append(out.Subjects, Subject{Name: s.Name, SHA256: s.Digest["sha256"]})
	}
	sum := sha256.Sum256(envelope)
	out.Digest = hex.EncodeToString(sum[:])
	return out, nil
}

// Verify checks an envelope's signature against the trusted keys and reads its statement, which
// must be rollout's evidence.
func Verify(ctx context.Context, envelope []byte, trusted ...dsse.SignerVerifier) (*Verified, error) {
	st, keyID, err := verifyEnvelope(ctx, envelope, trusted...)
	if err != nil {
		return nil, err
	}
	if st.PredicateType != PredicateType || len(st.Subject) != 1 {
		return nil, fmt.Errorf("a %s statement about %d subjects, not rollout's evidence", st.PredicateType, len(st.Subject))
	}
	raw, err := protojson.Marshal(st.Predicate)
	if err != nil {
		return nil, err
	}
	out := &Verified{Subject: st.Subject[0].Digest["sha256"], KeyID: keyID}
	if err := json.Unmarshal(raw, &out.Predicate); err != nil {
		return nil, fmt.Errorf("the predicate: %w", err)
	}
	sum := sha256.Sum256(envelope)
	out.Digest = hex.EncodeToString(sum[:])
	return out, nil
}

// verifyEnvelope checks an envelope's signature against the trusted keys and reads its statement.
func verifyEnvelope(ctx context.Context, envelope []byte, trusted ...dsse.SignerVerifier) (*ita1.Statement, string, error) {
	var env dsse.Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, "", fmt.Errorf("not a DSSE envelope: %w", err)
	}
	if env.PayloadType != in_toto.PayloadType {
		return nil, "", fmt.Errorf("payload type %q, not an in-toto statement", env.PayloadType)
	}
	if len(trusted) == 0 {
		return nil, "", errors.New("no trusted key to verify it with")
	}
	vs := make([]dsse.Verifier, len(trusted))
	for i, t := range trusted {
		vs[i] = t
	}
	v, err := dsse.NewMultiEnvelopeVerifier(1, vs...)
	if err != nil {
		return nil, "", err
	}
	accepted, payload, err := v.VerifyAndDecode(ctx, &env)
	if err != nil {
		return nil, "", fmt.Errorf("not signed by a trusted key: %w", err)
	}
	st := &ita1.Statement{}
	if err := protojson.Unmarshal(payload, st); err != nil {
		return nil, "", fmt.Errorf("the statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return nil, "", fmt.Errorf("the statement: %w", err)
	}
	return st, accepted[0].KeyID, nil
}

// GenerateKey writes a new ECDSA P-256 key pair: PREFIX.key (PKCS #8 PEM, mode 600) and PREFIX.pub
// (PKIX PEM, what the receiving fleet trusts and cosign reads).
func GenerateKey(prefix string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	priv, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return err
	}
	if _, err := os.Stat(prefix + ".key"); err == nil {
		return fmt.Errorf("%s.key exists: not overwritten", prefix)
	}
	if err := os.WriteFile(prefix+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(prefix+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// MaxFile is the largest attestation file ReadFile reads.
const MaxFile = 16 << 20

// ReadFile reads an attestation file: a regular file only (a FIFO in its place would wait for a
// writer for ever; it is refused at once), of at most MaxFile bytes.
func ReadFile(path string) ([]byte, error) {
	f, err := proc.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if err == nil && len(b) > MaxFile {
		return nil, fmt.Errorf("%s is over %d MiB: not an attestation", filepath.Base(path), MaxFile>>20)
	}
	return b, err
}

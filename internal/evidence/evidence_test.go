package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

func predicate() Predicate {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	return Predicate{Fleet: "payments", Run: "v1-1", Release: rings.ReleaseRef{Name: "v1", Digest: strings.Repeat("ab", 32)},
		Ring: "commercial", RingPhase: "passed", Boundary: "aws", Started: at, Ended: at.Add(time.Hour),
		Targets: []Target{{Name: "eu-1", Phase: "verified", Release: "v1", Gates: []Gate{{Gate: "healthz", Passed: true, Measurements: 3, Last: "healthy", At: at}}}}}
}

func TestSignAndVerify(t *testing.T) {
	dir := t.TempDir()
	for _, who := range []string{"commercial", "other"} {
		if err := GenerateKey(filepath.Join(dir, who)); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "commercial.key")); st.Mode().Perm() != 0o600 {
		t.Fatalf("the private key is %v", st.Mode().Perm())
	}
	if err := GenerateKey(filepath.Join(dir, "commercial")); err == nil {
		t.Fatal("a key was overwritten")
	}
	key, err := LoadSigner(filepath.Join(dir, "commercial.key"))
	if err != nil {
		t.Fatal(err)
	}
	trusted, _ := LoadVerifier(filepath.Join(dir, "commercial.pub"))
	other, _ := LoadVerifier(filepath.Join(dir, "other.pub"))
	st, err := Statement(predicate())
	if err != nil {
		t.Fatal(err)
	}
	env, err := Sign(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(context.Background(), env, other, trusted)
	if err != nil || v.Subject != predicate().Release.Digest || v.Predicate.Targets[0].Gates[0].Measurements != 3 || !v.Predicate.Ended.Equal(predicate().Ended) {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if _, err := Verify(context.Background(), env, other); err == nil || !strings.Contains(err.Error(), "not signed by a trusted key") {
		t.Fatalf("an untrusted key: %v", err)
	}
	tampered := strings.Replace(string(env), `"payload": "`, `"payload": "e`, 1)
	if _, err := Verify(context.Background(), []byte(tampered), trusted); err == nil {
		t.Fatal("a tampered envelope verified")
	}
}

func TestEd25519KeysAndLooseKeyFiles(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(priv)
	px, _ := x509.MarshalPKIXPublicKey(pub)
	os.WriteFile(filepath.Join(dir, "k"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o644)
	os.WriteFile(filepath.Join(dir, "k.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: px}), 0o644)
	if _, err := LoadSigner(filepath.Join(dir, "k")); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a private key others may read: %v", err)
	}
	os.Chmod(filepath.Join(dir, "k"), 0o600)
	key, err := LoadSigner(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := Statement(predicate())
	env, err := Sign(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := LoadVerifier(filepath.Join(dir, "k.pub"))
	if _, err := Verify(context.Background(), env, v); err != nil {
		t.Fatal(err)
	}
}

// A FIFO named like an attestation is refused at once, not waited on.
func TestReadFileRefusesAFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.intoto.json")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadFile(p); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("a FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile waits on a FIFO")
	}
}

package proof

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/oidctest"
	"github.com/rollout-dev/rollout/internal/testsupport/sshtest"
)

// sign signs text as an approver does: the signature.
func sign(t *testing.T, key, text, namespace string) []byte {
	t.Helper()
	sig, err := os.ReadFile(sshtest.Sign(t, key, text, namespace))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestSSHSignatures(t *testing.T) {
	sshtest.Need(t)
	dir := t.TempDir()
	leadKey, leadPub := sshtest.Key(t, dir, "lead")
	otherKey, _ := sshtest.Key(t, dir, "other")
	vs := []rings.Verifier{{Name: "ops-lead", SSH: leadPub}}
	rel := rings.ReleaseRef{Name: "v1", Digest: "sha256:abc"}
	text := Text("v1-1", "sovereign", rel, "CAB 1234")

	name, p, err := Verify(context.Background(), Given{SSHSignature: sign(t, leadKey, text, Namespace)}, text, vs, Options{})
	if err != nil || name != "ops-lead" || p.Method != "ssh" || !strings.HasPrefix(p.Key, "SHA256:") || len(p.Digest) != 64 {
		t.Fatalf("a valid signature: %q %+v %v", name, p, err)
	}
	for what, c := range map[string]struct {
		sig  []byte
		want string
	}{
		"another key":        {sign(t, otherKey, text, Namespace), "is not an approver's of this ring"},
		"another run's text": {sign(t, leadKey, Text("v1-2", "sovereign", rel, "CAB 1234"), Namespace), "is not over this approval's text"},
		"another reason":     {sign(t, leadKey, Text("v1-1", "sovereign", rel, "no CAB"), Namespace), "is not over this approval's text"},
		"another namespace":  {sign(t, leadKey, text, "git"), `namespace "git"`},
		"not a signature":    {[]byte("hello"), "the SSH signature"},
	} {
		if _, _, err := Verify(context.Background(), Given{SSHSignature: c.sig}, text, vs, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want %q, got %v", what, c.want, err)
		}
	}
	// A key's valid-before (allowed-signers options) ends its approvals, as ssh-keygen -Y verify does.
	until := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := []rings.Verifier{{Name: "ops-lead", SSH: leadPub, ValidBefore: &until}}
	if _, _, err := Verify(context.Background(), Given{SSHSignature: sign(t, leadKey, text, Namespace)}, text, expired, Options{}); err == nil || !strings.Contains(err.Error(), "valid only before 2020-01-01") {
		t.Errorf("a key past its valid-before: %v", err)
	}
}

func TestIDTokens(t *testing.T) {
	iss := oidctest.Start(t)
	sub := "repo:org/svc:environment:sovereign"
	vs := []rings.Verifier{
		{Name: "ops-lead", SSH: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMKW+cILZK2ujdPIHzwH5pDOPVf5GJbSEGgEixhzuEuo"},
		{Name: "release-pipeline", OIDC: &rings.OIDCVerifier{Issuer: iss.Issuer(), Audience: "rollout", Subject: sub, Claims: map[string]string{"repository": "org/svc"}}},
	}
	now := time.Now()
	o := Options{Now: func() time.Time { return now }, Client: iss.Client}
	good := iss.Token(t, "rollout", sub, now.Add(-time.Minute), 10*time.Minute, map[string]any{"repository": "org/svc"})
	name, p, err := Verify(context.Background(), Given{IDToken: good}, "", vs, o)
	if err != nil || name != "release-pipeline" || p.Method != "oidc" || p.Key != iss.Issuer()+" "+sub {
		t.Fatalf("a valid token: %q %+v %v", name, p, err)
	}
	// The same token with the last base64url character of its signature re-encoded (its unused
	// low bits changed: the same signature bytes) is the same token, not a new approval.
	const url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(url, good[len(good)-1])
	again := good[:len(good)-1] + string(url[last^1])
	if _, p2, err := Verify(context.Background(), Given{IDToken: again}, "", vs, o); err != nil || again == good || p2.Digest != p.Digest {
		t.Fatalf("a re-encoded token: %v, digest %s against %s", err, p2.Digest, p.Digest)
	}
	for what, c := range map[string]struct {
		token, want string
	}{
		"expired":        {iss.Token(t, "rollout", sub, now.Add(-time.Hour), 10*time.Minute, map[string]any{"repository": "org/svc"}), "expired"},
		"wrong audience": {iss.Token(t, "someone-else", sub, now, 10*time.Minute, map[string]any{"repository": "org/svc"}), "audience"},
		"wrong subject":  {iss.Token(t, "rollout", "repo:org/fork:ref:refs/heads/main", now, 10*time.Minute, map[string]any{"repository": "org/svc"}), "subject"},
		"wrong claim":    {iss.Token(t, "rollout", sub, now, 10*time.Minute, map[string]any{"repository": "org/fork"}), "claim repository"},
		"tampered":       {good[:len(good)-4] + "AAAA", "signature"},
	} {
		if _, _, err := Verify(context.Background(), Given{IDToken: c.token}, "", vs, o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want %q, got %v", what, c.want, err)
		}
	}
}

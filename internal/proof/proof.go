// Package proof checks that an approval was given by whom it names: an SSH signature over the
// approval's text (ssh-keygen -Y sign, the format of git's signed commits; it works offline,
// inside a disconnected boundary) by a key the boundary lists, or a pipeline's OIDC ID token
// that the boundary's entry allows.
package proof

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/idp"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Namespace is the SSH signature namespace of an approval (ssh-keygen -Y sign -n).
const Namespace = config.ApprovalNamespace

// Text is what an approver signs: the run, the ring, the release and its digest, and the reason;
// a signature over one run's text proves nothing about another's.
func Text(run, ring string, rel rings.ReleaseRef, reason string) string {
	return fmt.Sprintf("rollout approval v1\nrun: %s\nring: %s\nrelease: %s\ndigest: %s\nreason: %s\n", run, ring, rel.Name, rel.Digest, reason)
}

// Given is the proof an approver gives.
type Given struct {
	SSHSignature []byte // armored (-----BEGIN SSH SIGNATURE-----)
	IDToken      string
}

// Options are what checking an ID token needs besides the token.
type Options struct {
	Now    func() time.Time
	Client *http.Client // to reach the issuers (nil: the default)
}

// Verify finds the verifier that proves the approval of text: its name, and the proof to journal.
func Verify(ctx context.Context, g Given, text string, vs []rings.Verifier, o Options) (string, *rings.ApprovalProof, error) {
	switch {
	case len(g.SSHSignature) > 0 && g.IDToken != "":
		return "", nil, errors.New("give an SSH signature or an ID token, not both")
	case len(g.SSHSignature) > 0:
		return verifySSH(g.SSHSignature, text, vs, o.now())
	case g.IDToken != "":
		return verifyToken(ctx, g.IDToken, vs, o)
	}
	return "", nil, errors.New("no proof given")
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func verifySSH(armored []byte, text string, vs []rings.Verifier, now time.Time) (string, *rings.ApprovalProof, error) {
	sig, err := sshsig.Unarmor(armored)
	if err != nil {
		return "", nil, fmt.Errorf("the SSH signature: %w", err)
	}
	if sig.Namespace != Namespace {
		return "", nil, fmt.Errorf("the SSH signature is for namespace %q, not %q (ssh-keygen -Y sign -n %s)", sig.Namespace, Namespace, Namespace)
	}
	for _, v := range vs {
		if v.SSH == "" {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(v.SSH))
		if err != nil || !bytes.Equal(key.Marshal(), sig.PublicKey.Marshal()) {
			continue
		}
		if err := sshsig.Verify(strings.NewReader(text), sig, key, sig.HashAlgorithm, Namespace); err != nil {
			return "", nil, fmt.Errorf("the SSH signature of %s is not over this approval's text (run, ring, release, reason): %w", v.Name, err)
		}
		if v.ValidAfter != nil && now.Before(*v.ValidAfter) || v.ValidBefore != nil && !now.Before(*v.ValidBefore) {
			return "", nil, fmt.Errorf("the SSH key of %s is valid only %s (its allowed-signers options)", v.Name, validity(v))
		}
		return v.Name, &rings.ApprovalProof{Method: "ssh", Key: ssh.FingerprintSHA256(key), Digest: digest(sig.Marshal())}, nil
	}
	return "", nil, fmt.Errorf("the SSH signature's key %s is not an approver's of this ring", ssh.FingerprintSHA256(sig.PublicKey))
}

func validity(v rings.Verifier) string {
	var parts []string
	if v.ValidAfter != nil {
		parts = append(parts, "after "+v.ValidAfter.Format(time.RFC3339))
	}
	if v.ValidBefore != nil {
		parts = append(parts, "before "+v.ValidBefore.Format(time.RFC3339))
	}
	return strings.Join(parts, " and ")
}

func verifyToken(ctx context.Context, raw string, vs []rings.Verifier, o Options) (string, *rings.ApprovalProof, error) {
	var errs []error
	for _, v := range vs {
		if v.OIDC == nil {
			continue
		}
		claims, err := idp.VerifyToken(ctx, v.OIDC.Issuer, v.OIDC.Audience, raw, o.Now, o.Client)
		if err == nil {
			err = match(v.OIDC, claims)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.Name, err))
			continue
		}
		sub, _ := claims["sub"].(string)
		return v.Name, &rings.ApprovalProof{Method: "oidc", Key: v.OIDC.Issuer + " " + sub, Digest: tokenDigest(v.OIDC.Issuer, claims)}, nil
	}
	if len(errs) == 0 {
		return "", nil, errors.New("no approver of this ring is proven by an ID token (they have SSH keys)")
	}
	return "", nil, fmt.Errorf("the ID token proves no approver of this ring: %w", errors.Join(errs...))
}

// tokenDigest identifies a verified ID token by what its issuer signed (issuer, subject, audience,
// issue time, token ID, nonce), not by its text: a token re-encoded (the last base64url
// character of its signature changed, the same signature bytes) is the same token, and counts once.
func tokenDigest(issuer string, claims map[string]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "oidc\niss %s\n", issuer)
	for _, k := range []string{"sub", "aud", "iat", "jti", "nonce"} {
		fmt.Fprintf(&b, "%s %v\n", k, claims[k])
	}
	return digest([]byte(b.String()))
}

// match checks the token's subject and claims against what the approver's entry requires.
func match(v *rings.OIDCVerifier, claims map[string]any) error {
	if sub, _ := claims["sub"].(string); v.Subject != "" && sub != v.Subject {
		return fmt.Errorf("subject %q, not %q", sub, v.Subject)
	}
	for k, want := range v.Claims {
		if got := fmt.Sprint(claims[k]); got != want {
			return fmt.Errorf("claim %s is %q, not %q", k, got, want)
		}
	}
	return nil
}

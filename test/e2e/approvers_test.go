//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/oidctest"
	"github.com/rollout-dev/rollout/internal/testsupport/sshtest"
)

// TestApprovalsOfAProtectedBoundaryAreProven: a boundary lists its approvers with their keys (an
// SSH key, and a pipeline's OIDC identity at an issuer over loopback TLS). A name alone is
// refused; an approval signed with ssh-keygen over `approve --text` counts and is journaled with
// the key's fingerprint; the same signature again, another key's, and a signature over another
// run's text are refused; the next release is approved with an ID token (one for another
// subject is refused, and so is the same token on a later run), and each approved run goes on
// to what the journal says.
func TestApprovalsOfAProtectedBoundaryAreProven(t *testing.T) {
	t.Parallel()
	sshtest.Need(t)
	keys := t.TempDir()
	leadKey, leadPub := sshtest.Key(t, keys, "lead")
	otherKey, _ := sshtest.Key(t, keys, "other")
	iss := oidctest.Start(t)
	const sub = "repo:org/svc:environment:sovereign"
	spec := oneRing(1, "0", "")
	spec.boundaries = "\n  local-a:\n    cloud: local\n    approvers:\n      - ops-lead " + leadPub +
		"\n      - {name: release-pipeline, oidc: {issuer: \"" + iss.Issuer() + "\", audience: rollout, subject: \"" + sub + "\"}}"
	f := newFleet(t, spec)
	f.env = append(f.env, "SSL_CERT_FILE="+iss.CAFile)

	f.must(3, "start", "--release", "v1")
	run := f.status().Run
	if r := f.must(1, "approve", run, "--ring", "only", "--reason", "CAB 1", "--as", "ops-lead"); !strings.Contains(r.stderr, "must be proven") {
		t.Fatalf("a name alone: %s", r.stderr)
	}
	sign := func(key, run, reason string) string {
		return sshtest.Sign(t, key, f.must(0, "approve", run, "--ring", "only", "--reason", reason, "--text").stdout, "rollout-approval")
	}
	if r := f.must(1, "approve", run, "--ring", "only", "--reason", "CAB 1", "--ssh-signature", sign(otherKey, run, "CAB 1")); !strings.Contains(r.stderr, "is not an approver's of this ring") {
		t.Fatalf("another key: %s", r.stderr)
	}
	sig := sign(leadKey, run, "CAB 1")
	if r := f.must(1, "approve", run, "--ring", "only", "--reason", "CAB 2", "--ssh-signature", sig); !strings.Contains(r.stderr, "is not over this approval's text") {
		t.Fatalf("a signature over another reason: %s", r.stderr)
	}
	f.must(0, "approve", run, "--ring", "only", "--reason", "CAB 1", "--ssh-signature", sig)
	if r := f.must(1, "approve", run, "--ring", "only", "--reason", "CAB 1", "--ssh-signature", sig); !strings.Contains(r.stderr, "given already") {
		t.Fatalf("a replayed signature: %s", r.stderr)
	}
	f.must(0, "resume", run)
	if v := f.deployedVersion("t-1"); v != "v1" {
		t.Fatalf("t-1 runs %q after the proven approval and resume", v)
	}

	f.must(3, "start", "--release", "v2")
	run2 := f.status().Run
	if r := f.must(1, "approve", run2, "--ring", "only", "--reason", "CAB 1", "--ssh-signature", sig); !strings.Contains(r.stderr, "is not over this approval's text") {
		t.Fatalf("run 1's signature on run 2: %s", r.stderr)
	}
	token := func(subject string) string {
		p := filepath.Join(t.TempDir(), "id-token")
		if err := os.WriteFile(p, []byte(iss.Token(t, "rollout", subject, time.Now().Add(-time.Minute), 10*time.Minute, nil)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if r := f.must(1, "approve", run2, "--ring", "only", "--reason", "gate", "--id-token-file", token("repo:org/fork:ref:refs/heads/main")); !strings.Contains(r.stderr, "subject") {
		t.Fatalf("another subject's token: %s", r.stderr)
	}
	pipelineToken := token(sub)
	f.must(0, "approve", run2, "--ring", "only", "--reason", "gate", "--id-token-file", pipelineToken)
	if notes := f.must(3, "status", run2).stdout; !strings.Contains(notes, "approved by release-pipeline") || !strings.Contains(notes, "proven by oidc "+iss.Issuer()+" "+sub) {
		t.Fatalf("status does not say how the approval was proven:\n%s", notes)
	}
	f.must(0, "resume", run2)
	// The same ID token on the next run: it names no run, so it is refused as a replay.
	f.must(3, "start", "--release", "v3")
	if r := f.must(1, "approve", f.status().Run, "--ring", "only", "--reason", "gate", "--id-token-file", pipelineToken); !strings.Contains(r.stderr, "approved ring only of run "+run2+" already") {
		t.Fatalf("an ID token replayed on another run: %s", r.stderr)
	}
	// Nor re-encoded: the last base64url character of its signature changed, the same signature
	// bytes (the replay check hashed the token's text, and this passed as a new approval).
	raw, _ := os.ReadFile(pipelineToken)
	const url64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	tok := strings.TrimSpace(string(raw))
	reencoded := filepath.Join(t.TempDir(), "reencoded")
	os.WriteFile(reencoded, []byte(tok[:len(tok)-1]+string(url64[strings.IndexByte(url64, tok[len(tok)-1])^1])), 0o600)
	if r := f.must(1, "approve", f.status().Run, "--ring", "only", "--reason", "gate", "--id-token-file", reencoded); !strings.Contains(r.stderr, "approved ring only of run "+run2+" already") {
		t.Fatalf("a re-encoded ID token replayed on another run: %s", r.stderr)
	}

	proofs := map[string]*rings.ApprovalProof{}
	for _, e := range f.journalEvents() {
		if e.Type == rings.RingApproved {
			proofs[e.RunID] = e.Proof
			if e.Proof == nil {
				t.Errorf("an approval journaled without its proof: %+v", e)
			}
		}
	}
	if p := proofs[run]; len(proofs) != 2 || p == nil || p.Method != "ssh" || !strings.HasPrefix(p.Key, "SHA256:") {
		t.Fatalf("journaled proofs: %+v", proofs)
	}
}

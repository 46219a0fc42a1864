package config

import (
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"

	"github.com/rollout-dev/rollout/internal/rings"
)

// parseApprovers reads a boundary's approvers: each an allowed-signers line (the format of
// ssh-keygen -Y and git's signed commits: "NAME[,NAME...] [options] KEYTYPE KEY [comment]"), or a
// mapping {name, oidc: {issuer, audience, subject, claims}} for a pipeline's OIDC identity. An
// approval of a ring that enters the boundary counts only when proven by one of them.
func parseApprovers(w walker, path string, n *yaml.Node, b *Boundary) {
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		w.fail(n, path, "must be a list of allowed-signers lines (NAME KEYTYPE KEY) or {name, oidc: {...}} entries")
		return
	}
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		var vs []rings.Verifier
		if c.Kind == yaml.ScalarNode {
			vs = sshApprovers(w, c, p)
		} else if v := oidcApprover(w, c, p); v != nil {
			vs = []rings.Verifier{*v}
		}
		for _, v := range vs {
			b.Verifiers = append(b.Verifiers, v)
			if !contains(b.Approvers, v.Name) {
				b.Approvers = append(b.Approvers, v.Name)
			}
		}
	}
}

// sshApprovers reads an allowed-signers line: one verifier per name it lists.
func sshApprovers(w walker, n *yaml.Node, path string) []rings.Verifier {
	names, rest, _ := strings.Cut(strings.TrimSpace(n.Value), " ")
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(rest)))
	if names == "" || err != nil {
		w.fail(n, path, "must be an allowed-signers line, NAME KEYTYPE KEY (e.g. ops-lead ssh-ed25519 AAAAC3...), so that the approval is proven: %q does not hold a public key", n.Value)
		return nil
	}
	var out []rings.Verifier
	for _, name := range strings.Split(strings.Trim(names, `"`), ",") {
		out = append(out, rings.Verifier{Name: name, SSH: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))})
	}
	return out
}

// oidcApprover reads {name, oidc: {issuer, audience, subject, claims}}.
func oidcApprover(w walker, n *yaml.Node, path string) *rings.Verifier {
	f := w.fields(n, path, "name", "oidc")
	v := &rings.Verifier{Name: w.str(f["name"], path+".name")}
	if v.Name == "" {
		w.fail(n, path+".name", "is required: the name the approval is journaled under")
	}
	of := w.fields(f["oidc"], path+".oidc", "issuer", "audience", "subject", "claims")
	if f["oidc"] == nil {
		w.fail(n, path+".oidc", "is required in a mapping entry (or give an allowed-signers line)")
		return nil
	}
	v.OIDC = &rings.OIDCVerifier{Issuer: w.str(of["issuer"], path+".oidc.issuer"), Audience: w.str(of["audience"], path+".oidc.audience"),
		Subject: w.str(of["subject"], path+".oidc.subject"), Claims: w.stringMap(of["claims"], path+".oidc.claims")}
	if u, err := url.Parse(v.OIDC.Issuer); err != nil || u.Scheme != "https" && u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" {
		w.fail(f["oidc"], path+".oidc.issuer", "must be the issuer's https URL, got %q", v.OIDC.Issuer)
	}
	if v.OIDC.Audience == "" {
		w.fail(f["oidc"], path+".oidc.audience", "is required: a token minted for another audience must not count")
	}
	if v.OIDC.Subject == "" && len(v.OIDC.Claims) == 0 {
		w.fail(f["oidc"], path+".oidc.subject", "or claims is required: else any identity of the issuer could approve")
	}
	return v
}

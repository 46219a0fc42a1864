package config

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

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
			if !slices.Contains(b.Approvers, v.Name) {
				b.Approvers = append(b.Approvers, v.Name)
			}
		}
	}
}

// sshApprovers reads an allowed-signers line: one verifier per name it lists. Its options are
// honoured as ssh-keygen -Y verify honours them: namespaces must admit rollout's approvals,
// valid-after and valid-before bound when its signatures count; cert-authority (and any other
// option) is refused, so that no option is silently dropped.
func sshApprovers(w walker, n *yaml.Node, path string) []rings.Verifier {
	names, rest, _ := strings.Cut(strings.TrimSpace(n.Value), " ")
	key, _, options, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(rest)))
	if names == "" || err != nil {
		w.fail(n, path, "must be an allowed-signers line, NAME KEYTYPE KEY (e.g. ops-lead ssh-ed25519 AAAAC3...), so that the approval is proven: %q does not hold a public key", n.Value)
		return nil
	}
	base := rings.Verifier{SSH: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))}
	for _, o := range options {
		if msg := applySignerOption(&base, o); msg != "" {
			w.fail(n, path, "%s", msg)
			return nil
		}
	}
	var out []rings.Verifier
	for _, name := range strings.Split(strings.Trim(names, `"`), ",") {
		v := base
		v.Name = name
		out = append(out, v)
	}
	return out
}

// ApprovalNamespace is the SSH signature namespace of an approval (ssh-keygen -Y sign -n).
const ApprovalNamespace = "rollout-approval"

// applySignerOption applies one allowed-signers option to v, or says why it cannot be honoured.
func applySignerOption(v *rings.Verifier, option string) string {
	name, value, _ := strings.Cut(option, "=")
	value = strings.Trim(value, `"`)
	switch strings.ToLower(name) {
	case "namespaces":
		for _, pat := range strings.Split(value, ",") {
			if ok, _ := path.Match(pat, ApprovalNamespace); ok {
				return ""
			}
		}
		return fmt.Sprintf("option namespaces=%q does not admit %s: this key could never approve (ssh-keygen -Y verify would refuse its signatures)", value, ApprovalNamespace)
	case "valid-after", "valid-before":
		t, err := signerTime(value)
		if err != nil {
			return fmt.Sprintf("option %s=%q: %v", name, value, err)
		}
		if strings.EqualFold(name, "valid-after") {
			v.ValidAfter = &t
		} else {
			v.ValidBefore = &t
		}
		return ""
	case "cert-authority":
		return "option cert-authority is not supported: list each approver's own key"
	}
	return fmt.Sprintf("option %q is not an allowed-signers option rollout honours (namespaces, valid-after, valid-before)", option)
}

// signerTime reads an allowed-signers time: YYYYMMDD or YYYYMMDDHHMM[SS], local time unless it
// ends in Z (as ssh-keygen reads it).
func signerTime(s string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		s, loc = s[:len(s)-1], time.UTC
	}
	for _, layout := range []string{"20060102", "200601021504", "20060102150405"} {
		if len(s) == len(layout) {
			if t, err := time.ParseInLocation(layout, s, loc); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("not a time of the form YYYYMMDD or YYYYMMDDHHMM[SS][Z]")
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

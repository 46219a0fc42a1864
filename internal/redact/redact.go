// Package redact keeps secret values out of what rollout prints, journals and writes: each
// secret in the forms it travels in (as it is, URL-encoded, JSON-escaped, base64), and the
// credentials in URLs.
package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Mask is what stands in for a secret.
const Mask = "[redacted]"

// minLen is the shortest value taken for a secret: shorter ones would mask ordinary text.
const minLen = 4

// Redactor replaces known secret values; secrets learnt while it is in use (a sensitive output)
// may be added at any time. The zero value redacts nothing. Safe for concurrent use.
type Redactor struct {
	mu    sync.RWMutex
	forms []string // longest first
}

// New is a Redactor of these secrets.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add takes more secrets, in every form they may travel in.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) < minLen {
			continue
		}
		j, _ := json.Marshal(s)
		for _, f := range []string{s, url.QueryEscape(s), url.PathEscape(s), strings.Trim(string(j), `"`),
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawStdEncoding.EncodeToString([]byte(s)),
			base64.URLEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))} {
			if len(f) >= minLen && !slices.Contains(r.forms, f) {
				r.forms = append(r.forms, f)
			}
		}
	}
	slices.SortFunc(r.forms, func(a, b string) int { return len(b) - len(a) })
}

// Empty says whether there is nothing to redact.
func (r *Redactor) Empty() bool {
	if r == nil {
		return true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.forms) == 0
}

// String is s with every form of every secret masked.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, Mask)
		}
	}
	return s
}

// Value masks secrets in every string of a JSON-like value (maps, slices, strings), in a copy.
func (r *Redactor) Value(v any) any {
	if r.Empty() {
		return v
	}
	return Strings(v, r.String)
}

// Strings applies f to every string of a JSON-like value (maps, slices, strings), in a copy.
func Strings(v any, f func(string) string) any {
	switch x := v.(type) {
	case string:
		return f(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Strings(e, f)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Strings(e, f)
		}
		return out
	}
	return v
}

// URL is a URL fit to print: its user information and the values of its query masked. Text that
// does not parse as a URL comes back as it is.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{Mask}
		}
		u.RawQuery = q.Encode()
	}
	return strings.NewReplacer("%5Bredacted%5D", Mask).Replace(u.String())
}

// URLsIn masks the credentials of every http(s) URL inside text (an error message that quotes
// the URL it failed on, say).
func URLsIn(text string) string {
	if !strings.Contains(text, "://") {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		j := indexScheme(text[i:])
		if j < 0 {
			b.WriteString(text[i:])
			break
		}
		start := i + j
		end := start
		for end < len(text) && !strings.ContainsRune(" \t\n\"'<>`)", rune(text[end])) {
			end++
		}
		b.WriteString(text[i:start])
		b.WriteString(URL(strings.TrimRight(text[start:end], ".,;:")))
		b.WriteString(text[start+len(strings.TrimRight(text[start:end], ".,;:")) : end])
		i = end
	}
	return b.String()
}

func indexScheme(s string) int {
	a, b := strings.Index(s, "http://"), strings.Index(s, "https://")
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}

// credentialPatterns are credentials recognisable by their form, whoever issued them: the value
// of an authorization scheme, a JSON web token, a JSON field named like a secret.
var credentialPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\b(bearer|basic|token|sharedaccesssignature)(\s+|=)[A-Za-z0-9._~+/=%-]{8,}`),
	regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`),
	regexp.MustCompile(`(?i)"(access_token|refresh_token|id_token|client_secret|password|secret|token)"\s*:\s*"[^"]*"`),
}

// Credentials masks what looks like a credential in text (an endpoint's answer that echoes the
// token it was sent, say), and the credentials of URLs in it: for text from outside, whose
// secrets rollout may not know by value (a cloud's short-lived access token).
func Credentials(text string) string {
	text = URLsIn(text)
	for i, p := range credentialPatterns {
		text = p.ReplaceAllStringFunc(text, func(m string) string {
			switch i {
			case 0:
				end := strings.IndexAny(m, " \t=")
				for end < len(m) && strings.ContainsRune(" \t=", rune(m[end])) {
					end++
				}
				if !strings.ContainsAny(m[end:], "0123456789._~+/=%-") {
					return m // a word ("basic authentication failed"), not a token
				}
				return m[:end] + Mask
			case 2:
				k, _, _ := strings.Cut(m, ":")
				return k + `:"` + Mask + `"`
			}
			return Mask
		})
	}
	return text
}

package redact

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// A secret is masked in every form it travels in: an Azure token endpoint echoing a client secret
// URL-encoded, a JSON body escaping it, a header carrying it in base64.
func TestSecretsAreMaskedInEveryForm(t *testing.T) {
	secret := `Az+Sec/ret=LEAK~1"\`
	r := New(secret, "ab") // too short to be taken for a secret
	for _, text := range []string{
		"plain " + secret,
		"AADSTS7000215: invalid client secret " + url.QueryEscape(secret),
		"path " + url.PathEscape(secret),
		`{"client_secret":"Az+Sec/ret=LEAK~1\"\\"}`,
		"Basic " + base64.StdEncoding.EncodeToString([]byte(secret)),
		"raw " + base64.RawURLEncoding.EncodeToString([]byte(secret)),
	} {
		got := r.String(text)
		if strings.Contains(got, "LEAK") || strings.Contains(got, base64.StdEncoding.EncodeToString([]byte(secret))[:10]) || !strings.Contains(got, Mask) {
			t.Errorf("%q -> %q", text, got)
		}
	}
	if got := r.String("a table, a cab"); got != "a table, a cab" {
		t.Errorf("a short value was masked: %q", got)
	}
	v := r.Value(map[string]any{"a": []any{"x " + secret}, "n": 3})
	if m := v.(map[string]any); strings.Contains(m["a"].([]any)[0].(string), "LEAK") || m["n"] != 3 {
		t.Errorf("Value: %v", v)
	}
}

func TestURLCredentialsAreMasked(t *testing.T) {
	for in, want := range map[string]string{
		"http://admin:PASS@host:8080/health?token=TOK&x=1": "http://[redacted]@host:8080/health?token=[redacted]&x=[redacted]",
		"https://host/healthz":                             "https://host/healthz",
		"not a url":                                        "not a url",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
	msg := `Get "http://admin:PASS@10.0.0.1/health?token=TOK": dial tcp: refused.`
	if got := URLsIn(msg); strings.Contains(got, "PASS") || strings.Contains(got, "TOK") || !strings.HasSuffix(got, "refused.") {
		t.Errorf("URLsIn = %q", got)
	}
}

func TestCredentialsMasksWhatLooksLikeOne(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for in, want := range map[string]string{
		"401: bad Authorization: Bearer ya29.a0AfH6SMBx-token_value":         "401: bad Authorization: Bearer " + Mask,
		"got basic dXNlcjpwYXNzd29yZA== from you":                            "got basic " + Mask + " from you",
		"token " + jwt + " expired":                                          "token " + Mask + " expired",
		"claims " + jwt:                                                      "claims " + Mask,
		`{"error":"x","access_token":"abc.def","password" : "hunter22"}`:     `{"error":"x","access_token":"` + Mask + `","password" :"` + Mask + `"}`,
		"GET https://admin:pw@host/x?sig=abc: 403":                           "GET https://" + Mask + "@host/x?sig=" + Mask + ": 403",
		"HTTP 503, want 200: service unavailable, retry after 5s (token ok)": "HTTP 503, want 200: service unavailable, retry after 5s (token ok)",
		"401: basic authentication failed; token refreshed":                  "401: basic authentication failed; token refreshed",
	} {
		if got := Credentials(in); got != want {
			t.Errorf("Credentials(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

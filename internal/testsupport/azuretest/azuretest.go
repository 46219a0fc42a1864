// Package azuretest stands in for a (custom) Azure cloud on loopback, over TLS as the Azure SDK
// requires: Microsoft Entra's OpenID discovery and v2.0 token endpoint, and a mux where a test adds
// Resource Manager handlers. Point a boundary's custom endpoints at URL and give the SDK Client().
package azuretest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Cloud is a stand-in sovereign Azure cloud on loopback TLS: Entra and Resource Manager.
type Cloud struct {
	*httptest.Server
	Mux      *http.ServeMux // Resource Manager paths; add handlers
	Tenant   atomic.Value   // string: the tenant tokens claim (tid)
	Secret   atomic.Value   // string: the client secret the token endpoint accepts ("": any assertion)
	Audience string         // the aud tokens claim
	Throttle atomic.Int32   // answer this many token requests with 429 first
	Tokens   atomic.Int32   // tokens issued
}

func New(t testing.TB, tenant, audience string) *Cloud {
	c := &Cloud{Mux: http.NewServeMux(), Audience: audience}
	c.Tenant.Store(tenant)
	c.Secret.Store("the-right-secret")
	c.Server = httptest.NewTLSServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

// JWT builds an unsigned token with these claims (the SDK does not verify tokens; the services do).
func JWT(claims map[string]any) string {
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2ln"
}

func (c *Cloud) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case strings.HasSuffix(r.URL.Path, "/v2.0/.well-known/openid-configuration"):
		w.Header().Set("Content-Type", "application/json")
		tn, base := parts[0], c.URL
		fmt.Fprintf(w, `{"token_endpoint":"%s/%s/oauth2/v2.0/token","issuer":"%s/%s/v2.0","authorization_endpoint":"%s/%s/oauth2/v2.0/authorize"}`, base, tn, base, tn, base, tn)
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		w.Header().Set("Content-Type", "application/json")
		if c.Throttle.Add(-1) >= 0 {
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":"temporarily_unavailable","error_description":"AADSTS50196: throttled"}`)
			return
		}
		_ = r.ParseForm()
		if want := c.Secret.Load().(string); want != "" && r.Form.Get("client_assertion") == "" && r.Form.Get("client_secret") != want {
			w.WriteHeader(http.StatusUnauthorized)
			// As some endpoints do, it echoes what it refused, URL-encoded, in its description.
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired (request: client_secret=%s)."}`,
				url.QueryEscape(r.Form.Get("client_secret")))
			return
		}
		c.Tokens.Add(1)
		tok := JWT(map[string]any{"tid": c.Tenant.Load().(string), "aud": c.Audience, "appid": r.Form.Get("client_id"), "oid": "obj-1"})
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":%q}`, tok)
	default:
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"AuthenticationFailed","message":"no bearer token"}}`)
			return
		}
		c.Mux.ServeHTTP(w, r)
	}
}

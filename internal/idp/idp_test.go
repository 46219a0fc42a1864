package idp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// issuer is a real OpenID Connect issuer on loopback (mockoidc: discovery, JWKS, authorization
// code with PKCE, RS256 ID tokens) that logs in whoever is queued.
func issuer(t *testing.T) *mockoidc.MockOIDC {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

func newLogin(t *testing.T, m *mockoidc.MockOIDC, cfg Config) *Login {
	cfg.Issuer, cfg.ClientID, cfg.ClientSecret = m.Issuer(), m.ClientID, m.ClientSecret
	cfg.RedirectURL = "http://127.0.0.1:1/login/callback"
	l, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// authorize follows the issuer's authorization URL as a browser would, up to the redirect back:
// the code and state it carries.
func authorize(t *testing.T, authURL string) (code, state string) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %v", resp.StatusCode, err)
	}
	return loc.Query().Get("code"), loc.Query().Get("state")
}

func TestLogin(t *testing.T) {
	m := issuer(t)
	l := newLogin(t, m, Config{Allow: []string{"ops-lead@example.com"}})
	m.QueueUser(&mockoidc.MockUser{Subject: "1", Email: "ops-lead@example.com", EmailVerified: true})
	state, u, _ := l.Begin()
	if !strings.Contains(u, "code_challenge_method=S256") || !strings.Contains(u, "nonce=") {
		t.Fatalf("the authorization URL lacks PKCE or a nonce: %s", u)
	}
	code, back := authorize(t, u)
	if back != state {
		t.Fatalf("state %q came back as %q", state, back)
	}
	name, err := l.Finish(context.Background(), state, code)
	if err != nil || name != "ops-lead@example.com" {
		t.Fatalf("login: %q %v", name, err)
	}
	// A state is good for one login.
	if _, err := l.Finish(context.Background(), state, code); err == nil {
		t.Fatal("a login finished twice")
	}
}

func TestLoginRefusals(t *testing.T) {
	m := issuer(t)
	now := time.Now()
	clock := func() time.Time { return now }
	cases := []struct {
		name string
		cfg  Config
		user mockoidc.User
		late time.Duration // how long the person takes at the issuer
		want string
	}{
		{"not allowed", Config{Allow: []string{"ops-lead@example.com"}}, &mockoidc.MockUser{Subject: "2", Email: "intern@example.com", EmailVerified: true}, 0, "may not log in"},
		{"unverified email", Config{}, unverified{&mockoidc.MockUser{Subject: "3", Email: "ops-lead@example.com"}}, 0, "not verified"},
		{"no such claim", Config{Claim: "preferred_username"}, &mockoidc.MockUser{Subject: "4", Email: "x@example.com", EmailVerified: true}, 0, `no "preferred_username" claim`},
		{"login too slow", Config{}, &mockoidc.MockUser{Subject: "5", Email: "x@example.com", EmailVerified: true}, 11 * time.Minute, "10 minutes"},
		{"ID token expired", Config{}, &mockoidc.MockUser{Subject: "6", Email: "x@example.com", EmailVerified: true}, 0, "expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now = time.Now()
			c.cfg.Now = clock
			l := newLogin(t, m, c.cfg)
			m.QueueUser(c.user)
			state, u, _ := l.Begin()
			code, _ := authorize(t, u)
			now = now.Add(c.late)
			if c.name == "ID token expired" {
				now = now.Add(m.AccessTTL + time.Hour) // the ID token lives as long as the access token
				l.pending[state] = pending{nonce: l.pending[state].nonce, verifier: l.pending[state].verifier, expires: now.Add(time.Minute)}
			}
			_, err := l.Finish(context.Background(), state, code)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error with %q, got %v", c.want, err)
			}
		})
	}
}

// unverified is a person whose issuer says it has not verified their email.
type unverified struct{ *mockoidc.MockUser }

func (u unverified) Claims(scope []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return struct {
		*mockoidc.IDTokenClaims
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}{base, u.Email, false}, nil
}

func TestWrongIssuerFoundAtStart(t *testing.T) {
	_, err := New(context.Background(), Config{Issuer: "http://127.0.0.1:1", ClientID: "x", RedirectURL: "http://127.0.0.1:2/login/callback"})
	if err == nil || !strings.Contains(err.Error(), "OIDC issuer http://127.0.0.1:1") {
		t.Fatalf("%v", err)
	}
}

// Logins under way are capped: GET /login without ever finishing cannot fill the memory; an
// expired one makes room.
func TestPendingLoginsAreCapped(t *testing.T) {
	m := issuer(t)
	now := time.Now()
	l := newLogin(t, m, Config{Allow: []string{"x@example.com"}, Now: func() time.Time { return now }})
	was := MaxPending
	MaxPending = 3
	defer func() { MaxPending = was }()
	for range 3 {
		if _, _, err := l.Begin(); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := l.Begin(); !errors.Is(err, ErrTooManyLogins) {
		t.Fatalf("a fourth login: %v", err)
	}
	now = now.Add(11 * time.Minute)
	if _, _, err := l.Begin(); err != nil {
		t.Fatalf("after the others expired: %v", err)
	}
}

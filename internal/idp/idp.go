// Package idp proves who a person is through an OpenID Connect issuer (an organisation's Entra
// ID, Okta, Google, Keycloak, Dex...): the authorization code flow with PKCE and a nonce, the ID
// token verified against the issuer's published keys (github.com/coreos/go-oidc), the person's
// name taken from one of its claims.
package idp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config is an issuer and this client's registration with it.
type Config struct {
	Issuer       string   // the issuer URL; its /.well-known/openid-configuration is read at New
	ClientID     string   // this client's ID (the ID token's audience)
	ClientSecret string   // this client's secret ("": a public client, PKCE only)
	RedirectURL  string   // where the issuer sends the browser back (…/login/callback)
	Claim        string   // the claim that names the person ("": email)
	Allow        []string // the names that may log in (empty: whoever the issuer proves)
	HTTPClient   *http.Client
	Now          func() time.Time
}

// Login is the authorization code flow with one issuer.
type Login struct {
	cfg      Config
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	mu       sync.Mutex
	pending  map[string]pending // by state
}

type pending struct {
	nonce, verifier string
	expires         time.Time
}

// loginTTL is how long a person has to come back from the issuer.
const loginTTL = 10 * time.Minute

// New reads the issuer's discovery document, so a wrong issuer is found at start.
func New(ctx context.Context, cfg Config) (*Login, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("an OIDC login needs the issuer, the client ID and the redirect URL")
	}
	if cfg.Claim == "" {
		cfg.Claim = "email"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p, err := oidc.NewProvider(cfg.context(ctx), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC issuer %s: %w", cfg.Issuer, err)
	}
	return &Login{
		cfg: cfg,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
		pending:  map[string]pending{},
	}, nil
}

func (c Config) context(ctx context.Context) context.Context {
	if c.HTTPClient != nil {
		return oidc.ClientContext(ctx, c.HTTPClient)
	}
	return ctx
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// MaxPending is how many logins may be under way at once (begun, not finished, not expired):
// each keeps its state until it ends, so one who only asks for /login cannot fill the memory.
var MaxPending = 1000

// ErrTooManyLogins: MaxPending logins are under way.
var ErrTooManyLogins = errors.New("too many logins are under way: try again in a few minutes")

// Begin starts a login: the state that the browser must bring back, and the issuer's URL to send
// it to.
func (l *Login) Begin() (state, authURL string, err error) {
	state, p := random(), pending{nonce: random(), verifier: oauth2.GenerateVerifier(), expires: l.cfg.Now().Add(loginTTL)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) >= MaxPending {
		for k, v := range l.pending {
			if l.cfg.Now().After(v.expires) {
				delete(l.pending, k)
			}
		}
	}
	if len(l.pending) >= MaxPending {
		return "", "", ErrTooManyLogins
	}
	l.pending[state] = p
	return state, l.oauth.AuthCodeURL(state, oidc.Nonce(p.nonce), oauth2.S256ChallengeOption(p.verifier)), nil
}

// Finish ends the login that state began: the code is exchanged for an ID token, which must be
// the issuer's, for this client, unexpired, with this login's nonce; the person is its claim.
func (l *Login) Finish(ctx context.Context, state, code string) (string, error) {
	l.mu.Lock()
	p, ok := l.pending[state]
	delete(l.pending, state)
	l.mu.Unlock()
	if !ok || l.cfg.Now().After(p.expires) {
		return "", errors.New("this login was not begun here, or took longer than 10 minutes: log in again")
	}
	ctx = l.cfg.context(ctx)
	tok, err := l.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		return "", fmt.Errorf("the issuer refused the login's code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("the issuer returned no ID token")
	}
	idt, err := l.verifier.Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("the ID token: %w", err)
	}
	if idt.Nonce != p.nonce {
		return "", errors.New("the ID token is not this login's (nonce)")
	}
	return l.name(idt)
}

// name is the person an ID token proves, if they may log in.
func (l *Login) name(idt *oidc.IDToken) (string, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", err
	}
	name, _ := claims[l.cfg.Claim].(string)
	if name == "" {
		return "", fmt.Errorf("the ID token has no %q claim", l.cfg.Claim)
	}
	if v, ok := claims["email_verified"].(bool); l.cfg.Claim == "email" && ok && !v {
		return "", fmt.Errorf("the issuer has not verified the email %s", name)
	}
	if len(l.cfg.Allow) > 0 && !slices.Contains(l.cfg.Allow, name) {
		return "", fmt.Errorf("%s may not log in here", name)
	}
	return name, nil
}

// VerifyToken verifies an ID token that a pipeline was given by its issuer (GitHub Actions, Azure
// DevOps, GitLab): signed by one of the issuer's published keys, issued by it, for audience,
// unexpired at now. It returns the token's claims.
func VerifyToken(ctx context.Context, issuer, audience, raw string, now func() time.Time, client *http.Client) (map[string]any, error) {
	ctx = Config{HTTPClient: client}.context(ctx)
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC issuer %s: %w", issuer, err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: audience, Now: now}).Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	return claims, nil
}

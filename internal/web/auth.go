package web

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/secretfile"
)

// Acting from the page is off unless serve is given an authentication method: a token file
// (LoadTokens) or an OIDC issuer (NewOIDC). A person who logs in gets a session cookie (HttpOnly,
// SameSite=Strict); each act's form carries the session's CSRF token; the act is journaled with
// the session's identity, as the CLI's are, and a ring's approvers list holds for it too.

// Tokens are the identities a token file proves, by token.
type Tokens map[string]string

// LoadTokens reads a token file of "NAME TOKEN" lines; it must be readable by its owner only (it
// holds secrets).
func LoadTokens(path string) (Tokens, error) {
	data, err := secretfile.Read(path)
	if err != nil {
		return nil, err
	}
	t := Tokens{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 || len(fields[1]) < 16 {
			return nil, fmt.Errorf("%s:%d: want NAME TOKEN, the token at least 16 characters", path, n)
		}
		t[fields[1]] = fields[0]
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return t, sc.Err()
}

// who is the identity a token proves ("": none), compared in constant time.
func (t Tokens) who(token string) string {
	name := ""
	for tok, n := range t {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(token)) == 1 {
			name = n
		}
	}
	return name
}

// session is a logged-in person.
type session struct {
	Name, CSRF, How string // How: "token" or the OIDC issuer
	Flash           string // what the last act said, shown once
	expires         time.Time
}

// sessions are the logged-in people, by cookie.
type sessions struct {
	mu sync.Mutex
	by map[string]*session
}

const (
	cookieName = "rollout_session"
	sessionTTL = 12 * time.Hour
)

func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// authenticated says whether people may log in and act.
func (s *Server) authenticated() bool { return s.Tokens != nil || s.OIDC != nil }

func (s *Server) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || !s.authenticated() {
		return nil
	}
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	sess := s.sessions.by[c.Value]
	if sess != nil && s.now().After(sess.expires) {
		delete(s.sessions.by, c.Value)
		return nil
	}
	return sess
}

// startSession logs name in and sets the session cookie.
func (s *Server) startSession(w http.ResponseWriter, name, how string) {
	id := randomHex()
	s.sessions.mu.Lock()
	if s.sessions.by == nil {
		s.sessions.by = map[string]*session{}
	}
	s.sessions.by[id] = &session{Name: name, CSRF: randomHex(), How: how, expires: s.now().Add(sessionTTL)}
	s.sessions.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
}

// logout ends the person's session (its form carries the session's CSRF token).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if sess == nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
		http.Error(w, "not logged in here", http.StatusForbidden)
		return
	}
	c, _ := r.Cookie(cookieName)
	s.sessions.mu.Lock()
	delete(s.sessions.by, c.Value)
	s.sessions.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Path: "/", HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// flash takes what the last act said.
func (s *Server) flash(sess *session) string {
	if sess == nil {
		return ""
	}
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	msg := sess.Flash
	sess.Flash = ""
	return msg
}

func (s *Server) setFlash(sess *session, msg string) {
	s.sessions.mu.Lock()
	sess.Flash = msg
	s.sessions.mu.Unlock()
}

const readOnly = "read-only: rollout serve was started without --token-file or --oidc-issuer"

// login logs a person in: with OIDC, through the issuer; else with a token from the token file.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.OIDC != nil:
		s.OIDC.begin(w, r, s.Secure)
	case s.Tokens == nil:
		http.Error(w, readOnly, http.StatusForbidden)
	case r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.ExecuteTemplate(w, "login", nil)
	default:
		name := s.Tokens.who(r.PostFormValue("token"))
		if name == "" {
			http.Error(w, "unknown token", http.StatusUnauthorized)
			return
		}
		s.startSession(w, name, "token")
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

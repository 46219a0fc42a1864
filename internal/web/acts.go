package web

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/rollout-dev/rollout/internal/runs"
)

// Acting from the page is off unless serve is given an authentication method: a token file,
// whose lines are "NAME TOKEN" (the identity the token proves, and the token). A person logs in
// with their token once (a session cookie, HttpOnly and SameSite=Strict); each act's form carries
// the session's CSRF token; the act is journaled with the session's identity, as the CLI's are,
// and the ring's approvers list holds for it too.

// Actor is what the page may do to a run.
type Actor interface {
	Approve(ctx context.Context, id, ring string, a runs.Act) error
}

// Tokens are the identities a token file proves, by token.
type Tokens map[string]string

// LoadTokens reads a token file; it must be readable by its owner only (it holds secrets).
func LoadTokens(path string) (Tokens, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v): its tokens are secrets; chmod 600 it", path, st.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := Tokens{}
	sc := bufio.NewScanner(f)
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
	Name, CSRF string
}

// sessions are the logged-in people, by cookie.
type sessions struct {
	mu sync.Mutex
	by map[string]*session
}

const cookieName = "rollout_session"

func randomHex() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || s.Tokens == nil {
		return nil
	}
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	return s.sessions.by[c.Value]
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.Tokens == nil {
		http.Error(w, "read-only: rollout serve was started without --token-file", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.ExecuteTemplate(w, "login", nil)
		return
	}
	name := s.Tokens.who(r.PostFormValue("token"))
	if name == "" {
		http.Error(w, "unknown token", http.StatusUnauthorized)
		return
	}
	id := randomHex()
	s.sessions.mu.Lock()
	if s.sessions.by == nil {
		s.sessions.by = map[string]*session{}
	}
	s.sessions.by[id] = &session{Name: name, CSRF: randomHex()}
	s.sessions.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// approve approves a ring for the logged-in person, when the form's CSRF token is the session's.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	if s.Tokens == nil {
		http.Error(w, "read-only: rollout serve was started without --token-file", http.StatusForbidden)
		return
	}
	sess := s.session(r)
	if sess == nil {
		http.Error(w, "log in first (/login)", http.StatusUnauthorized)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
		http.Error(w, "the form's CSRF token is not this session's", http.StatusForbidden)
		return
	}
	act, ok := s.Fleet.(Actor)
	if !ok {
		http.Error(w, "this fleet cannot be acted on from here", http.StatusForbidden)
		return
	}
	run, ring, reason := r.PostFormValue("run"), r.PostFormValue("ring"), r.PostFormValue("reason")
	if reason == "" {
		http.Error(w, "give a reason: it is journaled with the approval", http.StatusBadRequest)
		return
	}
	if err := act.Approve(r.Context(), run, ring, runs.Act{As: sess.Name, Reason: reason + " (from the dashboard)"}); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	http.Redirect(w, r, "/?run="+run, http.StatusSeeOther)
}

package web

import (
	"net/http"

	"github.com/rollout-dev/rollout/internal/idp"
)

// OIDC logs people in through an OpenID Connect issuer.
type OIDC struct {
	Login  *idp.Login
	Issuer string
}

// loginCookie carries a login's state to the callback: SameSite=Lax, since the issuer sends the
// browser back from another site.
const loginCookie = "rollout_login"

func (o *OIDC) begin(w http.ResponseWriter, r *http.Request, secure bool) {
	state, u, err := o.Login.Begin()
	if err != nil {
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: state, Path: "/login", HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, u, http.StatusFound)
}

// callback ends an OIDC login, for the browser that began it.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	if s.OIDC == nil {
		http.Error(w, readOnly, http.StatusForbidden)
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		http.Error(w, "the issuer refused the login: "+e+" "+q.Get("error_description"), http.StatusUnauthorized)
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value != q.Get("state") {
		http.Error(w, "this login was not begun in this browser: log in again (/login)", http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1})
	name, err := s.OIDC.Login.Finish(r.Context(), q.Get("state"), q.Get("code"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	s.startSession(w, name, s.OIDC.Issuer)
	// The browser came here from the issuer's site, so a redirect would carry on that cross-site
	// navigation, which the session's SameSite=Strict cookie does not go with: this page moves on
	// by itself, a same-site navigation.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.ExecuteTemplate(w, "loggedin", name)
}

package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/runs"
)

// The page's acts (approve, pause, resume, abort) are journal acts: serve runs no Terraform and
// needs no cloud credential. The process that drives the run reads them from the journal; a run
// that no process drives is moved on by `rollout resume RUN`, or, when serve was started with
// --drive, by a background `rollout resume` that serve starts on its own machine (which then needs
// the boundaries' identities in serve's environment).

// Actor is what the page may do to a run.
type Actor interface {
	Approve(ctx context.Context, id, ring string, a runs.Act) error
	Pause(ctx context.Context, id string, a runs.Act) error
	Unpause(ctx context.Context, id string, a runs.Act) error
	RequestAbort(ctx context.Context, id string, rollback bool, a runs.Act) error
	Driver(ctx context.Context) (*journal.Holder, error)
	DriveInBackground(ctx context.Context, id string, a runs.Act) (string, error)
	RollbackInBackground(ctx context.Context, id string, a runs.Act) (string, error)
	RetryInBackground(ctx context.Context, id string, a runs.Act) (string, error)
}

// act is one of the page's acts: it journals what the form asks, and returns what to tell the
// person.
type act func(ctx context.Context, a Actor, form actForm) (string, error)

type actForm struct {
	Run, Ring string
	Rollback  bool
	Act       runs.Act
}

var acts = map[string]act{
	"approve": func(ctx context.Context, a Actor, f actForm) (string, error) {
		return "ring " + f.Ring + " approved", a.Approve(ctx, f.Run, f.Ring, f.Act)
	},
	"pause": func(ctx context.Context, a Actor, f actForm) (string, error) {
		return "run paused: nothing new starts; what is under way finishes", a.Pause(ctx, f.Run, f.Act)
	},
	"abort": func(ctx context.Context, a Actor, f actForm) (string, error) {
		how := "abort"
		if f.Rollback {
			how = "abort with rollback"
		}
		return how + " journaled", a.RequestAbort(ctx, f.Run, f.Rollback, f.Act)
	},
	"resume": func(ctx context.Context, a Actor, f actForm) (string, error) {
		err := a.Unpause(ctx, f.Run, f.Act)
		switch {
		case err == nil:
			return "run unpaused", nil
		case errors.Is(err, runs.ErrNotPaused):
			return "the run is not paused", nil
		}
		return "", err
	},
}

// handedActs are the page's acts that start a run of their own (a rollback, a retry): with
// --drive, a background rollout command on serve's machine carries them out, through the same
// checks as from a terminal; without, the page says the command to run.
var handedActs = map[string]struct {
	do      func(a Actor, ctx context.Context, id string, act runs.Act) (string, error)
	command string
}{
	"rollback": {Actor.RollbackInBackground, "rollout rollback --run %s --reason TEXT"},
	"retry":    {Actor.RetryInBackground, "rollout start --release RELEASE --retry --reason TEXT (run %s's release)"},
}

// handleAct serves POST /approve, /pause, /resume, /abort, /rollback and /retry for a logged-in person whose form
// carries the session's CSRF token and a reason.
func (s *Server) handleAct(name string) http.HandlerFunc {
	do := acts[name]
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authenticated() {
			http.Error(w, readOnly, http.StatusForbidden)
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
		actor, ok := s.Fleet.(Actor)
		if !ok {
			http.Error(w, "this fleet cannot be acted on from here", http.StatusForbidden)
			return
		}
		form := actForm{Run: r.PostFormValue("run"), Ring: r.PostFormValue("ring"), Rollback: r.PostFormValue("rollback") == "on",
			Act: runs.Act{As: sess.Name, Reason: r.PostFormValue("reason")}}
		if form.Act.Reason == "" {
			http.Error(w, "give a reason: it is journaled with the "+name, http.StatusBadRequest)
			return
		}
		form.Act.Reason += " (from the dashboard)"
		if h, ok := handedActs[name]; ok {
			if name == "rollback" && r.PostFormValue("confirm") != "on" { // as the CLI's --yes: never by a stray POST
				http.Error(w, "confirm the rollback: tick the box that says its targets return to their last known good", http.StatusBadRequest)
				return
			}
			if !s.Drive {
				http.Error(w, fmt.Sprintf("serve was started without --drive, so it starts no Terraform: run "+h.command+" where the boundaries' identities are", form.Run), http.StatusConflict)
				return
			}
			log, err := h.do(actor, r.Context(), form.Run, form.Act)
			if err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			s.setFlash(sess, name+" handed to a background rollout on this machine (log: "+log+")")
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		msg, err := do(r.Context(), actor, form)
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		if name != "pause" {
			msg += s.moveOn(r.Context(), actor, form)
		}
		s.setFlash(sess, msg)
		http.Redirect(w, r, "/?run="+form.Run, http.StatusSeeOther)
	}
}

// moveOn says who carries out an act, handing a run that nothing drives to a background resume
// when serve may drive.
func (s *Server) moveOn(ctx context.Context, a Actor, f actForm) string {
	d, err := a.Driver(ctx)
	switch {
	case err != nil:
		return fmt.Sprintf("; whether a process drives the run is unknown (%v)", err)
	case d != nil && d.PID == 0: // a workflow on Temporal
		return fmt.Sprintf("; %s (%s) drives the run and carries it out", d.Name, d.Doing)
	case d != nil:
		return fmt.Sprintf("; %s (pid %d, %s) drives the run and carries it out", d.Name, d.PID, d.Doing)
	case !s.Drive:
		return "; no process drives the run: continue with rollout resume " + f.Run + " where the boundaries' identities are"
	}
	log, err := a.DriveInBackground(ctx, f.Run, f.Act)
	if err != nil {
		return fmt.Sprintf("; the run could not be handed to a background resume: %v", err)
	}
	return "; a background rollout resume on this machine carries it out (log: " + log + ")"
}

package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/runs"
)

// journalFake is a fleet of one run with no events: what the handlers read, nothing else.
type journalFake struct{}

func (journalFake) Metrics(context.Context, time.Time) (*runs.Metrics, error) {
	return &runs.Metrics{}, nil
}
func (journalFake) RunID(context.Context, string, string) (string, error) { return "v1-1", nil }
func (journalFake) Report(context.Context, string, runs.ReportNeed) (*runs.Report, []byte, error) {
	return &runs.Report{Run: "v1-1", Phase: rings.PhaseRunning}, nil, nil
}
func (journalFake) EventsAfter(context.Context, string, int64) ([]rings.Event, error) {
	return nil, nil
}
func (journalFake) History(context.Context) ([]runs.RunLine, error) { return nil, nil }
func (journalFake) TargetHistory(context.Context, string) (*runs.TargetHistory, error) {
	return &runs.TargetHistory{}, nil
}

func (journalFake) FleetView(context.Context) ([]runs.FleetTarget, error) {
	since := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	return []runs.FleetTarget{
		{Ring: "canary", Target: "c-1", Boundary: "b", Release: &rings.ReleaseRef{Name: "v2"}, Since: &since, Run: "v2-1", State: "verified", Verdict: "passed"},
		{Ring: "main", Target: "m-1", Boundary: "b", Release: &rings.ReleaseRef{Name: "v1"}, Since: &since, Run: "v2-1", State: "rolled_back", Flags: []string{"newerPending"}},
		{Ring: "main", Target: "m-2", Boundary: "b", Flags: []string{"neverDeployed"}},
	}, nil
}

func get(t *testing.T, h http.Handler, path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// With a login configured, nothing but the login, the script and /healthz is readable without
// one (metrics by their own switch); every answer forbids framing and inline script; a logout
// ends the session.
func TestServeNeedsItsLogin(t *testing.T) {
	s := &Server{Fleet: journalFake{}, Tokens: Tokens{"0123456789abcdef0123": "ana"}, Secure: true}
	h := s.Handler()
	for _, path := range []string{"/", "/matrix", "/events?run=v1-1", "/history", "/metrics"} {
		if w := get(t, h, path); w.Code != http.StatusUnauthorized && w.Code != http.StatusSeeOther {
			t.Errorf("%s without a login: %d", path, w.Code)
		}
	}
	for _, path := range []string{"/login", "/dashboard.js", "/healthz"} {
		w := get(t, h, path)
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d", path, w.Code)
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline'; frame") || strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
			t.Errorf("%s: policy %q", path, csp)
		}
	}
	if pub := (&Server{Fleet: journalFake{}, Tokens: s.Tokens, PublicMetrics: true}).Handler(); get(t, pub, "/metrics").Code != http.StatusOK {
		t.Error("--public-metrics: /metrics needs a login")
	}
	// Log in, read, log out.
	form := url.Values{"token": {"0123456789abcdef0123"}}
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Fatalf("session cookie: %+v", cookies)
	}
	page := get(t, h, "/", cookies...)
	if page.Code != http.StatusOK || strings.Contains(page.Body.String(), "<script>") || !strings.Contains(page.Body.String(), `src="/dashboard.js"`) {
		t.Fatalf("the page: %d\n%s", page.Code, page.Body)
	}
	var token string
	for _, sess := range s.sessions.by {
		token = sess.CSRF
	}
	r = httptest.NewRequest(http.MethodPost, "/logout", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(cookies[0])
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || get(t, h, "/history", cookies...).Code != http.StatusUnauthorized {
		t.Fatalf("after logout: %d, history %d", w.Code, get(t, h, "/history", cookies...).Code)
	}
}

// Live event logs are capped per client and in all; a stream that ends makes room.
func TestLiveLogsAreCapped(t *testing.T) {
	s := &Server{Fleet: journalFake{}, MaxStreams: 3, MaxStreamsPerClient: 2, Poll: time.Hour}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	open := func() (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events?run=v1-1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, cancel
	}
	a, stopA := open()
	b, stopB := open()
	c, stopC := open()
	defer stopB()
	defer stopC()
	if a.StatusCode != 200 || b.StatusCode != 200 || c.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("streams from one client: %d %d %d, want 200 200 429", a.StatusCode, b.StatusCode, c.StatusCode)
	}
	stopA()
	a.Body.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		d, stopD := open()
		code := d.StatusCode
		stopD()
		d.Body.Close()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed stream never made room")
		}
	}
	var st streams
	for _, client := range []string{"a", "a", "b"} {
		if _, ok := st.take(client, 3, 2); !ok {
			t.Fatalf("client %s refused under the caps", client)
		}
	}
	if _, ok := st.take("c", 3, 2); ok {
		t.Fatal("the total cap did not hold")
	}
}

// actorFake is journalFake that may be acted on; it records the rollbacks handed to it.
type actorFake struct {
	journalFake
	rolledBack *[]string
}

func (actorFake) Approve(context.Context, string, string, runs.Act) error { return nil }
func (actorFake) Pause(context.Context, string, runs.Act) error           { return nil }
func (actorFake) Unpause(context.Context, string, runs.Act) error         { return nil }
func (actorFake) RequestAbort(context.Context, string, bool, runs.Act) error {
	return nil
}
func (actorFake) Driver(context.Context) (*journal.Holder, error) { return nil, nil }
func (actorFake) DriveInBackground(context.Context, string, runs.Act) (string, error) {
	return "", nil
}
func (a actorFake) RollbackInBackground(_ context.Context, id string, _ runs.Act) (string, error) {
	*a.rolledBack = append(*a.rolledBack, id)
	return "rollback.log", nil
}
func (actorFake) RetryInBackground(context.Context, string, runs.Act) (string, error) {
	return "", nil
}

// The dashboard's rollback is carried out only when its form confirms it, as the CLI's needs --yes:
// a POST without the box ticked changes nothing.
func TestTheDashboardsRollbackNeedsItsConfirmation(t *testing.T) {
	var handed []string
	s := &Server{Fleet: actorFake{rolledBack: &handed}, Tokens: Tokens{"0123456789abcdef0123": "ana"}, Drive: true}
	h := s.Handler()
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"token": {"0123456789abcdef0123"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	cookies := w.Result().Cookies()
	var token string
	for _, sess := range s.sessions.by {
		token = sess.CSRF
	}
	post := func(form url.Values) int {
		r := httptest.NewRequest(http.MethodPost, "/rollback", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(cookies[0])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := post(url.Values{"run": {"v1-1"}, "csrf": {token}, "reason": {"bad"}}); code != http.StatusBadRequest || len(handed) != 0 {
		t.Fatalf("a rollback without its confirmation: %d, handed %v", code, handed)
	}
	if code := post(url.Values{"run": {"v1-1"}, "csrf": {token}, "reason": {"bad"}, "confirm": {"on"}}); code != http.StatusSeeOther || len(handed) != 1 {
		t.Fatalf("a confirmed rollback: %d, handed %v", code, handed)
	}
}

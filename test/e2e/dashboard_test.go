//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/rollout-dev/rollout/internal/rings"
)

// chromium is the headless browser of the dashboard test (Debian's chromium, which make test
// installs: scripts/need-chromium.sh).
func chromium(t *testing.T) string {
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			return p
		}
	}
	if os.Getenv("ROLLOUT_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium on PATH (make test installs Debian's package: scripts/need-chromium.sh)")
	}
	t.Skip("no chromium on PATH (make test installs it)")
	return ""
}

// TestDashboardFollowsARunLive loads `rollout serve`'s page in headless Chromium while another
// process drives a run: the matrix shows a target applying, then every target verified and the
// run succeeded, and the event log fills, all without reloading the page. The screenshot is kept
// (ROLLOUT_ARTIFACTS, else the test's temporary directory).
func TestDashboardFollowsARunLive(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	f := newFleet(t, oneRing(3, "2", ""))
	addr, _ := f.serve(t)
	done := make(chan result, 1)
	go func() { done <- f.run("start", "--release", "v1") }()
	f.waitFor("the run to start", 60*time.Second, func(rep report) bool { return rep.Run != "" })

	bctx := browserTab(t, browser)
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/")); err != nil { // the first call: no timeout
		t.Fatalf("load the dashboard: %v", err)
	}
	wctx, wcancel := context.WithTimeout(bctx, 2*time.Minute)
	defer wcancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(`#rings`)); err != nil {
		t.Fatalf("the dashboard shows no matrix: %v", err)
	}
	if _, err := chromedp.Run(wctx, chromedp.Evaluate[string](`window.loadedOnce = "yes"`)); err != nil { // gone if the page reloads
		t.Fatal(err)
	}
	if err := chromedp.Do(wctx, chromedp.WaitVisible(`span.t[data-phase="applying"]`), chromedp.WaitVisible(`#phase.succeeded`)); err != nil {
		t.Fatalf("the matrix did not follow the run: %v", err)
	}
	marker, err := chromedp.Run(wctx, chromedp.Evaluate[string](`window.loadedOnce`))
	if err != nil || marker != "yes" {
		t.Fatalf("the page was reloaded (%q, %v)", marker, err)
	}
	verified, err1 := chromedp.Run(wctx, chromedp.Evaluate[int](`document.querySelectorAll('span.t[data-phase="verified"]').length`))
	logLines, err2 := chromedp.Run(wctx, chromedp.Evaluate[int](`document.querySelectorAll('#log li').length`))
	shot, err3 := chromedp.Run(wctx, chromedp.FullScreenshot(100))
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if verified != 3 || logLines < 6 {
		t.Fatalf("the finished run shows %d verified targets and %d log lines", verified, logLines)
	}
	dir := os.Getenv("ROLLOUT_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
	if r := <-done; r.code != 0 {
		t.Fatalf("start: exit %d\n%s", r.code, r.stderr)
	}
	// History, per run and per target.
	run := f.status().Run
	for path, want := range map[string][]string{"/history": {run, "succeeded"}, "/history?target=t-1": {run, "target.applied", "last known good: v1"}} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q:\n%s", path, w, b)
			}
		}
	}
}

// TestApproveFromTheDashboard: serve without a token file is read-only (an approval posted to it
// is refused); with one, a person logs in with their token in headless Chromium and approves the
// waiting ring by clicking; the approval is journaled with their name and the reason, a post
// without the session's CSRF token is refused, and the run then goes on.
func TestApproveFromTheDashboard(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true, approvers: [ops-lead]}\n"))
	f.must(3, "start", "--release", "v1")
	run := f.status().Run

	// Read-only: no login, no approval.
	addr, _ := f.serve(t)
	resp, err := http.PostForm("http://"+addr+"/approve", url.Values{"run": {run}, "ring": {"only"}, "reason": {"x"}})
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an approval posted to a read-only serve: %v %v", resp, err)
	}

	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# who token\nops-lead tok-3f9a2c71d8e4b605\nintern tok-0000111122223333\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ = f.serve(t, "--token-file", tokens)
	base := "http://" + addr

	// A session without the form's CSRF token is refused.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	if resp, err := client.PostForm(base+"/login", url.Values{"token": {"tok-3f9a2c71d8e4b605"}}); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %v %v", resp, err)
	}
	if resp, err := client.PostForm(base+"/approve", url.Values{"run": {run}, "ring": {"only"}, "reason": {"x"}, "csrf": {"forged"}}); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an approval without the session's CSRF token: %v %v", resp, err)
	}

	bctx := browserTab(t, browser)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(bctx, time.Minute)
	defer wcancel()
	buttons, err := chromedp.Run(wctx, chromedp.Evaluate[int](`document.querySelectorAll('button.approve').length`))
	if err != nil || buttons != 0 {
		t.Fatalf("approve buttons before logging in: %d %v", buttons, err)
	}
	for i, step := range []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + "/login"),
		chromedp.SendKeys(`#token`, "tok-3f9a2c71d8e4b605"),
		chromedp.Click(`#login`),
		chromedp.WaitVisible(`button.approve`),
		chromedp.SendKeys(`form.approve input[name="reason"]`, "canary reviewed"),
		chromedp.Click(`button.approve`),
		chromedp.WaitVisible(`small.approval`),
	} {
		if err := chromedp.Do(wctx, step); err != nil {
			html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
			t.Fatalf("approving from the page, step %d: %v\n%s", i, err, html)
		}
	}
	var approved *rings.Event
	for _, e := range f.journalEvents() {
		if e.Type == rings.RingApproved {
			approved = &e
		}
	}
	if approved == nil || approved.Actor != "ops-lead" || !strings.Contains(approved.Message, "canary reviewed") {
		t.Fatalf("ring.approved: %+v", approved)
	}
	f.must(0, "start", "--release", "v1")
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, u string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 30s", u)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// browserTab is a tab of a headless Chromium that lives as long as the test.
func browserTab(t *testing.T, browser string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Flag("headless", true))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

// TestActFromTheDashboardWithOIDC: serve logs people in through an OpenID Connect issuer (a real
// one on loopback: discovery, JWKS, code flow with PKCE) and, with --drive, hands a run that
// nothing drives to a background resume after an act. A person the issuer proves but --oidc-allow
// does not name is refused. In headless Chromium, the allowed person pauses the run waiting for
// approval, approves its ring (which does not end the pause), resumes it, and the run succeeds;
// the next release they abort with rollback from the page, and it never reaches the target. Each
// act is journaled with the name the issuer proved and the reason typed.
func TestActFromTheDashboardWithOIDC(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	const lead = "ops-lead@example.com"
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true, approvers: ["+lead+"]}\n"))
	f.must(3, "start", "--release", "v1")
	run := f.status().Run

	issuer, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = issuer.Shutdown() })
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte(issuer.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := f.serve(t, "--oidc-issuer", issuer.Issuer(), "--oidc-client-id", issuer.ClientID,
		"--oidc-client-secret-file", secret, "--oidc-allow", lead, "--drive")
	base := "http://" + addr

	// Proven by the issuer, but not allowed here.
	issuer.QueueUser(&mockoidc.MockUser{Subject: "7", Email: "intern@example.com", EmailVerified: true})
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "intern@example.com may not log in") {
		t.Fatalf("a login of someone --oidc-allow does not name: %d %s", resp.StatusCode, body)
	}

	issuer.QueueUser(&mockoidc.MockUser{Subject: "1", Email: lead, EmailVerified: true})
	bctx := browserTab(t, browser)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/login")); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(bctx, 2*time.Minute)
	defer wcancel()
	act := func(form, reason string, extra ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.WaitVisible(`form[action="/` + form + `"] button`),
			chromedp.SendKeys(`form[action="/`+form+`"] input[name="reason"]`, reason),
		}
		// The page the act was given on is marked: the flash to read is the next page's.
		if _, err := chromedp.Run(wctx, chromedp.Evaluate[string](`document.body.dataset.old = "1"`)); err != nil {
			t.Fatal(err)
		}
		steps = append(append(steps, extra...), chromedp.Click(`form[action="/`+form+`"] button`), chromedp.WaitVisible(`body:not([data-old]) #flash`))
		for i, step := range steps {
			if err := chromedp.Do(wctx, step); err != nil {
				html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
				t.Fatalf("%s from the page, step %d: %v\n%s", form, i, err, html)
			}
		}
	}
	if err := chromedp.Do(wctx, chromedp.WaitVisible(`#who`)); err != nil {
		t.Fatalf("not logged in after the issuer's login: %v", err)
	}
	who, err := chromedp.Run(wctx, chromedp.Text[string](`#who`))
	if err != nil || !strings.Contains(who, lead) {
		t.Fatalf("after the issuer's login the page says %q (%v)", who, err)
	}

	act("pause", "hold for the database failover")
	act("approve", "canary reviewed")
	flash, _ := chromedp.Run(wctx, chromedp.Text[string](`#flash`))
	if !strings.Contains(flash, "is paused") || f.status().Phase != "paused" {
		t.Fatalf("an approval of a paused run moved it on: %q, phase %s", flash, f.status().Phase)
	}
	act("resume", "failover done")
	if err := chromedp.Do(wctx, chromedp.WaitVisible(`#phase.succeeded`)); err != nil {
		t.Fatalf("the resumed run did not succeed on the page: %v", err)
	}
	f.waitFor("the background resume to end", time.Minute, func(rep report) bool { return rep.Phase == "succeeded" && rep.Driver == nil })
	byLead := map[rings.EventType]string{}
	for _, e := range f.journalEvents() {
		if e.RunID == run && e.Actor == lead {
			byLead[e.Type] = e.Message
		}
	}
	for typ, reason := range map[rings.EventType]string{rings.RunPaused: "hold for the database failover", rings.RingApproved: "canary reviewed", rings.RunUnpaused: "failover done", rings.RunResumed: ""} {
		if msg, ok := byLead[typ]; !ok || !strings.Contains(msg, reason) {
			t.Errorf("%s by %s: %q (journaled by them: %v)", typ, lead, msg, byLead)
		}
	}

	// The next release: aborted with rollback from the page before its ring is approved.
	f.must(3, "start", "--release", "v2")
	if err := chromedp.Do(wctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	act("abort", "wrong build", chromedp.Click(`form[action="/abort"] input[name="rollback"]`))
	if err := chromedp.Do(wctx, chromedp.WaitVisible(`#phase.aborted`)); err != nil {
		html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("the aborted run does not show so: %v\n%s", err, html)
	}
	f.waitFor("the background abort to end", time.Minute, func(rep report) bool { return rep.Phase == "aborted" && rep.Driver == nil })
	if v := f.deployedVersion("t-1"); v != "v1" {
		t.Fatalf("t-1 runs %q after v2 was aborted before its approval", v)
	}
}

// TestTheFleetSaysWhatRunsWhere: after a release that passed everywhere (v1) and one that passed
// the canary and failed in main, which rolled main back (v2), plus a target added and never
// deployed, `rollout fleet --output json` says for each target the release Terraform's state
// holds and flags the canary that still runs the failed release; the dashboard's home page, in
// Chromium, shows each target in its ring with the same release and marks; /metrics has a
// rollout_target_release_info series for each deployed target.
func TestTheFleetSaysWhatRunsWhere(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	f := newFleet(t, twoRings("0s"))
	f.must(0, "start", "--release", "v1")
	f.must(2, "start", "--release", "v2", "--var", "fault_tier=main")
	f.must(0, "env", "add", "--boundary", "local-b", "--region", "local", "--name", "main-9", "--label", "tier=main")

	var view struct {
		Targets []struct {
			Ring, Target, State string
			Release             *struct{ Name string }
			Flags               []string
		}
	}
	r := f.must(0, "fleet", "--output", "json")
	conformsTo(t, "fleet.v1.json", r.stdout)
	if err := json.Unmarshal([]byte(r.stdout), &view); err != nil || len(view.Targets) != 5 {
		t.Fatalf("fleet: %v\n%s", err, r.stdout)
	}
	want := map[string]string{}  // target -> release, as Terraform's state says
	marks := map[string]string{} // target -> how the home page must set it apart
	rolledBack := 0
	for _, tg := range view.Targets {
		inState, _ := f.stateRelease(tg.Target)
		got := ""
		if tg.Release != nil {
			got = tg.Release.Name
		}
		if got != inState {
			t.Errorf("fleet says %s runs %q; Terraform's state says %q", tg.Target, got, inState)
		}
		want[tg.Target] = got
		marks[tg.Target] = map[string]string{"canary-1": "failedElsewhere", "main-9": "never"}[tg.Target]
		if tg.State == "rolled_back" {
			marks[tg.Target] = "rolled_back"
			rolledBack++
		}
		flags := strings.Join(tg.Flags, ",")
		switch {
		case tg.Target == "canary-1" && (got != "v2" || flags != "failedElsewhere"):
			t.Errorf("the canary runs the release that failed in main: %+v", tg)
		case strings.HasPrefix(tg.Target, "main-") && tg.Target != "main-9" && (got != "v1" || flags != ""):
			t.Errorf("main was rolled back to v1: %+v", tg)
		case tg.Target == "main-9" && (got != "" || flags != "neverDeployed"):
			t.Errorf("a target never deployed: %+v", tg)
		}
	}

	// The run of the failed release names the canary that still runs it, and how to return it.
	if st := f.must(2, "status", "--output", "json"); !strings.Contains(st.stdout, `"stillRunning":["canary-1"]`) || !strings.Contains(st.stdout, "rollout rollback --run") {
		t.Fatalf("status of v2's run: %s", st.stdout)
	}

	addr, _ := f.serve(t)
	bctx := browserTab(t, browser)
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("load the dashboard: %v", err)
	}
	wctx, wcancel := context.WithTimeout(bctx, time.Minute)
	defer wcancel()
	cells, err := chromedp.Run(wctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll('#fleet-matrix tr')).flatMap(tr =>
		Array.from(tr.querySelectorAll('span.f[data-target]')).map(s => [tr.querySelector('th').textContent, s.dataset.target, s.dataset.release, s.dataset.mark, getComputedStyle(s).backgroundColor]))`))
	if err != nil {
		t.Fatal(err)
	}
	colour := map[string]string{}
	for _, c := range cells {
		ring, target, rel, mark, bg := c[0], c[1], c[2], c[3], c[4]
		if rel != want[target] {
			t.Errorf("the home page shows %s running %q; Terraform's state says %q", target, rel, want[target])
		}
		if wantMark := marks[target]; mark != wantMark || (ring == "canary") != (target == "canary-1") {
			t.Errorf("the home page shows %s in ring %s marked %q, want %q", target, ring, mark, marks[target])
		}
		if rel != "" {
			if was, ok := colour[rel]; ok && was != bg {
				t.Errorf("release %s in two colours: %s and %s", rel, was, bg)
			}
			colour[rel] = bg
		}
	}
	if rolledBack == 0 {
		t.Error("no target of main was rolled back")
	}
	if len(cells) != 5 || colour["v1"] == "" || colour["v1"] == colour["v2"] {
		t.Errorf("the home page's fleet: %v", cells)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range []string{`rollout_target_release_info{boundary="local-a",release="v2",ring="canary",target="canary-1"} 1`,
		`rollout_target_release_info{boundary="local-b",release="v1",ring="main",target="main-2"} 1`,
		`rollout_target_flagged{boundary="local-a",flag="failedElsewhere",ring="canary",target="canary-1"} 1`} {
		if !strings.Contains(string(body), s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}
	// The failed release tried again, as it was: a new run, attempt 2, that fails the same way.
	f.must(1, "start", "--release", "v2", "--retry")
	var retry struct {
		Run     string
		Attempt int
		RetryOf struct{ Run, Phase, Reason string }
	}
	r = f.must(2, "start", "--release", "v2", "--retry", "--reason", "was the gate flaky?", "--output", "json") // its recorded values
	conforming(t, r.stdout)
	if err := json.Unmarshal([]byte(r.stdout), &retry); err != nil || retry.Attempt != 2 || retry.RetryOf.Phase != "rolled_back" || retry.RetryOf.Reason != "was the gate flaky?" {
		t.Fatalf("retry: %v\n%s", err, r.stdout)
	}
	if h := f.must(0, "history"); !strings.Contains(h.stdout, retry.Run) || !strings.Contains(h.stdout, retry.RetryOf.Run) {
		t.Fatalf("history lists both attempts:\n%s", h.stdout)
	}
}

// TestRollbackAndRetryFromTheDashboard: serve --drive hands a rollback and a retry asked for on
// the page to a background rollout on its machine, each through the same checks as from a
// terminal and journaled with the name the person logged in as: a release that succeeded is
// rolled back (Terraform's state returns to the release before it), and one that was rolled back
// is tried again (attempt 2).
func TestRollbackAndRetryFromTheDashboard(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	f := newFleet(t, oneRing(1, "0", ""))
	f.must(0, "start", "--release", "v1")
	f.must(0, "start", "--release", "v2")
	v2 := f.status().Run
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("ana tok-5e1f0a9b3c7d2e48\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, _ := f.serve(t, "--token-file", tokens, "--drive")
	base := "http://" + addr
	bctx := browserTab(t, browser)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/login")); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(bctx, 2*time.Minute)
	defer wcancel()
	steps := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, step := range actions {
			if err := chromedp.Do(wctx, step); err != nil {
				html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
				t.Fatalf("%s, step %d: %v\n%s", what, i, err, html)
			}
		}
	}
	steps("roll back v2",
		chromedp.SendKeys(`#token`, "tok-5e1f0a9b3c7d2e48"),
		chromedp.Click(`#login`),
		chromedp.WaitVisible(`#who`),
		chromedp.Navigate(base+"/?run="+v2),
		chromedp.SendKeys(`form[action="/rollback"] input[name="reason"]`, "v2 breaks checkout"),
		chromedp.Click(`form[action="/rollback"] input[type="checkbox"]`),
		chromedp.Click(`button.rollback`),
		chromedp.WaitVisible(`#flash`),
	)
	back := f.waitFor("the rollback to finish", time.Minute, func(rep report) bool { return rep.Kind == "rollback" && rep.Phase == "succeeded" })
	if rel, _ := f.stateRelease("t-1"); rel != "v1" || f.deployedVersion("t-1") != "v1" {
		t.Fatalf("after the dashboard's rollback (%s) Terraform's state says %q", back.Run, rel)
	}
	f.must(2, "start", "--release", "v3", "--var", "fault_tier=main")
	v3 := f.status().Run
	steps("retry v3",
		chromedp.Navigate(base+"/?run="+v3),
		chromedp.SendKeys(`form[action="/retry"] input[name="reason"]`, "was the gate flaky?"),
		chromedp.Click(`button.retry`),
		chromedp.WaitVisible(`#flash`),
	)
	retry := f.waitFor("the retry to finish", time.Minute, func(rep report) bool { return rep.Run != v3 && rep.Phase == "rolled_back" })
	var rep struct {
		Attempt int
		RetryOf struct{ Run, Actor, Reason string }
	}
	if err := json.Unmarshal([]byte(f.must(2, "status", retry.Run, "--output", "json").stdout), &rep); err != nil || rep.Attempt != 2 ||
		rep.RetryOf.Run != v3 || rep.RetryOf.Actor != "ana" || !strings.Contains(rep.RetryOf.Reason, "was the gate flaky?") {
		t.Fatalf("the dashboard's retry: %+v %v", rep, err)
	}
}

package e2e

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
	browser := chromium(t)
	f := newFleet(t, oneRing(3, "2", ""))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := f.command(ctx, "serve", "--listen", addr)
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = serve.Wait() }()

	done := make(chan result, 1)
	go func() { done <- f.run("start", "--release", "v1") }()
	f.waitFor("the run to start", 60*time.Second, func(rep report) bool { return rep.Run != "" })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Flag("headless", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
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
}

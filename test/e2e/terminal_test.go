//go:build e2e

package e2e

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	"github.com/creack/pty"
)

// screen is a terminal emulator fed by a pseudo-terminal: what a person would see.
type screen struct {
	mu  sync.Mutex
	emu *vt.Emulator
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.emu.String()
}

// TestProgressOnATerminal runs rollout in a pseudo-terminal and reads the screen: event lines
// scroll above live bars, one per ring, with the run's phase and elapsed time, targets done, and
// the bake's remaining time; at the end the report.
func TestProgressOnATerminal(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{
		targets: "targets:\n" + targetsYAML("canary", "local-a", "canary", 1, "    vars: {apply_seconds: 1}\n") + targetsYAML("main", "local-b", "main", 2, ""),
		rings: "  - name: canary\n    targets: {labels: {tier: canary}}\n    gates: [healthz]\n    bake: 4s\n" +
			"  - name: main\n    targets: {labels: {tier: main}}\n    maxParallel: 2\n    gates: [healthz]\n",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := f.command(ctx, "start", "--release", "v1")
	cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	cmd.Env = slicesDelete(cmd.Env, "NO_COLOR=")
	const cols, rows = 120, 40
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	sc := &screen{emu: vt.NewEmulator(cols, rows)}
	go func() { // the terminal's answers (cursor position reports, ...) go back to the program
		_, _ = io.Copy(ptmx, sc.emu)
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := ptmx.Read(buf)
			if n > 0 {
				sc.mu.Lock()
				_, _ = sc.emu.Write(buf[:n])
				sc.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	waitScreen := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			s := sc.text()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("screen never showed %s:\n%s", what, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	bake := regexp.MustCompile(`▶ canary\s+baking, [1-4]s left\s+\[=+.*\] 1/1\s+1 verified`)
	passed := regexp.MustCompile(`\d+\.\ds\s+canary-1: gates passed`)
	// The bars and the lines above them are drawn by one renderer, but not in one write: wait for
	// both while the canary bakes.
	s := waitScreen("the canary baking with its time left", func(s string) bool { return bake.MatchString(s) && passed.MatchString(s) })
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`── release v1  running  \d+s`),
		regexp.MustCompile(`\n  main\s+pending\s+\[.*\] 0/2\s+2 pending`),
		regexp.MustCompile(`\d+\.\ds\s+canary-1: gates passed`), // event lines above the bars
	} {
		if !want.MatchString(s) {
			t.Fatalf("screen while baking lacks %s:\n%s", want, s)
		}
	}
	err = cmd.Wait()
	<-done
	if err != nil {
		var ee interface{ ExitCode() int }
		if errors.As(err, &ee) {
			t.Fatalf("exit %d:\n%s", ee.ExitCode(), sc.text())
		}
		t.Fatal(err)
	}
	final := sc.text()
	for _, want := range []string{"run finished: succeeded", "── release v1  succeeded", "main-2    local-b   verified  v1"} {
		if !strings.Contains(final, want) {
			t.Fatalf("final screen lacks %q:\n%s", want, final)
		}
	}
}

func slicesDelete(env []string, prefix string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return append(out, "ROLLOUT_NO_COLOR=")
}

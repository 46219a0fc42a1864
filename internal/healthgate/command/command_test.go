package command

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

func TestCommandProvider(t *testing.T) {
	m := (&Command{Args: []string{"sh", "-c", "echo fine; exit 0"}}).Measure(context.Background())
	if m.Outcome != rings.OK || !strings.Contains(m.Message, "fine") {
		t.Fatalf("exit 0: %+v", m)
	}
	m = (&Command{Args: []string{"sh", "-c", "echo broken >&2; exit 3"}}).Measure(context.Background())
	if m.Outcome == rings.OK || !strings.Contains(m.Message, "exit 3, want 0: broken") {
		t.Fatalf("exit 3: %+v", m)
	}
	m = (&Command{Args: []string{"sh", "-c", "exit 3"}, ExpectExit: 3}).Measure(context.Background())
	if m.Outcome != rings.OK {
		t.Fatalf("expected exit 3: %+v", m)
	}
	m = (&Command{Args: []string{"/nonexistent/probe"}}).Measure(context.Background())
	if m.Outcome == rings.OK || !strings.Contains(m.Message, "no data") {
		t.Fatalf("missing program: %+v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	m = (&Command{Args: []string{"sleep", "10"}}).Measure(ctx)
	if m.Outcome == rings.OK || time.Since(start) > 3*time.Second {
		t.Fatalf("a hung command must fail by the deadline: %+v after %s", m, time.Since(start))
	}
}

package web

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/runs"
)

// A large cell shows its counts by phase and lists only the targets that are not verified, at
// most cellList; a small one lists every target.
func TestLargeCellsListWhatIsNotVerified(t *testing.T) {
	var ts []runs.TargetReport
	for i := range 200 {
		p := rings.TVerified
		if i%2 == 0 {
			p = rings.TFailed
		}
		ts = append(ts, runs.TargetReport{Name: fmt.Sprintf("t-%d", i), Phase: p})
	}
	c := newCell(ts)
	if len(c.Targets) != cellList || c.More != 100-cellList || len(c.Counts) != 2 ||
		c.Counts[0] != (phaseCount{"failed", 100}) || c.Counts[1] != (phaseCount{"verified", 100}) {
		t.Fatalf("large cell: %d listed, %d more, counts %v", len(c.Targets), c.More, c.Counts)
	}
	for _, tr := range c.Targets {
		if tr.Phase == rings.TVerified {
			t.Fatalf("listed a verified target: %s", tr.Name)
		}
	}
	if small := newCell(ts[:10]); len(small.Targets) != 10 || small.Counts != nil {
		t.Fatalf("small cell: %+v", small)
	}
}

// Journal text cannot forge an event on the live log: every line of it stays a data: field of
// the one event (a pause reason became "run finished: succeeded" on its own).
func TestAnEventsTextCannotStartAnother(t *testing.T) {
	var b strings.Builder
	writeEvent(&b, 7, "journal", "paused: x\n\nid: 8\nevent: journal\ndata: run finished: succeeded\r\rdata: ring approved\r\nend")
	blocks := strings.Split(strings.TrimSuffix(b.String(), "\n\n"), "\n\n")
	if len(blocks) != 1 || !strings.HasSuffix(b.String(), "\n\n") {
		t.Fatalf("%d events in:\n%q", len(blocks), b.String())
	}
	for _, line := range strings.Split(blocks[0], "\n") {
		if strings.ContainsRune(line, '\r') || !(strings.HasPrefix(line, "data: ") || line == "id: 7" || line == "event: journal") {
			t.Fatalf("line %q of:\n%q", line, b.String())
		}
	}
}

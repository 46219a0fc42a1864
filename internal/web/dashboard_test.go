package web

import (
	"fmt"
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

package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

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

// The home page shows the fleet across all runs: each target in its ring's row with the release
// it runs, in that release's colour, and what sets it apart; /fleet is that matrix alone, and
// /metrics has a series per target.
func TestTheHomePageIsTheFleet(t *testing.T) {
	s := &Server{Fleet: journalFake{}, Now: func() time.Time { return time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC) }}
	h := s.Handler()
	for _, path := range []string{"/", "/fleet"} {
		body := get(t, h, path).Body.String()
		for _, want := range []string{
			`data-target="c-1" data-release="v2" data-state="verified" data-mark=""`,
			`class="f rolled_back" style="background:` + releaseColour("v1") + `" data-target="m-1" data-release="v1"`,
			`class="f never" data-target="m-2" data-release=""`,
			`<span class="key" style="background:` + releaseColour("v2") + `" data-release="v2">v2</span>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %s:\n%s", path, want, body)
			}
		}
		if strings.Contains(body, "ZgotmplZ") {
			t.Errorf("%s: a colour was refused by the template:\n%s", path, body)
		}
	}
	if releaseColour("v1") == releaseColour("v2") {
		t.Error("v1 and v2 share a colour")
	}
	metrics := get(t, h, "/metrics").Body.String()
	for _, want := range []string{
		`rollout_target_release_info{boundary="b",release="v2",ring="canary",target="c-1"} 1`,
		`rollout_target_release_age_seconds{boundary="b",ring="main",target="m-1"} 3600`,
		`rollout_target_flagged{boundary="b",flag="neverDeployed",ring="main",target="m-2"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// A large ring is summed up by release and state, and lists only its marked targets.
func TestALargeRingListsItsMarkedTargets(t *testing.T) {
	var view []runs.FleetTarget
	for i := range 500 {
		ft := runs.FleetTarget{Ring: "main", Target: fmt.Sprintf("m-%d", i), Release: &rings.ReleaseRef{Name: "v1"}, State: "verified"}
		if i%100 == 0 {
			ft.State = "failed"
		}
		view = append(view, ft)
	}
	r := newFleetMatrix(view).Rings[0]
	if len(r.Cells) != 5 || r.More != 495 || len(r.Summary) != 2 || r.Summary[0].N != 495 {
		t.Fatalf("large ring: %d listed, %d more, %+v", len(r.Cells), r.More, r.Summary)
	}
}

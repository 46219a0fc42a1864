package runs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// History, a target's history, the event stream and the metrics tell one story: the journal's.
func TestServiceReportsTellWhatRan(t *testing.T) {
	s := newService(t, false)
	v1, _ := s.start("v1")
	s.tf.fail["m-2"] = "v2"
	v2, _ := s.start("v2")
	ctx := context.Background()
	f := s.open()
	defer f.Close()

	lines, err := f.History(ctx)
	if err != nil || len(lines) != 2 || lines[0].Run != v2 || lines[1].Run != v1 {
		t.Fatalf("history, newest first: %+v %v", lines, err)
	}
	if lines[0].Phase != rings.PhaseRolledBack || lines[1].Phase != rings.PhaseSucceeded || lines[0].Release.Name != "v2" {
		t.Fatalf("history phases: %+v", lines)
	}

	h, err := f.TargetHistory(ctx, "m-2")
	if err != nil || h.LastKnownGood == nil || h.LastKnownGood.Name != "v1" {
		t.Fatalf("m-2's last known good: %+v %v", h, err)
	}
	var seen []string
	for _, l := range h.Events {
		seen = append(seen, string(l.Event))
	}
	if !slices.Contains(seen, string(rings.TargetApplyFailed)) || !slices.Contains(seen, string(rings.TargetVerified)) {
		t.Fatalf("m-2's history: %v", seen)
	}
	if _, err := f.TargetHistory(ctx, "nobody"); err == nil {
		t.Fatal("the history of a target neither declared nor journaled")
	}

	all, err := f.EventsAfter(ctx, v2, 0)
	if err != nil || len(all) == 0 || all[len(all)-1].Type != rings.RunFinished {
		t.Fatalf("v2's events end with %v (%v)", all[len(all)-1].Type, err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("events out of order at %d: %d after %d", i, all[i].Seq, all[i-1].Seq)
		}
	}
	if tail, _ := f.EventsAfter(ctx, v2, all[len(all)-3].Seq); len(tail) != 2 {
		t.Fatalf("events after the third last: %d", len(tail))
	}

	m, err := f.Metrics(ctx, time.Now())
	if err != nil || m.Run != v2 || m.Runs[rings.PhaseSucceeded] != 1 || m.Runs[rings.PhaseRolledBack] != 1 || len(m.Targets) != 3 {
		t.Fatalf("metrics: %+v %v", m, err)
	}
}

// The report of a run waiting for approval says so, names what moves it on and what an approver
// signs; the approval text covers the run, ring, release and reason.
func TestServiceReportOfAWaitingRun(t *testing.T) {
	s := newService(t, true)
	id, _ := s.start("v1")
	rep := s.report(id)
	if rep.Phase != rings.PhaseWaiting || rep.WaitingFor != "approval" || !strings.Contains(rep.Next, "rollout approve "+id) || !strings.Contains(rep.Next, "--ring main") ||
		rep.WaitingOn == nil || *rep.WaitingOn != (WaitingOn{Ring: "main", Quorum: 1, Given: 0}) {
		t.Fatalf("phase %s, next %q", rep.Phase, rep.Next)
	}
	if rep.Rings[1].Name != "main" || len(rep.Rings[1].Targets) != 2 || rep.Rings[1].Targets[0].Phase != rings.TPending {
		t.Fatalf("main's report: %+v", rep.Rings[1])
	}
	ctx := context.Background()
	text, err := s.do(func(f *Fleet) (string, error) { return f.ApprovalText(ctx, id, "main", "CAB 12") })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{id, "main", "v1", "CAB 12"} {
		if !strings.Contains(text, want) {
			t.Errorf("the approval text has no %q:\n%s", want, text)
		}
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return f.ApprovalText(ctx, id, "main", "") }); err == nil {
		t.Fatal("an approval text without a reason")
	}
}

// env add writes the target's file and puts it in its ring (a ring selecting by names gets the
// name); expand then brings it to its ring's release. A target that would not validate leaves
// nothing behind.
func TestServiceAddTargetThenExpand(t *testing.T) {
	s := newService(t, false)
	s.start("v1")
	var notes bytes.Buffer
	added, err := AddTarget(s.dir, AddTargetRequest{Boundary: "local-a", Region: "r1", Name: "m-3", Ring: "main"}, &notes)
	if err != nil {
		t.Fatal(err)
	}
	if added.Ring != "main" || added.File != filepath.Join("environments", "local-a", "m-3.yaml") {
		t.Fatalf("added: %+v", added)
	}
	if b, _ := os.ReadFile(filepath.Join(s.dir, "rollout.yaml")); !strings.Contains(string(b), "m-3") {
		t.Fatalf("rollout.yaml does not name m-3:\n%s", b)
	}
	before, _ := os.ReadFile(filepath.Join(s.dir, "rollout.yaml"))
	for _, bad := range []AddTargetRequest{
		{Boundary: "nowhere", Region: "r1", Name: "x-1", Ring: "main"},
		{Boundary: "local-a", Region: "r1", Name: "m-3", Ring: "main"}, // declared already
		{Boundary: "local-a", Region: "r1", Name: "x-2", Ring: "mian"}, // no such ring
		{Boundary: "local-a", Region: "r1", Name: "bad name", Ring: "main"},
		{Boundary: "local-a", Region: "r1", Name: "x-3", Ring: "main", Vars: map[string]string{"instnace_count": "2"}}, // the module declares none
	} {
		if _, err := AddTarget(s.dir, bad, &notes); err == nil {
			t.Errorf("env add %+v was accepted", bad)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(s.dir, "rollout.yaml")); !bytes.Equal(before, after) {
		t.Fatalf("a refused env add changed rollout.yaml:\n%s", after)
	}
	id, err := s.do(func(f *Fleet) (string, error) { return f.Expand(context.Background(), []string{"m-3"}) })
	if err != nil || s.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("expand: %v", err)
	}
	s.runs(map[string]string{"m-3": "v1"})
	if rep := s.report(id); rep.Kind != "expand" {
		t.Fatalf("the expand run's kind: %q", rep.Kind)
	}
}

package temporal

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/temporaltest"
)

// Versioning. testdata/histories holds the histories of workflows that a real Temporal server
// ran with an earlier version of the workflow's code. Each must replay with today's code: a
// change that would break the runs under way when workers are upgraded fails here. Such a
// change must branch on workflow.GetVersion (docs/temporal.md); then record new histories
// (ROLLOUT_RECORD_HISTORIES=1 go test -run TestRecordHistories ./internal/temporal/) next to the
// old ones, which stay.
func TestCommittedHistoriesReplay(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no committed histories in testdata/histories (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("today's workflow code cannot replay %s: %v", file, err)
			}
		})
	}
}

// A changed workflow is caught: a history whose commands today's code would not give fails to
// replay (here: one activity of the history taken out).
func TestAChangedWorkflowFailsToReplay(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if len(files) == 0 {
		t.Skip("no committed histories")
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var h historypb.History
	if err := protojson.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	for i, ev := range h.Events { // drop the first activity the workflow scheduled after loading
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == actWork {
			a.ActivityType.Name = actInbox
			h.Events[i] = ev
			break
		}
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
	if err := r.ReplayWorkflowHistory(nil, &h); err == nil {
		t.Fatal("a history that today's code would not give replayed without error")
	}
}

// TestRecordHistories runs scenarios on a real Temporal server and writes their histories to
// testdata/histories/<scenario>-<date>.json (only with ROLLOUT_RECORD_HISTORIES=1).
func TestRecordHistories(t *testing.T) {
	if os.Getenv("ROLLOUT_RECORD_HISTORIES") != "1" {
		t.Skip("ROLLOUT_RECORD_HISTORIES=1 records new histories")
	}
	srv := temporaltest.Start(t)
	cl := srv.Client()
	for _, sc := range []struct {
		name     string
		approval bool
		failGate string
	}{
		{name: "promote"}, {name: "approval", approval: true}, {name: "gate-fails", failGate: "m2"},
	} {
		m := &memFleet{prov: &scripted{failGate: map[string]bool{sc.failGate: true}}}
		p := plan(sc.approval)
		p.Rings[0].Bake = rings.Duration(time.Second)
		start(t, m, p)
		prefix := "record-" + sc.name
		ws := NewWorkers(cl, prefix, &Activities{Fleet: m, Boundaries: map[string]bool{"a": true, "b": true}, Journal: true}, []string{"a", "b"})
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ws.Run(ctx) }()
		run, err := Start(ctx, cl, prefix, RunInput{RunID: "run-1", Prefix: prefix, PollEvery: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if sc.approval {
			for p, _, _ := Query(ctx, cl, prefix, "run-1"); p.Phase != rings.PhaseWaiting; p, _, _ = Query(ctx, cl, prefix, "run-1") {
				time.Sleep(100 * time.Millisecond)
			}
			m.act(rings.Event{Type: rings.RingApproved, Ring: "main", Actor: "ops"})
			if err := Nudge(ctx, cl, prefix, "run-1"); err != nil {
				t.Fatal(err)
			}
		}
		var phase rings.Phase
		if err := run.Get(ctx, &phase); err != nil {
			t.Fatal(err)
		}
		h := &historypb.History{}
		it := cl.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, ev)
		}
		stop()
		<-done
		b, err := protojson.MarshalOptions{Indent: " "}.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join("testdata", "histories", sc.name+"-"+time.Now().Format("20060102")+".json")
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s, %d history events", file, phase, len(h.Events))
	}
}

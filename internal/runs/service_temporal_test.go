package runs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/temporaltest"
)

// With engine: temporal, start hands the run to its workflow on a real Temporal server (the
// development server): a worker serving the boundary and the journal carries it out, the ring
// waiting for approval waits in the workflow, and an approval journaled by another process moves
// it on. What the report says is what the targets run.
func TestServiceHandsTheRunToTemporal(t *testing.T) {
	srv := temporaltest.Start(t)
	t.Setenv("ROLLOUT_POLL_INTERVAL", "100ms")
	s := newService(t, true)
	b, err := os.ReadFile(filepath.Join(s.dir, "rollout.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("engine: temporal\ntemporal: {address: %q, namespace: default, taskQueuePrefix: svc-%d}\n", srv.Addr, time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(s.dir, "rollout.yaml"), append([]byte(head), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	worker := s.open()
	served := make(chan error, 1)
	go func() { served <- worker.Worker(ctx, []string{"local-a"}, true) }()
	defer func() {
		stop()
		<-served
		worker.Close()
	}()

	id, err := s.do(func(f *Fleet) (string, error) {
		return f.Start(context.Background(), StartRequest{Release: "v1", Detach: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(want rings.Phase) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for s.phase(id) != want {
			if time.Now().After(deadline) {
				t.Fatalf("run %s is %s after a minute, want %s (applies %v)", id, s.phase(id), want, s.tf.applies)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(rings.PhaseWaiting)
	if rep := s.report(id); strings.Contains(rep.Next, "rollout resume") || !strings.Contains(rep.Next, "rollout approve "+id+" --ring main") {
		t.Fatalf("on Temporal an approval is all a waiting ring needs; the report says: %s", rep.Next)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": ""})
	if _, err := s.do(func(f *Fleet) (string, error) {
		return "", f.Approve(context.Background(), id, "main", Act{As: "ana", Reason: "CAB 3"})
	}); err != nil {
		t.Fatal(err)
	}
	wait(rings.PhaseSucceeded)
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1", "m-2": "v1"})
}

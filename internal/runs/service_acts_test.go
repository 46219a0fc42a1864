package runs

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// A driver interrupted mid-apply (its process killed, here its context) leaves the run in the
// journal; resume re-drives what was under way and finishes it, applying each target once.
func TestServiceResumeFinishesAnInterruptedRun(t *testing.T) {
	s := newService(t, false)
	s.tf.hold = "m-1"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.do(func(f *Fleet) (string, error) { return f.Start(ctx, StartRequest{Release: "v1"}) })
		done <- err
	}()
	<-s.tf.started
	cancel()
	if err := <-done; err == nil {
		t.Fatal("an interrupted start reported success")
	}
	lines, err := s.history()
	if err != nil || len(lines) != 1 || rings.Terminal(lines[0].Phase) {
		t.Fatalf("the interrupted run: %+v %v", lines, err)
	}
	id := lines[0].Run
	if rep := s.report(id); rep.WaitingFor != "driver" || !strings.Contains(rep.Next, "rollout resume "+id) {
		t.Fatalf("an undriven run says it waits for %q, next %q", rep.WaitingFor, rep.Next)
	}
	s.tf.hold = ""
	if got, err := s.do(func(f *Fleet) (string, error) { return f.Resume(context.Background(), id, false, Act{As: "ana"}) }); err != nil || got != id {
		t.Fatalf("resume: %s %v", got, err)
	}
	if p := s.phase(id); p != rings.PhaseSucceeded {
		t.Fatalf("resumed run: %s", p)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1", "m-2": "v1"})
	if n := strings.Count(strings.Join(s.tf.applies, " "), "c-1=v1"); n != 1 {
		t.Fatalf("the canary, verified before the interruption, was applied %d times: %v", n, s.tf.applies)
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return f.Resume(context.Background(), id, false, Act{As: "ana"}) }); err == nil {
		t.Fatal("a finished run was resumed")
	}
}

func (s *service) history() ([]RunLine, error) {
	f := s.open()
	defer f.Close()
	return f.History(context.Background())
}

// A gate with no data, where noData says inconclusive, holds its target; an operator's override
// (a verdict with a reason) moves the run on; the override of a gate that is not inconclusive, or
// without a reason, is refused.
func TestServiceOverrideAnInconclusiveGate(t *testing.T) {
	s := newService(t, false)
	s.edit("rings:\n", "gates:\n  health:\n    terraform-output: {output: health}\n    noData: inconclusive\n    interval: 10ms\n    timeout: 1s\n    successCondition: result == \"ok\"\nrings:\n")
	s.edit("targets: {names: [c-1]}\n", "targets: {names: [c-1]}\n    gates: [health]\n")
	id, err := s.start("v1")
	if err != nil || s.phase(id) != rings.PhaseWaiting {
		t.Fatalf("a run whose canary gate has no data: %s %v", s.phase(id), err)
	}
	if rep := s.report(id); rep.Rings[0].Targets[0].Phase != rings.TInconclusive || rep.WaitingFor != "gateVerdict" {
		t.Fatalf("c-1 is %s, the run waits for %q", rep.Rings[0].Targets[0].Phase, rep.WaitingFor)
	}
	ctx := context.Background()
	override := func(target, gate, verdict, reason string) error {
		_, err := s.do(func(f *Fleet) (string, error) {
			return f.Override(ctx, id, target, "", gate, verdict, Act{As: "ana", Reason: reason})
		})
		return err
	}
	for _, bad := range [][4]string{{"c-1", "health", "pass", ""}, {"c-1", "other", "pass", "x"}, {"m-1", "health", "pass", "x"}, {"c-1", "health", "maybe", "x"}} {
		if err := override(bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("override %v was accepted", bad)
		}
	}
	if len(s.tf.applies) != 1 {
		t.Fatalf("a refused override moved the run: %v", s.tf.applies)
	}
	if err := override("c-1", "health", "pass", "dashboards are green; the output is not wired yet"); err != nil {
		t.Fatal(err)
	}
	if p := s.phase(id); p != rings.PhaseSucceeded {
		t.Fatalf("after the override: %s", p)
	}
	s.runs(map[string]string{"m-1": "v1", "m-2": "v1"})
}

// The stop-the-line switch holds every run before its next ring; off, a resume goes on. Turning
// it on needs a reason.
func TestServiceStopTheLineHoldsRuns(t *testing.T) {
	s := newService(t, false)
	ctx := context.Background()
	set := func(on bool, reason string) error {
		_, err := s.do(func(f *Fleet) (string, error) { return "", f.SetSwitch(ctx, on, Act{As: "ana", Reason: reason}) })
		return err
	}
	if err := set(true, ""); err == nil {
		t.Fatal("the line was stopped without a reason")
	}
	if err := set(true, "incident 42"); err != nil {
		t.Fatal(err)
	}
	id, err := s.start("v1")
	if err != nil || s.phase(id) != rings.PhaseBlocked || len(s.tf.applies) != 0 {
		t.Fatalf("start while the line is stopped: %s %v, applies %v", s.phase(id), err, s.tf.applies)
	}
	if rep := s.report(id); rep.Switch == nil || rep.Switch.Reason != "incident 42" || rep.WaitingFor != "freeze" {
		t.Fatalf("the report's switch: %+v, waiting for %q", rep.Switch, rep.WaitingFor)
	}
	if err := set(false, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return f.Resume(ctx, id, false, Act{As: "ana"}) }); err != nil || s.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("resume with the line going: %s %v", s.phase(id), err)
	}
}

// An abort journaled while another process drives the run (the dashboard's) is carried out by
// that driver: the run ends aborted and what it changed is rolled back.
func TestServiceAnAbortRequestedElsewhereIsCarriedOutByTheDriver(t *testing.T) {
	s := newService(t, false)
	s.start("v1")
	s.tf.hold = "m-1"
	done := make(chan error, 1)
	go func() { _, err := s.start("v2"); done <- err }()
	<-s.tf.started
	lines, _ := s.history()
	id := lines[0].Run
	ctx := context.Background()
	if _, err := s.do(func(f *Fleet) (string, error) { return "", f.RequestAbort(ctx, id, true, Act{As: "ana"}) }); err == nil {
		t.Fatal("an abort without a reason was journaled")
	}
	if _, err := s.do(func(f *Fleet) (string, error) {
		d, err := f.Driver(ctx)
		if err != nil || d == nil {
			t.Errorf("the driving process is not reported: %v %v", d, err)
		}
		return "", f.RequestAbort(ctx, id, true, Act{As: "ana", Reason: "customer impact"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.do(func(f *Fleet) (string, error) {
		return "", f.RequestAbort(ctx, id, true, Act{As: "bob", Reason: "again"})
	}); err == nil {
		t.Fatal("a second abort was journaled")
	}
	close(s.tf.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rep := s.report(id)
	if rep.Phase != rings.PhaseAborted || rep.Aborted == nil || rep.Aborted.Actor != "ana" {
		t.Fatalf("phase %s, aborted %+v", rep.Phase, rep.Aborted)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1", "m-2": "v1"})
}

// Wait returns at once on a settled run, and when nothing drives an unsettled one; it gives up
// after its timeout while a driver holds a run that does not settle.
func TestServiceWaitSettlesOrTimesOut(t *testing.T) {
	s := newService(t, true)
	id, _ := s.start("v1")
	ctx := context.Background()
	if _, err := s.do(func(f *Fleet) (string, error) { return "", f.Wait(ctx, id, time.Second, time.Millisecond) }); err != nil {
		t.Fatalf("wait on a run waiting for approval: %v", err)
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return "", f.Approve(ctx, id, "main", Act{As: "ana", Reason: "CAB 7"}) }); err != nil {
		t.Fatal(err)
	}
	s.tf.hold = "m-1"
	done := make(chan error, 1)
	go func() {
		_, err := s.do(func(f *Fleet) (string, error) { return f.Resume(ctx, id, false, Act{As: "ana"}) })
		done <- err
	}()
	<-s.tf.started
	_, err := s.do(func(f *Fleet) (string, error) { return "", f.Wait(ctx, id, 30*time.Millisecond, time.Millisecond) })
	if err == nil || !strings.Contains(err.Error(), "--timeout") {
		t.Fatalf("wait on a driven run that does not settle: %v", err)
	}
	close(s.tf.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A release that failed in a later ring is no target's last known good, even where it passed:
// with rollback: ring, the canary keeps v2 after main failed with it; a later run's abort with
// rollback returns the canary to v1, not to v2.
func TestServiceAFailedReleaseIsNobodysLastKnownGood(t *testing.T) {
	s := newService(t, true)
	s.edit("    rollback: run\n", "    rollback: ring\n")
	ctx := context.Background()
	approve := func(id string) {
		t.Helper()
		if _, err := s.do(func(f *Fleet) (string, error) { return "", f.Approve(ctx, id, "main", Act{As: "ana", Reason: "ok"}) }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.do(func(f *Fleet) (string, error) { return f.Resume(ctx, id, false, Act{As: "ana"}) }); err != nil {
			t.Fatal(err)
		}
	}
	v1, _ := s.start("v1")
	approve(v1)
	s.tf.fail["m-2"] = "v2"
	v2, _ := s.start("v2")
	approve(v2)
	if p := s.phase(v2); p != rings.PhaseRolledBack {
		t.Fatalf("v2: %s", p)
	}
	s.runs(map[string]string{"c-1": "v2", "m-1": "v1", "m-2": "v1"}) // rollback: ring leaves the canary on v2
	// The fleet view says so: the canary runs a release that failed elsewhere.
	view, err := s.fleetView()
	if err != nil || len(view) != 3 {
		t.Fatalf("fleet view: %+v %v", view, err)
	}
	for _, ft := range view {
		flagged := slices.Contains(ft.Flags, "failedElsewhere")
		if ft.Release == nil || flagged != (ft.Target == "c-1") || ft.Run == "" || ft.Since == nil ||
			slices.Contains(ft.Flags, "newerPending") { // v1, the newest good release, is older than the canary's v2
			t.Errorf("%s: runs %v, flags %v, by run %q", ft.Target, ft.Release, ft.Flags, ft.Run)
		}
	}
	v3, _ := s.start("v3")
	if rep := s.report(v3); rep.Rings[0].Targets[0].From == nil || rep.Rings[0].Targets[0].From.Name != "v1" {
		t.Fatalf("v3's canary returns to %+v, want v1 (v2 failed in main)", rep.Rings[0].Targets[0].From)
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return f.Abort(ctx, v3, true, Act{As: "ana", Reason: "bad"}) }); err != nil {
		t.Fatal(err)
	}
	s.runs(map[string]string{"c-1": "v1"})
	h, err := s.targetHistory("c-1")
	if err != nil || h.LastKnownGood == nil || h.LastKnownGood.Name != "v1" {
		t.Fatalf("c-1's last known good: %+v %v", h, err)
	}
}

func (s *service) targetHistory(target string) (*TargetHistory, error) {
	f := s.open()
	defer f.Close()
	return f.TargetHistory(context.Background(), target)
}

func (s *service) fleetView() ([]FleetTarget, error) {
	f := s.open()
	defer f.Close()
	return f.FleetView(context.Background())
}

// A release rolled back is tried again only with Retry and a reason: a new run of the same
// content, journaled as attempt 2 with who and why; once it succeeds the release is good again
// (the canary's last known good, no longer flagged). A release that succeeded, or has no run, is
// not retried.
func TestServiceRetryIsANewAttempt(t *testing.T) {
	s := newService(t, false)
	s.edit("    rollback: run\n", "    rollback: ring\n")
	ctx := context.Background()
	start := func(r StartRequest) (string, error) {
		return s.do(func(f *Fleet) (string, error) { return f.Start(ctx, r) })
	}
	if _, err := s.start("v1"); err != nil {
		t.Fatal(err)
	}
	s.tf.fail["m-2"] = "v2"
	first, _ := s.start("v2")
	if s.phase(first) != rings.PhaseRolledBack {
		t.Fatalf("v2: %s", s.phase(first))
	}
	for _, r := range []StartRequest{{Release: "v2", Retry: true}, {Release: "v1", Retry: true, Reason: "x"}, {Release: "v9", Retry: true, Reason: "x"}} {
		if id, err := start(r); err == nil {
			t.Fatalf("retry %+v: run %s", r, id)
		}
	}
	if again, err := s.start("v2"); err != nil || again != first {
		t.Fatalf("start v2 without --retry: %s %v (want the finished run %s)", again, err, first)
	}
	delete(s.tf.fail, "m-2")
	second, err := start(StartRequest{Release: "v2", Retry: true, Reason: "the gate was a monitoring outage", As: "ana"})
	if err != nil || second == first || s.phase(second) != rings.PhaseSucceeded {
		t.Fatalf("retry: %s %v", second, err)
	}
	rep := s.report(second)
	if rep.Attempt != 2 || rep.RetryOf == nil || rep.RetryOf.Run != first || rep.RetryOf.Actor != "ana" || rep.RetryOf.Reason != "the gate was a monitoring outage" {
		t.Fatalf("the retry's report: attempt %d, %+v", rep.Attempt, rep.RetryOf)
	}
	s.runs(map[string]string{"c-1": "v2", "m-1": "v2", "m-2": "v2"})
	if again, err := s.start("v2"); err != nil || again != second {
		t.Fatalf("start v2 after the retry: %s %v (want %s)", again, err, second)
	}
	h, err := s.targetHistory("c-1")
	if err != nil || h.LastKnownGood == nil || h.LastKnownGood.Name != "v2" {
		t.Fatalf("c-1's last known good after a successful retry: %+v %v", h.LastKnownGood, err)
	}
	view, err := s.fleetView()
	if err != nil || slices.ContainsFunc(view, func(ft FleetTarget) bool { return len(ft.Flags) > 0 }) {
		t.Fatalf("fleet after a successful retry: %+v %v", view, err)
	}
	lines, err := s.history()
	if err != nil || len(lines) != 3 || lines[0].Attempt != 2 || lines[1].Attempt != 0 {
		t.Fatalf("history: %+v %v", lines, err)
	}
}

// Promoting a release into one ring (the hotfix path) is a run of its own, kind promote, with
// who and why; the ring's approval holds; the rings before it are left as they are; a later start
// of the same release is a whole promotion; a rollback of the promote run returns the ring.
func TestServicePromoteIntoOneRing(t *testing.T) {
	s := newService(t, true)
	ctx := context.Background()
	v1, _ := s.start("v1")
	if _, err := s.do(func(f *Fleet) (string, error) { return "", f.Approve(ctx, v1, "main", Act{As: "ana", Reason: "ok"}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.start("v1"); err != nil {
		t.Fatal(err)
	}
	promote := func(r StartRequest) (string, error) {
		return s.do(func(f *Fleet) (string, error) { return f.Start(ctx, r) })
	}
	if _, err := promote(StartRequest{Release: "v2", Ring: "mian", Reason: "x"}); err == nil || !strings.Contains(err.Error(), `did you mean "main"`) {
		t.Fatalf("an unknown ring: %v", err)
	}
	if _, err := promote(StartRequest{Release: "v2", Ring: "main"}); err == nil {
		t.Fatal("a promotion into one ring without a reason")
	}
	id, err := promote(StartRequest{Release: "v2", Ring: "main", Reason: "sev1 hotfix", As: "bob"})
	if err != nil || s.phase(id) != rings.PhaseWaiting {
		t.Fatalf("promote v2 into main: %s %v (main needs approval)", id, err)
	}
	if _, err := s.do(func(f *Fleet) (string, error) {
		return "", f.Approve(ctx, id, "main", Act{As: "ana", Reason: "hotfix ok"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.do(func(f *Fleet) (string, error) { return f.Resume(ctx, id, false, Act{As: "ana"}) }); err != nil || s.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("resume the promotion: %v %s", err, s.phase(id))
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v2", "m-2": "v2"})
	rep := s.report(id)
	if rep.Kind != rings.KindPromote || len(rep.Rings) != 1 || rep.Requested == nil || rep.Requested.Actor != "bob" || rep.Requested.Reason != "sev1 hotfix" {
		t.Fatalf("the promote run's report: kind %s, %d rings, %+v", rep.Kind, len(rep.Rings), rep.Requested)
	}
	back, err := s.do(func(f *Fleet) (string, error) {
		return f.Rollback(ctx, RollbackRequest{Reason: "undo the hotfix", As: "ana"})
	})
	if err != nil || s.phase(back) != rings.PhaseSucceeded {
		t.Fatalf("rollback of the newest promotion: %s %v", back, err)
	}
	s.runs(map[string]string{"c-1": "v1", "m-1": "v1", "m-2": "v1"})
	full, err := s.start("v2")
	if err != nil || full == id || s.report(full).Kind != rings.KindRelease {
		t.Fatalf("start v2 after its promotion into main: %s %v", full, err)
	}
}

// A release run that was rolled back says which targets still run its release (the canary, with
// rollback: ring), as the journal says now, and next returns them; once they are returned, it
// says nothing more.
func TestServiceARolledBackRunNamesTargetsStillRunningIt(t *testing.T) {
	s := newService(t, false)
	s.edit("    rollback: run\n", "    rollback: ring\n")
	ctx := context.Background()
	if _, err := s.start("v1"); err != nil {
		t.Fatal(err)
	}
	s.tf.fail["m-2"] = "v2"
	v2, _ := s.start("v2")
	for _, need := range []ReportNeed{NeedAll, NeedHead, NeedJSON} { // built, then kept
		rep, raw, err := s.open().Report(ctx, v2, need)
		if err != nil || !slices.Equal(rep.StillRunning, []string{"c-1"}) || !strings.Contains(rep.Next, "rollout rollback --run "+v2) {
			t.Fatalf("need %d: still running %v, next %q, %v", need, rep.StillRunning, rep.Next, err)
		}
		if raw != nil && (!strings.Contains(string(raw), `"stillRunning":["c-1"]`) || strings.Count(string(raw), `"next"`) != 1 || !json.Valid(raw)) {
			t.Fatalf("kept JSON: %s", raw)
		}
	}
	if _, err := s.do(func(f *Fleet) (string, error) {
		return f.Rollback(ctx, RollbackRequest{Run: v2, Reason: "return the canary", As: "ana"})
	}); err != nil {
		t.Fatal(err)
	}
	s.runs(map[string]string{"c-1": "v1"})
	if rep := s.report(v2); len(rep.StillRunning) != 0 || rep.Next != "" {
		t.Fatalf("after the canary was returned: %v %q", rep.StillRunning, rep.Next)
	}
}

// A retry needs no --var: it tries the release again with the values it was recorded with; other
// values are another release, refused.
func TestServiceRetryReusesTheReleasesValues(t *testing.T) {
	s := newService(t, false)
	ctx := context.Background()
	start := func(r StartRequest) (string, error) {
		return s.do(func(f *Fleet) (string, error) { return f.Start(ctx, r) })
	}
	if _, err := s.start("v1"); err != nil {
		t.Fatal(err)
	}
	s.tf.fail["m-2"] = "v2"
	first, err := start(StartRequest{Release: "v2", Vars: map[string]any{"extra": "given"}})
	if err != nil || s.phase(first) != rings.PhaseRolledBack {
		t.Fatalf("v2: %s %v", s.phase(first), err)
	}
	delete(s.tf.fail, "m-2")
	if _, err := start(StartRequest{Release: "v2", Vars: map[string]any{"extra": "other"}, Retry: true, Reason: "x"}); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("a retry with other values: %v", err)
	}
	second, err := start(StartRequest{Release: "v2", Retry: true, Reason: "monitoring outage"})
	if err != nil || s.phase(second) != rings.PhaseSucceeded || s.report(second).Release != s.report(first).Release {
		t.Fatalf("a retry without --var: %s %v", second, err)
	}
}

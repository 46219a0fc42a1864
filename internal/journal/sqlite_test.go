package journal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

var ctx = context.Background()

func open(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newRun(t *testing.T, s *SQLite, id, release string) {
	t.Helper()
	if err := s.CreateRun(ctx, Run{ID: id, Kind: rings.KindRelease, Release: rings.ReleaseRef{Name: release, Digest: "d"}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestAppendOrdersAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	newRun(t, s, "r1", "v1")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Append(ctx, rings.Event{RunID: "r1", At: at, Type: rings.RunStarted}, rings.Event{RunID: "r1", At: at, Type: rings.RingStarted, Ring: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, rings.Event{RunID: "r1", At: at, Type: rings.TargetApplied, Target: "t"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	evs, err := s.Events(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Seq != 1 || evs[2].Seq != 3 || evs[2].Type != rings.TargetApplied || !evs[1].At.Equal(at) || evs[0].V != rings.EventVersion {
		t.Fatalf("events after reopen = %+v", evs)
	}
	if err := s.Append(ctx, rings.Event{RunID: "nope", Type: rings.RunStarted}); err == nil {
		t.Fatal("appended to a run that does not exist")
	}
}

// Two handles on one file (two processes, as approve and start are) append concurrently; every
// event lands, numbered without gaps or duplicates.
func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	a, b := open(t, path), open(t, path)
	newRun(t, a, "r1", "v1")
	var wg sync.WaitGroup
	for _, s := range []*SQLite{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := s.Append(ctx, rings.Event{RunID: "r1", At: time.Now(), Type: rings.GateMeasured}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, err := a.Events(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
	if len(evs) != 100 {
		t.Fatalf("%d events, want 100", len(evs))
	}
}

func TestUnknownNewerEventVersionIsRefused(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	newRun(t, s, "r1", "v1")
	if err := s.Append(ctx, rings.Event{V: rings.EventVersion + 1, RunID: "r1", Type: "future.thing"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Events(ctx, "r1"); err == nil {
		t.Fatal("read an event of a newer version without complaint")
	}
}

func TestLease(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	now := time.Now()
	me := Holder{Name: "me@h", Host: "h", PID: 100, Doing: "start --release v1"}
	// A live process on this host: this test's own pid.
	live := Holder{Name: "other@h", Host: "h", PID: os.Getpid(), Doing: "start --release v0"}
	if err := s.AcquireLease(ctx, live, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	err := s.AcquireLease(ctx, me, now, time.Minute)
	var held *LeaseHeldError
	if !errors.As(err, &held) || held.Holder.Name != "other@h" {
		t.Fatalf("want LeaseHeldError naming other@h, got %v", err)
	}
	// Expired: taken over, and the old holder finds out when it renews.
	if err := s.AcquireLease(ctx, me, now.Add(2*time.Minute), time.Minute); err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	if err := s.RenewLease(ctx, live, now, time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renewal by the old holder: %v, want ErrLeaseLost", err)
	}
	// Re-acquiring one's own lease is fine; releasing frees it.
	if err := s.AcquireLease(ctx, me, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, me); err != nil {
		t.Fatal(err)
	}
	if err := s.AcquireLease(ctx, live, now, time.Minute); err != nil {
		t.Fatalf("released lease not free: %v", err)
	}
}

func TestLeaseOfDeadProcessOnThisHostIsTakenOver(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := Holder{Name: "crashed@h", Host: "h", PID: cmd.Process.Pid}
	now := time.Now()
	if err := s.AcquireLease(ctx, dead, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.AcquireLease(ctx, Holder{Name: "me@h", Host: "h", PID: os.Getpid()}, now, time.Minute); err != nil {
		t.Fatalf("lease of a dead process not taken over: %v", err)
	}
	// Another host's holder is never judged by a local pid.
	other := Holder{Name: "x@elsewhere", Host: "elsewhere", PID: cmd.Process.Pid}
	s2 := open(t, filepath.Join(t.TempDir(), "state.db"))
	_ = s2.AcquireLease(ctx, other, now, time.Hour)
	var held *LeaseHeldError
	if err := s2.AcquireLease(ctx, Holder{Host: "h", PID: os.Getpid()}, now, time.Minute); !errors.As(err, &held) {
		t.Fatalf("took a live lease of another host: %v", err)
	}
}

func TestReleasesAreImmutable(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	r := Release{Name: "v1", Digest: "aaa", Vars: map[string]any{"x": "1"}, Created: time.Now()}
	if err := s.RecordRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRelease(ctx, r); err != nil {
		t.Fatalf("recording the same release again: %v", err)
	}
	var changed *ReleaseChangedError
	r2 := r
	r2.Digest = "bbb"
	if err := s.RecordRelease(ctx, r2); !errors.As(err, &changed) || changed.What != "module tree" {
		t.Fatalf("other digest: %v", err)
	}
	r3 := r
	r3.Vars = map[string]any{"x": "2"}
	if err := s.RecordRelease(ctx, r3); !errors.As(err, &changed) || changed.What != "variables" {
		t.Fatalf("other vars: %v", err)
	}
	got, err := s.Release(ctx, "v1")
	if err != nil || got.Digest != "aaa" || got.Vars["x"] != "1" {
		t.Fatalf("release = %+v, %v", got, err)
	}
	if _, err := s.Release(ctx, "v9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing release: %v", err)
	}
}

func TestLastKnownGoodAndCurrent(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	newRun(t, s, "r1", "v1")
	newRun(t, s, "r2", "v2")
	v1, v2 := &rings.ReleaseRef{Name: "v1", Digest: "d"}, &rings.ReleaseRef{Name: "v2", Digest: "d"}
	_ = s.Append(ctx,
		rings.Event{RunID: "r1", Type: rings.TargetApplied, Target: "t", Release: v1},
		rings.Event{RunID: "r1", Type: rings.TargetVerified, Target: "t", Release: v1},
		rings.Event{RunID: "r2", Type: rings.TargetApplied, Target: "t", Release: v2},
		rings.Event{RunID: "r2", Type: rings.TargetGateFailed, Target: "t"},
	)
	lkg, _ := s.LastKnownGood(ctx, "t", "")
	cur, _ := s.Current(ctx, "t")
	if lkg == nil || lkg.Name != "v1" || cur == nil || cur.Name != "v2" {
		t.Fatalf("lkg %v current %v, want v1 and v2", lkg, cur)
	}
	_ = s.Append(ctx, rings.Event{RunID: "r2", Type: rings.TargetVerified, Target: "t", Release: v2})
	if lkg, _ = s.LastKnownGood(ctx, "t", "v2"); lkg == nil || lkg.Name != "v1" {
		t.Fatalf("lkg excluding v2 = %v, want v1", lkg)
	}
	if lkg, _ = s.LastKnownGood(ctx, "other", ""); lkg != nil {
		t.Fatalf("lkg of a target never deployed = %v", lkg)
	}
}

func TestRunLookup(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	newRun(t, s, "v1-abc", "v1")
	newRun(t, s, "v1-abd", "v1b")
	if r, err := s.Run(ctx, "v1-abc"); err != nil || r.ID != "v1-abc" {
		t.Fatalf("exact: %v %v", r, err)
	}
	if _, err := s.Run(ctx, "v1-ab"); err == nil {
		t.Fatal("an ambiguous prefix matched")
	}
	if _, err := s.Run(ctx, "zzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing run: %v", err)
	}
	if r, ok, _ := s.RunForRelease(ctx, "v1b"); !ok || r.ID != "v1-abd" {
		t.Fatalf("run for release v1b: %v %v", r, ok)
	}
}

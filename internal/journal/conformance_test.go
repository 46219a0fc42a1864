package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/pgtest"
)

var ctx = context.Background()

// backend opens handles on one fresh store: each call of the returned function is another
// process's handle on the same journal.
type backend struct {
	name string
	open func(t *testing.T) func() *DB
}

func backends(t *testing.T) []backend {
	out := []backend{{"sqlite", func(t *testing.T) func() *DB {
		path := filepath.Join(t.TempDir(), "state.db")
		return func() *DB {
			s, err := OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}}}
	admin := pgtest.URL(t)
	if admin == "" {
		t.Log("PostgreSQL: skipped (ROLLOUT_TEST_POSTGRES not set)")
		return out
	}
	return append(out, backend{"postgres", func(t *testing.T) func() *DB {
		url := pgtest.FreshDatabase(t, admin)
		return func() *DB {
			s, err := OpenPostgres(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}})
}

// each runs a test against every backend.
func each(t *testing.T, fn func(t *testing.T, open func() *DB)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { fn(t, b.open(t)) })
	}
}

func newRun(t *testing.T, s *DB, id, release string) {
	t.Helper()
	if err := s.CreateRun(ctx, Run{ID: id, Kind: rings.KindRelease, Release: rings.ReleaseRef{Name: release, Digest: "d"}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestAppendOrdersAndReopens(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		newRun(t, s, "r1", "v1")
		at := time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)
		if err := s.Append(ctx, rings.Event{RunID: "r1", At: at, Type: rings.RunStarted}, rings.Event{RunID: "r1", At: at, Type: rings.RingStarted, Ring: "a"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Append(ctx, rings.Event{RunID: "r1", At: at, Type: rings.TargetApplied, Target: "t"}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		evs, err := open().Events(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 3 || evs[0].Seq != 1 || evs[2].Seq != 3 || evs[2].Type != rings.TargetApplied || !evs[1].At.Equal(at) || evs[0].V != rings.EventVersion {
			t.Fatalf("events after reopen = %+v", evs)
		}
		if err := open().Append(ctx, rings.Event{RunID: "nope", Type: rings.RunStarted}); err == nil {
			t.Fatal("appended to a run that does not exist")
		}
	})
}

// Two handles (two processes, as approve and start are) append concurrently; every event lands,
// numbered without gaps or duplicates.
func TestConcurrentAppends(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		a, b := open(), open()
		newRun(t, a, "r1", "v1")
		var wg sync.WaitGroup
		for _, s := range []*DB{a, b} {
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
	})
}

func TestUnknownNewerEventVersionIsRefused(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		newRun(t, s, "r1", "v1")
		if err := s.Append(ctx, rings.Event{V: rings.EventVersion + 1, RunID: "r1", Type: "future.thing"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Events(ctx, "r1"); err == nil {
			t.Fatal("read an event of a newer version without complaint")
		}
	})
}

func TestLeaseRules(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s, other := open(), open()
		now := time.Now()
		me := Holder{Name: "me@h", Host: "h", PID: 100, Doing: "start --release v1"}
		live := Holder{Name: "other@h", Host: "h", PID: os.Getpid(), Doing: "start --release v0"} // this test: alive
		if err := other.AcquireLease(ctx, live, now, time.Minute); err != nil {
			t.Fatal(err)
		}
		var held *LeaseHeldError
		if err := s.AcquireLease(ctx, me, now, time.Minute); !errors.As(err, &held) || held.Holder.Name != "other@h" || held.Holder.Doing != "start --release v0" {
			t.Fatalf("want LeaseHeldError naming other@h, got %v", err)
		}
		if l, _ := s.Lease(ctx); l == nil || l.Holder.Name != "other@h" {
			t.Fatalf("lease = %+v", l)
		}
		// Expired: taken over, and the old holder finds out when it renews.
		if err := s.AcquireLease(ctx, me, now.Add(2*time.Minute), time.Minute); err != nil {
			t.Fatalf("expired lease not taken over: %v", err)
		}
		if err := other.RenewLease(ctx, now, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("renewal by the old holder: %v, want ErrLeaseLost", err)
		}
		if err := s.RenewLease(ctx, now.Add(2*time.Minute), time.Hour); err != nil {
			t.Fatal(err)
		}
		// Released: free for anyone at once.
		if err := s.ReleaseLease(ctx); err != nil {
			t.Fatal(err)
		}
		if l, _ := s.Lease(ctx); l != nil {
			t.Fatalf("released lease still held: %+v", l)
		}
		if err := other.AcquireLease(ctx, live, now, time.Minute); err != nil {
			t.Fatalf("released lease not free: %v", err)
		}
	})
}

func TestLeaseOfDeadProcessOnThisHostIsTakenOver(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := open().AcquireLease(ctx, Holder{Name: "crashed@h", Host: "h", PID: cmd.Process.Pid}, now, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := open().AcquireLease(ctx, Holder{Name: "me@h", Host: "h", PID: os.Getpid()}, now, time.Minute); err != nil {
			t.Fatalf("lease of a dead process not taken over: %v", err)
		}
		// A holder on another host is never judged by a local pid.
		if err := open().AcquireLease(ctx, Holder{Name: "x@far", Host: "far", PID: cmd.Process.Pid}, now.Add(2*time.Minute), time.Hour); err != nil {
			t.Fatal(err)
		}
		var held *LeaseHeldError
		if err := open().AcquireLease(ctx, Holder{Host: "h", PID: os.Getpid()}, now.Add(2*time.Minute), time.Minute); !errors.As(err, &held) {
			t.Fatalf("took a live lease of another host: %v", err)
		}
	})
}

// Exactly one of many processes racing for a free lease gets it.
func TestLeaseRace(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		var wg sync.WaitGroup
		var won atomic.Int64
		now := time.Now()
		for i := 0; i < 6; i++ {
			s := open()
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each "process" is on its own host, so none is judged dead by pid.
				if err := s.AcquireLease(ctx, Holder{Name: fmt.Sprint(i), Host: fmt.Sprint("h", i), PID: 1}, now, time.Minute); err == nil {
					won.Add(1)
				} else if !errors.As(err, new(*LeaseHeldError)) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d processes got the lease", won.Load())
		}
	})
}

// A holder that lost its lease (paused past expiry, partitioned) cannot write once another took
// over; a process without the lease (an approval) still can.
func TestFencing(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		old, successor, approver := open(), open(), open()
		now := time.Now()
		if err := old.AcquireLease(ctx, Holder{Name: "old", Host: "a", PID: 1}, now, time.Second); err != nil {
			t.Fatal(err)
		}
		newRun(t, old, "r1", "v1")
		if err := old.Append(ctx, rings.Event{RunID: "r1", Type: rings.RunStarted}); err != nil {
			t.Fatalf("holder's own write refused: %v", err)
		}
		if err := successor.AcquireLease(ctx, Holder{Name: "new", Host: "b", PID: 1}, now.Add(time.Minute), time.Minute); err != nil {
			t.Fatal(err)
		}
		for what, write := range map[string]func() error{
			"append":         func() error { return old.Append(ctx, rings.Event{RunID: "r1", Type: rings.TargetApplied}) },
			"create run":     func() error { return old.CreateRun(ctx, Run{ID: "r2", Kind: "release", Created: now}) },
			"record release": func() error { return old.RecordRelease(ctx, Release{Name: "v9", Digest: "x", Created: now}) },
			"keep bundle":    func() error { return old.PutBundle(ctx, "x", []byte("b")) },
		} {
			if err := write(); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s by the fenced-off holder: %v, want ErrLeaseLost", what, err)
			}
		}
		if err := successor.Append(ctx, rings.Event{RunID: "r1", Type: rings.RunResumed}); err != nil {
			t.Fatalf("successor's write: %v", err)
		}
		if err := approver.Append(ctx, rings.Event{RunID: "r1", Type: rings.RingApproved, Actor: "lead"}); err != nil {
			t.Fatalf("an unfenced write (approval): %v", err)
		}
		evs, _ := successor.Events(ctx, "r1")
		if len(evs) != 3 || evs[1].Type != rings.RunResumed {
			t.Fatalf("journal = %+v", evs)
		}
	})
}

func TestReleasesAreImmutable(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		r := Release{Name: "v1", Digest: "aaa", Module: "m1", Vars: map[string]any{"x": "1"}, Created: time.Now()}
		if err := s.RecordRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordRelease(ctx, r); err != nil {
			t.Fatalf("recording the same release again: %v", err)
		}
		var changed *ReleaseChangedError
		r2 := r
		r2.Digest, r2.Module = "bbb", "m2"
		if err := s.RecordRelease(ctx, r2); !errors.As(err, &changed) || changed.What != "module tree" {
			t.Fatalf("other module: %v", err)
		}
		r4 := r
		r4.Digest = "ccc"
		if err := s.RecordRelease(ctx, r4); !errors.As(err, &changed) || changed.What != "digest" {
			t.Fatalf("other digest: %v", err)
		}
		r3 := r
		r3.Vars = map[string]any{"x": "2"}
		if err := s.RecordRelease(ctx, r3); !errors.As(err, &changed) || changed.What != "variables" {
			t.Fatalf("other vars: %v", err)
		}
		got, err := s.Release(ctx, "v1")
		if err != nil || got.Digest != "aaa" || got.Module != "m1" || got.Vars["x"] != "1" || got.Ref().ModuleDigest() != "m1" {
			t.Fatalf("release = %+v, %v", got, err)
		}
		if _, err := s.Release(ctx, "v9"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing release: %v", err)
		}
		if all, _ := s.Releases(ctx); len(all) != 1 {
			t.Fatalf("releases = %+v", all)
		}
	})
}

func TestBundles(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		data := []byte("\x1f\x8b binary \x00 data")
		if err := s.PutBundle(ctx, "d1", data); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBundle(ctx, "d1", data); err != nil {
			t.Fatalf("keeping a bundle twice: %v", err)
		}
		got, err := open().Bundle(ctx, "d1")
		if err != nil || string(got) != string(data) {
			t.Fatalf("bundle = %q, %v", got, err)
		}
		if _, err := s.Bundle(ctx, "d2"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing bundle: %v", err)
		}
		if ds, _ := s.BundleDigests(ctx); len(ds) != 1 || ds[0] != "d1" {
			t.Fatalf("digests = %v", ds)
		}
	})
}

func TestLastKnownGoodAndCurrent(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		newRun(t, s, "r1", "v1")
		newRun(t, s, "r2", "v2")
		v1, v2 := &rings.ReleaseRef{Name: "v1", Digest: "d"}, &rings.ReleaseRef{Name: "v2", Digest: "d"}
		if err := s.Append(ctx,
			rings.Event{RunID: "r1", Type: rings.TargetApplied, Target: "t", Release: v1},
			rings.Event{RunID: "r1", Type: rings.TargetVerified, Target: "t", Release: v1},
			rings.Event{RunID: "r2", Type: rings.TargetApplied, Target: "t", Release: v2},
			rings.Event{RunID: "r2", Type: rings.TargetGateFailed, Target: "t"},
		); err != nil {
			t.Fatal(err)
		}
		lkg, _ := LastKnownGood(ctx, s, "t", "", nil)
		cur, _ := Current(ctx, s, "t")
		if lkg == nil || lkg.Name != "v1" || cur == nil || cur.Name != "v2" {
			t.Fatalf("lkg %v current %v, want v1 and v2", lkg, cur)
		}
		_ = s.Append(ctx, rings.Event{RunID: "r2", Type: rings.TargetVerified, Target: "t", Release: v2})
		if lkg, _ = LastKnownGood(ctx, s, "t", "v2", nil); lkg == nil || lkg.Name != "v1" {
			t.Fatalf("lkg excluding v2 = %v, want v1", lkg)
		}
		if lkg, _ = LastKnownGood(ctx, s, "other", "", nil); lkg != nil {
			t.Fatalf("lkg of a target never deployed = %v", lkg)
		}
	})
}

// EventsOfType reads the events of some types across runs, in the order appended; Head moves with
// every append of any run.
func TestEventsOfTypeAndHead(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		if h, err := s.Head(ctx); err != nil || h != 0 {
			t.Fatalf("head of an empty journal: %d %v", h, err)
		}
		newRun(t, s, "r1", "v1")
		newRun(t, s, "r2", "v2")
		_ = s.Append(ctx, rings.Event{RunID: "r1", Type: rings.TargetApplied, Target: "a"}, rings.Event{RunID: "r1", Type: rings.GateMeasured, Target: "a"})
		h1, _ := s.Head(ctx)
		_ = s.Append(ctx, rings.Event{RunID: "r2", Type: rings.TargetVerified, Target: "b"})
		h2, _ := s.Head(ctx)
		var got []string
		err := s.EventsOfType(ctx, func(ev rings.Event) error {
			got = append(got, ev.RunID+"/"+ev.Target+"/"+string(ev.Type))
			return nil
		}, rings.TargetVerified, rings.TargetApplied)
		if err != nil || strings.Join(got, " ") != "r1/a/target.applied r2/b/target.verified" || h1 == 0 || h2 <= h1 {
			t.Fatalf("events of type: %v %v; heads %d %d", got, err, h1, h2)
		}
	})
}

func TestRunLookup(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		newRun(t, s, "v1-abc", "v1")
		newRun(t, s, "v1-abd", "v1b")
		if r, err := s.Run(ctx, "v1-abc"); err != nil || r.ID != "v1-abc" {
			t.Fatalf("exact: %v %v", r, err)
		}
		if _, err := s.Run(ctx, "v1-ab"); err == nil {
			t.Fatal("an ambiguous prefix matched")
		}
		if r, err := s.Run(ctx, "v1-abd"[:5]+"d"); err != nil || r.ID != "v1-abd" {
			t.Fatalf("unique prefix: %v %v", r, err)
		}
		if _, err := s.Run(ctx, "zzz"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing run: %v", err)
		}
		if r, ok, _ := s.RunForRelease(ctx, "v1b"); !ok || r.ID != "v1-abd" {
			t.Fatalf("run for release v1b: %v %v", r, ok)
		}
		if rs, _ := s.Runs(ctx); len(rs) != 2 || rs[0].ID != "v1-abd" && !rs[0].Created.After(rs[1].Created) {
			t.Fatalf("runs newest first: %+v", rs)
		}
	})
}

// A large history: replay order, per-target queries and streaming all events stay exact.
func TestLargeHistory(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		newRun(t, s, "big", "v1")
		const n, batch = 5000, 250
		for i := 0; i < n; i += batch {
			evs := make([]rings.Event, batch)
			for j := range evs {
				evs[j] = rings.Event{RunID: "big", Type: rings.GateMeasured, Target: fmt.Sprintf("t-%d", (i+j)%50), At: time.Unix(int64(i+j), 0)}
			}
			if err := s.Append(ctx, evs...); err != nil {
				t.Fatal(err)
			}
		}
		evs, err := s.Events(ctx, "big")
		if err != nil || len(evs) != n {
			t.Fatalf("%d events, %v", len(evs), err)
		}
		for i, ev := range evs {
			if ev.Seq != int64(i+1) || ev.At.Unix() != int64(i) {
				t.Fatalf("event %d: seq %d at %d", i, ev.Seq, ev.At.Unix())
			}
		}
		if te, _ := s.TargetEvents(ctx, "t-7"); len(te) != n/50 {
			t.Fatalf("t-7 has %d events", len(te))
		}
		count := 0
		if err := s.AllEvents(ctx, func(rings.Event) error { count++; return nil }); err != nil || count != n {
			t.Fatalf("all events: %d, %v", count, err)
		}
		if have, want, err := s.SchemaVersion(ctx); err != nil || have != want || have < 1 {
			t.Fatalf("schema version %d of %d: %v", have, want, err)
		}
	})
}

// Export, import into the other backend, export again: the same bytes (lossless both ways).
func TestExportImportRoundTrip(t *testing.T) {
	bs := backends(t)
	src := bs[0].open(t)()
	newRun(t, src, "v1-a", "v1")
	newRun(t, src, "v2-b", "v2")
	at := time.Date(2026, 5, 1, 10, 0, 0, 120000000, time.UTC) // trailing zeros in the fraction
	v1 := &rings.ReleaseRef{Name: "v1", Digest: "d1"}
	_ = src.RecordRelease(ctx, Release{Name: "v1", Digest: "d1", Vars: map[string]any{"n": 3.0, "s": "x"}, Created: at})
	_ = src.PutBundle(ctx, "d1", []byte{0x1f, 0x8b, 0, 1, 2, 255})
	passed := true
	for i := 0; i < 1200; i++ { // more than one import batch
		run := []string{"v1-a", "v2-b"}[i%2]
		if err := src.Append(ctx, rings.Event{RunID: run, At: at.Add(time.Duration(i)), Type: rings.GateMeasured, Target: "t", Gate: "g", Passed: &passed, Release: v1, Message: "ünïcode"}); err != nil {
			t.Fatal(err)
		}
	}
	var first strings.Builder
	if err := Export(ctx, src, &first); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		t.Run("into "+b.name, func(t *testing.T) {
			dst := b.open(t)()
			if n, err := Import(ctx, dst, strings.NewReader(first.String())); err != nil || n != 1+2+1+1+1200 {
				t.Fatalf("import: %d records, %v", n, err)
			}
			var again strings.Builder
			if err := Export(ctx, dst, &again); err != nil {
				t.Fatal(err)
			}
			if again.String() != first.String() {
				t.Fatalf("export after import differs (%d vs %d bytes)", again.Len(), first.Len())
			}
			if _, err := Import(ctx, dst, strings.NewReader(first.String())); !errors.Is(err, ErrNotEmpty) {
				t.Fatalf("import into a non-empty journal: %v", err)
			}
		})
	}
}

// Processes that open a new journal at once apply each migration once, and all of them work.
func TestConcurrentFirstUse(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		var wg sync.WaitGroup
		stores := make([]*DB, 6)
		for i := range stores {
			wg.Add(1)
			go func() { defer wg.Done(); stores[i] = open() }()
		}
		wg.Wait()
		for i, s := range stores {
			if have, want, err := s.SchemaVersion(ctx); err != nil || have != want {
				t.Fatalf("store %d: schema %d of %d: %v", i, have, want, err)
			}
		}
		newRun(t, stores[0], "r1", "v1")
		if _, err := stores[5].Run(ctx, "r1"); err != nil {
			t.Fatal(err)
		}
	})
}

// A run's journal read back from the store replays to the state the engine had live.
func TestReplayFromStore(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		newRun(t, s, "r1", "v2")
		v1, v2 := rings.ReleaseRef{Name: "v1", Digest: "d1"}, rings.ReleaseRef{Name: "v2", Digest: "d2"}
		plan := &rings.Plan{Kind: rings.KindRelease, Release: v2, Rings: []rings.RingPlan{
			{Name: "a", MaxParallel: 2, Rollback: "ring", Bake: rings.Duration(time.Minute), Targets: []rings.TargetPlan{{Name: "a1", Release: v2, From: &v1}, {Name: "a2", Release: v2, From: &v1}}},
			{Name: "b", MaxParallel: 1, Rollback: "run", Targets: []rings.TargetPlan{{Name: "b1", Release: v2, From: &v1}}},
		}}
		at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		evs := []rings.Event{{Type: rings.RunStarted, Plan: plan}, {Type: rings.TargetApplied, Target: "a1", Outputs: map[string]any{"n": 1.0}},
			{Type: rings.TargetApplied, Target: "a2"}, {Type: rings.TargetVerified, Target: "a1"}, {Type: rings.TargetVerified, Target: "a2"},
			{Type: rings.RingBaked, Ring: "a"}, {Type: rings.TargetApplied, Target: "b1"}, {Type: rings.TargetGateFailed, Target: "b1", Gate: "g", Message: "503"},
			{Type: rings.TargetRolledBack, Target: "b1", Release: &v1}}
		live := &rings.State{}
		for i := range evs {
			evs[i].RunID, evs[i].V, evs[i].At = "r1", rings.EventVersion, at.Add(time.Duration(i)*time.Second)
			rings.Decide(live, evs[i])
			if err := s.Append(ctx, evs[i]); err != nil {
				t.Fatal(err)
			}
		}
		back, err := s.Events(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		replayed := rings.Replay(back)
		if replayed.Phase != live.Phase || live.Phase != rings.PhaseRollingBack || len(replayed.InFlight()) != len(live.InFlight()) {
			t.Fatalf("replayed phase %s, live %s; in flight %d vs %d", replayed.Phase, live.Phase, len(replayed.InFlight()), len(live.InFlight()))
		}
		for name, lt := range live.Targets {
			if rt := replayed.Targets[name]; rt.Phase != lt.Phase || (rt.Current == nil) != (lt.Current == nil) || rt.Current != nil && *rt.Current != *lt.Current {
				t.Fatalf("%s: replayed %+v, live %+v", name, rt, lt)
			}
		}
	})
}

func TestKeptReports(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s := open()
		newRun(t, s, "r1", "v1")
		if n, err := s.LastSeq(ctx, "r1"); err != nil || n != 0 {
			t.Fatalf("last seq of an empty run: %d, %v", n, err)
		}
		_ = s.Append(ctx, rings.Event{RunID: "r1", Type: rings.RunStarted}, rings.Event{RunID: "r1", Type: rings.RunFinished})
		if n, _ := s.LastSeq(ctx, "r1"); n != 2 {
			t.Fatalf("last seq = %d, want 2", n)
		}
		if _, _, _, err := s.LoadReport(ctx, "r1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("no report yet: %v", err)
		}
		for _, data := range []string{`{"a":1}`, `{"a":2}`} {
			if err := s.SaveReport(ctx, "r1", 2, 1, []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
		seq, v, data, err := open().LoadReport(ctx, "r1")
		if err != nil || seq != 2 || v != 1 || string(data) != `{"a":2}` {
			t.Fatalf("report = %d %d %s, %v", seq, v, data, err)
		}
	})
}

func TestEventsAfterAndTheSwitch(t *testing.T) {
	each(t, func(t *testing.T, open func() *DB) {
		s, other := open(), open()
		newRun(t, s, "r1", "v1")
		for _, typ := range []rings.EventType{rings.RunStarted, rings.RingStarted, rings.RunPaused} {
			if err := s.Append(ctx, rings.Event{RunID: "r1", At: time.Now(), Type: typ}); err != nil {
				t.Fatal(err)
			}
		}
		evs, err := other.EventsAfter(ctx, "r1", 1)
		if err != nil || len(evs) != 2 || evs[0].Seq != 2 || evs[1].Type != rings.RunPaused {
			t.Fatalf("EventsAfter(1) = %+v, %v", evs, err)
		}
		if sw, err := s.Switch(ctx); sw != nil || err != nil {
			t.Fatalf("a new journal's switch: %+v %v", sw, err)
		}
		at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
		if err := other.SetSwitch(ctx, true, rings.Switch{Actor: "sre", Reason: "incident 42", At: at}); err != nil {
			t.Fatal(err)
		}
		if sw, err := s.Switch(ctx); err != nil || sw == nil || sw.Actor != "sre" || sw.Reason != "incident 42" || !sw.At.Equal(at) {
			t.Fatalf("switch on: %+v %v", sw, err)
		}
		if err := s.SetSwitch(ctx, false, rings.Switch{Actor: "sre", Reason: "resolved", At: at.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if sw, err := other.Switch(ctx); sw != nil || err != nil {
			t.Fatalf("switch off: %+v %v", sw, err)
		}
	})
}

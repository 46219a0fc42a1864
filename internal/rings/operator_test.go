package rings

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPauseFinishesWhatIsUnderWayThenHolds(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 3), MaxParallel: 1},
		RingPlan{Name: "wide", Targets: targets("w", 1), MaxParallel: 1}))
	if cmds := h.send(Event{Type: RunPaused, Actor: "oncall", Message: "investigating"}); len(cmds) != 0 || h.s.Phase != PhaseRunning {
		t.Fatalf("pause with t-1 applying: %+v, phase %s (want running until t-1 settles)", cmds, h.s.Phase)
	}
	if got := kinds(h.pass("t-1"), CmdApply); len(got) != 0 {
		t.Fatalf("a paused run started %v", got)
	}
	if h.s.Phase != PhasePaused || h.s.Paused.Actor != "oncall" {
		t.Fatalf("phase %s paused %+v, want paused by oncall", h.s.Phase, h.s.Paused)
	}
	if got := kinds(h.send(Event{Type: RunUnpaused, Actor: "oncall"}), CmdApply); !slices.Equal(got, []string{"t-2"}) {
		t.Fatalf("after unpause: applies %v, want t-2", got)
	}
	// Paused between rings: the next ring does not start until unpaused.
	h.send(Event{Type: RunPaused, Actor: "oncall"})
	h.pass("t-2")
	if h.s.Phase != PhasePaused || h.s.Rings[0].Phase != RApplying {
		t.Fatalf("phase %s ring %s", h.s.Phase, h.s.Rings[0].Phase)
	}
	h.send(Event{Type: RunUnpaused})
	if cmds := h.pass("t-3"); !slices.Equal(kinds(cmds, CmdApply), []string{"w-1"}) {
		t.Fatalf("next ring: %+v", cmds)
	}
}

func TestFailureWhilePausedStillRollsBack(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 2), MaxParallel: 2}))
	h.send(Event{Type: RunPaused, Actor: "a"})
	h.send(Event{Type: TargetApplied, Target: "t-1"})
	cmds := h.send(Event{Type: TargetGateFailed, Target: "t-1", Gate: "g"})
	if h.s.Phase != PhaseRollingBack {
		t.Fatalf("a failure beyond the budget while paused: phase %s, cmds %+v", h.s.Phase, cmds)
	}
}

func TestAbortStopsAndWaitsForTerraformUnderWay(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 3), MaxParallel: 2, Gates: []string{"g"}}))
	h.send(Event{Type: TargetApplied, Target: "t-1"}) // t-1 gating, t-2 applying
	cmds := h.send(Event{Type: RunAbortRequested, Actor: "oncall", Message: "bad release"})
	if got := kinds(cmds, CmdCancelGates); !slices.Equal(got, []string{"r"}) || h.s.Phase != PhaseAborting {
		t.Fatalf("abort: %+v phase %s", cmds, h.s.Phase)
	}
	h.send(Event{Type: TargetGateCancelled, Target: "t-1"})
	cmds = h.send(Event{Type: TargetApplied, Target: "t-2"})
	if finished(cmds) != PhaseAborted || len(kinds(cmds, CmdGate)) != 0 {
		t.Fatalf("after the last apply settled: %+v", cmds)
	}
	if h.s.Targets["t-3"].Phase != TPending || h.s.Targets["t-2"].Phase != TUnverified {
		t.Fatalf("t-2 %s t-3 %s", h.s.Targets["t-2"].Phase, h.s.Targets["t-3"].Phase)
	}
	if !strings.Contains(h.s.Reason, "aborted by oncall: bad release") {
		t.Fatalf("reason %q", h.s.Reason)
	}
}

func TestAbortWithRollbackUndoesTheWholeRun(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "a", Targets: targets("a", 1), MaxParallel: 1, Rollback: "target"},
		RingPlan{Name: "b", Targets: targets("b", 2), MaxParallel: 1, Approval: true}))
	h.pass("a-1")
	if h.s.Phase != PhaseWaiting {
		t.Fatalf("phase %s", h.s.Phase)
	}
	cmds := h.send(Event{Type: RunAbortRequested, Actor: "oncall", Rollback: true, Message: "no"})
	if got := kinds(cmds, CmdRollback); !slices.Equal(got, []string{"a-1"}) {
		t.Fatalf("abort --rollback while waiting for ring b: %+v", cmds)
	}
	// An abort is an operator's act, not a failed gate: the run ends aborted (exit 1), not
	// rolled_back (exit 2), and says what was undone.
	if finished(h.send(Event{Type: TargetRolledBack, Target: "a-1"})) != PhaseAborted || !strings.Contains(h.s.Reason, "rolled back") {
		t.Fatalf("phase %s (%s)", h.s.Phase, h.s.Reason)
	}
}

func TestFreezeWindowBlocksARingAndBreakGlassOpensIt(t *testing.T) {
	// t0 is Friday 2026-11-27 12:00 UTC; the window denies Fridays 09:00-17:00.
	fz := &Freeze{Deny: []Window{{Name: "friday", Days: []string{"fri"}, Start: "09:00", End: "17:00"}}}
	h, cmds := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 1), MaxParallel: 1, Freeze: fz}))
	if h.s.Phase != PhaseBlocked || len(kinds(cmds, CmdApply)) != 0 || h.s.Rings[0].Phase != RFrozen {
		t.Fatalf("phase %s cmds %+v", h.s.Phase, cmds)
	}
	if !strings.Contains(h.s.Rings[0].Reason, "friday") {
		t.Fatalf("reason %q", h.s.Rings[0].Reason)
	}
	// Resumed later on the same day: still frozen, and not recorded twice.
	if cmds := h.send(Event{Type: RunResumed, At: t0.Add(time.Hour)}); len(cmds) != 0 || h.s.Phase != PhaseBlocked {
		t.Fatalf("resumed inside the window: %+v", cmds)
	}
	cmds = h.send(Event{Type: FreezeBroken, Actor: "vp", Message: "sev1 fix"})
	if got := kinds(cmds, CmdApply); !slices.Equal(got, []string{"t-1"}) || h.s.BreakGlass.Actor != "vp" {
		t.Fatalf("break glass: %+v", cmds)
	}
}

func TestFreezeWaitModeAndWindowEnd(t *testing.T) {
	fz := &Freeze{Wait: true, Deny: []Window{{Zone: "Europe/Berlin", Days: []string{"fri"}, Start: "09:00", End: "18:00"}}}
	h, cmds := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 1), MaxParallel: 1, Freeze: fz}))
	var until time.Time
	for _, c := range cmds {
		if c.Kind == CmdAwaitWindow {
			until = c.Until
		}
	}
	if want := time.Date(2026, 11, 27, 17, 0, 0, 0, time.UTC); !until.Equal(want) { // 18:00 CET
		t.Fatalf("await until %v, want %v (%+v)", until, want, cmds)
	}
	if got := kinds(h.send(Event{Type: RingWindowCheck, Ring: "r", At: until}), CmdApply); !slices.Equal(got, []string{"t-1"}) {
		t.Fatalf("window opened: applies %v", got)
	}
}

func TestStopTheLineSwitch(t *testing.T) {
	p := fleet(RingPlan{Name: "a", Targets: targets("a", 1), MaxParallel: 1}, RingPlan{Name: "b", Targets: targets("b", 1), MaxParallel: 1})
	h := &harness{t: t, s: &State{}, now: t0}
	h.send(Event{Type: RunStarted, RunID: "r1", Plan: p})
	h.send(Event{Type: FreezeChanged, Switch: &Switch{Actor: "sre", Reason: "incident"}})
	h.pass("a-1")
	if h.s.Phase != PhaseBlocked || !strings.Contains(h.s.Rings[1].Reason, "stop-the-line") {
		t.Fatalf("phase %s ring b %s %q", h.s.Phase, h.s.Rings[1].Phase, h.s.Rings[1].Reason)
	}
	if got := kinds(h.send(Event{Type: FreezeChanged}), CmdApply); !slices.Equal(got, []string{"b-1"}) {
		t.Fatalf("switch off: applies %v", got)
	}
	// A manual rollback run is never frozen.
	rb := &harness{t: t, s: &State{}, now: t0}
	rp := fleet(RingPlan{Name: "a", Targets: targets("a", 1), MaxParallel: 1})
	rp.Kind = KindRollback
	if got := kinds(rb.send(Event{Type: RunStarted, RunID: "r2", Plan: rp, Switch: &Switch{Actor: "sre"}}), CmdApply); len(got) != 1 {
		t.Fatalf("rollback run frozen: %v", got)
	}
}

func TestDriftCheckBlocksUntilAcknowledged(t *testing.T) {
	h, cmds := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 2), MaxParallel: 2, DriftCheck: DriftBlock}))
	if got := kinds(cmds, CmdDriftCheck); !slices.Equal(got, []string{"r"}) || len(kinds(cmds, CmdApply)) != 0 {
		t.Fatalf("want a drift check before any apply: %+v", cmds)
	}
	cmds = h.send(Event{Type: RingDriftChecked, Ring: "r", Drift: Drifted, Targets: []string{"t-2"}, Message: "t-2: x drifted"})
	if h.s.Phase != PhaseWaiting || h.s.Rings[0].Phase != RDrifted || len(kinds(cmds, CmdApply)) != 0 {
		t.Fatalf("drift found: phase %s ring %s cmds %+v", h.s.Phase, h.s.Rings[0].Phase, cmds)
	}
	// Resumed without an acknowledgement: checked again (it may have been reconciled).
	if got := kinds(h.send(Event{Type: RunResumed}), CmdDriftCheck); !slices.Equal(got, []string{"r"}) || h.s.Phase != PhaseRunning {
		t.Fatalf("resume of a drifted ring: %v phase %s", got, h.s.Phase)
	}
	h.send(Event{Type: RingDriftChecked, Ring: "r", Drift: Drifted, Targets: []string{"t-2"}, Message: "still"})
	cmds = h.send(Event{Type: DriftAcknowledged, Ring: "r", Actor: "oncall", Message: "known manual fix"})
	if got := kinds(cmds, CmdApply); len(got) != 2 {
		t.Fatalf("acknowledged: %+v", cmds)
	}
	// warn records and goes on; a clean check goes on.
	w, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 1), MaxParallel: 1, DriftCheck: DriftWarn}))
	if got := kinds(w.send(Event{Type: RingDriftChecked, Ring: "r", Drift: Drifted, Targets: []string{"t-1"}}), CmdApply); len(got) != 1 {
		t.Fatalf("warn blocked: %v", got)
	}
}

func TestFreezeCalendar(t *testing.T) {
	ber := "Europe/Berlin"
	cases := []struct {
		name string
		f    Freeze
		at   time.Time
		why  string
		till time.Time
	}{
		{"outside", Freeze{Deny: []Window{{Days: []string{"sat", "sun"}, Start: "00:00", End: "24:00"}}}, t0, "", time.Time{}},
		{"weekend", Freeze{Deny: []Window{{Name: "weekend", Days: []string{"sat", "sun"}, Start: "00:00", End: "24:00"}}},
			time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), "weekend", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"overnight", Freeze{Deny: []Window{{Days: []string{"thu"}, Start: "22:00", End: "06:00"}}},
			time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), "thu", time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)},
		{"dated", Freeze{Deny: []Window{{Name: "year-end", From: time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)}}},
			time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC), "year-end", time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)},
		{"allow", Freeze{Allow: [][]Window{{{Zone: ber, Days: []string{"mon", "tue", "wed", "thu"}, Start: "09:00", End: "16:00"}}}},
			t0, "outside the allow windows", time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)},
		{"deny then allow", Freeze{Deny: []Window{{Name: "d", Days: []string{"mon"}, Start: "00:00", End: "12:00"}}, Allow: [][]Window{{{Days: []string{"mon", "tue"}, Start: "10:00", End: "16:00"}}}},
			time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC), "d", time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)},
		{"two allow calendars", Freeze{Allow: [][]Window{{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "00:00", End: "24:00"}}, {{Days: []string{"wed"}, Start: "10:00", End: "12:00"}}}},
			time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC), "outside the allow windows", time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		why, till := c.f.Blocked(c.at)
		if c.why == "" && why != "" || !strings.Contains(why, c.why) || !till.Equal(c.till) {
			t.Errorf("%s: Blocked(%v) = %q, %v; want %q, %v", c.name, c.at, why, till, c.why, c.till)
		}
	}
}

// after is what an inbox reading the journal from after seq gets.
func (m *memStore) after(seq int64) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, ev := range m.events {
		if ev.Seq > seq {
			out = append(out, ev)
		}
	}
	return out
}

// A running executor sees an operator's pause journaled by another process, finishes what is
// under way, and returns with the run paused.
func TestExecutorPicksUpAPauseFromTheJournal(t *testing.T) {
	store := &memStore{}
	prov := newFake(time.Hour)
	prov.block = make(chan struct{})
	prov.started = make(chan string, 8)
	var once sync.Once
	x := &Executor{Store: store, Provisioner: prov, Gates: passGates{}, PollEvery: 5 * time.Millisecond,
		Inbox: func(ctx context.Context, s *State, after int64) ([]Event, error) {
			return store.after(after), nil
		}}
	go func() {
		<-prov.started // t-1 is applying: an operator pauses from elsewhere, then t-1 finishes
		once.Do(func() {
			_ = store.Append(context.Background(), Event{V: EventVersion, RunID: "r1", At: time.Now(), Type: RunPaused, Actor: "oncall"})
		})
		time.Sleep(50 * time.Millisecond) // let a few polls see it before the apply ends
		close(prov.block)
	}()
	s := &State{RunID: "r1"}
	p := fleet(RingPlan{Name: "r", Targets: targets("t", 3), MaxParallel: 1})
	done := make(chan error)
	go func() { done <- x.Run(context.Background(), s, Event{Type: RunStarted, Plan: p}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("executor did not return")
	}
	if s.Phase != PhasePaused || s.Targets["t-2"].Phase != TPending || s.Targets["t-1"].Phase != TVerified {
		t.Fatalf("phase %s t-1 %s t-2 %s", s.Phase, s.Targets["t-1"].Phase, s.Targets["t-2"].Phase)
	}
	if n := store.types()[RunPaused]; n != 1 {
		t.Fatalf("run.paused journaled %d times, want once (by the operator, never again by the executor)", n)
	}
}

// The inbox reads only what others wrote: the executor moves its read position past its own
// events as it journals them, so a poll of a run of 10,000 targets does not read back (and decode)
// the thousands of events it wrote since the last one. An operator's event still arrives.
func TestInboxReadsPastOwnEvents(t *testing.T) {
	store := &memStore{}
	prov := newFake(10 * time.Millisecond)
	var mu sync.Mutex
	returned := map[EventType]int{}
	x := &Executor{Store: store, Provisioner: prov, Gates: passGates{}, PollEvery: time.Millisecond,
		Inbox: func(ctx context.Context, s *State, after int64) ([]Event, error) {
			out := store.after(after)
			store.mu.Lock()
			defer store.mu.Unlock()
			mu.Lock()
			for _, ev := range out {
				returned[ev.Type]++
			}
			if len(store.events) > 6 && returned[RingApproved] == 0 && len(out) == 0 {
				// Another process (an operator's stray approval) appends between polls.
				store.events = append(store.events, Event{V: EventVersion, RunID: "r1", Seq: int64(len(store.events) + 1), At: time.Now(), Type: RingApproved, Ring: "r", Actor: "oncall"})
			}
			mu.Unlock()
			return out, nil
		}}
	s := &State{RunID: "r1"}
	if err := x.Run(context.Background(), s, Event{Type: RunStarted, Plan: fleet(RingPlan{Name: "r", Targets: targets("t", 6), MaxParallel: 1})}); err != nil {
		t.Fatal(err)
	}
	if s.Phase != PhaseSucceeded {
		t.Fatalf("phase %s", s.Phase)
	}
	mu.Lock()
	defer mu.Unlock()
	if returned[RingApproved] != 1 {
		t.Fatalf("the operator's event was read %d times, want once", returned[RingApproved])
	}
	// Past the other process's event, the executor's own events are read back at most in the one
	// poll that reads across it; never in every poll.
	if own := returned[TargetApplied] + returned[TargetApplying] + returned[TargetVerified]; own > 3 {
		t.Fatalf("the inbox returned the executor's own events %d times: %v", own, returned)
	}
}

// A frozen ring whose calendar says wait holds the executor until the window ends, then starts.
func TestExecutorWaitsForTheWindowToOpen(t *testing.T) {
	store := &memStore{}
	now := time.Now()
	fz := &Freeze{Wait: true, Deny: []Window{{Name: "short", From: now.Add(-time.Hour), To: now.Add(300 * time.Millisecond)}}}
	x := &Executor{Store: store, Provisioner: newFake(0), Gates: passGates{}}
	s := &State{RunID: "r1"}
	if err := x.Run(context.Background(), s, Event{Type: RunStarted, Plan: fleet(RingPlan{Name: "r", Targets: targets("t", 1), MaxParallel: 1, Freeze: fz})}); err != nil {
		t.Fatal(err)
	}
	if s.Phase != PhaseSucceeded {
		t.Fatalf("phase %s", s.Phase)
	}
	types := store.types()
	if types[RingFrozen] != 1 || types[RingWindowCheck] != 1 || types[RingStarted] != 1 {
		t.Fatalf("journal: %v", types)
	}
	var frozeAt, startedAt time.Time
	for _, ev := range store.events {
		switch ev.Type {
		case RingFrozen:
			frozeAt = ev.At
		case RingStarted:
			startedAt = ev.At
		}
	}
	if startedAt.Before(fz.Deny[0].To) || frozeAt.After(fz.Deny[0].To) {
		t.Fatalf("frozen at %v, started at %v; the window ended at %v", frozeAt, startedAt, fz.Deny[0].To)
	}
}

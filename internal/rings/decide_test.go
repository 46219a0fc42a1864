package rings

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func rel(name string) ReleaseRef { return ReleaseRef{Name: name, Digest: "d-" + name} }

// fleet builds a plan: rings of n targets each, all on v2, with v1 as last known good.
func fleet(rp ...RingPlan) *Plan {
	p := &Plan{Kind: KindRelease, Release: rel("v2")}
	for _, r := range rp {
		var ts []TargetPlan
		for _, tp := range r.Targets {
			from := rel("v1")
			tp.Release, tp.From = rel("v2"), &from
			ts = append(ts, tp)
		}
		r.Targets = ts
		if r.Rollback == "" {
			r.Rollback = "ring"
		}
		p.Rings = append(p.Rings, r)
	}
	return p
}

func targets(prefix string, n int) []TargetPlan {
	var out []TargetPlan
	for i := 1; i <= n; i++ {
		out = append(out, TargetPlan{Name: fmt.Sprintf("%s-%d", prefix, i), Boundary: "b"})
	}
	return out
}

// harness drives Decide with events and remembers every command it returned.
type harness struct {
	t      *testing.T
	s      *State
	events []Event
	now    time.Time
}

func start(t *testing.T, p *Plan) (*harness, []Command) {
	h := &harness{t: t, s: &State{}, now: t0}
	return h, h.send(Event{Type: RunStarted, RunID: "r1", Plan: p})
}

func (h *harness) send(ev Event) []Command {
	h.now = h.now.Add(time.Second)
	if ev.At.IsZero() {
		ev.At = h.now
	}
	h.events = append(h.events, ev)
	return Decide(h.s, ev)
}

func kinds(cmds []Command, k CommandKind) []string {
	var out []string
	for _, c := range cmds {
		if c.Kind == k {
			name := c.Target
			if name == "" {
				name = c.Ring
			}
			out = append(out, name)
		}
	}
	return out
}

func finished(cmds []Command) Phase {
	for _, c := range cmds {
		if c.Kind == CmdFinish {
			return c.Phase
		}
	}
	return ""
}

func (h *harness) pass(target string) []Command {
	cmds := h.send(Event{Type: TargetApplied, Target: target})
	if g := kinds(cmds, CmdGate); !slices.Equal(g, []string{target}) {
		h.t.Fatalf("applied %s: want a gate command for it, got %+v", target, cmds)
	}
	return h.send(Event{Type: TargetVerified, Target: target})
}

func TestMaxParallelBoundsApplies(t *testing.T) {
	h, cmds := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 5), MaxParallel: 2}))
	if got := kinds(cmds, CmdApply); !slices.Equal(got, []string{"t-1", "t-2"}) {
		t.Fatalf("first applies = %v, want t-1 t-2", got)
	}
	// Applied is not done: gates still run, so no new apply starts yet.
	if got := kinds(h.send(Event{Type: TargetApplied, Target: "t-1"}), CmdApply); len(got) != 0 {
		t.Fatalf("apply started while t-1 is still gating: %v", got)
	}
	if got := kinds(h.send(Event{Type: TargetVerified, Target: "t-1"}), CmdApply); !slices.Equal(got, []string{"t-3"}) {
		t.Fatalf("after t-1 verified: applies = %v, want t-3", got)
	}
}

func TestRingsInOrderAndSuccess(t *testing.T) {
	h, cmds := start(t, fleet(
		RingPlan{Name: "canary", Targets: targets("c", 1), MaxParallel: 1},
		RingPlan{Name: "wide", Targets: targets("w", 2), MaxParallel: 5},
	))
	if got := kinds(cmds, CmdApply); !slices.Equal(got, []string{"c-1"}) {
		t.Fatalf("first ring applies = %v", got)
	}
	cmds = h.pass("c-1")
	if got := kinds(cmds, CmdApply); !slices.Equal(got, []string{"w-1", "w-2"}) {
		t.Fatalf("next ring did not start after canary passed: %+v", cmds)
	}
	h.pass("w-1")
	cmds = h.pass("w-2")
	if finished(cmds) != PhaseSucceeded || h.s.Phase != PhaseSucceeded {
		t.Fatalf("run did not succeed: %+v phase %s", cmds, h.s.Phase)
	}
	if c := h.s.Targets["w-2"].Current; c == nil || c.Name != "v2" {
		t.Fatalf("w-2 current = %v, want v2", c)
	}
}

func TestBakeHoldsPromotionUntilRingGatesPass(t *testing.T) {
	h, _ := start(t, fleet(
		RingPlan{Name: "canary", Targets: targets("c", 1), MaxParallel: 1, Bake: Duration(10 * time.Minute), RingGates: []string{"errors"}},
		RingPlan{Name: "wide", Targets: targets("w", 1), MaxParallel: 1},
	))
	h.send(Event{Type: TargetApplied, Target: "c-1"})
	cmds := h.send(Event{Type: TargetVerified, Target: "c-1"})
	var bake *Command
	for i := range cmds {
		if cmds[i].Kind == CmdBake {
			bake = &cmds[i]
		}
	}
	if bake == nil || len(kinds(cmds, CmdApply)) != 0 {
		t.Fatalf("want a bake and no apply, got %+v", cmds)
	}
	if want := h.now.Add(10 * time.Minute); !bake.Until.Equal(want) || !slices.Equal(bake.Gates, []string{"errors"}) {
		t.Fatalf("bake = %+v, want until %s with gate errors", bake, want)
	}
	if got := kinds(h.send(Event{Type: RingBaked, Ring: "canary"}), CmdApply); !slices.Equal(got, []string{"w-1"}) {
		t.Fatalf("after the bake: applies = %v, want w-1", got)
	}
}

// An operator ends a bake early: the ring passes now, its bake is cancelled and the next ring
// starts; on a ring that is not baking, the act changes nothing.
func TestABakeEndedEarlyPassesTheRing(t *testing.T) {
	h, _ := start(t, fleet(
		RingPlan{Name: "canary", Targets: targets("c", 1), MaxParallel: 1, Bake: Duration(time.Hour)},
		RingPlan{Name: "wide", Targets: targets("w", 1), MaxParallel: 1},
	))
	if cmds := h.send(Event{Type: RingBakeEnded, Ring: "canary", Actor: "ana", Message: "early"}); len(cmds) != 0 {
		t.Fatalf("a bake ended before it began: %+v", cmds)
	}
	h.pass("c-1")
	cmds := h.send(Event{Type: RingBakeEnded, Ring: "canary", Actor: "ana", Message: "metrics clean for 20m"})
	if len(kinds(cmds, CmdCancelBake)) != 1 || !slices.Equal(kinds(cmds, CmdApply), []string{"w-1"}) {
		t.Fatalf("after the bake was ended: %+v", cmds)
	}
	if r := h.s.RingNamed("canary"); r.Phase != RPassed {
		t.Fatalf("canary: %s", r.Phase)
	}
}

func TestRingGateFailureDuringBakeRollsBackRing(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 2), MaxParallel: 2, Bake: Duration(time.Minute), Rollback: "target"}))
	h.pass("t-1")
	h.pass("t-2")
	cmds := h.send(Event{Type: RingGateFailed, Ring: "r", Gate: "errors", Message: "too many"})
	// A ring gate judges the whole ring: even scope "target" returns every target of the ring.
	if got := kinds(cmds, CmdRollback); !slices.Equal(got, []string{"t-1", "t-2"}) {
		t.Fatalf("rollbacks = %v, want t-1 t-2", got)
	}
	for _, c := range cmds {
		if c.Kind == CmdRollback && c.Release.Name != "v1" {
			t.Fatalf("rollback to %s, want v1", c.Release.Name)
		}
	}
}

func TestFailureBudget(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 4), MaxParallel: 1, MaxFailures: 1}))
	h.send(Event{Type: TargetApplied, Target: "t-1"})
	cmds := h.send(Event{Type: TargetGateFailed, Target: "t-1", Gate: "healthz", Message: "503"})
	// Within budget: the ring goes on, and the failed target alone returns to last known good.
	if got := kinds(cmds, CmdRollback); !slices.Equal(got, []string{"t-1"}) {
		t.Fatalf("within budget: rollbacks = %v, want t-1", got)
	}
	if h.s.Phase != PhaseRunning {
		t.Fatalf("within budget the run halted: %s", h.s.Phase)
	}
	// The rolling-back target holds the ring's only slot.
	if got := kinds(cmds, CmdApply); len(got) != 0 {
		t.Fatalf("apply started beyond maxParallel: %v", got)
	}
	if got := kinds(h.send(Event{Type: TargetRolledBack, Target: "t-1", Release: &ReleaseRef{Name: "v1", Digest: "d-v1"}}), CmdApply); !slices.Equal(got, []string{"t-2"}) {
		t.Fatalf("after t-1 rolled back: applies = %v, want t-2", got)
	}
	cmds = h.send(Event{Type: TargetApplyFailed, Target: "t-2", Message: "quota"})
	if h.s.Phase != PhaseRollingBack || h.s.Rings[0].Phase != RHalted {
		t.Fatalf("second failure > maxFailures 1 did not halt: run %s ring %s", h.s.Phase, h.s.Rings[0].Phase)
	}
	if got := kinds(cmds, CmdApply); len(got) != 0 {
		t.Fatalf("a halted ring started %v", got)
	}
	// Scope ring: every target the run changed in the ring; t-1 is back already, t-3/t-4 untouched.
	if got := kinds(cmds, CmdRollback); !slices.Equal(got, []string{"t-2"}) {
		t.Fatalf("rollbacks = %v, want t-2", got)
	}
	if want := "failed targets (2) > maxFailures (1)"; !strings.Contains(h.s.Reason, want) {
		t.Fatalf("reason %q lacks %q", h.s.Reason, want)
	}
	cmds = h.send(Event{Type: TargetRolledBack, Target: "t-2", Release: &ReleaseRef{Name: "v1", Digest: "d-v1"}})
	if finished(cmds) != PhaseRolledBack {
		t.Fatalf("want outcome rolled_back, got %+v", cmds)
	}
}

func TestHaltWaitsForInFlightAndCancelsGates(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 3), MaxParallel: 3}))
	h.send(Event{Type: TargetApplied, Target: "t-1"})
	h.send(Event{Type: TargetApplied, Target: "t-2"})
	cmds := h.send(Event{Type: TargetGateFailed, Target: "t-1", Gate: "g", Message: "bad"})
	var cancel []string
	for _, c := range cmds {
		if c.Kind == CmdCancelGates {
			cancel = c.Targets
		}
	}
	if !slices.Equal(cancel, []string{"t-2"}) {
		t.Fatalf("cancel gates of %v, want t-2", cancel)
	}
	if got := kinds(cmds, CmdRollback); len(got) != 0 {
		t.Fatalf("rolled back while t-3 is still applying: %v", got)
	}
	h.send(Event{Type: TargetGateCancelled, Target: "t-2"})
	// t-3's apply finishes after the halt: no gates for it, it joins the rollback.
	cmds = h.send(Event{Type: TargetApplied, Target: "t-3"})
	if len(kinds(cmds, CmdGate)) != 0 {
		t.Fatalf("gates started in a halted ring: %+v", cmds)
	}
	if got := kinds(cmds, CmdRollback); !slices.Equal(got, []string{"t-1", "t-2", "t-3"}) {
		t.Fatalf("rollbacks = %v, want all three", got)
	}
}

func TestRollbackScopes(t *testing.T) {
	three := func(scope string) *Plan {
		return fleet(
			RingPlan{Name: "a", Targets: targets("a", 2), MaxParallel: 2},
			RingPlan{Name: "b", Targets: targets("b", 2), MaxParallel: 2},
			RingPlan{Name: "c", Targets: targets("c", 2), MaxParallel: 1, Rollback: scope},
		)
	}
	for _, tc := range []struct {
		scope string
		want  [][]string // rollback commands, batch by batch
	}{
		{"target", [][]string{{"c-1"}}},
		{"ring", [][]string{{"c-1"}, {"c-2"}}}, // maxParallel 1: one at a time, in declaration order
		{"run", [][]string{{"c-1"}, {"c-2"}, {"b-1", "b-2"}, {"a-1", "a-2"}}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			h, _ := start(t, three(tc.scope))
			for _, n := range []string{"a-1", "a-2", "b-1", "b-2", "c-1"} {
				h.pass(n)
			}
			h.send(Event{Type: TargetApplied, Target: "c-2"})
			cmds := h.send(Event{Type: TargetGateFailed, Target: "c-2", Gate: "g", Message: "bad"})
			if tc.scope == "target" {
				tc.want[0] = []string{"c-2"}
			}
			var got [][]string
			for step := 0; step < 10; step++ {
				batch := kinds(cmds, CmdRollback)
				if len(batch) == 0 {
					break
				}
				got = append(got, batch)
				for _, n := range batch {
					r := ReleaseRef{Name: "v1", Digest: "d-v1"}
					cmds = h.send(Event{Type: TargetRolledBack, Target: n, Release: &r})
					if n != batch[len(batch)-1] && len(kinds(cmds, CmdRollback)) > 0 {
						t.Fatalf("next batch started before %v finished", batch)
					}
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("rollback order = %v, want %v", got, tc.want)
			}
			if finished(cmds) != PhaseRolledBack {
				t.Fatalf("outcome: %+v", cmds)
			}
			if tc.scope == "target" && h.s.Targets["c-1"].Phase != TVerified {
				t.Fatalf("scope target rolled back a healthy target")
			}
		})
	}
}

func TestFirstDeploymentHasNothingToRollBackTo(t *testing.T) {
	p := fleet(RingPlan{Name: "r", Targets: targets("t", 1), MaxParallel: 1})
	p.Rings[0].Targets[0].From = nil
	h, _ := start(t, p)
	h.send(Event{Type: TargetApplied, Target: "t-1"})
	cmds := h.send(Event{Type: TargetGateFailed, Target: "t-1", Gate: "g", Message: "bad"})
	if len(kinds(cmds, CmdRollback)) != 0 || finished(cmds) != PhaseRolledBack {
		t.Fatalf("want no rollback command and the run finished, got %+v", cmds)
	}
	if h.s.Targets["t-1"].Phase != TRollbackSkipped {
		t.Fatalf("phase = %s", h.s.Targets["t-1"].Phase)
	}
}

func TestRollbackFailureEndsInRollbackFailed(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 1), MaxParallel: 1}))
	h.send(Event{Type: TargetApplied, Target: "t-1"})
	h.send(Event{Type: TargetGateFailed, Target: "t-1", Gate: "g", Message: "bad"})
	cmds := h.send(Event{Type: TargetRollbackFailed, Target: "t-1", Message: "apply: denied"})
	if finished(cmds) != PhaseRollbackFailed {
		t.Fatalf("outcome: %+v", cmds)
	}
}

func TestApprovalWaitsThenContinues(t *testing.T) {
	p := fleet(RingPlan{Name: "canary", Targets: targets("c", 1), MaxParallel: 1},
		RingPlan{Name: "gov", Targets: targets("g", 1), MaxParallel: 1, Approval: true, Approvers: []string{"lead"}, Quorum: 1})
	h, _ := start(t, p)
	cmds := h.pass("c-1")
	if len(kinds(cmds, CmdAwaitApproval)) != 1 || h.s.Phase != PhaseWaiting {
		t.Fatalf("want a wait for approval, got %+v (phase %s)", cmds, h.s.Phase)
	}
	if got := h.send(Event{Type: RingApproved, Ring: "gov", Actor: "intern"}); len(kinds(got, CmdApply)) != 0 {
		t.Fatalf("an approver not on the list unblocked the ring: %+v", got)
	}
	if got := kinds(h.send(Event{Type: RingApproved, Ring: "gov", Actor: "lead"}), CmdApply); !slices.Equal(got, []string{"g-1"}) {
		t.Fatalf("after approval: applies = %v", got)
	}
}

// Replay of any prefix of a journal gives the same state as the live run, and InFlight names
// exactly the work that was under way at that point.
func TestReplayEveryPrefix(t *testing.T) {
	h, _ := start(t, fleet(
		RingPlan{Name: "a", Targets: targets("a", 3), MaxParallel: 2, Bake: Duration(time.Minute)},
		RingPlan{Name: "b", Targets: targets("b", 2), MaxParallel: 2, MaxFailures: 0},
	))
	h.pass("a-1")
	h.send(Event{Type: TargetApplied, Target: "a-2"})
	h.send(Event{Type: TargetVerified, Target: "a-2"})
	h.pass("a-3")
	h.send(Event{Type: RingBaked, Ring: "a"})
	h.send(Event{Type: TargetApplied, Target: "b-1"})
	h.send(Event{Type: TargetGateFailed, Target: "b-1", Gate: "g", Message: "bad"})
	h.send(Event{Type: TargetApplied, Target: "b-2"})
	r := ReleaseRef{Name: "v1", Digest: "d-v1"}
	h.send(Event{Type: TargetRolledBack, Target: "b-1", Release: &r})
	h.send(Event{Type: TargetRolledBack, Target: "b-2", Release: &r})
	if h.s.Phase != PhaseRolledBack {
		t.Fatalf("setup: phase %s", h.s.Phase)
	}
	for n := 1; n <= len(h.events); n++ {
		live := &State{}
		var last []Command
		for _, ev := range h.events[:n] {
			last = Decide(live, ev)
		}
		again := Replay(h.events[:n])
		if !reflect.DeepEqual(live, again) {
			t.Fatalf("prefix %d: replay differs from the live state", n)
		}
		// Everything the last event started must be in flight after a replay.
		inflight := map[string]bool{}
		for _, c := range again.InFlight() {
			inflight[string(c.Kind)+c.Target+c.Ring] = true
		}
		for _, c := range last {
			switch c.Kind {
			case CmdApply, CmdGate, CmdRollback, CmdBake:
				if !inflight[string(c.Kind)+c.Target+c.Ring] {
					t.Fatalf("prefix %d: %s %s%s started but not re-driven after replay", n, c.Kind, c.Target, c.Ring)
				}
			}
		}
	}
}

func TestResumedBakeKeepsItsDeadline(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "a", Targets: targets("a", 1), MaxParallel: 1, Bake: Duration(time.Hour)}))
	h.pass("a-1")
	want := h.now.Add(time.Hour)
	s := Replay(h.events)
	cmds := s.InFlight()
	if len(cmds) != 1 || cmds[0].Kind != CmdBake || !cmds[0].Until.Equal(want) {
		t.Fatalf("in flight after replay = %+v, want the bake until %s", cmds, want)
	}
}

func TestManualRollbackRunReportsFailureWithoutUndoing(t *testing.T) {
	p := &Plan{Kind: KindRollback, Release: rel("v2"), Rings: []RingPlan{{Name: "r", MaxParallel: 2, MaxFailures: 2, Rollback: RollbackNone,
		Targets: []TargetPlan{{Name: "t-1", Release: rel("v1")}, {Name: "t-2", Release: rel("v1")}}}}}
	h, _ := start(t, p)
	h.pass("t-1")
	h.send(Event{Type: TargetApplied, Target: "t-2"})
	cmds := h.send(Event{Type: TargetGateFailed, Target: "t-2", Gate: "g", Message: "bad"})
	if len(kinds(cmds, CmdRollback)) != 0 || finished(cmds) != PhaseRollbackFailed {
		t.Fatalf("want no undo and outcome rollback_failed, got %+v", cmds)
	}
}

func TestStaleEventsAreIgnored(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 1), MaxParallel: 1}))
	h.pass("t-1") // run succeeded
	before := *h.s
	if cmds := h.send(Event{Type: TargetGateFailed, Target: "t-1"}); len(cmds) != 0 || h.s.Phase != before.Phase {
		t.Fatalf("an event after the end changed the run: %+v", cmds)
	}
	if cmds := Decide(&State{}, Event{Type: TargetApplied, Target: "x"}); cmds != nil {
		t.Fatalf("an event before run.started did something: %+v", cmds)
	}
}

func TestRefusedBoundaryIsNotRolledBack(t *testing.T) {
	h, _ := start(t, fleet(RingPlan{Name: "r", Targets: targets("t", 2), MaxParallel: 2}))
	h.pass("t-1")
	cmds := h.send(Event{Type: TargetApplyFailed, Target: "t-2", Untouched: true, Message: "boundary b refused: wrong partition"})
	if got := kinds(cmds, CmdRollback); !slices.Equal(got, []string{"t-1"}) {
		t.Fatalf("want only the applied target rolled back, got %v (%+v)", got, cmds)
	}
	if tt := h.s.Targets["t-2"]; tt.Phase != TRollbackSkipped || !strings.Contains(tt.Message, "Terraform never ran there (boundary b refused") {
		t.Fatalf("t-2: %s %q", tt.Phase, tt.Message)
	}
}

func TestInconclusiveGatePausesTheRingForAHuman(t *testing.T) {
	p := fleet(RingPlan{Name: "r", Targets: targets("t", 3), MaxParallel: 1, Gates: []string{"g"}}, RingPlan{Name: "next", Targets: targets("n", 1), MaxParallel: 1})
	h, _ := start(t, p)
	h.send(Event{Type: TargetApplied, Target: "t-1"})
	cmds := h.send(Event{Type: TargetGateInconclusive, Target: "t-1", Gate: "g", Message: "no data"})
	if len(kinds(cmds, CmdApply)) != 0 || h.s.Phase != PhaseWaiting || h.s.Targets["t-1"].Phase != TInconclusive {
		t.Fatalf("want the ring paused and the run waiting, got %s, %+v", h.s.Phase, cmds)
	}
	if len(cmds) != 1 || cmds[0].Type != RingPaused || !strings.Contains(cmds[0].Message, "rollout gate override r1 --target t-1 --gate g --verdict pass|fail") {
		t.Fatalf("want a ring.paused record naming the way out, got %+v", cmds)
	}
	// Measure again: the gate runs again, nothing else starts.
	cmds = h.send(Event{Type: GatesRemeasure, Actor: "oncall"})
	if got := kinds(cmds, CmdGate); !slices.Equal(got, []string{"t-1"}) || h.s.Phase != PhaseRunning {
		t.Fatalf("remeasure: %+v", cmds)
	}
	h.send(Event{Type: TargetGateInconclusive, Target: "t-1", Gate: "g", Message: "still no data"})
	// A human passes it: the ring goes on, and the verdict is on the target.
	cmds = h.send(Event{Type: GateOverridden, Target: "t-1", Gate: "g", Passed: ptrTrue(), Actor: "oncall", Message: "dashboard fine"})
	if got := kinds(cmds, CmdApply); !slices.Equal(got, []string{"t-2"}) || h.s.Targets["t-1"].Phase != TVerified ||
		!strings.Contains(h.s.Targets["t-1"].Message, "overridden to pass by oncall: dashboard fine") {
		t.Fatalf("override pass: %+v, %+v", cmds, h.s.Targets["t-1"])
	}
	// A human fails the next: it is a failed target, and the ring's budget (0) halts and rolls back.
	h.send(Event{Type: TargetApplied, Target: "t-2"})
	h.send(Event{Type: TargetGateInconclusive, Target: "t-2", Gate: "g", Message: "flat"})
	cmds = h.send(Event{Type: GateOverridden, Target: "t-2", Gate: "g", Passed: ptrFalse(), Actor: "oncall", Message: "latency up"})
	if got := kinds(cmds, CmdRollback); !slices.Equal(got, []string{"t-1"}) && !slices.Equal(got, []string{"t-1", "t-2"}) {
		t.Fatalf("override fail: want a rollback, got %+v", cmds)
	}
	if h.s.Phase != PhaseRollingBack {
		t.Fatalf("phase %s", h.s.Phase)
	}
	// The journal replays to the same state at every step.
	if got := Replay(h.events); got.Phase != h.s.Phase || got.Targets["t-2"].Phase != h.s.Targets["t-2"].Phase {
		t.Fatal("replay differs")
	}
}

func TestInconclusiveRingGate(t *testing.T) {
	p := fleet(RingPlan{Name: "r", Targets: targets("t", 1), MaxParallel: 1, Bake: Duration(time.Minute), RingGates: []string{"slo"}}, RingPlan{Name: "next", Targets: targets("n", 1), MaxParallel: 1})
	h, _ := start(t, p)
	h.pass("t-1")
	cmds := h.send(Event{Type: RingGateInconclusive, Ring: "r", Gate: "slo", Message: "no data"})
	if h.s.Phase != PhaseWaiting || h.s.Rings[0].Phase != RInconclusive || len(cmds) != 1 || cmds[0].Type != RingPaused {
		t.Fatalf("%s %s %+v", h.s.Phase, h.s.Rings[0].Phase, cmds)
	}
	if cmds := h.send(Event{Type: GatesRemeasure}); len(kinds(cmds, CmdBake)) != 1 || h.s.Rings[0].Phase != RBaking {
		t.Fatalf("remeasure: want a new bake, got %+v", cmds)
	}
	h.send(Event{Type: RingGateInconclusive, Ring: "r", Gate: "slo", Message: "no data"})
	cmds = h.send(Event{Type: GateOverridden, Ring: "r", Gate: "slo", Passed: ptrTrue(), Actor: "lead", Message: "known gap in metrics"})
	if got := kinds(cmds, CmdApply); !slices.Equal(got, []string{"n-1"}) || h.s.Rings[0].Phase != RPassed {
		t.Fatalf("ring override pass: %+v", cmds)
	}
}

func ptr[T any](v T) *T { return &v }
func ptrTrue() *bool    { return ptr(true) }
func ptrFalse() *bool   { return ptr(false) }

// A ring whose approval plans may waive has its targets' plans checked first: passed, the ring
// starts without an approval (the waiver recorded); not, it waits for one as it would have; a
// check under way when the driver died is made again on resume.
func TestApprovalWaivedByPlansOrNot(t *testing.T) {
	zero := 0
	limits := &PlanLimits{Destroys: &zero, Replaces: &zero}
	p := fleet(RingPlan{Name: "canary", Targets: targets("c", 1), MaxParallel: 1},
		RingPlan{Name: "gov", Targets: targets("g", 2), MaxParallel: 2, Approval: true, Quorum: 1, UnlessPlans: limits})
	for _, passed := range []bool{true, false} {
		h, _ := start(t, p)
		cmds := h.pass("c-1")
		if got := kinds(cmds, CmdPlanCheck); !slices.Equal(got, []string{"gov"}) || len(kinds(cmds, CmdAwaitApproval)) != 0 {
			t.Fatalf("want the plans checked first, got %+v", cmds)
		}
		if redrive := h.s.InFlight(); len(kinds(redrive, CmdPlanCheck)) != 1 {
			t.Fatalf("a resumed run does not check the plans again: %+v", redrive)
		}
		cmds = h.send(Event{Type: RingPlansChecked, Ring: "gov", Passed: &passed, Message: "checked"})
		r := h.s.ring("gov")
		switch {
		case passed && (!slices.Equal(kinds(cmds, CmdApply), []string{"g-1", "g-2"}) || r.Waived == nil || r.Waived.Reason != "checked"):
			t.Fatalf("passed: %+v, waived %+v", cmds, r.Waived)
		case !passed && (len(kinds(cmds, CmdAwaitApproval)) != 1 || h.s.Phase != PhaseWaiting || r.Waived != nil):
			t.Fatalf("not passed: %+v (phase %s)", cmds, h.s.Phase)
		}
	}
	if got := limits.Check(PlanSummary{Add: 3, Replaced: []string{"a.b"}}); got != "replaces 1 > 0" {
		t.Fatalf("check: %q", got)
	}
	if got := limits.Check(PlanSummary{Add: 3, Change: 2}); got != "" {
		t.Fatalf("adds and changes broke %q", got)
	}
}

// A ring with no target yet passes by, approval or not: nothing to apply, nobody to ask.
func TestAnEmptyRingPassesBy(t *testing.T) {
	p := fleet(RingPlan{Name: "canary", Targets: targets("c", 1), MaxParallel: 1},
		RingPlan{Name: "new", MaxParallel: 1, Approval: true, Quorum: 1}, RingPlan{Name: "last", Targets: targets("l", 1), MaxParallel: 1})
	h, _ := start(t, p)
	if got := kinds(h.pass("c-1"), CmdApply); !slices.Equal(got, []string{"l-1"}) {
		t.Fatalf("after the canary: applies %v (phase %s)", got, h.s.Phase)
	}
	if finished(h.pass("l-1")) != PhaseSucceeded {
		t.Fatalf("phase %s", h.s.Phase)
	}
}

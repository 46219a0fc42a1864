package temporal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rollout-dev/rollout/internal/rings"
)

// The workflow's logic with Temporal's test environment (time skips: an hour's bake takes no
// time), against the in-process engine's: the same scenario must give the same journal.

// memFleet is a journal in memory with an executor over scripted Terraform and gates.
type memFleet struct {
	mu      sync.Mutex
	events  []rings.Event
	appends int // Append calls that wrote
	prov    *scripted
	// loseAnswers: this many appends write, then fail as if their answer were lost.
	loseAnswers int
}

func (m *memFleet) Append(_ context.Context, evs ...rings.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range evs {
		evs[i].Seq = int64(len(m.events) + 1)
		m.events = append(m.events, evs[i])
	}
	m.appends++
	return nil
}

func (m *memFleet) Events(_ context.Context, _ string, after int64) ([]rings.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events[min(int(after), len(m.events)):]), nil
}

func (m *memFleet) AppendOnce(ctx context.Context, runID string, after int64, evs []rings.Event) ([]int64, error) {
	have, _ := m.Events(ctx, runID, after)
	if seqs, ok := Written(have, evs); ok {
		return seqs, nil
	}
	if err := m.Append(ctx, evs...); err != nil {
		return nil, err
	}
	seqs := make([]int64, len(evs))
	for i := range evs {
		seqs[i] = evs[i].Seq
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loseAnswers > 0 { // written, but the answer is lost: the activity is retried
		m.loseAnswers--
		return nil, errors.New("connection reset")
	}
	return seqs, nil
}

func (m *memFleet) Inbox(ctx context.Context, runID string, after int64, _ *rings.Switch) ([]rings.Event, error) {
	return m.Events(ctx, runID, after)
}

func (m *memFleet) executor() *rings.Executor {
	return &rings.Executor{Store: m, Provisioner: m.prov, Gates: m.prov, Clock: fixedClock{}}
}

func (m *memFleet) Executor(context.Context, string) (*rings.Executor, error) {
	return m.executor(), nil
}

// Mask masks what the scripted Terraform would leak.
func (m *memFleet) Mask(evs []rings.Event) {
	for i := range evs {
		evs[i].Message = strings.ReplaceAll(evs[i].Message, "s3cr3t", "***")
	}
}

// act journals an operator's act, as rollout approve or pause would.
func (m *memFleet) act(ev rings.Event) {
	ev.V, ev.RunID, ev.At = rings.EventVersion, "run-1", at
	_ = m.Append(context.Background(), ev)
}

// story is the journal as (type ring target) lines, without times. Given acts, a run waits: the
// in-process engine's process stops then, and the one that resumes it journals run.resumed and
// the waiting ring's record again, but not the records implied by an act journaled meanwhile
// (folded on replay), which the workflow, waiting, journals as they come: the story then keeps
// the outcomes and the acts only.
func (m *memFleet) story(acts bool) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, ev := range m.events {
		switch ev.Type {
		case rings.RunResumed:
			continue
		case rings.RingApprovalNeeded, rings.RingStarted, rings.TargetApplying, rings.RingHalted, rings.RollbackPlanned, rings.TargetRollingBack:
			if acts {
				continue
			}
		}
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", ev.Type, ev.Ring, ev.Target)))
	}
	return out
}

// scripted is Terraform and gates that do what a test says: a failed apply or gate per target.
// It keeps the baseline each target's gates were given.
type scripted struct {
	failApply, failGate map[string]bool
	mu                  sync.Mutex
	baselines           map[string]map[string][]string
}

func (p *scripted) Apply(_ context.Context, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	planned(rings.PlanSummary{Add: 1})
	if p.failApply[target] && rel.Name == "v2" {
		return rings.ApplyResult{}, errors.New("boom: token s3cr3t refused") // Mask must catch it
	}
	return rings.ApplyResult{Outputs: map[string]any{"v": 1}, Public: map[string]any{"v": 1}}, nil
}

func (p *scripted) Outputs(context.Context, string) (map[string]any, error) { return nil, nil }

func (p *scripted) Target(_ context.Context, req rings.GateRequest, _ func(rings.Measurement)) rings.Verdict {
	p.mu.Lock()
	if p.baselines == nil {
		p.baselines = map[string]map[string][]string{}
	}
	p.baselines[req.Target] = req.Baseline
	p.mu.Unlock()
	if len(req.Gates) > 0 && p.failGate[req.Target] && req.Release.Name == "v2" {
		return rings.Verdict{Gate: req.Gates[0], Message: "unhealthy"}
	}
	return rings.Verdict{Decision: rings.Pass}
}

func (p *scripted) Ring(context.Context, rings.GateRequest, time.Time, func(rings.Measurement)) rings.Verdict {
	return rings.Verdict{Decision: rings.Pass}
}

var at = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

type fixedClock struct{ rings.Clock }

func (fixedClock) Now() time.Time { return at }

func ref(name string) rings.ReleaseRef { return rings.ReleaseRef{Name: name} }

// plan: ring canary (c1, boundary a; a bake), ring main (m1 in a, m2 in b), each target's gate.
func plan(approval bool) *rings.Plan {
	tp := func(name, b string) rings.TargetPlan {
		last := ref("v1")
		return rings.TargetPlan{Name: name, Boundary: b, Release: ref("v2"), From: &last}
	}
	return &rings.Plan{Kind: rings.KindRelease, Release: ref("v2"), Rings: []rings.RingPlan{
		{Name: "canary", Targets: []rings.TargetPlan{tp("c1", "a")}, MaxParallel: 1, Gates: []string{"health"}, Bake: rings.Duration(time.Hour), Rollback: "run"},
		{Name: "main", Targets: []rings.TargetPlan{tp("m1", "a"), tp("m2", "b")}, MaxParallel: 1, Gates: []string{"health"}, Rollback: "run", Approval: approval},
	}}
}

// start journals the run's start as the starter does (its first round, nothing carried out).
func start(t *testing.T, m *memFleet, p *rings.Plan) {
	t.Helper()
	x := m.executor()
	x.Detach = true
	if err := x.Run(context.Background(), &rings.State{RunID: "run-1"}, rings.Event{Type: rings.RunStarted, Plan: p}); err != nil {
		t.Fatal(err)
	}
}

// onTemporal runs the scenario's workflow to its end in the test environment; during runs before.
func onTemporal(t *testing.T, m *memFleet, during func(env *testsuite.TestWorkflowEnvironment)) rings.Phase {
	t.Helper()
	env := testEnv(m, during)
	env.ExecuteWorkflow(WorkflowName, RunInput{RunID: "run-1", Prefix: "test", PollEvery: time.Minute})
	if !env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var phase rings.Phase
	if err := env.GetWorkflowResult(&phase); err != nil {
		t.Fatal(err)
	}
	return phase
}

// testEnv is Temporal's test environment with the workflow and its activities over m.
func testEnv(m *memFleet, during func(env *testsuite.TestWorkflowEnvironment)) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	acts := &Activities{Fleet: m, Boundaries: map[string]bool{"a": true, "b": true}, Journal: true}
	env.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
	env.RegisterActivityWithOptions(acts.Load, activity.RegisterOptions{Name: actLoad})
	env.RegisterActivityWithOptions(acts.Append, activity.RegisterOptions{Name: actAppend})
	env.RegisterActivityWithOptions(acts.Inbox, activity.RegisterOptions{Name: actInbox})
	env.RegisterActivityWithOptions(acts.Work, activity.RegisterOptions{Name: actWork})
	if during != nil {
		during(env)
	}
	return env
}

// inProcess runs the scenario with the in-process engine, as rollout start does: to its end, or
// to a wait; then each act and a resume, as an operator would.
func inProcess(t *testing.T, m *memFleet, p *rings.Plan, acts ...rings.Event) rings.Phase {
	t.Helper()
	s := &rings.State{RunID: "run-1"}
	if err := m.executor().Run(context.Background(), s, rings.Event{Type: rings.RunStarted, Plan: p}); err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		m.act(a)
		s = rings.Replay(m.events)
		if err := m.executor().Run(context.Background(), s, rings.Event{Type: rings.RunResumed}); err != nil {
			t.Fatal(err)
		}
	}
	return s.Phase
}

func TestWorkflowGivesTheInProcessJournal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		approval  bool
		failGate  string
		failApply string
		acts      []rings.Event // given when the run waits (in-process) or an hour in (Temporal)
		want      rings.Phase
	}{
		{name: "bake then promote", want: rings.PhaseSucceeded},
		{name: "approval", approval: true, acts: []rings.Event{{Type: rings.RingApproved, Ring: "main", Actor: "ops"}}, want: rings.PhaseSucceeded},
		{name: "gate fails, run rolls back", failGate: "m2", want: rings.PhaseRolledBack},
		{name: "apply fails, run rolls back", failApply: "m1", want: rings.PhaseRolledBack},
		{name: "pause, then unpause", approval: true, acts: []rings.Event{{Type: rings.RunPaused, Actor: "ops"}, {Type: rings.RunUnpaused, Actor: "ops"}, {Type: rings.RingApproved, Ring: "main", Actor: "ops"}}, want: rings.PhaseSucceeded},
		{name: "abort with rollback", approval: true, acts: []rings.Event{{Type: rings.RunAbortRequested, Rollback: true, Actor: "ops"}}, want: rings.PhaseAborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := func() *scripted {
				return &scripted{failApply: map[string]bool{tc.failApply: true}, failGate: map[string]bool{tc.failGate: true}}
			}
			local := &memFleet{prov: script()}
			if got := inProcess(t, local, plan(tc.approval), tc.acts...); got != tc.want {
				t.Fatalf("in-process: %s, want %s\n%s", got, tc.want, strings.Join(local.story(len(tc.acts) > 0), "\n"))
			}
			wf := &memFleet{prov: script()}
			start(t, wf, plan(tc.approval))
			got := onTemporal(t, wf, func(env *testsuite.TestWorkflowEnvironment) {
				for i, a := range tc.acts {
					env.RegisterDelayedCallback(func() {
						wf.act(a)
						env.SignalWorkflow(SignalActed, nil)
					}, time.Duration(i+2)*time.Hour)
				}
			})
			if got != tc.want {
				t.Fatalf("on Temporal: %s, want %s\n%s", got, tc.want, strings.Join(wf.story(len(tc.acts) > 0), "\n"))
			}
			if err := rings.CheckOneOperationAtATime(wf.events); err != nil {
				t.Fatal(err)
			}
			for _, ev := range wf.events {
				if strings.Contains(ev.Message, "s3cr3t") {
					t.Fatalf("a secret left the worker unmasked: %s %s", ev.Type, ev.Message)
				}
			}
			if a, b := local.story(len(tc.acts) > 0), wf.story(len(tc.acts) > 0); !slices.Equal(a, b) {
				t.Fatalf("the journals differ:\nin-process:\n%s\n\non Temporal:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		})
	}
}

// A gate that compares a target with its baseline gets the same baseline from both engines (the
// in-process engine chose it by one rule, the workflow by another, until both ran one protocol).
func TestBothEnginesGiveACompareGateTheSameBaseline(t *testing.T) {
	local := &memFleet{prov: &scripted{}}
	x := local.executor()
	x.CompareGates = []string{"health"}
	if err := x.Run(context.Background(), &rings.State{RunID: "run-1"}, rings.Event{Type: rings.RunStarted, Plan: plan(false)}); err != nil {
		t.Fatal(err)
	}
	wf := &memFleet{prov: &scripted{}}
	start(t, wf, plan(false))
	env := testEnv(wf, nil)
	env.ExecuteWorkflow(WorkflowName, RunInput{RunID: "run-1", Prefix: "test", PollEvery: time.Minute, CompareGates: []string{"health"}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	a, b := local.prov.baselines, wf.prov.baselines
	if len(a) != 3 || !slices.Equal(a["c1"]["main"], []string{"m1", "m2"}) {
		t.Fatalf("in-process baselines %v: c1's gate should see main's targets untouched", a)
	}
	for target := range a {
		if fmt.Sprint(a[target]) != fmt.Sprint(b[target]) {
			t.Fatalf("%s: in-process baseline %v, on Temporal %v", target, a[target], b[target])
		}
	}
}

// An append whose answer is lost is retried by Temporal; the retry finds its round journaled and
// writes nothing again.
func TestRetriedAppendWritesOnce(t *testing.T) {
	clean := &memFleet{prov: &scripted{}}
	start(t, clean, plan(false))
	onTemporal(t, clean, nil)
	lossy := &memFleet{prov: &scripted{}, loseAnswers: 4}
	start(t, lossy, plan(false))
	if got := onTemporal(t, lossy, nil); got != rings.PhaseSucceeded {
		t.Fatalf("phase %s", got)
	}
	if lossy.loseAnswers != 0 {
		t.Fatalf("%d answers were not lost: the test lost none", lossy.loseAnswers)
	}
	if a, b := clean.story(false), lossy.story(false); !slices.Equal(a, b) {
		t.Fatalf("with lost answers, the journal differs:\n%s\n\nwithout:\n%s", strings.Join(b, "\n"), strings.Join(a, "\n"))
	}
}

func TestWrittenFindsTheRound(t *testing.T) {
	t0 := at.Add(time.Nanosecond * 1500)
	have := []rings.Event{
		{Seq: 7, Type: rings.RunPaused, At: t0},                                   // an operator's
		{Seq: 8, Type: rings.TargetApplied, Target: "a", At: t0.Add(time.Second)}, // the round
		{Seq: 9, Type: rings.TargetVerified, Target: "a", At: t0.Add(time.Second)},
	}
	round := []rings.Event{{Type: rings.TargetApplied, Target: "a", At: t0.Add(time.Second)}, {Type: rings.TargetVerified, Target: "a", At: t0.Add(time.Second)}}
	if seqs, ok := Written(have, round); !ok || !slices.Equal(seqs, []int64{8, 9}) {
		t.Fatalf("Written = %v %v, want [8 9] true", seqs, ok)
	}
	if _, ok := Written(have[:2], round); ok {
		t.Fatal("a round of which only the first event is journaled was taken as written")
	}
	round[0].At = round[0].At.Add(time.Millisecond) // another round of the same kind
	if _, ok := Written(have, round); ok {
		t.Fatal("a round at another time was taken as written")
	}
}

// A workflow whose history grew long continues as new once nothing is under way (here: while it
// waits for an approval); the new one takes the run up from the journal and finishes it.
func TestLongHistoryContinuesAsNew(t *testing.T) {
	m := &memFleet{prov: &scripted{}}
	start(t, m, plan(true))
	env := testEnv(m, nil)
	defer func(was func(workflow.Context) int) { historyLength = was }(historyLength)
	historyLength = func(workflow.Context) int { return 20000 } // the test environment keeps no history
	env.ExecuteWorkflow(WorkflowName, RunInput{RunID: "run-1", Prefix: "test", PollEvery: time.Minute})
	historyLength = func(workflow.Context) int { return 0 }
	if err := env.GetWorkflowError(); !workflow.IsContinueAsNewError(err) {
		t.Fatalf("workflow ended with %v, want to continue as new", err)
	}
	if s := rings.Replay(m.events); s.Phase != rings.PhaseWaiting {
		t.Fatalf("continued as new in phase %s, want waiting (nothing under way)", s.Phase)
	}
	m.act(rings.Event{Type: rings.RingApproved, Ring: "main", Actor: "ops"})
	if got := onTemporal(t, m, nil); got != rings.PhaseSucceeded {
		t.Fatalf("the continued workflow ended %s\n%s", got, strings.Join(m.story(false), "\n"))
	}
	if err := rings.CheckOneOperationAtATime(m.events); err != nil {
		t.Fatal(err)
	}
}

package cli

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rollout-dev/rollout/internal/rings"
)

// style colours words on a terminal, and leaves them plain otherwise.
type style struct{ on bool }

func newStyle(io IO, g globals) style { return style{on: io.ErrTTY && g.color()} }

func (s style) paint(code, text string) string {
	if !s.on {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) phase(p string) string {
	word := strings.Fields(p + " ")[0]
	switch word {
	case rings.PhaseSucceeded, rings.TVerified, rings.RPassed:
		return s.paint("32", p)
	case rings.TFailed, rings.RHalted, rings.PhaseRollbackFailed:
		return s.paint("31", p)
	case rings.PhaseWaiting, rings.PhasePaused, rings.PhaseBlocked, rings.PhaseAborted, rings.RFrozen, rings.RDrifted, rings.RApproval, rings.PhaseRolledBack, rings.PhaseRollingBack, rings.TUnverified, rings.TRollbackSkipped, rings.TInconclusive:
		return s.paint("33", p)
	}
	return p
}

// progress prints one line per event that matters to a person watching the run, on stderr. Not
// on a terminal, the lines are plain and timestamped, for logs. On a terminal (colours unless
// --no-color or NO_COLOR) the lines scroll above a live display drawn by
// github.com/vbauerster/mpb: the run (phase, elapsed time), then one bar per ring (targets done
// of all, what the ring is doing: applying, baking with the time left, awaiting approval, frozen,
// and its targets by phase). The display's state is the events folded through rings.Decide, the
// same pure function the engine runs, on its own copy of the run.
type progress struct {
	mu    sync.Mutex
	io    IO
	st    style
	start time.Time
	live  bool
	state *rings.State

	bars  *mpb.Progress
	head  *mpb.Bar
	rings []*mpb.Bar
	view  atomic.Pointer[runView] // what the bars' decorators show: written by event, read by mpb
}

// runView is a snapshot of the run for the display, replaced whole on every event.
type runView struct {
	title string
	phase string
	since time.Time
	rings []ringView
}

type ringView struct {
	name, detail, counts string
	bakeUntil            time.Time
	current              bool
}

// newProgress starts the display; state is the run as far as its journal tells (its own copy:
// the display is drawn from another goroutine than the executor's).
func newProgress(io IO, g globals, state *rings.State) *progress {
	p := &progress{io: io, st: newStyle(io, g), start: time.Now(), live: io.ErrTTY && os.Getenv("TERM") != "dumb", state: state}
	if p.live {
		width := io.Width
		if width <= 0 {
			width = 80
		}
		p.bars = mpb.New(mpb.WithOutput(io.Err), mpb.WithWidth(width), mpb.WithRefreshRate(200*time.Millisecond), mpb.ForceTTY())
		p.mu.Lock()
		p.refresh()
		p.mu.Unlock()
	}
	return p
}

// close completes the bars, lets mpb draw them one last time, and stops it.
func (p *progress) close() {
	if !p.live {
		return
	}
	p.mu.Lock()
	bars := append([]*mpb.Bar{p.head}, p.rings...)
	p.mu.Unlock()
	for _, b := range bars {
		if b != nil {
			b.SetTotal(-1, true)
		}
	}
	p.bars.Wait()
}

func (p *progress) event(ev rings.Event) {
	line := p.describe(ev)
	p.mu.Lock()
	rings.Decide(p.state, ev)
	if p.live {
		p.refresh()
	}
	p.mu.Unlock()
	if line == "" {
		return
	}
	if !p.live {
		fmt.Fprintf(p.io.Err, "%s  %s\n", ev.At.Local().Format("15:04:05.000"), line)
		return
	}
	stamp := fmt.Sprintf("%6.1fs", ev.At.Sub(p.start).Seconds())
	_, _ = fmt.Fprintf(p.bars, "%s  %s\n", p.st.paint("2", stamp), line) // printed above the bars
}

// refresh rebuilds the view from the state, and adds the bars once the plan is known. p.mu held.
func (p *progress) refresh() {
	s := p.state
	if s.Plan.Kind == "" {
		return
	}
	v := &runView{title: fmt.Sprintf("%s %s", s.Plan.Kind, s.Plan.Release.Name), phase: s.Phase, since: s.Started}
	for i, r := range s.Rings {
		rv := ringView{name: r.Plan.Name, current: i == s.Ring && !rings.Terminal(s.Phase)}
		rv.detail, rv.counts = ringLine(s, r)
		if r.Phase == rings.RBaking {
			rv.bakeUntil = r.BakeUntil
		}
		v.rings = append(v.rings, rv)
	}
	p.view.Store(v)
	if p.head == nil {
		p.head = p.bars.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			v := p.view.Load()
			return p.st.paint("1", fmt.Sprintf("── %s  %s  %s", v.title, v.phase, time.Since(v.since).Round(time.Second)))
		})))
		for i, r := range s.Rings {
			i := i
			b := p.bars.New(int64(max(len(r.Plan.Targets), 1)), mpb.BarStyle().Lbound("[").Rbound("]").Filler("=").Tip(">").Padding(" "),
				mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
					rv := p.view.Load().rings[i]
					mark := "  "
					if rv.current {
						mark = "▶ "
					}
					detail := rv.detail
					if !rv.bakeUntil.IsZero() {
						detail = fmt.Sprintf("baking, %s left", max(time.Until(rv.bakeUntil), 0).Round(time.Second))
					}
					return fmt.Sprintf("%s%-12s %-22s", mark, rv.name, detail)
				}, decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.CountersNoUnit("%d/%d"), decor.Any(func(decor.Statistics) string { return "  " + p.view.Load().rings[i].counts })),
				mpb.BarWidth(20))
			p.rings = append(p.rings, b)
		}
	}
	for i, r := range s.Rings {
		if i < len(p.rings) {
			p.rings[i].SetCurrent(int64(ringDone(s, r)))
		}
	}
}

// ringDone counts a ring's targets that are done (verified, failed, rolled back, ...).
func ringDone(s *rings.State, r *rings.RingState) int {
	n := 0
	for _, tp := range r.Plan.Targets {
		switch s.Targets[tp.Name].Phase {
		case rings.TPending, rings.TApplying, rings.TGating, rings.TRollbackPending, rings.TRollingBack:
		default:
			n++
		}
	}
	return n
}

// ringLine is what a ring is doing, and its targets by phase.
func ringLine(s *rings.State, r *rings.RingState) (string, string) {
	counts := map[string]int{}
	for _, tp := range r.Plan.Targets {
		counts[s.Targets[tp.Name].Phase]++
	}
	var parts []string
	for _, ph := range []string{rings.TVerified, rings.TApplying, rings.TGating, rings.TFailed, rings.TUnverified,
		rings.TRollbackPending, rings.TRollingBack, rings.TRolledBack, rings.TRollbackFailed, rings.TRollbackSkipped, rings.TInconclusive, rings.TPending} {
		if counts[ph] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[ph], ph))
		}
	}
	detail := r.Phase
	switch r.Phase {
	case rings.RApproval:
		detail = fmt.Sprintf("awaiting approval (%d of %d)", len(r.Approvals), max(r.Plan.Quorum, 1))
	case rings.RFrozen:
		detail = "frozen"
	}
	return detail, strings.Join(parts, " · ")
}

func (p *progress) describe(ev rings.Event) string {
	who := ev.Target
	if who == "" {
		who = "ring " + ev.Ring
	}
	st := p.st
	switch ev.Type {
	case rings.RunStarted:
		return fmt.Sprintf("run %s started: %s %s over %d ring(s)", ev.RunID, ev.Plan.Kind, ev.Plan.Release.Name, len(ev.Plan.Rings))
	case rings.RunResumed:
		return fmt.Sprintf("run %s resumed by %s", ev.RunID, ev.Actor)
	case rings.RingStarted:
		return st.paint("1", "ring "+ev.Ring) + " started " + ev.Message
	case rings.RingApprovalNeeded:
		return st.paint("33", "ring "+ev.Ring+" needs approval: ") + ev.Message
	case rings.RingBakeStarted:
		return fmt.Sprintf("ring %s baking %s", ev.Ring, ev.Message)
	case rings.RingBaked, rings.RingPassed:
		if ev.Type == rings.RingBaked {
			return ""
		}
		return st.paint("32", "ring "+ev.Ring+" passed")
	case rings.RingGateFailed:
		return st.paint("31", fmt.Sprintf("ring %s gate %s failed: %s", ev.Ring, ev.Gate, ev.Message))
	case rings.RingHalted:
		return st.paint("31", fmt.Sprintf("ring %s halted: %s", ev.Ring, ev.Message))
	case rings.RollbackPlanned:
		return st.paint("33", fmt.Sprintf("rolling back (%s): %s", ev.Message, strings.Join(ev.Targets, ", ")))
	case rings.TargetApplying:
		return fmt.Sprintf("  %s: applying %s", who, relName(ev.Release))
	case rings.TargetPlanned:
		return fmt.Sprintf("  %s: plan %s", who, planText(ev.Summary))
	case rings.TargetApplied:
		return fmt.Sprintf("  %s: applied %s", who, relName(ev.Release))
	case rings.TargetApplyFailed:
		return st.paint("31", fmt.Sprintf("  %s: apply failed: %s", who, ev.Message))
	case rings.GateMeasured:
		if ev.Passed != nil && !*ev.Passed {
			return st.paint("33", fmt.Sprintf("  %s: gate %s: %s", who, ev.Gate, truncate(ev.Message, 160)))
		}
	case rings.TargetVerified:
		return st.paint("32", fmt.Sprintf("  %s: gates passed", who))
	case rings.TargetGateFailed:
		return st.paint("31", fmt.Sprintf("  %s: gate %s failed: %s", who, ev.Gate, ev.Message))
	case rings.TargetGateCancelled:
		return fmt.Sprintf("  %s: gates stopped (%s)", who, ev.Message)
	case rings.TargetRollingBack:
		return st.paint("33", fmt.Sprintf("  %s: rolling back to %s", who, relName(ev.Release)))
	case rings.TargetRolledBack:
		return st.paint("32", fmt.Sprintf("  %s: rolled back to %s, gates passed", who, relName(ev.Release)))
	case rings.TargetRollbackFailed:
		return st.paint("31", fmt.Sprintf("  %s: ROLLBACK FAILED: %s", who, ev.Message))
	case rings.TargetRollbackSkip:
		return st.paint("33", fmt.Sprintf("  %s: not rolled back: %s", who, ev.Message))
	case rings.TargetGateInconclusive:
		return st.paint("33", fmt.Sprintf("  %s: gate %s inconclusive: %s", who, ev.Gate, ev.Message))
	case rings.RingGateInconclusive:
		return st.paint("33", fmt.Sprintf("ring %s gate %s inconclusive: %s", ev.Ring, ev.Gate, ev.Message))
	case rings.RingPaused:
		return st.paint("33", fmt.Sprintf("ring %s paused: %s", ev.Ring, ev.Message))
	case rings.GateOverridden:
		what := ev.Target
		if what == "" {
			what = "ring " + ev.Ring
		}
		return fmt.Sprintf("  %s: gate %s overridden to %s by %s: %s", what, ev.Gate, ev.Outcome, ev.Actor, ev.Message)
	case rings.GatesRemeasure:
		return fmt.Sprintf("inconclusive gates measured again (asked by %s)", ev.Actor)
	case rings.TargetOrphansKilled:
		return st.paint("33", fmt.Sprintf("  %s: %s", who, ev.Message))
	case rings.TargetRetrying:
		return st.paint("33", fmt.Sprintf("  %s: %s", who, ev.Message))
	case rings.BoundaryHalted:
		return st.paint("31", fmt.Sprintf("ring %s: boundary %s halted (circuit open): %s", ev.Ring, ev.Boundary, ev.Message))
	case rings.BoundaryResumed:
		return st.paint("32", fmt.Sprintf("ring %s: boundary %s resumed: %s", ev.Ring, ev.Boundary, ev.Message))
	case rings.BoundaryVerified:
		return fmt.Sprintf("ring %s entered boundary %s", ev.Ring, ev.Message)
	case rings.BoundaryRefused:
		return st.paint("31", fmt.Sprintf("ring %s: boundary %s refused: %s", ev.Ring, ev.Boundary, ev.Message))
	case rings.RunPaused:
		return st.paint("33", fmt.Sprintf("run paused by %s: %s (nothing new starts; work under way finishes)", ev.Actor, ev.Message))
	case rings.RunUnpaused:
		return fmt.Sprintf("run unpaused by %s", ev.Actor)
	case rings.RunAbortRequested:
		what := "stop"
		if ev.Outcome == "rollback" {
			what = "roll back everything this run changed"
		}
		return st.paint("31", fmt.Sprintf("run aborted by %s (%s): %s", ev.Actor, what, ev.Message))
	case rings.FreezeChanged:
		if ev.Switch != nil {
			return st.paint("33", fmt.Sprintf("stop-the-line switch turned on by %s: %s", ev.Switch.Actor, ev.Switch.Reason))
		}
		return "stop-the-line switch turned off"
	case rings.FreezeBroken:
		return st.paint("33", fmt.Sprintf("BREAK GLASS by %s: freeze windows and the switch no longer hold this run: %s", ev.Actor, ev.Message))
	case rings.RingFrozen:
		return st.paint("33", fmt.Sprintf("ring %s frozen: %s", ev.Ring, ev.Message))
	case rings.RingDriftChecked:
		if ev.Outcome == "clean" {
			return fmt.Sprintf("ring %s drift check: %s", ev.Ring, ev.Message)
		}
		return st.paint("33", fmt.Sprintf("ring %s drift check: %s: %s", ev.Ring, ev.Outcome, ev.Message))
	case rings.DriftAcknowledged:
		return fmt.Sprintf("ring %s drift acknowledged by %s: %s", ev.Ring, ev.Actor, ev.Message)
	case rings.RunFinished:
		return "run finished: " + st.phase(ev.Outcome)
	}
	return ""
}

package cli

import (
	"fmt"
	"strings"
	"sync"
	"time"

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
// on a terminal, the lines are plain and timestamped, for logs. On a terminal they are coloured,
// and a footer under them shows every ring's state live (targets by phase, bake time left,
// approvals), redrawn as events arrive and every second. The footer's state is the events folded
// through rings.Decide, the same pure function the engine runs.
type progress struct {
	mu     sync.Mutex
	io     IO
	st     style
	start  time.Time
	live   bool
	state  *rings.State
	footer int // lines of the footer on screen now
	done   chan struct{}
	wg     sync.WaitGroup
}

// newProgress starts the display; state is the run as far as its journal tells (its own copy:
// the footer is redrawn from another goroutine than the executor's).
func newProgress(io IO, g globals, state *rings.State) *progress {
	p := &progress{io: io, st: newStyle(io, g), start: time.Now(), live: io.ErrTTY && g.color(), state: state, done: make(chan struct{})}
	if p.live {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-p.done:
					return
				case <-t.C:
					p.mu.Lock()
					p.clearFooter()
					p.drawFooter()
					p.mu.Unlock()
				}
			}
		}()
	}
	return p
}

// close stops the live footer and erases it.
func (p *progress) close() {
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearFooter()
}

func (p *progress) event(ev rings.Event) {
	line := p.describe(ev)
	p.mu.Lock()
	defer p.mu.Unlock()
	rings.Decide(p.state, ev)
	if line == "" && !p.live {
		return
	}
	p.clearFooter()
	if line != "" {
		stamp := ev.At.Local().Format("15:04:05.000")
		if p.io.ErrTTY {
			stamp = fmt.Sprintf("%6.1fs", ev.At.Sub(p.start).Seconds())
		}
		fmt.Fprintf(p.io.Err, "%s  %s\n", p.st.paint("2", stamp), line)
	}
	p.drawFooter()
}

func (p *progress) clearFooter() {
	if p.footer > 0 {
		fmt.Fprintf(p.io.Err, "\x1b[%dF\x1b[J", p.footer)
		p.footer = 0
	}
}

func (p *progress) drawFooter() {
	if !p.live || p.state.Plan.Kind == "" {
		return
	}
	lines := footerLines(p.state, time.Now())
	width := p.io.Width
	if width <= 0 {
		width = 80
	}
	for i, l := range lines {
		if len(l) > width-1 {
			l = l[:width-1]
		}
		if i == 0 {
			l = p.st.paint("1", l)
		}
		fmt.Fprintln(p.io.Err, l)
	}
	p.footer = len(lines)
}

// footerLines describes the run: one line for the run, one per ring.
func footerLines(s *rings.State, now time.Time) []string {
	out := []string{fmt.Sprintf("── %s %s  %s  %s", s.Plan.Kind, s.Plan.Release.Name, s.Phase, now.Sub(s.Started).Round(time.Second))}
	for i, r := range s.Rings {
		mark := "  "
		if i == s.Ring && !rings.Terminal(s.Phase) {
			mark = "▶ "
		}
		counts := map[string]int{}
		for _, tp := range r.Plan.Targets {
			counts[s.Targets[tp.Name].Phase]++
		}
		var parts []string
		for _, ph := range []string{rings.TVerified, rings.TApplying, rings.TGating, rings.TFailed, rings.TUnverified,
			rings.TRollbackPending, rings.TRollingBack, rings.TRolledBack, rings.TRollbackFailed, rings.TRollbackSkipped, rings.TPending} {
			if counts[ph] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[ph], ph))
			}
		}
		detail := r.Phase
		switch r.Phase {
		case rings.RBaking:
			detail = fmt.Sprintf("baking, %s left", max(r.BakeUntil.Sub(now), 0).Round(time.Second))
		case rings.RApproval:
			detail = fmt.Sprintf("awaiting approval (%d of %d)", len(r.Approvals), max(r.Plan.Quorum, 1))
		case rings.RFrozen:
			detail = "frozen"
		}
		out = append(out, fmt.Sprintf("%s%-12s %-26s %s", mark, r.Plan.Name, detail, strings.Join(parts, " · ")))
	}
	return out
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

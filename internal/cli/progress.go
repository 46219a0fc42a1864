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
	case rings.PhaseWaiting, rings.RApproval, rings.PhaseRolledBack, rings.PhaseRollingBack, rings.TUnverified, rings.TRollbackSkipped:
		return s.paint("33", p)
	}
	return p
}

// progress prints one line per event that matters to a person watching the run, on stderr. On a
// terminal the lines are coloured; otherwise they are plain and timestamped for logs.
type progress struct {
	mu    sync.Mutex
	io    IO
	st    style
	start time.Time
}

func newProgress(io IO, g globals) *progress {
	return &progress{io: io, st: newStyle(io, g), start: time.Now()}
}

func (p *progress) event(ev rings.Event) {
	line := p.describe(ev)
	if line == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	stamp := ev.At.Local().Format("15:04:05.000")
	if p.io.ErrTTY {
		stamp = fmt.Sprintf("%6.1fs", ev.At.Sub(p.start).Seconds())
	}
	fmt.Fprintf(p.io.Err, "%s  %s\n", p.st.paint("2", stamp), line)
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
	case rings.RunFinished:
		return st.phase(fmt.Sprintf("%s", ev.Outcome)) + " " + ev.Message
	}
	return ""
}

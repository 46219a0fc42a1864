package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/rollout-dev/rollout/internal/rings"
)

// ReportVersion is the version of the --output json report; its field names are public API.
const ReportVersion = 1

// Report is what `start`, `status` and `rollback` print with --output json.
type Report struct {
	V        int              `json:"v"`
	Run      string           `json:"run"`
	Kind     string           `json:"kind"`
	Release  rings.ReleaseRef `json:"release"`
	Phase    string           `json:"phase"`
	Reason   string           `json:"reason,omitempty"`
	ExitCode int              `json:"exitCode"`
	Started  time.Time        `json:"started"`
	Updated  time.Time        `json:"updated"`
	// Operators' acts on the run, and the stop-the-line switch as the run last saw it.
	Paused     *rings.ApprovalRecord `json:"paused,omitempty"`
	Aborted    *rings.ApprovalRecord `json:"aborted,omitempty"`
	BreakGlass *rings.ApprovalRecord `json:"breakGlass,omitempty"`
	Switch     *rings.Switch         `json:"stopTheLine,omitempty"`
	// Review: the run applies only reviewed plans (digests by target), and who allowed destroying
	// protected resource types.
	Review *rings.Review `json:"review,omitempty"`
	// Driver is the process that holds the fleet and drives the run while it is in progress;
	// WaitingFor says what a run that is not moving waits for ("driver": no live process drives
	// it, and `rollout resume RUN` does). Next is the command that moves a waiting run on.
	Driver     *DriverReport `json:"driver,omitempty"`
	WaitingFor string        `json:"waitingFor,omitempty"`
	Next       string        `json:"next,omitempty"`
	Rings      []RingReport  `json:"rings"`
}

// DriverReport is the process that drives a run in progress (the fleet lease's holder).
type DriverReport struct {
	Name  string `json:"name"` // user@host
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	Doing string `json:"doing"`
}

type RingReport struct {
	Name      string                 `json:"name"`
	Phase     string                 `json:"phase"`
	Failures  int                    `json:"failures"`
	Reason    string                 `json:"reason,omitempty"`
	Started   *time.Time             `json:"started,omitempty"`
	Ended     *time.Time             `json:"ended,omitempty"`
	BakeUntil *time.Time             `json:"bakeUntil,omitempty"`
	Approvals []rings.ApprovalRecord `json:"approvals,omitempty"`
	Drift     *rings.DriftResult     `json:"drift,omitempty"`
	DriftAck  *rings.ApprovalRecord  `json:"driftAcknowledged,omitempty"`
	// Boundaries is what preflight proved (or refused) when the ring entered each boundary.
	Boundaries []BoundaryReport `json:"boundaries,omitempty"`
	Targets    []TargetReport   `json:"targets"`
}

// BoundaryReport is one preflight of a boundary's identity; it never holds a secret.
type BoundaryReport struct {
	Boundary string          `json:"boundary"`
	Verified bool            `json:"verified"`
	Halted   bool            `json:"halted,omitempty"`  // its circuit breaker opened: no new work started there
	Resumed  bool            `json:"resumed,omitempty"` // ...and closed again after a probe passed
	Identity *rings.Identity `json:"identity,omitempty"`
	Message  string          `json:"message"`
	At       time.Time       `json:"at"`
}

type TargetReport struct {
	Name     string             `json:"name"`
	Boundary string             `json:"boundary"`
	Phase    string             `json:"phase"`
	Release  *rings.ReleaseRef  `json:"release,omitempty"` // what it runs now, as far as the run knows
	Applies  rings.ReleaseRef   `json:"applies"`           // what this run applies to it
	From     *rings.ReleaseRef  `json:"lastKnownGood,omitempty"`
	Plan     *rings.PlanSummary `json:"plan,omitempty"`
	Outputs  map[string]any     `json:"outputs,omitempty"`
	Gates    []GateReport       `json:"gates,omitempty"`
	Message  string             `json:"message,omitempty"`
	Started  *time.Time         `json:"started,omitempty"`
	Ended    *time.Time         `json:"ended,omitempty"`
}

// GateReport is the last measurement of one gate on one target.
type GateReport struct {
	Gate         string    `json:"gate"`
	Passed       bool      `json:"passed"`
	Message      string    `json:"message"`
	At           time.Time `json:"at"`
	Measurements int       `json:"measurements"`
	Stale        bool      `json:"stale,omitempty"` // the last measurement was an earlier one standing in
	Outcome      string    `json:"outcome,omitempty"`
}

func tptr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// runLog keeps what a report shows beyond the run's state: the last measurement of each gate on
// each target (or ring: "ring:NAME"), and each ring's boundary preflights.
type runLog struct {
	gates      map[string]map[string]*GateReport
	boundaries map[string][]BoundaryReport // by ring
}

func newRunLog() *runLog {
	return &runLog{gates: map[string]map[string]*GateReport{}, boundaries: map[string][]BoundaryReport{}}
}

func (l *runLog) add(ev rings.Event) {
	switch ev.Type {
	case rings.BoundaryVerified, rings.BoundaryRefused, rings.BoundaryHalted, rings.BoundaryResumed:
		l.boundaries[ev.Ring] = append(l.boundaries[ev.Ring], BoundaryReport{Boundary: ev.Boundary,
			Verified: ev.Type == rings.BoundaryVerified, Halted: ev.Type == rings.BoundaryHalted, Resumed: ev.Type == rings.BoundaryResumed,
			Identity: ev.Identity, Message: ev.Message, At: ev.At})
		return
	}
	if ev.Type != rings.GateMeasured || ev.Passed == nil {
		return
	}
	g := l.gates
	key := ev.Target
	if key == "" {
		key = "ring:" + ev.Ring
	}
	if g[key] == nil {
		g[key] = map[string]*GateReport{}
	}
	gr := g[key][ev.Gate]
	if gr == nil {
		gr = &GateReport{Gate: ev.Gate}
		g[key][ev.Gate] = gr
	}
	gr.Passed, gr.Message, gr.At, gr.Stale, gr.Outcome = *ev.Passed, ev.Message, ev.At, ev.Stale, ev.Outcome
	gr.Measurements++
}

func buildReport(s *rings.State, log *runLog) Report {
	gates := log.gates
	rep := Report{V: ReportVersion, Run: s.RunID, Kind: s.Plan.Kind, Release: s.Plan.Release, Phase: s.Phase,
		Reason: s.Reason, Started: s.Started, Updated: s.Updated, Paused: s.Paused, Aborted: s.Aborted, BreakGlass: s.BreakGlass,
		Switch: s.Switch, Review: s.Plan.Review}
	rep.ExitCode = exitForPhase(s.Phase, true) // in progress: see withDriver
	for _, r := range s.Rings {
		rr := RingReport{Name: r.Plan.Name, Phase: r.Phase, Failures: r.Failures, Reason: r.Reason,
			Started: tptr(r.Started), Ended: tptr(r.Ended), Approvals: r.Approvals, Boundaries: log.boundaries[r.Plan.Name],
			Drift: r.Drift, DriftAck: r.DriftAck}
		if r.Phase == rings.RBaking {
			rr.BakeUntil = tptr(r.BakeUntil)
		}
		for _, tp := range r.Plan.Targets {
			t := s.Targets[tp.Name]
			tr := TargetReport{Name: tp.Name, Boundary: tp.Boundary, Phase: t.Phase, Release: t.Current, Applies: tp.Release,
				From: tp.From, Plan: t.Summary, Outputs: t.Outputs, Message: t.Message, Started: tptr(t.Started), Ended: tptr(t.Ended)}
			for _, g := range r.Plan.Gates {
				if gr := gates[tp.Name][g]; gr != nil {
					tr.Gates = append(tr.Gates, *gr)
				}
			}
			rr.Targets = append(rr.Targets, tr)
		}
		rep.Rings = append(rep.Rings, rr)
	}
	return rep
}

// writeJSON prints one JSON document: indented when a person reads it (out is a terminal),
// compact for a pipeline (indenting a 10,000-target report took a fifth of `status`'s time).
func writeJSON(out io.Writer, v any) error {
	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	if isTerminal(out) {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	return w.Flush()
}

// writeRawJSON prints a JSON document kept as compact bytes, indented for a terminal.
func writeRawJSON(out io.Writer, raw []byte) error {
	if isTerminal(out) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		raw = buf.Bytes()
	}
	if _, err := out.Write(raw); err != nil {
		return err
	}
	_, err := out.Write([]byte("\n"))
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func relName(r *rings.ReleaseRef) string {
	if r == nil {
		return "-"
	}
	return clean(r.Name)
}

func planText(p *rings.PlanSummary) string {
	if p == nil {
		return "-"
	}
	s := fmt.Sprintf("+%d ~%d -%d", p.Add, p.Change, p.Destroy)
	if len(p.Replaced) > 0 {
		s += fmt.Sprintf(" REPLACES %s", strings.Join(p.Replaced, ","))
	}
	if len(p.Deleted) > 0 {
		s += fmt.Sprintf(" DELETES %s", strings.Join(p.Deleted, ","))
	}
	return s
}

func dur(a, b *time.Time) string {
	if a == nil || b == nil {
		return "-"
	}
	return b.Sub(*a).Round(100 * time.Millisecond).String()
}

// printReport writes the report for a person: the run, then a table of rings and targets (not
// coloured: escape codes would break the table's alignment).
func printReport(w io.Writer, rep Report, st style) {
	fmt.Fprintf(w, "\nrun %s  %s %s  %s", clean(rep.Run), rep.Kind, clean(rep.Release.Name), st.phase(rep.Phase))
	if rep.Reason != "" {
		fmt.Fprintf(w, "  (%s)", clean(rep.Reason))
	}
	fmt.Fprintf(w, "\nstarted %s, %s ago; exit code %d\n", rep.Started.Local().Format("2006-01-02 15:04:05"),
		time.Since(rep.Started).Round(time.Second), rep.ExitCode)
	for _, l := range notes(rep) {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tTARGET\tBOUNDARY\tSTATE\tRELEASE\tPLAN\tTOOK\tDETAIL")
	for _, r := range rep.Rings {
		ringNote := r.Phase
		if r.BakeUntil != nil {
			ringNote += fmt.Sprintf(" (%s left)", time.Until(*r.BakeUntil).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t\t\t%s\t\t\t%s\t%s\n", clean(r.Name), ringNote, dur(r.Started, r.Ended), truncate(r.Reason, 100))
		for _, t := range r.Targets {
			detail := t.Message
			if detail == "" && len(t.Gates) > 0 {
				g := t.Gates[len(t.Gates)-1]
				detail = fmt.Sprintf("%s: %s", g.Gate, g.Message)
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(t.Name), clean(t.Boundary), t.Phase, relName(t.Release),
				planText(t.Plan), dur(t.Started, t.Ended), truncate(detail, 100))
		}
	}
	tw.Flush()
}

// clean makes text from the journal safe to print on a terminal: control characters (a newline,
// an ANSI escape) are shown escaped, never sent.
func clean(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func truncate(s string, n int) string {
	s = clean(strings.Join(strings.Fields(s), " "))
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// nextAction is the command that moves a run on, when it waits for a person (or a process).
func nextAction(rep *Report) string {
	var ring *RingReport
	for i := range rep.Rings {
		switch rep.Rings[i].Phase {
		case rings.RApproval, rings.RFrozen, rings.RDrifted, rings.RInconclusive:
			ring = &rep.Rings[i]
		}
	}
	switch {
	case rep.WaitingFor == "driver":
		return fmt.Sprintf("no process drives this run (it is %s): rollout resume %s", rep.Phase, rep.Run)
	case rep.Phase == rings.PhasePaused:
		return "rollout resume " + rep.Run
	case rep.Phase == rings.PhaseBlocked && ring != nil:
		return fmt.Sprintf("ring %s is frozen (%s): rollout resume %s once the freeze is over, or with --break-glass --reason TEXT", ring.Name, ring.Reason, rep.Run)
	case rep.Phase == rings.PhaseWaiting && ring != nil && ring.Phase == rings.RApproval:
		return fmt.Sprintf("ring %s awaits approval (%d given): rollout approve %s --ring %s --reason TEXT, then rollout resume %s", ring.Name, len(ring.Approvals), rep.Run, ring.Name, rep.Run)
	case rep.Phase == rings.PhaseWaiting && ring != nil && ring.Phase == rings.RDrifted:
		return fmt.Sprintf("ring %s stopped on drift (%s): rollout drift ack %s --ring %s --reason TEXT, then rollout resume %s", ring.Name, ring.Reason, rep.Run, ring.Name, rep.Run)
	case rep.Phase == rings.PhaseWaiting:
		return fmt.Sprintf("gates were inconclusive: rollout gate override %s ... or rollout resume %s (see the ring and target details below)", rep.Run, rep.Run)
	case rep.Phase == rings.PhaseRollbackFailed:
		return fmt.Sprintf("a rollback failed (see the targets below): fix the cause, then rollout rollback --run %s [--target T], or roll forward with a new release", rep.Run)
	}
	return ""
}

// notes say, for a person, what holds the run and what to run next, and the operators' acts on it.
func notes(rep Report) []string {
	var out []string
	act := func(what string, a *rings.ApprovalRecord) {
		if a != nil {
			out = append(out, fmt.Sprintf("%s by %s at %s: %s", what, clean(a.Actor), a.At.Local().Format("2006-01-02 15:04:05"), clean(firstNonEmpty(a.Reason, "(no reason given)"))))
		}
	}
	act("paused", rep.Paused)
	act("aborted", rep.Aborted)
	act("BREAK GLASS", rep.BreakGlass)
	if rep.Switch != nil {
		out = append(out, fmt.Sprintf("stop-the-line switch on when the run last looked (by %s: %s); now: rollout freeze status", clean(rep.Switch.Actor), clean(rep.Switch.Reason)))
	}
	if rep.Review != nil && rep.Review.AllowDestroy != "" {
		out = append(out, "protected destroys allowed by "+clean(rep.Review.AllowDestroy))
	}
	if d := rep.Driver; d != nil {
		out = append(out, fmt.Sprintf("driven by %s (pid %d on %s: %s)", clean(d.Name), d.PID, clean(d.Host), clean(d.Doing)))
	}
	next := rep.Next
	if next != "" {
		out = append(out, "next: "+clean(next))
	}
	return out
}

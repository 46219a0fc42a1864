package runs

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// Exit codes: the CI contract (docs/ci-contract.md). A report's ExitCode is one of them, and a
// front end answers a request it could not carry out with ExitError (ExitLeaseHeld when another
// process holds the fleet).
const (
	ExitOK             = 0
	ExitError          = 1
	ExitGateFailed     = 2
	ExitWaiting        = 3
	ExitBlocked        = 4
	ExitLeaseHeld      = 5
	ExitRollbackFailed = 6
	ExitAborted        = 7 // an operator aborted the run (rollout abort), with or without --rollback
	ExitWaitTimeout    = 8 // status --wait gave up after --timeout: the run is still in progress
)

// ReportVersion is the version of the --output json report; its field names are public API.
const ReportVersion = 1

// Report is what `start`, `status` and `rollback` print with --output json.
type Report struct {
	V        int              `json:"v"`
	Run      string           `json:"run"`
	Kind     string           `json:"kind"`
	Release  rings.ReleaseRef `json:"release"`
	Phase    rings.Phase      `json:"phase"`
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
	// Evidence: the attestations from other fleets accepted when the run started (promotion:).
	Evidence []rings.EvidenceRef `json:"evidence,omitempty"`
	// Attempt: a retry's attempt at its release (2 for the first retry), and what it retries.
	Attempt int              `json:"attempt,omitempty"`
	RetryOf *rings.RetryInfo `json:"retryOf,omitempty"`
	// Requested: who asked for a promotion into one ring (kind promote), and why.
	Requested *rings.Requested `json:"requested,omitempty"`
	// Driver is the process that holds the fleet and drives the run while it is in progress;
	// WaitingFor says what a run that is not moving waits for ("driver": no live process drives
	// it, and `rollout resume RUN` does). Next is the command that moves a waiting run on.
	Driver     *DriverReport `json:"driver,omitempty"`
	WaitingFor string        `json:"waitingFor,omitempty"`
	// WaitingOn: the ring a waiting run waits on (approval, driftAck, gateVerdict, freeze) and, for
	// an approval, its quorum and the approvals given.
	WaitingOn *WaitingOn `json:"waitingOn,omitempty"`
	// WaitingForWorkers are the task queues (engine: temporal) whose work no live worker polls.
	WaitingForWorkers []string `json:"waitingForWorkers,omitempty"`
	Next              string   `json:"next,omitempty"`
	// StillRunning: the targets that, as the journal says now, still run the release this run
	// rolled back (a failed release, left in the rings before the one that failed it); Next then
	// returns them. Read at each report, never kept.
	StillRunning []string     `json:"stillRunning,omitempty"`
	Rings        []RingReport `json:"rings"`
}

// WaitingOn is the ring a run waits on, and an approval's quorum and approvals given.
type WaitingOn struct {
	Ring   string `json:"ring"`
	Quorum int    `json:"quorum,omitempty"`
	Given  int    `json:"given,omitempty"`
}

// DriverReport is the process that drives a run in progress (the fleet lease's holder).
type DriverReport struct {
	Name  string `json:"name"` // user@host
	Host  string `json:"host"`
	PID   int    `json:"pid"`
	Doing string `json:"doing"`
}

// RingReport is one ring of a run's report.
type RingReport struct {
	Name      string                 `json:"name"`
	Phase     rings.RingPhase        `json:"phase"`
	Failures  int                    `json:"failures"`
	Reason    string                 `json:"reason,omitempty"`
	Started   *time.Time             `json:"started,omitempty"`
	Ended     *time.Time             `json:"ended,omitempty"`
	BakeUntil *time.Time             `json:"bakeUntil,omitempty"`
	Approvals []rings.ApprovalRecord `json:"approvals,omitempty"`
	// ApprovalWaived: every plan of the ring kept within approval.unlessPlans (the reason says
	// which checks they passed), so its approval was not needed.
	ApprovalWaived *rings.ApprovalRecord `json:"approvalWaived,omitempty"`
	Drift          *rings.DriftResult    `json:"drift,omitempty"`
	DriftAck       *rings.ApprovalRecord `json:"driftAcknowledged,omitempty"`
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

// TargetReport is one target of a run's report: where it is, what it runs, its gates.
type TargetReport struct {
	Name     string             `json:"name"`
	Boundary string             `json:"boundary"`
	Phase    rings.TargetPhase  `json:"phase"`
	Release  *rings.ReleaseRef  `json:"release,omitempty"` // what it runs now, as far as the run knows
	Applies  rings.ReleaseRef   `json:"applies"`           // what this run applies to it
	From     *rings.ReleaseRef  `json:"lastKnownGood,omitempty"`
	Plan     *rings.PlanSummary `json:"plan,omitempty"`
	// ApplyMode is how its last apply ran: direct (one apply) or plan-first (a saved plan, then
	// its apply).
	ApplyMode string         `json:"applyMode,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	Gates     []GateReport   `json:"gates,omitempty"`
	// Components are a stack's components on the target, as this run left each.
	Components []ComponentReport `json:"components,omitempty"`
	// FailedHere: its apply or its gates failed in this run (it may be rolled back now, like its
	// healthy neighbours: this says which one failed).
	FailedHere bool `json:"failedHere,omitempty"`
	// Queued: it is applying or rolling back, but its Terraform run waits for a slot of its
	// boundary (maxParallel) or of the driving process; nothing ran on it yet.
	Queued  bool       `json:"queued,omitempty"`
	Message string     `json:"message,omitempty"`
	Started *time.Time `json:"started,omitempty"`
	Ended   *time.Time `json:"ended,omitempty"`
}

// ComponentReport is one component of a target's stack in a run: applied (with its plan),
// unchanged (not run), failed or destroyed; its release is what it runs after this run's last
// operation on it.
type ComponentReport struct {
	Name    string             `json:"name"`
	State   string             `json:"state"` // applied | unchanged | failed | destroyed
	Release string             `json:"release,omitempty"`
	Plan    *rings.PlanSummary `json:"plan,omitempty"`
	Message string             `json:"message,omitempty"`
	At      time.Time          `json:"at"`
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
	boundaries map[string][]BoundaryReport            // by ring
	components map[string]map[string]*ComponentReport // by target, component
	failed     map[string]bool                        // targets whose apply or gates failed
}

func newRunLog() *runLog {
	return &runLog{gates: map[string]map[string]*GateReport{}, boundaries: map[string][]BoundaryReport{},
		components: map[string]map[string]*ComponentReport{}, failed: map[string]bool{}}
}

// component keeps a stack component's last record on its target.
func (l *runLog) component(ev rings.Event) {
	if l.components[ev.Target] == nil {
		l.components[ev.Target] = map[string]*ComponentReport{}
	}
	c := &ComponentReport{Name: ev.Component, State: strings.TrimPrefix(string(ev.Type), "component."), Plan: ev.Summary, Message: ev.Message, At: ev.At}
	if ev.Release != nil {
		c.Release = ev.Release.Name
	}
	if was := l.components[ev.Target][ev.Component]; was != nil && ev.Type == rings.ComponentFailed {
		c.Release = was.Release // a failed apply leaves what ran before, as far as the run knows
	}
	l.components[ev.Target][ev.Component] = c
}

func (l *runLog) add(ev rings.Event) {
	switch ev.Type {
	case rings.ComponentApplied, rings.ComponentUnchanged, rings.ComponentFailed, rings.ComponentDestroyed:
		l.component(ev)
		return
	case rings.TargetApplyFailed, rings.TargetGateFailed:
		l.failed[ev.Target] = true
		return
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
	gr.Passed, gr.Message, gr.At, gr.Stale, gr.Outcome = *ev.Passed, ev.Message, ev.At, ev.Stale, measuredText(ev)
	gr.Measurements++
}

// buildReport is a run's report from its replayed state and log.
func buildReport(s *rings.State, log *runLog) Report {
	gates := log.gates
	rep := Report{V: ReportVersion, Run: s.RunID, Kind: s.Plan.Kind, Release: s.Plan.Release, Phase: s.Phase,
		Reason: s.Reason, Started: s.Started, Updated: s.Updated, Paused: s.Paused, Aborted: s.Aborted, BreakGlass: s.BreakGlass,
		Switch: s.Switch, Review: s.Plan.Review, Evidence: s.Plan.Evidence, Attempt: s.Plan.Attempt, RetryOf: s.Plan.RetryOf, Requested: s.Plan.Requested}
	rep.ExitCode = ExitForPhase(s.Phase, true) // in progress: see withDriver
	for _, r := range s.Rings {
		rr := RingReport{Name: r.Plan.Name, Phase: r.Phase, Failures: r.Failures, Reason: r.Reason,
			Started: tptr(r.Started), Ended: tptr(r.Ended), Approvals: r.Approvals, ApprovalWaived: r.Waived, Boundaries: log.boundaries[r.Plan.Name],
			Drift: r.Drift, DriftAck: r.DriftAck}
		if r.Phase == rings.RBaking {
			rr.BakeUntil = tptr(r.BakeUntil)
		}
		for _, tp := range r.Plan.Targets {
			t := s.Targets[tp.Name]
			tr := TargetReport{Name: tp.Name, Boundary: tp.Boundary, Phase: t.Phase, Release: t.Current, Applies: tp.Release,
				From: tp.From, Plan: t.Summary, ApplyMode: t.ApplyMode, Outputs: t.Outputs, Message: t.Message, Started: tptr(t.Started), Ended: tptr(t.Ended)}
			for _, g := range r.Plan.Gates {
				if gr := gates[tp.Name][g]; gr != nil {
					tr.Gates = append(tr.Gates, *gr)
				}
			}
			tr.FailedHere, tr.Queued = log.failed[tp.Name], t.Queued
			for _, name := range slices.Sorted(maps.Keys(log.components[tp.Name])) {
				tr.Components = append(tr.Components, *log.components[tp.Name][name])
			}
			rr.Targets = append(rr.Targets, tr)
		}
		rep.Rings = append(rep.Rings, rr)
	}
	return rep
}

// exitForPhase is the CI contract for a run in phase: the exit code `start`, `status` and the
// report give. A run in progress (running, rolling back, aborting) is 0 while a live process drives
// it; when none does, it waits for one (3: `rollout resume RUN`).
func ExitForPhase(phase rings.Phase, driven bool) int {
	switch phase {
	case rings.PhaseSucceeded:
		return ExitOK
	case rings.PhaseRolledBack:
		return ExitGateFailed
	case rings.PhaseRollbackFailed:
		return ExitRollbackFailed
	case rings.PhaseWaiting, rings.PhasePaused:
		return ExitWaiting
	case rings.PhaseBlocked:
		return ExitBlocked
	case rings.PhaseAborted:
		return ExitAborted
	case "":
		return ExitError
	}
	if driven {
		return ExitOK
	}
	return ExitWaiting
}

// nextAction is the command that moves a run on, when it waits for a person (or a process). On
// Temporal (workflow), the run's workflow carries out an approval or an acknowledgement itself.
func nextAction(rep *Report, workflow bool) string {
	then := ", then rollout resume " + rep.Run
	if workflow {
		then = " (the run's workflow goes on by itself)"
	}
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
		return fmt.Sprintf("ring %s awaits approval (%d given): rollout approve %s --ring %s --reason TEXT%s", ring.Name, len(ring.Approvals), rep.Run, ring.Name, then)
	case rep.Phase == rings.PhaseWaiting && ring != nil && ring.Phase == rings.RDrifted:
		return fmt.Sprintf("ring %s stopped on drift (%s): rollout drift ack %s --ring %s --reason TEXT%s", ring.Name, ring.Reason, rep.Run, ring.Name, then)
	case rep.Phase == rings.PhaseWaiting:
		return fmt.Sprintf("gates were inconclusive: rollout gate override %s ... or rollout resume %s (see the ring and target details below)", rep.Run, rep.Run)
	case rep.Phase == rings.PhaseRollbackFailed:
		return fmt.Sprintf("a rollback failed (see the targets below): fix the cause, then rollout rollback --run %s [--target T] --reason TEXT, or roll forward with a new release", rep.Run)
	}
	return ""
}

// waitingOn is the ring a run that waits for a person waits on (nil for none).
func waitingOn(rep *Report, s *rings.State) *WaitingOn {
	if rep.WaitingFor == "" || rep.WaitingFor == "driver" || rep.WaitingFor == "unpause" {
		return nil
	}
	for _, r := range s.Rings {
		switch r.Phase {
		case rings.RApproval:
			return &WaitingOn{Ring: r.Plan.Name, Quorum: max(r.Plan.Quorum, 1), Given: len(r.Approvals)}
		case rings.RDrifted, rings.RInconclusive, rings.RFrozen:
			return &WaitingOn{Ring: r.Plan.Name}
		}
	}
	if s.Ring >= 0 && s.Ring < len(s.Rings) { // targets' gates inconclusive in the ring under way
		return &WaitingOn{Ring: s.Rings[s.Ring].Plan.Name}
	}
	return nil
}

// waitingFor names what a settled run that is not over waits for (see the report's schema):
// approval, driftAck, gateVerdict, freeze (a window or the stop-the-line switch), unpause; "" for
// none.
func waitingFor(rep *Report) string {
	if rep.Phase == rings.PhasePaused {
		return "unpause"
	}
	for _, r := range rep.Rings {
		switch r.Phase {
		case rings.RApproval:
			return "approval"
		case rings.RDrifted:
			return "driftAck"
		case rings.RInconclusive:
			return "gateVerdict"
		case rings.RFrozen:
			return "freeze"
		}
		for _, t := range r.Targets {
			if t.Phase == rings.TInconclusive && rep.Phase == rings.PhaseWaiting {
				return "gateVerdict"
			}
		}
	}
	return ""
}

// keptFormat is how a finished run's report is kept in the journal: its JSON (ReportVersion),
// gzip-compressed and base64-encoded (the column is text in both dialects). A run of 10,000
// targets has a 4.8 MB report, kept in about 190 KB. A report kept in another format (another
// rollout version's) is stale: it is built again from the events.
// Raised whenever the report gains a field (1002: driver, waitingFor, next; 1003: components;
// 1004: approvalWaived; 1005: failedHere; 1006: queued).
const keptFormat = 1006

// ReportNeed says how much of a kept report a command decodes.
type ReportNeed int

const (
	NeedHead ReportNeed = iota // the run's own fields (phase, reason, exit code): history
	NeedJSON                   // and the whole report's JSON, not decoded: status --output json
	NeedAll                    // the whole report decoded: the table
)

// Report builds a run's report. A finished run's report is kept in the journal for the run's
// last event number and keptFormat, so asking again does not replay the run; any later event (or
// another format) makes it stale, and it is built again. raw is the kept JSON when the report
// was kept and need is NeedJSON or NeedAll (nil when it was built now, or for NeedHead). Unless
// need is NeedAll, a kept report comes back with the run's own fields and no rings: decoding
// 10,000 targets is most of a status call's time.
func (f *Fleet) Report(ctx context.Context, id string, need ReportNeed) (*Report, []byte, error) {
	rep, raw, err := f.report(ctx, id, need)
	if err != nil {
		return nil, nil, err
	}
	raw, err = f.withStillRunning(ctx, rep, raw)
	return rep, raw, err
}

// report is Report without what other runs tell (StillRunning).
func (f *Fleet) report(ctx context.Context, id string, need ReportNeed) (*Report, []byte, error) {
	last, err := f.reader.LastSeq(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if seq, version, data, err := f.reports.LoadReport(ctx, id); err == nil && seq == last && version == keptFormat {
		if rep, raw, err := unpackReport(data, need); err == nil {
			return rep, raw, nil
		}
	}
	s, gates, err := f.Replay(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rep := buildReport(s, gates)
	if !Settled(s.Phase) {
		if err := f.withDriver(ctx, &rep); err != nil {
			return nil, nil, err
		}
	}
	rep.Next = nextAction(&rep, f.OnTemporal())
	if rep.WaitingFor == "" {
		rep.WaitingFor = waitingFor(&rep)
	}
	rep.WaitingOn = waitingOn(&rep, s)
	if rings.Terminal(s.Phase) {
		if data, err := packReport(rep); err == nil {
			_ = f.reports.SaveReport(ctx, id, last, keptFormat, data) // derived data: a failure only costs the next replay
		}
	}
	return &rep, nil, nil
}

// withStillRunning adds to a rolled-back or aborted release run's report the targets that still
// run its release as the journal says now, and the command that returns them as its next (also
// into raw, a kept report's JSON, which has neither field then).
func (f *Fleet) withStillRunning(ctx context.Context, rep *Report, raw []byte) ([]byte, error) {
	if !rings.Promotes(rep.Kind) || (rep.Phase != rings.PhaseRolledBack && rep.Phase != rings.PhaseAborted) {
		return raw, nil
	}
	failed := map[string]bool{rep.Release.Name: true}
	if err := f.forgive(ctx, failed); err != nil || !failed[rep.Release.Name] {
		return raw, err
	}
	current := map[string]string{}
	var order []string
	err := f.reader.EventsOfType(ctx, func(ev rings.Event) error {
		if ev.Release != nil {
			if _, seen := current[ev.Target]; !seen {
				order = append(order, ev.Target)
			}
			current[ev.Target] = ev.Release.Name
		}
		return nil
	}, rings.TargetApplied, rings.TargetRolledBack)
	if err != nil {
		return raw, err
	}
	for _, t := range order {
		if current[t] == rep.Release.Name {
			rep.StillRunning = append(rep.StillRunning, t)
		}
	}
	if len(rep.StillRunning) == 0 {
		return raw, nil
	}
	if rep.Next == "" {
		rep.Next = fmt.Sprintf("%d target(s) still run %s, which this run rolled back: rollout rollback --run %s --reason TEXT returns them to their last known good (--dry-run shows how)",
			len(rep.StillRunning), rep.Release.Name, rep.Run)
	}
	if raw == nil || len(raw) < 2 || raw[0] != '{' {
		return raw, nil
	}
	extra, err := json.Marshal(struct {
		Next         string   `json:"next"`
		StillRunning []string `json:"stillRunning"`
	}{rep.Next, rep.StillRunning})
	if err != nil {
		return raw, err
	}
	out := append(append(extra[:len(extra)-1:len(extra)-1], ','), raw[1:]...)
	return out, nil
}

func packReport(rep Report) ([]byte, error) {
	var buf bytes.Buffer
	b64 := base64.NewEncoder(base64.StdEncoding, &buf)
	zw := gzip.NewWriter(b64)
	if err := json.NewEncoder(zw).Encode(rep); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := b64.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func unpackReport(data []byte, need ReportNeed) (*Report, []byte, error) {
	zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(data)))
	if err != nil {
		return nil, nil, err
	}
	if need == NeedHead {
		rep, err := decodeHead(zr) // reads no further than the report's rings
		return rep, nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, err
	}
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	if need == NeedJSON {
		rep, err := decodeHead(bytes.NewReader(raw))
		return rep, raw, err
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, nil, err
	}
	return &rep, raw, nil
}

// decodeHead decodes a report's own fields, stopping at its rings (the last field, and all but
// a few hundred bytes of a large report).
func decodeHead(r io.Reader) (*Report, error) {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("kept report: not a JSON object (%v)", err)
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := t.(string)
		if !ok {
			return nil, errors.New("kept report: a key is not a string")
		}
		if key == "rings" {
			break
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		fields[key] = v
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	var rep Report
	return &rep, json.Unmarshal(b, &rep)
}

// withDriver says who drives a run in progress: the live holder of the fleet's lease; with none,
// the run waits for a driver (exit 3) until `rollout resume RUN`.
func (f *Fleet) withDriver(ctx context.Context, rep *Report) error {
	if f.OnTemporal() {
		return f.temporalDriver(ctx, rep)
	}
	h, err := f.Driver(ctx)
	if err != nil {
		return err
	}
	if h != nil {
		rep.Driver, rep.ExitCode = &DriverReport{Name: h.Name, Host: h.Host, PID: h.PID, Doing: h.Doing}, ExitForPhase(rep.Phase, true)
		return nil
	}
	rep.WaitingFor, rep.ExitCode = "driver", ExitForPhase(rep.Phase, false)
	return nil
}

func short(s string) string { return s[:min(12, len(s))] }

// Notes say, for a person, what holds the run and what to run next, and the operators' acts on it.
func (rep *Report) Notes() []string {
	var out []string
	act := func(what string, a *rings.ApprovalRecord) {
		if a != nil {
			out = append(out, fmt.Sprintf("%s by %s at %s: %s", what, a.Actor, a.At.Local().Format("2006-01-02 15:04:05"), cmp.Or(a.Reason, "(no reason given)")))
		}
	}
	for _, r := range rep.Rings {
		for _, a := range r.Approvals {
			how := "unverified: the name was given, not proven"
			if a.Proof != nil {
				how = "proven by " + a.Proof.Method + " " + a.Proof.Key
			}
			out = append(out, fmt.Sprintf("ring %s approved by %s at %s (%s): %s", r.Name, a.Actor, a.At.Local().Format("2006-01-02 15:04:05"), how, cmp.Or(a.Reason, "(no reason given)")))
		}
	}
	for _, e := range rep.Evidence {
		out = append(out, fmt.Sprintf("evidence accepted: ring %s passed in %s (fleet %s, run %s, ended %s; %s, key %s)",
			e.Ring, e.Boundary, e.Fleet, e.Run, e.Ended.Local().Format("2006-01-02 15:04:05"), e.File, short(e.KeyID)))
	}
	act("paused", rep.Paused)
	act("aborted", rep.Aborted)
	act("BREAK GLASS", rep.BreakGlass)
	if rep.Switch != nil {
		out = append(out, fmt.Sprintf("stop-the-line switch on when the run last looked (by %s: %s); now: rollout freeze status", rep.Switch.Actor, rep.Switch.Reason))
	}
	if rep.Review != nil && rep.Review.AllowDestroy != "" {
		out = append(out, "protected destroys allowed by "+rep.Review.AllowDestroy)
	}
	switch d := rep.Driver; {
	case d != nil && d.PID == 0: // a workflow on Temporal
		out = append(out, fmt.Sprintf("driven by %s (at %s: %s)", d.Name, d.Host, d.Doing))
	case d != nil:
		out = append(out, fmt.Sprintf("driven by %s (pid %d on %s: %s)", d.Name, d.PID, d.Host, d.Doing))
	}
	for _, q := range rep.WaitingForWorkers {
		out = append(out, "waiting for a worker: no worker polls task queue "+q+" (start one inside that boundary: rollout worker --boundary B)")
	}
	if len(rep.StillRunning) > 0 {
		out = append(out, fmt.Sprintf("STILL RUNNING %s, which this run rolled back: %s", rep.Release.Name, strings.Join(rep.StillRunning, ", ")))
	}
	if rep.Next != "" {
		out = append(out, "next: "+rep.Next)
	}
	return out
}

// measuredText is a measurement's outcome as reports say it: a dry run's ends in " (dry run)".
func measuredText(ev rings.Event) string {
	if ev.DryRun {
		return string(ev.Measured) + " (dry run)"
	}
	return string(ev.Measured)
}

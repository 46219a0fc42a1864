package rings

import (
	"encoding/json"
	"strings"
	"time"
)

// ErrorClass is how a failure of an outside system is treated: tried again, or not.
type ErrorClass string

const (
	Transient ErrorClass = "transient"
	Permanent ErrorClass = "permanent"
)

// DriftOutcome is what a ring's drift check found.
type DriftOutcome string

const (
	DriftClean DriftOutcome = "clean"
	Drifted    DriftOutcome = "drift"
	DriftError DriftOutcome = "error"
)

// dryRunSuffix ended a dry run measurement's outcome in version 1.
const dryRunSuffix = " (dry run)"

// UnmarshalJSON reads an event of any version, a version 1 record's "outcome" into the field
// that holds its meaning for the record's type. The event comes back at EventVersion.
func (e *Event) UnmarshalJSON(b []byte) error {
	type plain Event // without this method
	var v struct {
		plain
		Outcome string `json:"outcome"` // version 1
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = Event(v.plain)
	e.Upgrade(v.Outcome)
	return nil
}

// Upgrade brings an event read from an earlier version to EventVersion: outcome is version 1's
// "outcome" field ("" in later versions). A reader that decodes events itself, faster than
// through UnmarshalJSON (the journal), calls it.
func (e *Event) Upgrade(outcome string) {
	if e.V < 2 && outcome != "" {
		e.upgradeV1(outcome)
	}
	if e.V < EventVersion {
		e.V = EventVersion
	}
}

// upgradeV1 puts a version 1 outcome where version 2 keeps it.
func (e *Event) upgradeV1(outcome string) {
	switch e.Type {
	case RunFinished:
		e.Phase = Phase(outcome)
	case TargetApplyFailed:
		if outcome == "untouched" {
			e.Untouched = true
		} else {
			e.Class = ErrorClass(outcome)
		}
	case TargetRetrying:
		e.Class = ErrorClass(outcome)
	case GateMeasured:
		m, dry := strings.CutSuffix(outcome, dryRunSuffix)
		e.Measured, e.DryRun = Outcome(m), dry
	case GateOverridden:
		pass := outcome == "pass"
		e.Passed = &pass
	case RingDriftChecked:
		e.Drift = DriftOutcome(outcome)
	case RunAbortRequested:
		e.Rollback = outcome == "rollback"
	}
	// freeze.changed said on or off; version 2 tells by Switch alone.
}

// EventV1 is an event as version 1 of the published event format (docs/schema/event.v1.json)
// has it, which --events writes: one "outcome" for the meanings version 2 keeps apart.
type EventV1 struct {
	V        int            `json:"v"`
	Seq      int64          `json:"seq,omitempty"`
	RunID    string         `json:"run"`
	At       time.Time      `json:"at"`
	Type     EventType      `json:"type"`
	Ring     string         `json:"ring,omitempty"`
	Target   string         `json:"target,omitempty"`
	Gate     string         `json:"gate,omitempty"`
	Release  *ReleaseRef    `json:"release,omitempty"`
	Plan     *Plan          `json:"plan,omitempty"`
	Summary  *PlanSummary   `json:"summary,omitempty"`
	Outputs  map[string]any `json:"outputs,omitempty"`
	Passed   *bool          `json:"passed,omitempty"`
	Stale    bool           `json:"stale,omitempty"`
	Outcome  string         `json:"outcome,omitempty"`
	Message  string         `json:"message,omitempty"`
	Actor    string         `json:"actor,omitempty"`
	Targets  []string       `json:"targets,omitempty"`
	Boundary string         `json:"boundary,omitempty"`
	Identity *Identity      `json:"identity,omitempty"`
	Switch   *Switch        `json:"switch,omitempty"`
	// ApplyMode and Lock were added within version 1: see Event.
	ApplyMode string     `json:"applyMode,omitempty"`
	Lock      *StateLock `json:"lock,omitempty"`
}

// V1 is the event in version 1 of the published format.
func (e Event) V1() EventV1 {
	out := EventV1{V: 1, Seq: e.Seq, RunID: e.RunID, At: e.At, Type: e.Type, Ring: e.Ring, Target: e.Target, Gate: e.Gate,
		Release: e.Release, Plan: e.Plan, Summary: e.Summary, Outputs: e.Outputs, Passed: e.Passed, Stale: e.Stale,
		Outcome: e.outcomeV1(), Message: e.Message, Actor: e.Actor, Targets: e.Targets, Boundary: e.Boundary,
		Identity: e.Identity, Switch: e.Switch, ApplyMode: e.ApplyMode, Lock: e.Lock}
	if e.Type == GateOverridden {
		out.Passed = nil // version 1 said the verdict in outcome
	}
	return out
}

func (e Event) outcomeV1() string {
	switch e.Type {
	case RunFinished:
		return string(e.Phase)
	case TargetApplyFailed:
		if e.Untouched {
			return "untouched"
		}
		return string(e.Class)
	case TargetRetrying:
		return string(e.Class)
	case GateMeasured:
		if e.DryRun {
			return string(e.Measured) + dryRunSuffix
		}
		return string(e.Measured)
	case GateOverridden:
		if e.Passed != nil && *e.Passed {
			return "pass"
		}
		return "fail"
	case RingDriftChecked:
		return string(e.Drift)
	case RunAbortRequested:
		if e.Rollback {
			return "rollback"
		}
	case FreezeChanged:
		if e.Switch != nil {
			return "on"
		}
		return "off"
	}
	return ""
}

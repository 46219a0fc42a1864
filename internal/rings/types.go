// Package rings is the promotion engine: a pure state machine (Decide) that folds journal events
// into a run's state and says what to do next, and an executor that does it (see README.md).
package rings

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// EventVersion is the version of the Event record written to the journal. Readers skip event
// types they do not know, so adding a type does not need a new version; changing a field's
// meaning does. Version 2 gave each meaning of version 1's "outcome" its own field (see
// events.go); version 1 records are read into them.
const EventVersion = 2

// ReleaseRef names an immutable release: its name, the digest of its module tree and variables,
// and the digest of its module tree alone (the snapshot Terraform runs). Releases journaled before
// version 4 of the journal's schema have no Module, and a Digest of the module tree alone.
type ReleaseRef struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Module string `json:"module,omitempty"`
}

// ModuleDigest is the digest of the release's module snapshot.
func (r ReleaseRef) ModuleDigest() string {
	if r.Module != "" {
		return r.Module
	}
	return r.Digest
}

// Run kinds.
const (
	KindRelease  = "release"  // promote one release ring by ring
	KindRollback = "rollback" // a manual rollback: apply each target's chosen earlier release
	KindExpand   = "expand"   // bring new targets up to the release their ring runs
	KindPromote  = "promote"  // promote one release into one chosen ring (the hotfix path)
)

// Plan is fixed when a run starts and journaled with it, so a resumed run follows the plan it
// started with even if the configuration changed since.
type Plan struct {
	Kind    string     `json:"kind"`
	Release ReleaseRef `json:"release"`
	Rings   []RingPlan `json:"rings"`
	// Review: the plans a person reviewed (rollout plan --save), and whether destroying protected
	// resource types was allowed; the provisioner refuses an apply that differs.
	Review *Review `json:"review,omitempty"`
	// ApplyMode is how its targets are applied (auto, plan-first, direct; see config.ApplyAuto);
	// empty in journals of earlier versions: plan-first, as they did.
	ApplyMode string `json:"applyMode,omitempty"`
	// Evidence is the signed proof, accepted when the run started, that the release passed the
	// rings the fleet's promotion policy requires elsewhere.
	Evidence []EvidenceRef `json:"evidence,omitempty"`
	// Attempt is this run's attempt at its release (0 or 1: the first); a later attempt retries
	// the release after run RetryOf was rolled back or aborted, for Reason.
	Attempt int        `json:"attempt,omitempty"`
	RetryOf *RetryInfo `json:"retryOf,omitempty"`
	// Requested: who asked for a promotion into one ring, and why.
	Requested *Requested `json:"requested,omitempty"`
}

// Promotes says whether a run of kind promotes a release (into every ring, or one).
func Promotes(kind string) bool { return kind == KindRelease || kind == KindPromote }

// Requested is who asked for a run of a kind that needs a reason (promote into one ring), and why.
type Requested struct {
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

// RetryInfo is what a retry retries: the earlier run, how it ended, and why it is tried again.
type RetryInfo struct {
	Run    string `json:"run"`
	Phase  Phase  `json:"phase"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
}

// EvidenceRef is one accepted attestation: where the release passed, by which run of which fleet,
// when, signed by which key; Digest is the SHA-256 of the attestation file.
type EvidenceRef struct {
	Fleet    string    `json:"fleet"`
	Run      string    `json:"run"`
	Ring     string    `json:"ring"`
	Boundary string    `json:"boundary"`
	Ended    time.Time `json:"ended"`
	KeyID    string    `json:"keyId"`
	Digest   string    `json:"digest"`
	File     string    `json:"file"`
}

// Review is what a release's run must match: per target, the digest of the reviewed plan.
type Review struct {
	Digests      map[string]string `json:"digests,omitempty"`
	AllowDestroy string            `json:"allowDestroy,omitempty"` // who allowed destroying protected types, and why
}

// Digest is the reviewed plan's digest of a target (or TARGET@COMPONENT), "" for none (nil: none).
func (r *Review) Digest(key string) string {
	if r == nil {
		return ""
	}
	return r.Digests[key]
}

// RingPlan is a ring as the run started it: its targets and policies, fixed for the run.
type RingPlan struct {
	Name        string       `json:"name"`
	Targets     []TargetPlan `json:"targets"`
	MaxParallel int          `json:"maxParallel"`
	MaxFailures int          `json:"maxFailures"`
	Gates       []string     `json:"gates,omitempty"`
	Bake        Duration     `json:"bake,omitempty"`
	RingGates   []string     `json:"ringGates,omitempty"`
	Rollback    string       `json:"rollback"` // target | ring | run | none
	Approval    bool         `json:"approval,omitempty"`
	Approvers   []string     `json:"approvers,omitempty"`
	Quorum      int          `json:"quorum,omitempty"`
	// Verifiers: the ring enters a boundary that declares its approvers with their keys, so an
	// approval counts only when proven by one of these (an SSH signature or an OIDC ID token).
	Verifiers []Verifier `json:"verifiers,omitempty"`
	// Freeze is when the ring may not start (deny windows, or outside its allow windows): the
	// global, boundary and ring calendars combined when the run started.
	Freeze *Freeze `json:"freeze,omitempty"`
	// DriftCheck: before the ring's first apply, a refresh-only plan of each of its targets that
	// has a last known good; block stops the run on drift until acknowledged, warn records it.
	DriftCheck string `json:"driftCheck,omitempty"` // off | warn | block
	// UnlessPlans: the ring's approval is waived when every target's plan keeps within these
	// limits (approval.unlessPlans), checked before the ring starts.
	UnlessPlans *PlanLimits `json:"unlessPlans,omitempty"`
}

// PlanLimits are the most a plan may do for a ring's approval to be waived (nil: any number).
type PlanLimits struct {
	Destroys *int `json:"destroys,omitempty"` // resources deleted
	Replaces *int `json:"replaces,omitempty"` // resources replaced
	Changes  *int `json:"changes,omitempty"`  // resources added, changed or destroyed in all
}

// Check says which limit a target's plan breaks ("" for none).
func (l *PlanLimits) Check(s PlanSummary) string {
	over := func(what string, n int, max *int) string {
		if max != nil && n > *max {
			return fmt.Sprintf("%s %d > %d", what, n, *max)
		}
		return ""
	}
	for _, why := range []string{over("destroys", len(s.Deleted), l.Destroys), over("replaces", len(s.Replaced), l.Replaces),
		over("changes", s.Add+s.Change+s.Destroy, l.Changes)} {
		if why != "" {
			return why
		}
	}
	return ""
}

// String says the limits, for a person: "destroys <= 0, replaces <= 0".
func (l *PlanLimits) String() string {
	var parts []string
	for _, p := range []struct {
		what string
		n    *int
	}{{"destroys", l.Destroys}, {"replaces", l.Replaces}, {"changes", l.Changes}} {
		if p.n != nil {
			parts = append(parts, fmt.Sprintf("%s <= %d", p.what, *p.n))
		}
	}
	return strings.Join(parts, ", ")
}

// Duration is a time.Duration that reads and writes JSON as Go's text ("10m0s"), so that events
// and reports a person or a pipeline reads say what they mean; journals written before hold
// nanoseconds as a number, which it still reads.
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*d = Duration(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a number of nanoseconds or text such as \"10m\": %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// Drift check modes of a ring.
const (
	DriftOff   = "off"
	DriftWarn  = "warn"
	DriftBlock = "block"
)

// RollbackNone is the scope of a manual rollback run: a failed target is reported, never undone.
const RollbackNone = "none"

// TargetPlan is a target as the run started it: what it applies, and what it ran before.
type TargetPlan struct {
	Name     string      `json:"name"`
	Boundary string      `json:"boundary"`
	Release  ReleaseRef  `json:"release"`        // what this run applies to the target
	From     *ReleaseRef `json:"from,omitempty"` // its last known good when the run started
	// Runs is what the target ran when the run started (its last apply or rollback), which is not
	// its last known good after a failure that was not undone. Journals of earlier versions lack
	// it: From stands in.
	Runs *ReleaseRef `json:"runs,omitempty"`
}

// EventType names what happened. The names are public: they appear in the journal and reports.
type EventType string

const (
	RunStarted           EventType = "run.started"
	RunResumed           EventType = "run.resumed"
	RunFinished          EventType = "run.finished"
	RingStarted          EventType = "ring.started"
	RingApprovalNeeded   EventType = "ring.approval_needed"
	RingApproved         EventType = "ring.approved"
	RingBakeStarted      EventType = "ring.bake_started"
	RingBaked            EventType = "ring.baked"
	RingBakeEnded        EventType = "ring.bake_ended" // an operator ended a ring's bake early (Actor, Message: why)
	RingGateFailed       EventType = "ring.gate_failed"
	RingPassed           EventType = "ring.passed"
	RingHalted           EventType = "ring.halted"
	TargetApplying       EventType = "target.applying"
	TargetPlanned        EventType = "target.planned"
	TargetQueued         EventType = "target.queued"   // its Terraform run waits for its boundary's slot (Message: why)
	TargetDequeued       EventType = "target.dequeued" // it got the slot: Terraform starts
	TargetApplied        EventType = "target.applied"
	TargetApplyFailed    EventType = "target.apply_failed"
	GateMeasured         EventType = "gate.measured"
	TargetVerified       EventType = "target.verified"
	TargetGateFailed     EventType = "target.gate_failed"
	TargetGateCancelled  EventType = "target.gate_cancelled"
	TargetRollingBack    EventType = "target.rolling_back"
	TargetRolledBack     EventType = "target.rolled_back"
	TargetRollbackFailed EventType = "target.rollback_failed"
	TargetRollbackSkip   EventType = "target.rollback_skipped"
	RollbackPlanned      EventType = "rollback.planned"
	// Inconclusive gates pause the ring (the run waits, exit 3) until a human decides: an override
	// (a verdict, recorded with who and why) or a re-measure (rollout resume).
	TargetGateInconclusive EventType = "target.gate_inconclusive"
	RingGateInconclusive   EventType = "ring.gate_inconclusive"
	RingPaused             EventType = "ring.paused"
	GateOverridden         EventType = "gate.overridden" // Passed: the verdict; Actor; Message: the reason
	GatesRemeasure         EventType = "gates.remeasure" // Actor: measure the inconclusive gates again
	// Records of the executor's preflight: the identity proven when a ring first enters a boundary,
	// or why it could not be (then every Terraform run of that ring in that boundary fails).
	BoundaryVerified EventType = "boundary.verified"
	BoundaryRefused  EventType = "boundary.refused"
	// A boundary's circuit breaker opened after consecutive transient failures (no new Terraform
	// run starts there until a probe passes), or closed again.
	BoundaryHalted  EventType = "boundary.halted"
	BoundaryResumed EventType = "boundary.resumed"
	// TargetRetrying records one failed attempt of a target's Terraform run that is tried again
	// (Class: its class; Message: the attempt, the diagnostic and the wait).
	TargetRetrying EventType = "target.retrying"
	// TargetOrphansKilled records processes a dead run of this tool had left running in the
	// target's working directory (Terraform's children), killed before the target ran again.
	TargetOrphansKilled EventType = "target.orphans_killed"
	// TargetLockHolder records, before a Terraform command that takes a target's state lock in a
	// remote backend, who is about to hold it (Lock). TargetLockReleased records a lock that such
	// a holder left behind when it died, released by this process (Lock: the lock and its
	// holder; Message: the evidence that the holder is a dead process of this fleet).
	TargetLockHolder   EventType = "target.lock_holder"
	TargetLockReleased EventType = "target.lock_released"
	// NotifyFailed records a notification a webhook (notify: in rollout.yaml) did not get after
	// its retries (Message: which webhook, what, why; never its URL).
	NotifyFailed EventType = "notify.failed"

	// Operators, from any process (the running one reads them from the journal as they come):
	// pause holds the run before anything new starts (what is under way finishes), unpause goes on;
	// abort stops it for good (Rollback: after rolling back everything it changed).
	RunPaused         EventType = "run.paused"
	RunUnpaused       EventType = "run.unpaused"
	RunAbortRequested EventType = "run.abort_requested"
	// Freeze: the stop-the-line switch as the running process saw it change (Switch: on, else off),
	// a break-glass override for the rest of the run (Actor, Message: why), a ring that may not start
	// now (record; Message says why and until when), and the time check of a waiting frozen ring.
	FreezeChanged   EventType = "freeze.changed"
	FreezeBroken    EventType = "freeze.break_glass"
	RingFrozen      EventType = "ring.frozen"
	RingWindowCheck EventType = "ring.window_check"
	// Drift: the ring's pre-promotion drift check (Targets: those that drifted; Drift: clean,
	// drift or error) and an operator's acknowledgement of it.
	RingDriftChecked  EventType = "ring.drift_checked"
	DriftAcknowledged EventType = "ring.drift_acknowledged"

	// Components of a stack, as a target's apply or rollback goes (records; Decide ignores them):
	// applied (with its plan's summary and outputs), unchanged (its module and inputs are those it
	// was applied with: no Terraform ran), failed, and destroyed (the release removed it).
	ComponentApplied   EventType = "component.applied"
	ComponentUnchanged EventType = "component.unchanged"
	ComponentFailed    EventType = "component.failed"
	ComponentDestroyed EventType = "component.destroyed"

	// RingPlansChecked: a ring whose approval may be waived by plan (approval.unlessPlans) had
	// every target planned and checked; Passed says whether the waiver holds, Message which
	// checks passed or what broke them (Targets: the targets that broke them).
	RingPlansChecked EventType = "ring.plans_checked"
)

// EventTypes is every event type, in the order declared: the one list that describe, the event
// schema and their tests read (a test checks that it holds every EventType constant).
var EventTypes = []EventType{
	RunStarted, RunResumed, RunFinished, RingStarted, RingApprovalNeeded,
	RingApproved, RingBakeStarted, RingBaked, RingBakeEnded, RingGateFailed, RingPassed,
	RingHalted, TargetApplying, TargetPlanned, TargetQueued, TargetDequeued, TargetApplied, TargetApplyFailed,
	GateMeasured, TargetVerified, TargetGateFailed, TargetGateCancelled, TargetRollingBack,
	TargetRolledBack, TargetRollbackFailed, TargetRollbackSkip, RollbackPlanned, TargetGateInconclusive,
	RingGateInconclusive, RingPaused, GateOverridden, GatesRemeasure, BoundaryVerified,
	BoundaryRefused, BoundaryHalted, BoundaryResumed, TargetRetrying, TargetOrphansKilled,
	TargetLockHolder, TargetLockReleased, NotifyFailed, RunPaused, RunUnpaused,
	RunAbortRequested, FreezeChanged, FreezeBroken, RingFrozen, RingWindowCheck,
	RingDriftChecked, DriftAcknowledged, ComponentApplied, ComponentUnchanged, ComponentFailed,
	ComponentDestroyed, RingPlansChecked,
}

// Event is one record of a run's journal. Inputs to Decide come from the executor or an operator;
// records that Decide itself implies (ring.started, target.applying, ...) are journaled too, so the
// journal reads as a full story, but Decide ignores them on replay. Each field has one meaning,
// whatever the type; the comments say which types carry it.
type Event struct {
	V      int       `json:"v"`
	Seq    int64     `json:"seq,omitempty"` // assigned by the store, 1-based per run
	RunID  string    `json:"run"`
	At     time.Time `json:"at"`
	Type   EventType `json:"type"`
	Ring   string    `json:"ring,omitempty"`
	Target string    `json:"target,omitempty"`
	// Component: component.*, the component of the target's stack.
	Component string         `json:"component,omitempty"`
	Gate      string         `json:"gate,omitempty"`
	Release   *ReleaseRef    `json:"release,omitempty"`
	Plan      *Plan          `json:"plan,omitempty"`
	Summary   *PlanSummary   `json:"summary,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	// Passed: gate.measured, whether the measurement was healthy; gate.overridden, the verdict.
	Passed *bool `json:"passed,omitempty"`
	// Measured: gate.measured, what the measurement found; Stale: an earlier one stood in;
	// DryRun: measured in a dry run, where it decides nothing.
	Measured Outcome `json:"measured,omitempty"`
	Stale    bool    `json:"stale,omitempty"`
	DryRun   bool    `json:"dryRun,omitempty"`
	// Phase: run.finished, how the run ended.
	Phase Phase `json:"phase,omitempty"`
	// Class: target.apply_failed and target.retrying, the failure's class (transient or
	// permanent; empty when unknown); Untouched: target.apply_failed before Terraform ran.
	Class     ErrorClass `json:"class,omitempty"`
	Untouched bool       `json:"untouched,omitempty"`
	// Drift: ring.drift_checked, what the check found.
	Drift DriftOutcome `json:"drift,omitempty"`
	// Rollback: run.abort_requested, roll back everything the run changed.
	Rollback bool `json:"rollback,omitempty"`
	// ApplyMode: target.applied and target.rolled_back, how Terraform applied it: "direct" (one
	// apply that planned and applied) or "plan-first" (a saved plan, then its apply).
	ApplyMode string   `json:"applyMode,omitempty"`
	Message   string   `json:"message,omitempty"`
	Actor     string   `json:"actor,omitempty"`
	Targets   []string `json:"targets,omitempty"`
	// Boundary is the boundary a boundary.* record is about; Identity what preflight proved there.
	Boundary string    `json:"boundary,omitempty"`
	Identity *Identity `json:"identity,omitempty"`
	// Switch is the stop-the-line switch when it is on: on run.started, run.resumed and
	// freeze.changed (absent there: off).
	Switch *Switch `json:"switch,omitempty"`
	// Lock: target.lock_holder and target.lock_released, a target's state lock and its holder.
	Lock *StateLock `json:"lock,omitempty"`
	// Proof: ring.approved, how the approver was proven (nil: named, not proven).
	Proof *ApprovalProof `json:"proof,omitempty"`
}

// Verifier is someone who may approve, and how their approval is proven: an SSH public key
// (authorized_keys form) whose signature over the approval's text they give, or an OIDC issuer
// whose ID token, for this audience and subject and with these claims, they give.
type Verifier struct {
	Name string        `json:"name"`
	SSH  string        `json:"ssh,omitempty"`
	OIDC *OIDCVerifier `json:"oidc,omitempty"`
	// ValidAfter and ValidBefore: an SSH key's allowed-signers options valid-after and
	// valid-before; its signatures count only between them.
	ValidAfter  *time.Time `json:"validAfter,omitempty"`
	ValidBefore *time.Time `json:"validBefore,omitempty"`
}

// OIDCVerifier is what an approver's ID token must be: the issuer's, for the audience, of the
// subject, with the claims (all of them, exactly).
type OIDCVerifier struct {
	Issuer   string            `json:"issuer"`
	Audience string            `json:"audience"`
	Subject  string            `json:"subject,omitempty"`
	Claims   map[string]string `json:"claims,omitempty"`
}

// ApprovalProof is how an approval was proven. Digest is the SHA-256 of the signature or token,
// so that one proof is never counted twice.
type ApprovalProof struct {
	Method string `json:"method"` // ssh or oidc
	Key    string `json:"key"`    // the SSH key's fingerprint, or the issuer and subject
	Digest string `json:"digest"`
}

// StateLock is a holder of a target's Terraform state lock: the rollout process whose Terraform
// command takes it, as journaled before the command runs, and on release the lock itself.
type StateLock struct {
	Who       string `json:"who"`  // as Terraform writes it into the lock: user@host
	Host      string `json:"host"` // the machine rollout runs on
	Boot      string `json:"boot,omitempty"`
	PID       int    `json:"pid"`             // rollout's process
	Start     uint64 `json:"start,omitempty"` // when it started (clock ticks after Boot): with PID, one process
	Token     int64  `json:"token,omitempty"` // the fleet lease's fencing token it held
	Operation string `json:"operation"`       // apply, rollback, plan, drift
	// ID and Created: target.lock_released, the lock as Terraform reported it.
	ID      string    `json:"id,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

// Switch is the fleet's stop-the-line switch, as set by `rollout freeze on`.
type Switch struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Identity is what a boundary's preflight proved; it never holds a secret.
type Identity struct {
	Cloud     string    `json:"cloud"`
	Scope     string    `json:"scope"` // AWS partition, Azure environment or Google universe
	Region    string    `json:"region,omitempty"`
	Principal string    `json:"principal,omitempty"`
	Account   string    `json:"account,omitempty"` // AWS account, Azure tenant, Google project
	Attempts  int       `json:"attempts,omitempty"`
	ProvenAt  time.Time `json:"provenAt,omitzero"`
	// Stale: the identity endpoint failed transiently now; this earlier proof, younger than the
	// boundary's maxStaleness, stands in. The text says why.
	Stale string `json:"stale,omitempty"`
}

// PlanSummary is what a Terraform plan would do to one target.
type PlanSummary struct {
	Add      int      `json:"add"`
	Change   int      `json:"change"`
	Destroy  int      `json:"destroy"`
	Replaced []string `json:"replaced,omitempty"` // resource addresses planned for replacement
	Deleted  []string `json:"deleted,omitempty"`  // resource addresses planned for deletion
	Drifted  []string `json:"drifted,omitempty"`  // resource addresses changed outside Terraform
	// Digest is the SHA-256 of the planned changes as Terraform's JSON stream reported them, one
	// "action address" line each, sorted ("": nothing planned was reported).
	Digest string `json:"digest,omitempty"`
}

// Plus is p and o together (a stack's components' plans as the target's): counts added, addresses
// joined; the digest is left out (it is of one plan).
func (p PlanSummary) Plus(o PlanSummary) PlanSummary {
	p.Add, p.Change, p.Destroy = p.Add+o.Add, p.Change+o.Change, p.Destroy+o.Destroy
	p.Replaced = append(append([]string(nil), p.Replaced...), o.Replaced...)
	p.Deleted = append(append([]string(nil), p.Deleted...), o.Deleted...)
	p.Drifted = append(append([]string(nil), p.Drifted...), o.Drifted...)
	p.Digest = ""
	return p
}

// HasChanges says whether applying the plan would change anything.
func (p PlanSummary) HasChanges() bool { return p.Add+p.Change+p.Destroy > 0 }

// CommandKind is what the executor is asked to do.
type CommandKind string

const (
	CmdApply         CommandKind = "apply"          // plan and apply Release to Target
	CmdGate          CommandKind = "gate"           // evaluate Gates on Target until a verdict
	CmdBake          CommandKind = "bake"           // hold Ring until Until, evaluating Gates across it
	CmdCancelGates   CommandKind = "cancel_gates"   // stop gate evaluations of Targets
	CmdRollback      CommandKind = "rollback"       // apply Release (an earlier one) to Target, then Gates
	CmdAwaitApproval CommandKind = "await_approval" // nothing can proceed until Ring is approved
	CmdFinish        CommandKind = "finish"         // the run ended in Phase
	CmdRecord        CommandKind = "record"         // journal a decision (Type, Ring, Target, Message); nothing to run
	CmdAwaitWindow   CommandKind = "await_window"   // Ring is frozen until Until: send ring.window_check then
	CmdCancelWait    CommandKind = "cancel_wait"    // Ring is no longer frozen: stop its await_window
	CmdCancelBake    CommandKind = "cancel_bake"    // stop Ring's bake (the run was aborted)
	CmdDriftCheck    CommandKind = "drift_check"    // refresh-only plans of Targets, then ring.drift_checked
	CmdPlanCheck     CommandKind = "plan_check"     // plans of Targets checked against the ring's limits, then ring.plans_checked
)

// Command is what Decide asks the executor to do.
type Command struct {
	Kind     CommandKind
	Ring     string
	Target   string
	Boundary string // of Target: the bulkhead its Terraform work runs in, the queue its work goes to
	Release  ReleaseRef
	Gates    []string
	Until    time.Time
	Targets  []string
	Phase    Phase               // CmdFinish
	Type     EventType           // CmdRecord
	Message  string              // CmdRecord
	Baseline map[string][]string // CmdGate: targets still on last known good, by ring (see GateRequest)
	// Redrive: work a replayed journal says was under way (State.InFlight); its start was
	// journaled by the process that began it.
	Redrive bool
	// Back: CmdApply of a rollback run (rollout rollback): the release applied is one the target
	// ran before, and a stack walks its components in reverse dependency order first.
	Back bool `json:",omitempty"`
}

// Phase is where a run is: under way, waiting for someone, or ended (Terminal).
type Phase string

// Run phases; the last four are how a run ends.
const (
	PhaseRunning        Phase = "running"
	PhaseWaiting        Phase = "waiting" // for an approval, a gate verdict or a drift acknowledgement
	PhasePaused         Phase = "paused"  // by an operator; nothing under way
	PhaseBlocked        Phase = "blocked" // the next ring is frozen (a deny window or the stop-the-line switch)
	PhaseAborting       Phase = "aborting"
	PhaseRollingBack    Phase = "rolling_back"
	PhaseSucceeded      Phase = "succeeded"
	PhaseRolledBack     Phase = "rolled_back"
	PhaseRollbackFailed Phase = "rollback_failed"
	PhaseAborted        Phase = "aborted"
)

// Terminal says whether a run in this phase is over.
func Terminal(phase Phase) bool {
	return phase == PhaseSucceeded || phase == PhaseRolledBack || phase == PhaseRollbackFailed || phase == PhaseAborted
}

type noteKey struct{}

// WithNote gives a Provisioner's work a way to journal a record about its target, through the
// executor, in order with the target's other events.
func WithNote(ctx context.Context, note func(Event)) context.Context {
	return context.WithValue(ctx, noteKey{}, note)
}

type gateKey struct{}

// ComponentGates evaluates gates over one stack component's outputs on the target whose work this
// is (see WithComponentGates): its verdict, each measurement journaled as the target's.
type ComponentGates func(ctx context.Context, component string, gates []string, outputs map[string]any) Verdict

// WithComponentGates gives a Provisioner's work the executor's gates, for a stack's components.
func WithComponentGates(ctx context.Context, g ComponentGates) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

// GatesOf is the executor's gates for components (nil: none given: a component's gates cannot
// run, which is a failure for a component that has some).
func GatesOf(ctx context.Context) ComponentGates {
	g, _ := ctx.Value(gateKey{}).(ComponentGates)
	return g
}

type rollbackKey struct{}

// WithRollback marks a Provisioner's work as a rollback (a stack then walks its components in
// reverse dependency order first).
func WithRollback(ctx context.Context) context.Context {
	return context.WithValue(ctx, rollbackKey{}, true)
}

// RollingBack says whether the work is a rollback.
func RollingBack(ctx context.Context) bool { v, _ := ctx.Value(rollbackKey{}).(bool); return v }

// Note journals ev through the executor that started this work, if any.
func Note(ctx context.Context, ev Event) {
	if f, ok := ctx.Value(noteKey{}).(func(Event)); ok {
		f(ev)
	}
}

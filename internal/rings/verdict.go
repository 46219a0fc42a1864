package rings

import "time"

// The words of health gates, for the engine and every gate provider alike: a provider's
// Measurement has an Outcome; a gate's judge turns measurements into a Decision; a Verdict is the
// decision of a target's or a ring's gates, with the gate that decided and why.

// Outcome is what one measurement of a gate found.
type Outcome string

const (
	OK           Outcome = "ok"
	Failed       Outcome = "failed"
	Inconclusive Outcome = "inconclusive"
	NoData       Outcome = "no_data"
	Error        Outcome = "error" // the provider could not be asked (unreachable, throttled, bad answer)
)

// Measurement is one observation of a gate. A provider fills At, Outcome, Message and Stale; the
// gate runner adds the gate's name and DryRun.
type Measurement struct {
	Gate    string
	At      time.Time
	Outcome Outcome
	Message string
	Stale   bool // an earlier measurement stood in for one that could not be taken
	DryRun  bool // measured in a dry run: it decides nothing
}

// Passed says whether the measurement was healthy.
func (m Measurement) Passed() bool { return m.Outcome == OK }

// Decision is where a gate's judgement stands.
type Decision int

const (
	Pending   Decision = iota // not decided yet
	Pass                      // healthy
	Fail                      // unhealthy
	Undecided                 // inconclusive: neither pass nor fail; a human decides (rollout gate override)
)

func (d Decision) String() string { return [...]string{"pending", "pass", "fail", "inconclusive"}[d] }

// Verdict is the decision of a target's or a ring's gates: Gate is the gate that decided a
// failure or an inconclusive end.
type Verdict struct {
	Decision Decision
	Gate     string
	Message  string
}

// Passed says whether the gates passed.
func (v Verdict) Passed() bool { return v.Decision == Pass }

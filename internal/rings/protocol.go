package rings

import (
	"slices"
	"time"
)

// Protocol is the round protocol both engines run (the in-process executor's round.go and the
// workflow on Temporal), each supplying only its I/O: the journal's append and inbox, the clock,
// and how a command's work is started. A round folds the events at hand into the state with
// Decide, each followed by the records its commands imply; the engine journals the whole round
// (Take, then Journaled with the sequence numbers the journal gave); only then does it start what
// the round decided.
type Protocol struct {
	S *State
	// Now stamps events that carry no time (the wall clock in-process, workflow time on Temporal).
	Now func() time.Time
	// CompareGates are the gates that compare a target with its baseline: a gate command with one
	// of them carries the targets the run has not changed yet.
	CompareGates []string
	// Act is the engine's: what command c starts once its round is journaled (nil: nothing).
	Act func(c Command) func()

	pending []Event
	starts  []func()
	busy    map[string]bool // targets with an apply, rollback or gate under way
	own     map[int64]bool  // seqs journaled here that the inbox has not read past yet
	after   int64           // the inbox reads the journal from after this seq
	seen    []Event         // journaled by others and folded since the last Take
}

// NewProtocol starts the protocol of state s, whose journal it has read up to s.Seen.
func NewProtocol(s *State, now func() time.Time, compareGates []string, act func(Command) func()) *Protocol {
	return &Protocol{S: s, Now: now, CompareGates: compareGates, Act: act, busy: map[string]bool{}, own: map[int64]bool{}, after: s.Seen}
}

// After is the seq the inbox reads the journal from (after it).
func (p *Protocol) After() int64 { return p.after }

// Busy says whether work on target is under way.
func (p *Protocol) Busy(target string) bool { return p.busy[target] }

// Stamp gives an event its version, run and, if it has none, the time.
func (p *Protocol) Stamp(ev Event) Event {
	ev.V, ev.RunID = EventVersion, p.S.RunID
	if ev.At.IsZero() {
		ev.At = p.Now()
	}
	return ev
}

// Handle folds an event of this engine into the state, to be journaled with this round.
func (p *Protocol) Handle(ev Event) {
	ev = p.Stamp(ev)
	p.pending = append(p.pending, ev)
	p.Plan(Decide(p.S, ev))
}

// Plan turns Decide's commands into this round's records and what it starts once journaled. One
// operation per target at a time, whatever a decision says: the first one stands, and its result
// drives the state on.
func (p *Protocol) Plan(cmds []Command) {
	for _, c := range cmds {
		switch c.Kind {
		case CmdApply, CmdRollback, CmdGate:
			if p.busy[c.Target] {
				continue
			}
			p.busy[c.Target] = true
		}
		if ev, ok := p.S.Record(c); ok {
			p.pending = append(p.pending, p.Stamp(ev))
		}
		if c.Kind == CmdGate && slices.ContainsFunc(c.Gates, func(g string) bool { return slices.Contains(p.CompareGates, g) }) {
			c.Baseline = p.S.Untouched() // here, in the round: the state is not changing
		}
		if p.Act != nil {
			if start := p.Act(c); start != nil {
				p.starts = append(p.starts, start)
			}
		}
	}
}

// Later adds something to start once this round is journaled.
func (p *Protocol) Later(start func()) { p.starts = append(p.starts, start) }

// Done says that the work on target (an apply, a rollback, its gates) ended.
func (p *Protocol) Done(target string) { delete(p.busy, target) }

// Take hands over the round: the events to journal, what to start once they are, and the events
// others journaled that it folded (to observe).
func (p *Protocol) Take() (evs []Event, starts []func(), seen []Event) {
	evs, starts, seen = p.pending, p.starts, p.seen
	p.pending, p.starts, p.seen = nil, nil, nil
	return evs, starts, seen
}

// Journaled records the seqs the journal gave the round's events. The inbox then needs to read
// only past what this engine wrote right after what it has read: others' events are rare, so a
// poll reads those and not the thousands of events of the rounds since the last one (a gap is
// read past at the next poll).
func (p *Protocol) Journaled(seqs []int64) {
	for _, seq := range seqs {
		p.own[seq] = true
	}
	for p.own[p.after+1] {
		p.after++
		delete(p.own, p.after)
	}
}

// Fold folds what the inbox brought: events others journaled (folded, not journaled again) and
// events for this engine to journal (Seq 0).
func (p *Protocol) Fold(inbox []Event) {
	for _, ev := range inbox {
		if ev.Seq == 0 {
			p.Handle(ev)
			continue
		}
		p.after = max(p.after, ev.Seq)
		if p.own[ev.Seq] {
			continue
		}
		p.seen = append(p.seen, ev)
		p.Plan(Decide(p.S, ev))
	}
	for seq := range p.own {
		if seq <= p.after {
			delete(p.own, seq)
		}
	}
}
